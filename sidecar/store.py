"""Read-only access to the DAG store: an S3 bucket (``s3://bucket``) or a folder (``file:///dir``).

Both kinds expose the same five reads the sync needs, with retries and one error class per
failure kind. Nothing here ever writes to the store. Keys are relative to the store root, e.g.
``dev/file_processing/metadata.json`` (see docs/store-layout.md).
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import functools
import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from sidecar.errors import (
    ConfigError,
    LocalDiskError,
    ObjectNotFoundError,
    OversizedObjectError,
    StoppingError,
    StoreError,
)
from sidecar.localfs import create_file, local_writes
from tools.bazel.retrypolicy import RetryPolicy, call_with_retry
from tools.bazel.storecontract import (
    METADATA_NAME,
    REMOVED_NAME,
    PackageKeys,
    StoreUrl,
    StoreUrlError,
    env_prefix,
    parse_dag_bucket,
)
from tools.bazel.storecontract.limits import METADATA_MAX_BYTES

__all__ = [
    "CHUNK_BYTES",
    "Downloaded",
    "FileStore",
    "MetadataObject",
    "PackageEntry",
    "S3Store",
    "Store",
    "open_store",
    "parse_store_url",
]

CHUNK_BYTES = 64 * 1024
OnRetry = Callable[[str, int, float, BaseException], None]


def parse_store_url(url: str) -> StoreUrl:
    """Parse ``DAG_BUCKET`` by the store contract's one rule (``s3://<bucket>`` or ``file:///<dir>``,
    storecontract.storeurl); raise ConfigError ``invalid flag: --dag-bucket='<value>': <reason>``."""
    try:
        return parse_dag_bucket(url)
    except StoreUrlError as exc:
        raise ConfigError(f"invalid flag: --dag-bucket={exc}") from None


@dataclasses.dataclass(frozen=True)
class PackageEntry:
    """What sits directly under ``<env>/<pkg>/``: the metadata's ETag (None if absent) and the marker."""

    metadata_etag: str | None
    removed: bool


@dataclasses.dataclass(frozen=True)
class MetadataObject:
    """The bytes of a ``metadata.json`` and the ETag they were served with."""

    data: bytes
    etag: str


@dataclasses.dataclass(frozen=True)
class Downloaded:
    """Size and sha256 (hex) of a file as it was written to disk while streaming."""

    size: int
    sha256: str


class Store(abc.ABC):
    """The reads the sync needs. Implementations are thread-safe for ``download``.

    Once ``stop`` is set, no request is sent or retried: each read raises StoppingError, or the
    error of its last attempt, at once (a request already in flight ends within its timeout).
    """

    def __init__(
        self,
        location: StoreUrl,
        *,
        policy: RetryPolicy,
        on_retry: OnRetry | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.location = location
        self._policy = policy
        self._on_retry = on_retry
        self._stop = stop

    def address(self, key: str) -> str:
        return self.location.address(key)

    @abc.abstractmethod
    def list_packages(self, env: str) -> list[str]:
        """Names of the package prefixes under ``<env>/``, sorted."""

    @abc.abstractmethod
    def package_entry(self, env: str, package: str) -> PackageEntry:
        """The metadata ETag and the REMOVED marker of one package."""

    @abc.abstractmethod
    def get_metadata(
        self, env: str, package: str, *, if_none_match: str | None, max_bytes: int
    ) -> MetadataObject | None:
        """The package's metadata.json, or None when its ETag still equals ``if_none_match``."""

    @abc.abstractmethod
    def download(self, key: str, dest: Path, *, max_bytes: int) -> Downloaded:
        """Stream ``key`` into the new file ``dest``, hashing on the way; at most ``max_bytes``."""

    @abc.abstractmethod
    def open_read(self, key: str, *, max_bytes: int) -> contextlib.AbstractContextManager[BinaryIO]:
        """``key`` as a sequential binary stream (e.g. a release bundle), never read whole into memory.

        Opening is retried; reading is not (a broken stream raises; the caller falls back).
        Reading past ``max_bytes`` raises OversizedObjectError.
        """

    def close(self) -> None:  # noqa: B027 (optional: a store without connections has nothing to release)
        """Release connections."""

    def _retry(self, what: str, key: str, fn: Callable[[], Any], is_retryable: Callable[[BaseException], bool]) -> Any:
        if self._stop is not None and self._stop.is_set():
            raise StoppingError(f"stopping: not reading {self.address(key)!r} ({what})")

        def on_retry(number: int, delay: float, exc: BaseException) -> None:
            if self._on_retry is not None:
                self._on_retry(what, number, delay, exc)

        return call_with_retry(fn, policy=self._policy, is_retryable=is_retryable, on_retry=on_retry, stop=self._stop)


def _stream_to_file(chunks: Iterable[bytes], dest: Path, *, max_bytes: int, address: str) -> Downloaded:
    """Write ``chunks`` to the new file ``dest`` (mode 0644); a failed local write is a LocalDiskError."""
    digest = hashlib.sha256()
    size = 0
    with local_writes(dest):
        dest.unlink(missing_ok=True)  # a retry, or a second source for the same file, starts over
    with local_writes(dest), create_file(dest) as out:
        for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise OversizedObjectError(
                    f"{address!r} is larger than --max-file-bytes={max_bytes}; keep DAG files small or raise the limit"
                )
            digest.update(chunk)
            out.write(chunk)
    return Downloaded(size=size, sha256=digest.hexdigest())


def _metadata_too_big(address: str, size: int | None, max_bytes: int) -> OversizedObjectError:
    what = f"is {size} bytes" if size is not None else "is larger than that"
    return OversizedObjectError(
        f"{address!r} {what}, more than the {max_bytes} allowed for metadata.json "
        "(storecontract/limits.py METADATA_MAX_BYTES); split the package"
    )


# --------------------------------------------------------------------------------------------- S3


def _s3_retryable(exc: BaseException) -> bool:
    from tools.bazel.s3http import is_transient

    return is_transient(exc)


class _Body(io.RawIOBase):
    """A response body as a read-only file, at most ``limit`` bytes (more raises OversizedObjectError)."""

    def __init__(self, resp: Any, *, limit: int, address: str) -> None:
        self._resp = resp
        self._left = limit
        self._limit = limit
        self._address = address
        self.eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int = -1) -> bytes:
        want = CHUNK_BYTES if size is None or size < 0 else size
        data = self._resp.read(want) if want else b""
        if want and not data:
            self.eof = True
        self._left -= len(data)
        if self._left < 0:
            raise OversizedObjectError(f"{self._address!r} is larger than the {self._limit} bytes expected")
        return bytes(data)


class S3Store(Store):
    """The store in S3 or anything speaking its API, through the platform's S3 client (s3http).

    The client does not retry (``RetryPolicy(retries=0)``): this store's loop does, so that each
    retry is logged and counted, and a stopping sidecar never sits out a backoff.
    """

    def __init__(
        self,
        location: StoreUrl,
        *,
        policy: RetryPolicy,
        timeout: float,
        max_connections: int,
        on_retry: OnRetry | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__(location, policy=policy, on_retry=on_retry, stop=stop)
        from tools.bazel.s3http import S3Client, S3ConfigError

        try:
            self._client = S3Client(
                location.bucket,
                connect_timeout=timeout,
                read_timeout=timeout,
                max_connections=max_connections,
                retry=RetryPolicy(retries=0),
                user_agent="etl-dag-sync-sidecar",
            )
        except S3ConfigError as exc:
            raise ConfigError(f"invalid environment: {exc}") from exc
        self._bucket = location.bucket

    @property
    def endpoint(self) -> str:
        return self._client.endpoint

    def _fail(self, exc: BaseException, key: str) -> StoreError:
        from tools.bazel.s3http import S3CredentialsError, S3ResponseError, describe

        address = self.address(key)
        if isinstance(exc, S3ResponseError):
            if exc.no_bucket:
                return StoreError(
                    f"bucket {self._bucket!r} does not exist (reading {address!r}); check DAG_BUCKET and AWS_ENDPOINT_URL"
                )
            if exc.missing:
                return ObjectNotFoundError(f"{address!r} does not exist")
            if exc.status == 403 or exc.access_denied or exc.bad_credentials:
                return StoreError(
                    f"access denied reading {address!r} ({exc}); the credentials need s3:GetObject and "
                    "s3:ListBucket on it"
                )
            if exc.wrong_region(self._client.region) is not None:
                return StoreError(
                    f"cannot read {address!r}: {describe(exc, bucket=self._bucket, region=self._client.region)}"
                )
            return StoreError(f"cannot read {address!r}: {exc}")
        if isinstance(exc, S3CredentialsError):
            return StoreError(f"no AWS credentials to read {address!r}: {exc}; set the usual AWS credential chain")
        return StoreError(
            f"cannot reach the store reading {address!r}: {type(exc).__name__}: {exc}; "
            "check AWS_ENDPOINT_URL and the network"
        )

    def _call(self, what: str, key: str, fn: Callable[[], Any]) -> Any:
        try:
            return self._retry(what, key, fn, _s3_retryable)
        except (OversizedObjectError, StoreError, LocalDiskError):
            raise
        except Exception as exc:
            raise self._fail(exc, key) from exc

    def _list(self, prefix_key: str, what: str) -> tuple[list[str], list[tuple[str, str]]]:
        """One delimited listing of ``prefix_key``: (common prefixes, (key, etag) objects), all pages."""
        prefixes: list[str] = []
        objects: list[tuple[str, str]] = []
        token: str | None = None
        while True:
            page = self._call(
                what, prefix_key, functools.partial(self._client.list_page, prefix_key, delimiter="/", token=token)
            )
            prefixes.extend(page.prefixes)
            objects.extend((obj.key, obj.etag) for obj in page.objects)
            token = page.next_token
            if not token:
                return prefixes, objects

    def list_packages(self, env: str) -> list[str]:
        base = env_prefix(env)
        prefixes, _ = self._list(base, "list packages")
        return sorted(p[len(base) :].rstrip("/") for p in prefixes if p.startswith(base))

    def package_entry(self, env: str, package: str) -> PackageEntry:
        base = PackageKeys(env, package).prefix
        _, objects = self._list(base, "list package")
        etag: str | None = None
        removed = False
        for key, obj_etag in objects:
            name = key[len(base) :]
            if name == METADATA_NAME:
                etag = obj_etag or None
            elif name == REMOVED_NAME:
                removed = True
        return PackageEntry(metadata_etag=etag, removed=removed)

    def get_metadata(
        self, env: str, package: str, *, if_none_match: str | None, max_bytes: int
    ) -> MetadataObject | None:
        key = PackageKeys(env, package).metadata

        def attempt() -> MetadataObject | None:
            resp = self._client.open(key, if_none_match=if_none_match)
            if resp is None:
                return None  # 304
            with resp:
                # Content-Length first: a too big metadata.json is refused before one byte of it is read
                if resp.length is not None and resp.length > max_bytes:
                    raise _metadata_too_big(self.address(key), resp.length, max_bytes)
                data = _read_at_most(resp, max_bytes + 1)  # no (or a lying) Content-Length: one byte past
                if len(data) > max_bytes:
                    raise _metadata_too_big(self.address(key), None, max_bytes)
            return MetadataObject(data=data, etag=resp.etag)

        result: MetadataObject | None = self._call("get metadata", key, attempt)
        return result

    def download(self, key: str, dest: Path, *, max_bytes: int) -> Downloaded:
        address = self.address(key)

        def attempt() -> Downloaded:
            resp = self._client.open(key)
            assert resp is not None
            with resp:
                if resp.length is not None and resp.length > max_bytes:
                    raise OversizedObjectError(
                        f"{address!r} is {resp.length} bytes, larger than --max-file-bytes={max_bytes}; "
                        "keep DAG files small or raise the limit"
                    )
                return _stream_to_file(resp.iter_chunks(CHUNK_BYTES), dest, max_bytes=max_bytes, address=address)

        result: Downloaded = self._call("download", key, attempt)
        return result

    @contextlib.contextmanager
    def open_read(self, key: str, *, max_bytes: int) -> Iterator[BinaryIO]:
        address = self.address(key)

        def attempt() -> Any:
            resp = self._client.open(key)
            assert resp is not None
            if resp.length is not None and resp.length > max_bytes:
                resp.close()
                raise OversizedObjectError(f"{address!r} is {resp.length} bytes, more than the {max_bytes} expected")
            return resp

        resp = self._call("open", key, attempt)
        body = _Body(resp, limit=max_bytes, address=address)
        try:
            yield body  # type: ignore[misc]
        finally:
            resp.close()

    def close(self) -> None:
        self._client.close()


def _read_at_most(resp: Any, limit: int) -> bytes:
    """Up to ``limit`` bytes of a stream, in chunks (``http.client`` may return fewer than asked)."""
    out = bytearray()
    while len(out) < limit and (chunk := resp.read(min(CHUNK_BYTES, limit - len(out)))):
        out += chunk
    return bytes(out)


# ------------------------------------------------------------------------------------------- file

_FILE_PERMANENT = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def _file_retryable(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and not isinstance(exc, _FILE_PERMANENT)


def _sha256_etag(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FileStore(Store):
    """The store as a local folder with the same key layout (tests, demos, a mounted volume)."""

    @property
    def _root(self) -> Path:
        return Path(self.location.path)

    def _call(self, what: str, key: str, fn: Callable[[], Any]) -> Any:
        try:
            return self._retry(what, key, fn, _file_retryable)
        except (OversizedObjectError, StoreError, LocalDiskError):
            raise
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFoundError(f"{self.address(key)!r} does not exist") from exc
        except OSError as exc:
            raise StoreError(f"cannot read {self.address(key)!r}: {exc.strerror or exc}") from exc

    def list_packages(self, env: str) -> list[str]:
        if not self._root.is_dir():
            raise StoreError(f"store folder {str(self._root)!r} does not exist; check DAG_BUCKET")

        def attempt() -> list[str]:
            try:
                with os.scandir(self._root / env) as entries:
                    return sorted(e.name for e in entries if e.is_dir(follow_symlinks=False))
            except FileNotFoundError:
                return []

        result: list[str] = self._call("list packages", env_prefix(env), attempt)
        return result

    def _read_small(self, key: str, max_bytes: int) -> bytes:
        with open(self._root / key, "rb") as src:
            size = os.fstat(src.fileno()).st_size
            if size > max_bytes:  # the file's size, as S3's Content-Length: refused before reading
                raise _metadata_too_big(self.address(key), size, max_bytes)
            data = src.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise _metadata_too_big(self.address(key), None, max_bytes)
        return data

    def package_entry(self, env: str, package: str) -> PackageEntry:
        key = PackageKeys(env, package).metadata

        def attempt() -> PackageEntry:
            removed = (self._root / env / package / REMOVED_NAME).exists()
            try:
                etag: str | None = self._etag(key)
            except FileNotFoundError:
                etag = None
            return PackageEntry(metadata_etag=etag, removed=removed)

        result: PackageEntry = self._call("list package", key, attempt)
        return result

    def _etag(self, key: str) -> str:
        """The sha256 of the content, hashed in chunks (the old code read the whole file, up to 1 GiB,
        into memory every cycle); a file over METADATA_MAX_BYTES is named by size and mtime instead,
        so a huge one is neither read nor hashed again each cycle."""
        with open(self._root / key, "rb") as src:
            st = os.fstat(src.fileno())
            if st.st_size > METADATA_MAX_BYTES:
                return f"stat:{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"
            digest = hashlib.sha256()
            while chunk := src.read(CHUNK_BYTES):
                digest.update(chunk)
        return "sha256:" + digest.hexdigest()

    def get_metadata(
        self, env: str, package: str, *, if_none_match: str | None, max_bytes: int
    ) -> MetadataObject | None:
        key = PackageKeys(env, package).metadata

        def attempt() -> MetadataObject | None:
            data = self._read_small(key, max_bytes)
            etag = _sha256_etag(data)
            return None if etag == if_none_match else MetadataObject(data=data, etag=etag)

        result: MetadataObject | None = self._call("get metadata", key, attempt)
        return result

    def download(self, key: str, dest: Path, *, max_bytes: int) -> Downloaded:
        address = self.address(key)

        def chunks(src: Any) -> Iterable[bytes]:
            while chunk := src.read(CHUNK_BYTES):
                yield chunk

        def attempt() -> Downloaded:
            with open(self._root / key, "rb") as src:
                return _stream_to_file(chunks(src), dest, max_bytes=max_bytes, address=address)

        result: Downloaded = self._call("download", key, attempt)
        return result

    @contextlib.contextmanager
    def open_read(self, key: str, *, max_bytes: int) -> Iterator[BinaryIO]:
        src = self._call("open", key, lambda: open(self._root / key, "rb"))  # noqa: SIM115 - closed below
        with src:
            size = os.fstat(src.fileno()).st_size
            if size > max_bytes:
                raise OversizedObjectError(f"{self.address(key)!r} is {size} bytes, more than the {max_bytes} expected")
            yield src


def open_store(
    location: StoreUrl,
    *,
    policy: RetryPolicy,
    timeout: float = 10.0,
    max_connections: int = 16,
    on_retry: OnRetry | None = None,
    stop: threading.Event | None = None,
) -> Store:
    """The store for ``location`` (s3http is imported only for s3); ``stop``: see Store."""
    if location.scheme == "s3":
        return S3Store(
            location, policy=policy, timeout=timeout, max_connections=max_connections, on_retry=on_retry, stop=stop
        )
    return FileStore(location, policy=policy, on_retry=on_retry, stop=stop)
