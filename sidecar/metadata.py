"""Parse and check a package's ``metadata.json`` (schema version 1, docs/store-layout.md).

Only what the sync needs is kept: for each DAG its id, file, sha256 and size, plus the release
block's known fields. Unknown keys are ignored, as the schema asks of readers. The bytes are
bounded before they are parsed (storecontract/limits.py: size, then shape counted without building
anything), and ``json.loads`` drops what the sync does not use as it goes: a DAG entry's
``tasks``/``resources`` never stay alive past their own entry.

Names are matched whole (``re.fullmatch``): a ``$`` in ``re.match`` let a trailing newline through.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

from storecontract.limits import (
    DAG_FILE_MAX_BYTES,
    MAX_DAGS,
    RELEASE_MAX_BYTES,
    LimitError,
    bundle_size_bound,
    check_json_shape,
    check_metadata_bytes,
)
from storecontract.names import DAG_ID_RE, NAME_RE

from sidecar.errors import MetadataError

__all__ = [
    "BUNDLE_KEY_RE",
    "DAG_ID_RE",
    "NAME_RE",
    "PUBLISHED_AT_RE",
    "SCHEMA_VERSION",
    "Bundle",
    "DagFile",
    "PackageMetadata",
    "parse_metadata",
    "tree_digest",
]

SCHEMA_VERSION = 1
# env, package and dag_id rules are the store contract's (storecontract.names; use with fullmatch)
_FILE_RE = re.compile(r"dags/(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}\.py)", re.ASCII)
_SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)
BUNDLE_KEY_RE = re.compile(r"releases/[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,127}\.tar", re.ASCII)
PUBLISHED_AT_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", re.ASCII)
_RELEASE_FIELDS = ("id", "previous", "published_at", "image_tag", "rollback_of")
"""The ``release`` block's fields the sidecar keeps (strings); ``bundle`` is parsed on its own."""


@dataclasses.dataclass(frozen=True)
class Bundle:
    """``release.bundle``: one tar of the release's DAG files; ``key`` is relative to ``<env>/<pkg>/``."""

    key: str
    sha256: str
    size: int


@dataclasses.dataclass(frozen=True)
class DagFile:
    """One DAG file of a release: ``file`` is relative to ``<env>/<pkg>/``, ``name`` is the local name."""

    dag_id: str
    file: str
    name: str
    sha256: str
    size: int | None


@dataclasses.dataclass(frozen=True)
class PackageMetadata:
    """The parts of metadata.json the sync uses; ``tree`` identifies the set of files by content."""

    package: str
    dags: tuple[DagFile, ...]
    release_id: str | None
    release: dict[str, Any] | None
    tree: str
    bundle: Bundle | None = None
    bundle_problem: str | None = None
    """Why ``release.bundle`` is present but unusable (the files are then fetched one by one)."""
    published_at: str | None = None
    """``release.published_at`` when it is a UTC time ``YYYY-MM-DDTHH:MM:SSZ`` (dag_id ties go to the earliest)."""

    @property
    def dag_ids(self) -> frozenset[str]:
        return frozenset(d.dag_id for d in self.dags)


def tree_digest(files: dict[str, str]) -> str:
    """sha256 over the sorted ``name -> sha256`` pairs: equal for equal file sets, whatever the release."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]}\n".encode())
    return digest.hexdigest()


def _fail(address: str, what: str) -> MetadataError:
    return MetadataError(f"{address!r}: {what}; the publisher must write schema version {SCHEMA_VERSION}")


def _slim(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` of json.loads: a DAG entry keeps only what the sync uses.

    Objects are built innermost first, so a dropped ``tasks``/``resources`` subtree is freed as
    soon as its entry is built: a package's DAG list costs a few fields per DAG, not its whole
    parsed document (2,000 two-task entries: 90,000 values).
    """
    doc = dict(pairs)
    if "dag_id" in doc and "sha256" in doc:
        return {k: doc[k] for k in ("dag_id", "file", "sha256", "size") if k in doc}
    return doc


def parse_metadata(data: bytes, *, package: str, env: str, address: str) -> PackageMetadata:
    """Check ``data`` (the bytes of metadata.json at ``address``) and return what the sync needs.

    Raises MetadataError naming the address and the bad field; its ``reason`` is
    ``metadata_too_large`` or ``metadata_too_complex`` for a document over a limit of
    storecontract/limits.py (checked before anything is parsed), else ``invalid_metadata``.
    """
    try:
        check_metadata_bytes(len(data), where=address)
        check_json_shape(data, where=address)
    except LimitError as exc:
        raise MetadataError(str(exc), reason=exc.kind) from None
    try:
        doc = json.loads(data, object_pairs_hook=_slim)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise _fail(address, f"not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise _fail(address, f"top level must be an object, got {type(doc).__name__}")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise MetadataError(
            f"{address!r}: schema_version {version!r} is not supported (this sidecar reads {SCHEMA_VERSION}); "
            "upgrade the sidecar or republish"
        )
    if doc.get("package") != package:
        raise _fail(address, f"package {doc.get('package')!r} does not match its prefix {package!r}")
    if "env" in doc and doc["env"] != env:
        raise _fail(address, f"env {doc['env']!r} does not match its prefix {env!r}")
    raw_dags = doc.get("dags")
    if not isinstance(raw_dags, list):
        raise _fail(address, f"dags must be a list, got {type(raw_dags).__name__}")
    if len(raw_dags) > MAX_DAGS:
        raise MetadataError(
            f"{address!r} lists {len(raw_dags)} DAGs, more than the {MAX_DAGS} a release may have "
            "(storecontract/limits.py MAX_DAGS); split the package",
            reason="metadata_too_complex",
        )
    dags: list[DagFile] = []
    names: set[str] = set()
    total = 0
    for i, raw in enumerate(raw_dags):
        where = f"dags[{i}]"
        if not isinstance(raw, dict):
            raise _fail(address, f"{where} must be an object")
        dag_id = raw.get("dag_id")
        if not isinstance(dag_id, str) or not DAG_ID_RE.fullmatch(dag_id):
            raise _fail(address, f"{where}.dag_id {dag_id!r} is not a valid dag id")
        file = raw.get("file")
        match = _FILE_RE.fullmatch(file) if isinstance(file, str) else None
        if match is None or not isinstance(file, str):
            raise _fail(address, f"{where}.file {file!r} must look like 'dags/<dag_id>.py'")
        name = match.group("name")
        if name != f"{dag_id}.py":
            # the local file name is the dag_id: one id, one file (env-wide uniqueness is checked on names)
            raise _fail(address, f"{where}.file {file!r} must be 'dags/{dag_id}.py' for dag_id {dag_id!r}")
        if name in names:
            raise _fail(address, f"{where}.file {file!r} is listed twice")
        names.add(name)
        sha = raw.get("sha256")
        if not isinstance(sha, str) or not _SHA256_RE.fullmatch(sha):
            raise _fail(address, f"{where}.sha256 {sha!r} must be 64 lowercase hex digits")
        size = raw.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise _fail(address, f"{where}.size {size!r} must be a non-negative integer")
        total += size or 0
        dags.append(DagFile(dag_id=dag_id, file=file, name=name, sha256=sha, size=size))
    if total > RELEASE_MAX_BYTES:
        raise MetadataError(
            f"{address!r} lists {total} bytes of DAG files, more than the {RELEASE_MAX_BYTES} a release may "
            "have (storecontract/limits.py RELEASE_MAX_BYTES); split the package",
            reason="metadata_too_complex",
        )
    raw_release = doc.get("release")
    if raw_release is not None and not isinstance(raw_release, dict):
        raise _fail(address, f"release must be an object, got {type(raw_release).__name__}")
    release: dict[str, Any] | None = None
    if raw_release is not None:
        release = {}
        for key in _RELEASE_FIELDS:
            value = raw_release.get(key)
            if value is not None and not isinstance(value, str):
                raise _fail(address, f"release.{key} {value!r} must be a string")
            if key in raw_release:
                release[key] = value
        if "bundle" in raw_release:
            release["bundle"] = raw_release["bundle"]
    release_id = release.get("id") if release else None
    published = release.get("published_at") if release else None
    tree = tree_digest({d.name: d.sha256 for d in dags})
    bundle, problem = _parse_bundle(release.get("bundle") if release else None, dags)
    if release is not None and bundle is not None:
        release["bundle"] = dataclasses.asdict(bundle)
    elif release is not None:
        release.pop("bundle", None)
    return PackageMetadata(
        package=package,
        dags=tuple(dags),
        release_id=release_id,
        release=release,
        tree=tree,
        bundle=bundle,
        bundle_problem=problem,
        published_at=published if published and PUBLISHED_AT_RE.fullmatch(published) else None,
    )


def _parse_bundle(raw: Any, dags: list[DagFile]) -> tuple[Bundle | None, str | None]:
    """``release.bundle`` is optional and only an optimisation: a bad one is reported, never fatal.

    Its size may not exceed what a tar of the listed files can take (limits.bundle_size_bound):
    the sidecar reads a bundle to its end to check its sha256, so an unbounded size was an
    unbounded read.
    """
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        return None, f"release.bundle must be an object, got {type(raw).__name__}"
    key, sha, size = raw.get("key"), raw.get("sha256"), raw.get("size")
    if not isinstance(key, str) or not BUNDLE_KEY_RE.fullmatch(key):
        return None, f"release.bundle.key {key!r} must look like 'releases/<release_id>.tar'"
    if not isinstance(sha, str) or not _SHA256_RE.fullmatch(sha):
        return None, f"release.bundle.sha256 {sha!r} must be 64 lowercase hex digits"
    if not isinstance(size, int) or isinstance(size, bool) or size < 1024:
        return None, f"release.bundle.size {size!r} must be the tar's size in bytes"
    bound = bundle_size_bound([d.size if d.size is not None else DAG_FILE_MAX_BYTES for d in dags])
    if size > bound:
        return None, (
            f"release.bundle.size {size} is more than the {bound} bytes a tar of its {len(dags)} listed "
            "files can take (storecontract/limits.py bundle_size_bound)"
        )
    return Bundle(key=key, sha256=sha, size=size), None
