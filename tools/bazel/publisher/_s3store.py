"""The S3 implementation of Store, on the platform's S3 client (``//tools/bazel/s3http``).

Why not a botocore client: a publish runs as a fresh interpreter, and importing botocore and
building an S3 client (loading S3's service model) takes 0.35-0.6 s, while the publish itself
takes about 0.05 s. s3http signs the few small calls the publisher makes itself (SigV4 with
``hmac``/``hashlib``) and sends them over keep-alive ``http.client`` connections, one per worker
thread from a small pool; botocore is imported only for credentials or the region when the
``AWS_*`` variables do not give them (endpoint, region, credentials, TLS: ``s3http.settings``).
Timeouts: 10 s to connect, 60 s to read. Up to 3 attempts (``RETRY``, equal jitter) on connection
errors, timeouts, throttling and 5xx; other errors are not retried. ETags are unquoted hex strings.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from tools.bazel.publisher.errors import PreconditionFailedError, StoreError
from tools.bazel.publisher.store import ObjectInfo, StoredObject
from tools.bazel.retrypolicy import RetryPolicy
from tools.bazel.s3http import DEFAULT_RETRY, S3Client, S3ConfigError, S3Error, S3ResponseError, describe

__all__ = ["RETRY", "S3Store"]

RETRY: RetryPolicy = DEFAULT_RETRY
"""Three attempts, 0.05-0.1 s and 0.1-0.2 s apart (tests shorten it)."""
_CONTENT_TYPES = {".json": "application/json", ".py": "text/x-python"}


def _missing(exc: Exception) -> bool:
    return isinstance(exc, S3ResponseError) and exc.missing


class S3Store:
    """DAG store in an S3 bucket. ETags are unquoted hex strings."""

    def __init__(self, *, bucket: str, max_pool_connections: int = 16, environ: Mapping[str, str] = os.environ) -> None:
        """``environ``: where the endpoint, region and credentials come from (``AWS_*``)."""
        self.bucket = bucket
        self.url = f"s3://{bucket}"
        try:
            self._client = S3Client(
                bucket, max_connections=max_pool_connections, retry=RETRY, user_agent="etl-publisher", environ=environ
            )
        except S3ConfigError as exc:
            raise StoreError(f"opening {self.url!r}: {exc}") from exc
        self.region = self._client.region
        self.endpoint = self._client.endpoint

    @property
    def max_keys(self) -> int | None:
        """Keys per listing page (S3's default, 1000, when None); tests lower it to page."""
        return self._client.max_keys

    @max_keys.setter
    def max_keys(self, value: int | None) -> None:
        self._client.max_keys = value

    def address(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _fail(self, action: str, key: str, exc: Exception) -> StoreError:
        where = f"{action} {self.address(key)!r}"
        if isinstance(exc, S3ResponseError) and exc.precondition_failed:
            return PreconditionFailedError(f"{where}: precondition failed ({exc.message or exc.code})")
        return StoreError(f"{where}: {describe(exc, bucket=self.bucket, region=self.region)}")

    def _gone(self, action: str, key: str, exc: Exception) -> StoreError:
        """A conditional write or delete whose object vanished: the condition cannot hold."""
        if _missing(exc):
            return PreconditionFailedError(f"{action} {self.address(key)!r}: precondition failed (the object is gone)")
        return self._fail(action, key, exc)

    def iter_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        try:
            for obj in self._client.iter_objects(prefix):
                yield ObjectInfo(key=obj.key, size=obj.size, etag=obj.etag or None)
        except S3Error as exc:
            raise self._fail("listing", prefix, exc) from exc

    def list_dirs(self, prefix: str) -> list[str]:
        try:
            return [p[len(prefix) :].rstrip("/") for p in self._client.list_prefixes(prefix)]
        except S3Error as exc:
            raise self._fail("listing", prefix, exc) from exc

    def get(self, key: str) -> StoredObject | None:
        try:
            data, etag = self._client.get(key)
        except S3Error as exc:
            if _missing(exc):
                return None
            raise self._fail("reading", key, exc) from exc
        return StoredObject(key=key, data=data, etag=etag)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            head = self._client.head(key)
        except S3Error as exc:
            if _missing(exc):
                return None
            raise self._fail("checking", key, exc) from exc
        return ObjectInfo(key=key, size=head.size, etag=head.etag or None, sha256=head.metadata.get("sha256"))

    def put(self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        content_type = _CONTENT_TYPES.get(key[key.rfind(".") :]) if "." in key else None
        try:
            return self._client.put(
                key, data, if_match=if_match, if_none_match=if_none_match, content_type=content_type
            )
        except S3Error as exc:
            if if_match is not None:
                raise self._gone("writing", key, exc) from exc
            raise self._fail("writing", key, exc) from exc

    def copy(self, src: str, dst: str, *, src_etag: str | None = None) -> str:
        try:
            return self._client.copy(src, dst, src_etag=src_etag)
        except S3Error as exc:
            raise self._fail(f"copying {self.address(src)!r} to", dst, exc) from exc

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        try:
            self._client.delete(key, if_match=if_match)
        except S3Error as exc:
            if if_match is not None:
                raise self._gone("deleting", key, exc) from exc
            raise self._fail("deleting", key, exc) from exc

    def close(self) -> None:
        """Close the idle connections (the store stays usable: new ones are opened as needed)."""
        self._client.close()
