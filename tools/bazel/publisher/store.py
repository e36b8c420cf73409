"""The DAG store interface, and ``open_store(url)`` for ``s3://bucket`` or ``file:///dir``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from tools.bazel.publisher.errors import UsageError
from tools.bazel.storecontract import StoreUrlError, parse_dag_bucket

__all__ = [
    "DEFAULT_STORE_SUBDIR",
    "ObjectInfo",
    "Store",
    "StoredObject",
    "default_store_url",
    "open_store",
]

DEFAULT_STORE_SUBDIR = ".etl/dag-store"


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """One stored object as a listing or HEAD sees it."""

    key: str
    size: int
    etag: str | None
    sha256: str | None = None  # known without reading the body (file store, or HEAD metadata)


@dataclasses.dataclass(frozen=True)
class StoredObject:
    """The body of one object and its ETag."""

    key: str
    data: bytes
    etag: str


class Store(Protocol):
    """What the publisher needs from a DAG store. Keys are ``/``-separated relative paths."""

    url: str

    def address(self, key: str) -> str:
        """Full address of ``key`` for messages (``s3://bucket/key``, ``file:///dir/key``)."""
        ...

    def iter_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order, fetched lazily (stop iterating to stop paging)."""
        ...

    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the immediate sub-"directories" of ``prefix`` (delimiter ``/``)."""
        ...

    def get(self, key: str) -> StoredObject | None:
        """The object, or None if it does not exist."""
        ...

    def head(self, key: str) -> ObjectInfo | None:
        """Size, ETag and stored sha256 of the object, or None if it does not exist."""
        ...

    def put(self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        """Write ``data`` (recording its sha256); return the new ETag.

        ``if_match``: only replace the object whose ETag is this; ``if_none_match``: only create.
        A failed condition raises PreconditionFailedError.
        """
        ...

    def copy(self, src: str, dst: str, *, src_etag: str | None = None) -> str:
        """Server-side copy; with ``src_etag`` only if the source still has that ETag."""
        ...

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Delete the object (no error if it is already gone, unless ``if_match`` is given)."""
        ...


def default_store_url(workspace: str | None) -> str:
    """The embedded local store used when DAG_BUCKET is unset: ``<workspace>/.etl/dag-store``."""
    if not workspace:
        raise UsageError(
            "required flag: --bucket/DAG_BUCKET is not set and BUILD_WORKSPACE_DIRECTORY is "
            "unknown (not started by `bazel run`); set DAG_BUCKET=s3://<bucket> or "
            "DAG_BUCKET=file:///<dir>"
        )
    return (Path(workspace).resolve() / DEFAULT_STORE_SUBDIR).as_uri()


def open_store(url: str, *, jobs: int = 8) -> Store:
    """Open ``s3://bucket`` (AWS_ENDPOINT_URL and the usual credential chain) or ``file:///dir``."""
    try:
        where = parse_dag_bucket(url)
    except StoreUrlError as exc:
        raise UsageError(f"invalid flag: --bucket/DAG_BUCKET {exc}") from exc
    if where.scheme == "s3":
        from tools.bazel.publisher._s3store import S3Store

        return S3Store(bucket=where.bucket, max_pool_connections=max(10, jobs * 2))
    from tools.bazel.publisher._filestore import FileStore

    return FileStore(Path(where.path))
