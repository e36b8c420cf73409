"""The S3 implementation of Store (botocore; honours AWS_ENDPOINT_URL and the AWS chain).

The client comes straight from botocore, the library under boto3 that does the signing,
credential chain, endpoint and retries: importing boto3 on top of it only adds its resource
layer and s3transfer, about 0.1 s of start-up that a publish does not use."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

from publisher.errors import PreconditionFailedError, StoreError
from publisher.store import ObjectInfo, StoredObject

__all__ = ["S3Store"]

_MISSING = {"NoSuchKey", "404", "NotFound"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


_SHARED_LOADER: Any = None


def _botocore_session() -> Any:
    """A new botocore session (fresh credentials and endpoint from the environment) that reuses
    one data loader per process, so service models are parsed once."""
    import botocore.session

    global _SHARED_LOADER
    core = botocore.session.get_session()
    if _SHARED_LOADER is None:
        _SHARED_LOADER = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _SHARED_LOADER)
    return core


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None


class S3Store:
    """DAG store in an S3 bucket. ETags are unquoted hex strings."""

    def __init__(self, *, bucket: str, client: Any = None, max_pool_connections: int = 16) -> None:
        self.bucket = bucket
        self.url = f"s3://{bucket}"
        if client is None:
            from botocore.config import Config

            client = _botocore_session().create_client(
                "s3",
                config=Config(
                    retries={"mode": "standard", "max_attempts": 3},
                    connect_timeout=10,
                    read_timeout=60,
                    max_pool_connections=max_pool_connections,
                ),
            )
        self._client = client

    def address(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _fail(self, action: str, key: str, exc: Exception) -> StoreError:
        from botocore.exceptions import ClientError, NoCredentialsError

        if isinstance(exc, NoCredentialsError):
            return StoreError(
                f"{action} {self.address(key)!r}: no AWS credentials found (set AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use an instance role)"
            )
        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            if code in _PRECONDITION:
                return PreconditionFailedError(
                    f"{action} {self.address(key)!r}: precondition failed ({err.get('Message', code)})"
                )
            if code == "NoSuchBucket":
                return StoreError(f"{action} {self.address(key)!r}: bucket {self.bucket!r} does not exist")
            if code in ("AccessDenied", "403"):
                return StoreError(
                    f"{action} {self.address(key)!r}: access denied (check the IAM policy for this prefix)"
                )
            return StoreError(f"{action} {self.address(key)!r}: {code}: {err.get('Message', exc)}")
        return StoreError(f"{action} {self.address(key)!r}: {exc}")

    @staticmethod
    def _code(exc: Exception) -> str:
        response = getattr(exc, "response", None) or {}
        return str(response.get("Error", {}).get("Code", ""))

    def iter_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        while True:
            try:
                page = self._client.list_objects_v2(**kwargs)
            except Exception as exc:
                raise self._fail("listing", prefix, exc) from exc
            for item in page.get("Contents", []):
                yield ObjectInfo(key=item["Key"], size=int(item["Size"]), etag=_etag(item.get("ETag")))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return
            kwargs["ContinuationToken"] = token

    def list_dirs(self, prefix: str) -> list[str]:
        out: list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "Delimiter": "/"}
        while True:
            try:
                page = self._client.list_objects_v2(**kwargs)
            except Exception as exc:
                raise self._fail("listing", prefix, exc) from exc
            for item in page.get("CommonPrefixes", []):
                out.append(item["Prefix"][len(prefix) :].rstrip("/"))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return out
            kwargs["ContinuationToken"] = token

    def get(self, key: str) -> StoredObject | None:
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            data = response["Body"].read()
        except Exception as exc:
            if self._code(exc) in _MISSING:
                return None
            raise self._fail("reading", key, exc) from exc
        return StoredObject(key=key, data=data, etag=_etag(response.get("ETag")) or "")

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self._client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if self._code(exc) in _MISSING:
                return None
            raise self._fail("checking", key, exc) from exc
        return ObjectInfo(
            key=key,
            size=int(response.get("ContentLength", 0)),
            etag=_etag(response.get("ETag")),
            sha256=(response.get("Metadata") or {}).get("sha256"),
        )

    def put(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        digest = hashlib.sha256(data)
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": data,
            "Metadata": {"sha256": digest.hexdigest()},
            "ChecksumSHA256": base64.b64encode(digest.digest()).decode("ascii"),
        }
        if key.endswith(".json"):
            kwargs["ContentType"] = "application/json"
        elif key.endswith(".py"):
            kwargs["ContentType"] = "text/x-python"
        if if_match is not None:
            kwargs["IfMatch"] = f'"{if_match}"'
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        try:
            response = self._client.put_object(**kwargs)
        except Exception as exc:
            if if_match is not None and self._code(exc) in _MISSING:
                raise PreconditionFailedError(
                    f"writing {self.address(key)!r}: precondition failed (the object is gone)"
                ) from exc
            raise self._fail("writing", key, exc) from exc
        return _etag(response.get("ETag")) or ""

    def copy(self, src: str, dst: str, *, src_etag: str | None = None) -> str:
        kwargs: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": dst,
            "CopySource": {"Bucket": self.bucket, "Key": src},
            "MetadataDirective": "COPY",
        }
        if src_etag is not None:
            kwargs["CopySourceIfMatch"] = f'"{src_etag}"'
        try:
            response = self._client.copy_object(**kwargs)
        except Exception as exc:
            raise self._fail(f"copying {self.address(src)!r} to", dst, exc) from exc
        return _etag(response.get("CopyObjectResult", {}).get("ETag")) or ""

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if if_match is not None:
            kwargs["IfMatch"] = f'"{if_match}"'
        try:
            self._client.delete_object(**kwargs)
        except Exception as exc:
            if if_match is not None and self._code(exc) in _MISSING:
                raise PreconditionFailedError(
                    f"deleting {self.address(key)!r}: precondition failed (the object is gone)"
                ) from exc
            raise self._fail("deleting", key, exc) from exc
