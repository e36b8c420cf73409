"""metadata.json (schema version 1): canonical bytes, release ids, and parsing stored copies."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
from typing import Any

from publisher.errors import InvalidNameError, MetadataError
from publisher.keys import PackageKeys, validate_dag_id, validate_release_id

__all__ = [
    "PUBLISH_KEYS",
    "SCHEMA_VERSION",
    "PublishedMetadata",
    "build_part",
    "canonical_json",
    "make_release_id",
    "parse_published",
    "release_time",
    "with_release",
]

SCHEMA_VERSION = 1
PUBLISH_KEYS = ("env", "release", "decommissioned")  # added by the publisher; the rest comes from the build
_SHA256_RE = re.compile(r"[0-9a-f]{64}", re.ASCII)
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}", re.ASCII)
_ID_TIME = "%Y%m%dT%H%M%SZ"


def canonical_json(document: dict[str, Any]) -> bytes:
    """UTF-8 JSON, keys sorted, two-space indent, trailing newline (docs/store-layout.md)."""
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def build_part(document: dict[str, Any]) -> dict[str, Any]:
    """The document without the keys the publisher adds: what the build produced."""
    return {k: v for k, v in document.items() if k not in PUBLISH_KEYS}


def make_release_id(when: dt.datetime, build: dict[str, Any]) -> str:
    """``YYYYMMDDTHHMMSSZ-<first 8 hex of sha256 of the canonical build metadata>``."""
    stamp = when.astimezone(dt.UTC).strftime(_ID_TIME)
    return f"{stamp}-{hashlib.sha256(canonical_json(build)).hexdigest()[:8]}"


def release_time(release_id: str) -> dt.datetime:
    """The UTC time encoded in a release id."""
    stamp = validate_release_id(release_id).split("-", 1)[0]
    return dt.datetime.strptime(stamp, _ID_TIME).replace(tzinfo=dt.UTC)


def with_release(build: dict[str, Any], *, env: str, release: dict[str, Any]) -> dict[str, Any]:
    """The published document: the build metadata plus ``env`` and ``release``."""
    document = dict(build)
    document["env"] = env
    document["release"] = release
    return document


@dataclasses.dataclass(frozen=True)
class PublishedMetadata:
    """A metadata.json read from the store, checked enough to be relied upon."""

    document: dict[str, Any]
    dags: dict[str, str]  # dag_id -> sha256 hex
    image_digest: str | None
    release_id: str | None

    @property
    def build(self) -> dict[str, Any]:
        return build_part(self.document)

    @property
    def decommissioned(self) -> bool:
        """Written by ``--decommission``: the package is removed and owns no dag_id."""
        return isinstance(self.document.get("decommissioned"), dict)


def parse_published(data: bytes, *, where: str, package: str | None = None) -> PublishedMetadata:
    """Parse a stored metadata.json; raise MetadataError naming ``where`` if it is malformed."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MetadataError(f"{where}: not valid UTF-8 JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise MetadataError(f"{where}: expected a JSON object")
    if document.get("schema_version") != SCHEMA_VERSION:
        raise MetadataError(
            f"{where}: schema_version {document.get('schema_version')!r} is not {SCHEMA_VERSION}"
        )
    if package is not None and document.get("package") != package:
        raise MetadataError(f"{where}: package {document.get('package')!r} is not {package!r}")
    dags_field = document.get("dags")
    if not isinstance(dags_field, list):
        raise MetadataError(f"{where}: 'dags' must be a list")
    dags: dict[str, str] = {}
    for entry in dags_field:
        if not isinstance(entry, dict):
            raise MetadataError(f"{where}: every entry of 'dags' must be an object")
        try:
            dag_id = validate_dag_id(entry.get("dag_id"))
        except InvalidNameError as exc:
            raise MetadataError(f"{where}: {exc}") from exc
        sha = entry.get("sha256")
        if not isinstance(sha, str) or not _SHA256_RE.fullmatch(sha):
            raise MetadataError(f"{where}: dag {dag_id!r}: sha256 {sha!r} is not 64 hex digits")
        if entry.get("file") != PackageKeys.dag_file(dag_id):
            raise MetadataError(
                f"{where}: dag {dag_id!r}: file {entry.get('file')!r} must be "
                f"{PackageKeys.dag_file(dag_id)!r}"
            )
        if dag_id in dags:
            raise MetadataError(f"{where}: dag_id {dag_id!r} is listed twice")
        dags[dag_id] = sha
    image = document.get("image")
    digest = image.get("digest") if isinstance(image, dict) else None
    if digest is not None and (not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest)):
        raise MetadataError(f"{where}: image.digest {digest!r} is not sha256:<64 hex>")
    release = document.get("release")
    release_id = None
    if release is not None:
        if not isinstance(release, dict):
            raise MetadataError(f"{where}: 'release' must be an object")
        try:
            release_id = validate_release_id(release.get("id"))
        except InvalidNameError as exc:
            raise MetadataError(f"{where}: {exc}") from exc
    return PublishedMetadata(document=document, dags=dags, image_digest=digest, release_id=release_id)
