"""``metadata.json`` (schema version 1): its model, its canonical bytes, its validation, release ids.

The build (dagrender, the ``:dags`` target) writes the *build* document: ``schema_version``,
``package``, ``image``, ``revision``, ``dags``. The publisher adds ``env`` and ``release`` (and
``decommissioned`` on ``--decommission``) and stores it as ``<ENV>/<pkg>/metadata.json`` and
``releases/<release_id>.json``. Readers ignore keys they do not know. docs/store-layout.md has an
example and the meaning of every field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tools.bazel.storecontract.errors import InvalidNameError, MetadataError
from tools.bazel.storecontract.keys import bundle_file, dag_file
from tools.bazel.storecontract.names import validate_dag_id, validate_env, validate_package, validate_release_id

__all__ = [
    "DIGEST_RE",
    "PUBLISH_KEYS",
    "SCHEMA_VERSION",
    "SHA256_RE",
    "BundleRef",
    "DagEntry",
    "Image",
    "Metadata",
    "Release",
    "build_document",
    "build_part",
    "canonical_json",
    "dag_entry",
    "make_release_id",
    "parse_metadata",
    "release_time",
    "validate_document",
    "with_release",
]

SCHEMA_VERSION = 1
PUBLISH_KEYS = ("env", "release", "decommissioned")
"""Top-level keys the publisher adds; the rest of the document is the build's."""

SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)
_ID_TIME = "%Y%m%dT%H%M%SZ"


def canonical_json(document: Mapping[str, Any]) -> bytes:
    """The stored form: UTF-8 JSON, keys sorted, two-space indent, trailing newline."""
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def dag_entry(
    dag_id: str,
    data: bytes,
    *,
    schedule: str | None,
    tasks: Sequence[str],
    resources: Mapping[str, Any],
) -> dict[str, Any]:
    """One ``dags[*]`` entry of a build document for the rendered file ``data`` of ``dag_id``."""
    return {
        "dag_id": dag_id,
        "file": dag_file(dag_id),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "schedule": schedule,
        "tasks": list(tasks),
        "resources": dict(resources),
    }


def build_document(
    *, package: str, repository: str, digest: str, revision: str | None, dags: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The build document (what the ``:dags`` target writes) for ``dags`` (``dag_entry`` values),
    sorted by dag_id; raises MetadataError when it breaks the contract."""
    document = {
        "schema_version": SCHEMA_VERSION,
        "package": package,
        "image": {"repository": repository, "digest": digest, "reference": f"{repository}@{digest}"},
        "revision": revision,
        "dags": sorted((dict(d) for d in dags), key=lambda d: str(d.get("dag_id"))),
    }
    validate_document(document, where="metadata.json", package=package)
    return document


def build_part(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document without the keys the publisher adds: what the build produced."""
    return {k: v for k, v in document.items() if k not in PUBLISH_KEYS}


def with_release(build: Mapping[str, Any], *, env: str, release: Mapping[str, Any]) -> dict[str, Any]:
    """The published document: the build's plus ``env`` and ``release``."""
    document = dict(build)
    document["env"] = validate_env(env)
    document["release"] = dict(release)
    return document


def make_release_id(when: dt.datetime, build: Mapping[str, Any]) -> str:
    """``YYYYMMDDTHHMMSSZ-<first 8 hex of sha256 of the canonical build document>``."""
    stamp = when.astimezone(dt.UTC).strftime(_ID_TIME)
    return f"{stamp}-{hashlib.sha256(canonical_json(build)).hexdigest()[:8]}"


def release_time(release_id: str) -> dt.datetime:
    """The UTC time a release id encodes."""
    stamp = validate_release_id(release_id).split("-", 1)[0]
    return dt.datetime.strptime(stamp, _ID_TIME).replace(tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DagEntry:
    """One ``dags[*]`` entry: ``file`` (``dags/<dag_id>.py``, relative to ``<ENV>/<pkg>/``) and its bytes' sha256 and size."""

    dag_id: str
    file: str
    sha256: str
    size: int

    @property
    def name(self) -> str:
        """The file's own name, ``<dag_id>.py``."""
        return self.file.rsplit("/", 1)[-1]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Image:
    """``image``: the package image the DAGs pin, ``<repository>@<digest>``."""

    repository: str
    digest: str
    reference: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class BundleRef:
    """``release.bundle``: ``releases/<release.id>.tar``, its sha256 and size."""

    key: str
    sha256: str
    size: int

    def block(self) -> dict[str, Any]:
        return {"key": self.key, "sha256": self.sha256, "size": self.size}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Release:
    """``release``, written by the publisher."""

    id: str
    previous: str | None
    rollback_of: str | None
    bundle: BundleRef | None
    bundle_problem: str | None
    """Why ``release.bundle`` is missing or unusable (None when ``bundle`` is set)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Metadata:
    """A checked metadata.json; ``document`` is the whole parsed object (unknown keys included)."""

    document: dict[str, Any]
    package: str
    env: str | None
    image: Image
    dags: tuple[DagEntry, ...]
    release: Release | None
    decommissioned: bool

    @property
    def sha256s(self) -> dict[str, str]:
        """dag_id -> sha256 of every DAG file."""
        return {entry.dag_id: entry.sha256 for entry in self.dags}

    @property
    def release_id(self) -> str | None:
        return self.release.id if self.release else None

    @property
    def build(self) -> dict[str, Any]:
        return build_part(self.document)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _image(raw: object) -> Image:
    if not isinstance(raw, dict):
        raise ValueError("'image' must be an object with repository, digest and reference")
    repository, digest, reference = raw.get("repository"), raw.get("digest"), raw.get("reference")
    if not isinstance(repository, str) or not repository:
        raise ValueError(f"image.repository {repository!r} is not a repository name")
    if not isinstance(digest, str) or not DIGEST_RE.fullmatch(digest):
        raise ValueError(f"image.digest {digest!r} is not sha256:<64 hex>")
    if reference != f"{repository}@{digest}":
        raise ValueError(f"image.reference {reference!r} is not {repository}@{digest}")
    return Image(repository=repository, digest=digest, reference=reference)


def _dags(raw: object) -> tuple[DagEntry, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("'dags' must be a non-empty list")
    entries: list[DagEntry] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValueError(f"dags[{i}] must be an object")
        try:
            dag_id = validate_dag_id(item.get("dag_id"))
        except InvalidNameError as exc:
            raise ValueError(str(exc)) from exc
        file, sha, size = item.get("file"), item.get("sha256"), item.get("size")
        if file != dag_file(dag_id):
            raise ValueError(f"dag {dag_id!r}: file {file!r} must be {dag_file(dag_id)!r}")
        if not isinstance(sha, str) or not SHA256_RE.fullmatch(sha):
            raise ValueError(f"dag {dag_id!r}: sha256 {sha!r} is not 64 lowercase hex digits")
        if not _is_int(size) or size < 0:
            raise ValueError(f"dag {dag_id!r}: size {size!r} is not a number of bytes")
        if entries and dag_id <= entries[-1].dag_id:
            problem = (
                "is listed twice" if dag_id == entries[-1].dag_id else "is out of order ('dags' is sorted by dag_id)"
            )
            raise ValueError(f"dag_id {dag_id!r} {problem}")
        entries.append(DagEntry(dag_id=dag_id, file=file, sha256=sha, size=size))
    return tuple(entries)


def _bundle(raw: object, release_id: str) -> tuple[BundleRef | None, str | None]:
    if raw is None:
        return None, "release.bundle is missing"
    if not isinstance(raw, dict):
        return None, f"release.bundle must be an object, got {type(raw).__name__}"
    key, sha, size = raw.get("key"), raw.get("sha256"), raw.get("size")
    if key != bundle_file(release_id):
        return None, f"release.bundle.key {key!r} must be {bundle_file(release_id)!r}"
    if not isinstance(sha, str) or not SHA256_RE.fullmatch(sha):
        return None, f"release.bundle.sha256 {sha!r} is not 64 lowercase hex digits"
    if not _is_int(size) or size <= 0:
        return None, f"release.bundle.size {size!r} is not a number of bytes"
    return BundleRef(key=key, sha256=sha, size=size), None


def _release(raw: object) -> Release:
    if not isinstance(raw, dict):
        raise ValueError(f"'release' must be an object, got {type(raw).__name__}")
    try:
        release_id = validate_release_id(raw.get("id"))
        links = {}
        for field in ("previous", "rollback_of"):
            value = raw.get(field)
            links[field] = None if value is None else validate_release_id(value)
    except InvalidNameError as exc:
        raise ValueError(f"release: {exc}") from exc
    bundle, problem = _bundle(raw.get("bundle"), release_id)
    return Release(
        id=release_id,
        previous=links["previous"],
        rollback_of=links["rollback_of"],
        bundle=bundle,
        bundle_problem=problem,
    )


def validate_document(document: object, *, where: str, package: str | None = None, env: str | None = None) -> Metadata:
    """Check a parsed metadata.json; raise MetadataError ``"<where>: <problem>"``.

    ``package``/``env``: the names the document's key implies (it must say the same). A document
    without ``env`` and ``release`` is a build document; with them, a published one.
    """
    try:
        if not isinstance(document, dict):
            raise ValueError(f"top level must be an object, got {type(document).__name__}")
        if document.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"schema_version {document.get('schema_version')!r} is not {SCHEMA_VERSION}")
        name = document.get("package")
        try:
            validate_package(name)
        except InvalidNameError as exc:
            raise ValueError(str(exc)) from exc
        if package is not None and name != package:
            raise ValueError(f"package {name!r} is not {package!r}")
        doc_env = document.get("env")
        if "env" in document:
            try:
                validate_env(doc_env)
            except InvalidNameError as exc:
                raise ValueError(str(exc)) from exc
            if env is not None and doc_env != env:
                raise ValueError(f"env {doc_env!r} is not {env!r}")
        image = _image(document.get("image"))
        dags = _dags(document.get("dags"))
        release = _release(document["release"]) if document.get("release") is not None else None
        decommissioned = document.get("decommissioned")
        if decommissioned is not None and not isinstance(decommissioned, dict):
            raise ValueError(f"'decommissioned' must be an object, got {type(decommissioned).__name__}")
    except ValueError as exc:
        raise MetadataError(f"{where}: {exc}", where=where, problem=str(exc)) from None
    return Metadata(
        document=document,
        package=name,
        env=doc_env,
        image=image,
        dags=dags,
        release=release,
        decommissioned=decommissioned is not None,
    )


def parse_metadata(data: bytes, *, where: str, package: str | None = None, env: str | None = None) -> Metadata:
    """Decode and check the bytes of a metadata.json (see :func:`validate_document`)."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetadataError(
            f"{where}: not valid UTF-8 JSON ({exc})", where=where, problem=f"not valid UTF-8 JSON ({exc})"
        ) from None
    return validate_document(document, where=where, package=package, env=env)
