"""Parse and check a package's ``metadata.json`` (schema version 1, docs/store-layout.md).

Only what the sync needs is kept: for each DAG its file, sha256 and size, plus the release id.
Unknown keys are ignored, as the schema asks of readers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

from sidecar.errors import MetadataError

__all__ = [
    "BUNDLE_KEY_RE",
    "DAG_ID_RE",
    "NAME_RE",
    "SCHEMA_VERSION",
    "Bundle",
    "DagFile",
    "PackageMetadata",
    "parse_metadata",
    "tree_digest",
]

SCHEMA_VERSION = 1
NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
DAG_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$")
_FILE_RE = re.compile(r"^dags/(?P<name>[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}\.py)$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
BUNDLE_KEY_RE = re.compile(r"^releases/[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,127}\.tar$")


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


def tree_digest(files: dict[str, str]) -> str:
    """sha256 over the sorted ``name -> sha256`` pairs: equal for equal file sets, whatever the release."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]}\n".encode())
    return digest.hexdigest()


def _fail(address: str, what: str) -> MetadataError:
    return MetadataError(f"{address!r}: {what}; the publisher must write schema version {SCHEMA_VERSION}")


def parse_metadata(data: bytes, *, package: str, env: str, address: str) -> PackageMetadata:
    """Check ``data`` (the bytes of metadata.json at ``address``) and return what the sync needs.

    Raises MetadataError naming the address and the bad field.
    """
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
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
    dags: list[DagFile] = []
    names: set[str] = set()
    for i, raw in enumerate(raw_dags):
        where = f"dags[{i}]"
        if not isinstance(raw, dict):
            raise _fail(address, f"{where} must be an object")
        dag_id = raw.get("dag_id")
        if not isinstance(dag_id, str) or not DAG_ID_RE.match(dag_id):
            raise _fail(address, f"{where}.dag_id {dag_id!r} is not a valid dag id")
        file = raw.get("file")
        match = _FILE_RE.match(file) if isinstance(file, str) else None
        if match is None or not isinstance(file, str):
            raise _fail(address, f"{where}.file {file!r} must look like 'dags/<dag_id>.py'")
        name = match.group("name")
        if name in names:
            raise _fail(address, f"{where}.file {file!r} is listed twice")
        names.add(name)
        sha = raw.get("sha256")
        if not isinstance(sha, str) or not _SHA256_RE.match(sha):
            raise _fail(address, f"{where}.sha256 {sha!r} must be 64 lowercase hex digits")
        size = raw.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise _fail(address, f"{where}.size {size!r} must be a non-negative integer")
        dags.append(DagFile(dag_id=dag_id, file=file, name=name, sha256=sha, size=size))
    release = doc.get("release")
    if release is not None and not isinstance(release, dict):
        raise _fail(address, f"release must be an object, got {type(release).__name__}")
    release_id = release.get("id") if release else None
    if release_id is not None and not isinstance(release_id, str):
        raise _fail(address, f"release.id {release_id!r} must be a string")
    tree = tree_digest({d.name: d.sha256 for d in dags})
    bundle, problem = _parse_bundle(release.get("bundle") if release else None)
    return PackageMetadata(package=package, dags=tuple(dags), release_id=release_id, release=release, tree=tree,
                           bundle=bundle, bundle_problem=problem)


def _parse_bundle(raw: Any) -> tuple[Bundle | None, str | None]:
    """``release.bundle`` is optional and only an optimisation: a bad one is reported, never fatal."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        return None, f"release.bundle must be an object, got {type(raw).__name__}"
    key, sha, size = raw.get("key"), raw.get("sha256"), raw.get("size")
    if not isinstance(key, str) or not BUNDLE_KEY_RE.match(key):
        return None, f"release.bundle.key {key!r} must look like 'releases/<release_id>.tar'"
    if not isinstance(sha, str) or not _SHA256_RE.match(sha):
        return None, f"release.bundle.sha256 {sha!r} must be 64 lowercase hex digits"
    if not isinstance(size, int) or isinstance(size, bool) or size < 1024:
        return None, f"release.bundle.size {size!r} must be the tar's size in bytes"
    return Bundle(key=key, sha256=sha, size=size), None
