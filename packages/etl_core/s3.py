"""S3 helpers on boto3: listing, hashed get/put, multipart upload, copy, and clear errors.

Every object written through :class:`S3` carries the SHA-256 of its bytes as user metadata
(``x-amz-meta-sha256``), and every read checks the bytes against it, so a corrupt or half-replaced
object is detected. Clients honour ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` (a local moto
server, MinIO...) and the usual AWS credential chain::

    from etl_core.s3 import S3

    s3 = S3()                                              # endpoint from AWS_ENDPOINT_URL
    s3.put("s3://dags/dev/pkg/metadata.json", b"{}")
    for obj in s3.list("s3://dags/dev/pkg/dags/"):         # every page, lazily
        print(obj.url, obj.size)
    data = s3.get("s3://dags/dev/pkg/metadata.json").data  # HashMismatch if the bytes are wrong

Failures raise one :class:`S3Error` subclass per kind (:class:`NotFound`, :class:`AccessDenied`,
:class:`S3Unavailable`, :class:`HashMismatch`...), each naming the full ``s3://bucket/key``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import hashlib
import io
import mimetypes
import os
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import boto3
import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from etl_core.errors import EtlCoreError

__all__ = [
    "DEFAULT_MULTIPART_THRESHOLD",
    "DEFAULT_PART_SIZE",
    "MIN_PART_SIZE",
    "S3",
    "SHA256_METADATA_KEY",
    "AccessDenied",
    "BucketNotFound",
    "HashMismatch",
    "InvalidS3Url",
    "MissingHash",
    "NoCredentials",
    "NotFound",
    "ObjectInfo",
    "PutResult",
    "S3ConfigError",
    "S3Error",
    "S3RequestError",
    "S3Unavailable",
    "S3Url",
    "StoredObject",
    "endpoint_url_from_env",
    "is_transient",
    "make_client",
    "parse_s3_url",
    "sha256_file",
]

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3's minimum size of every part but the last
DEFAULT_MULTIPART_THRESHOLD = 64 * MIB
DEFAULT_PART_SIZE = 16 * MIB
SHA256_METADATA_KEY = "sha256"
_READ_CHUNK = 1 * MIB

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_THROTTLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestTimeout", "ServiceUnavailable"}
)
_DENIED_CODES = frozenset(
    {"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}
)


# --- errors -------------------------------------------------------------------------------------


class S3ConfigError(EtlCoreError):
    """An S3 client setting is invalid (endpoint URL, part size, threshold)."""


class S3Error(EtlCoreError):
    """An S3 operation failed; ``url`` is the ``s3://bucket/key`` it was about."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class InvalidS3Url(S3Error):
    """A string is not a valid ``s3://bucket/key`` address."""


class NotFound(S3Error):
    """The object (or its bucket) does not exist."""


class BucketNotFound(NotFound):
    """The bucket does not exist."""


class AccessDenied(S3Error):
    """The credentials may not do this operation on this address."""


class NoCredentials(S3Error):
    """No AWS credentials could be found."""


class S3Unavailable(S3Error):
    """The endpoint could not be reached, timed out, throttled or failed (5xx): worth retrying."""


class S3RequestError(S3Error):
    """S3 rejected the request for another reason (the message has S3's error code)."""


class HashMismatch(S3Error):
    """An object's bytes do not have the SHA-256 recorded for them."""


class MissingHash(S3Error):
    """An object has no ``sha256`` metadata, but a verified read was required."""


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying (:class:`S3Unavailable`): a predicate for ``retrypolicy.call_with_retry``."""
    return isinstance(exc, S3Unavailable)


# --- addresses ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, order=True)
class S3Url:
    """An S3 address: ``str(S3Url("b", "k/x.py")) == "s3://b/k/x.py"``. ``key`` may be a prefix."""

    bucket: str
    key: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def join(self, *parts: str) -> S3Url:
        """This address with ``parts`` appended as key segments: ``join("dags", "x.py")``."""
        segments = [self.key.rstrip("/")] if self.key else []
        segments += [p.strip("/") for p in parts if p.strip("/")]
        return S3Url(self.bucket, "/".join(segments))

    def with_key(self, key: str) -> S3Url:
        return S3Url(self.bucket, key)

    @property
    def name(self) -> str:
        """The last key segment (``x.py`` for ``s3://b/dags/x.py``)."""
        return self.key.rstrip("/").rsplit("/", 1)[-1]


def parse_s3_url(url: str | S3Url) -> S3Url:
    """Parse ``s3://bucket/key`` (the key may be empty or a prefix); raises :class:`InvalidS3Url`."""
    if isinstance(url, S3Url):
        return url
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise InvalidS3Url(f"invalid S3 URL {url!r}: expected s3://<bucket>/<key>", url=str(url))
    bucket, _, key = url[len("s3://") :].partition("/")
    if not _BUCKET_RE.match(bucket) or ".." in bucket:
        raise InvalidS3Url(
            f"invalid S3 URL {url!r}: bucket name {bucket!r} must be 3-63 characters of a-z, 0-9, '.' and '-', "
            "starting and ending with a letter or digit",
            url=url,
        )
    return S3Url(bucket, key)


def _object_url(url: str | S3Url) -> S3Url:
    parsed = parse_s3_url(url)
    if not parsed.key or parsed.key.endswith("/"):
        raise InvalidS3Url(
            f"invalid S3 object URL {str(parsed)!r}: it names a prefix, not an object key", url=str(parsed)
        )
    return parsed


# --- results ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """An object as listed or headed. ``metadata`` is empty in listings (S3 does not list it)."""

    url: S3Url
    size: int
    etag: str
    last_modified: _dt.datetime | None = None
    metadata: Mapping[str, str] = dataclasses.field(default_factory=dict)
    content_type: str | None = None

    @property
    def sha256(self) -> str | None:
        """The recorded SHA-256 (hex), when the object was headed and has one."""
        return self.metadata.get(SHA256_METADATA_KEY)


@dataclasses.dataclass(frozen=True)
class StoredObject:
    """An object read with :meth:`S3.get`; ``sha256`` is computed from ``data``."""

    url: S3Url
    data: bytes
    sha256: str
    etag: str
    metadata: Mapping[str, str]
    content_type: str | None
    verified: bool  # True when the bytes were checked against a recorded or expected hash


@dataclasses.dataclass(frozen=True)
class PutResult:
    """What :meth:`S3.put`, :meth:`S3.upload_file` and :meth:`S3.copy` wrote."""

    url: S3Url
    sha256: str | None
    size: int
    etag: str


# --- clients ------------------------------------------------------------------------------------


def endpoint_url_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """``AWS_ENDPOINT_URL_S3`` or else ``AWS_ENDPOINT_URL`` (empty = unset); raises :class:`S3ConfigError`."""
    env = os.environ if environ is None else environ
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        value = (env.get(name) or "").strip()
        if value:
            if not value.startswith(("http://", "https://")):
                raise S3ConfigError(f"invalid {name} {value!r}: use an http:// or https:// URL")
            return value
    return None


_session_lock = threading.Lock()
_shared_session: boto3.session.Session | None = None


def make_client(
    *,
    endpoint_url: str | None = None,
    region_name: str | None = None,
    max_attempts: int = 5,
    connect_timeout: float = 10.0,
    read_timeout: float = 60.0,
    environ: Mapping[str, str] | None = None,
    session: boto3.session.Session | None = None,
) -> Any:
    """A boto3 S3 client; the endpoint is ``endpoint_url`` or else the one in the environment.

    With a custom endpoint, path-style addressing is used (``http://host:port/bucket/key``), as
    local servers need. ``max_attempts`` counts botocore's own retries of throttles and 5xx.
    Clients come from one shared boto3 session (as ``boto3.client`` does), created under a lock,
    so the service model and the credential chain are loaded once per process; pass ``session``
    to use another (e.g. a named profile).
    """
    env = os.environ if environ is None else environ
    endpoint = endpoint_url or endpoint_url_from_env(env)
    if endpoint is not None and not endpoint.startswith(("http://", "https://")):
        raise S3ConfigError(f"invalid endpoint_url {endpoint!r}: use an http:// or https:// URL")
    region = region_name or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    config = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        signature_version="s3v4",
        s3={"addressing_style": "path"} if endpoint else {},
    )
    if session is not None:
        return session.client("s3", endpoint_url=endpoint, region_name=region, config=config)
    global _shared_session
    # boto3 sessions are not thread-safe, clients are: create clients under a lock.
    with _session_lock:
        if _shared_session is None:
            _shared_session = boto3.session.Session()
        return _shared_session.client("s3", endpoint_url=endpoint, region_name=region, config=config)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_READ_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _content_type(key: str, given: str | None) -> str:
    if given:
        return given
    guessed, _ = mimetypes.guess_type(key)
    return guessed or "application/octet-stream"


def _translate(exc: BaseException, url: S3Url | str, action: str, endpoint: str | None) -> S3Error:
    """Turn a botocore/s3transfer failure into the matching :class:`S3Error`."""
    where = str(url)
    if isinstance(exc, S3Error):
        return exc
    if isinstance(exc, botocore.exceptions.ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        message = str(err.get("Message", "")) or code
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        bucket = where[len("s3://") :].split("/", 1)[0]
        if code == "NoSuchBucket":
            return BucketNotFound(
                f"{action} {where}: bucket s3://{bucket} does not exist: create it or fix the bucket name", url=where
            )
        if code in {"NoSuchKey", "404", "NotFound"} or status == 404:
            return NotFound(f"{action} {where}: no such object (or no such bucket)", url=where)
        if code in _DENIED_CODES or status == 403:
            return AccessDenied(
                f"{action} {where}: access denied ({code}): check the AWS credentials and the bucket policy", url=where
            )
        if status >= 500 or code in _THROTTLE_CODES:
            return S3Unavailable(f"{action} {where}: S3 answered {status} {code}: {message}: retry later", url=where)
        return S3RequestError(f"{action} {where}: S3 rejected the request: {code}: {message}", url=where)
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return NoCredentials(
            f"{action} {where}: no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE",
            url=where,
        )
    if isinstance(
        exc,
        botocore.exceptions.ConnectionError
        | botocore.exceptions.HTTPClientError
        | botocore.exceptions.ResponseStreamingError
        | botocore.exceptions.IncompleteReadError,
    ):
        return S3Unavailable(
            f"{action} {where}: cannot reach S3 endpoint {endpoint or 'AWS'}: {exc}: check AWS_ENDPOINT_URL "
            "and the network, or retry",
            url=where,
        )
    if type(exc).__name__ == "RetriesExceededError":  # s3transfer, after its own retries of a download
        return S3Unavailable(f"{action} {where}: gave up after retries: {exc}", url=where)
    return S3RequestError(f"{action} {where} failed: {type(exc).__name__}: {exc}", url=where)


_TRANSLATED = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)


# --- the helper ---------------------------------------------------------------------------------


class S3:
    """S3 operations with content hashes and clear errors, over one boto3 client.

    client: a boto3 S3 client (default: :func:`make_client`, honouring ``AWS_ENDPOINT_URL``).
    multipart_threshold: objects at least this big are uploaded (and copied) in parts.
    part_size: size of each part (S3's minimum is 5 MiB).
    max_concurrency: parts transferred at once.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        endpoint_url: str | None = None,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
        part_size: int = DEFAULT_PART_SIZE,
        max_concurrency: int = 4,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise S3ConfigError(f"part_size {part_size!r} is below S3's minimum of {MIN_PART_SIZE} bytes (5 MiB)")
        if multipart_threshold < 1:
            raise S3ConfigError(f"multipart_threshold must be >= 1 byte, got {multipart_threshold!r}")
        if max_concurrency < 1:
            raise S3ConfigError(f"max_concurrency must be >= 1, got {max_concurrency!r}")
        self.client = client if client is not None else make_client(endpoint_url=endpoint_url)
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.transfer_config = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=part_size,
            max_concurrency=max_concurrency,
            use_threads=max_concurrency > 1,
        )

    @property
    def endpoint_url(self) -> str:
        return str(self.client.meta.endpoint_url)

    def _fail(self, exc: BaseException, url: S3Url | str, action: str) -> S3Error:
        return _translate(exc, url, action, self.endpoint_url)

    # -- listing --

    def list(self, url: str | S3Url, *, page_size: int = 1000) -> Iterator[ObjectInfo]:
        """Every object whose key starts with the URL's key, in key order, fetched page by page.

        ``s3://b/dev/pkg/`` lists under that folder; ``s3://b/dev/pkg`` would also match
        ``dev/pkg2/...`` (S3 prefixes are plain string prefixes).
        """
        base = parse_s3_url(url)
        if not 1 <= page_size <= 1000:
            raise S3ConfigError(f"page_size must be 1..1000, got {page_size!r}")
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=base.bucket, Prefix=base.key, PaginationConfig={"PageSize": page_size})
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    yield ObjectInfo(
                        url=S3Url(base.bucket, item["Key"]),
                        size=int(item.get("Size", 0)),
                        etag=str(item.get("ETag", "")).strip('"'),
                        last_modified=item.get("LastModified"),
                    )
        except _TRANSLATED as exc:
            raise self._fail(exc, base, "list") from exc

    def list_prefixes(self, url: str | S3Url, *, delimiter: str = "/", page_size: int = 1000) -> Iterator[S3Url]:
        """The "folders" directly under a prefix: ``s3://b/dev/`` yields ``s3://b/dev/pkg_a/``, ..."""
        base = parse_s3_url(url)
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=base.bucket, Prefix=base.key, Delimiter=delimiter, PaginationConfig={"PageSize": page_size}
        )
        try:
            for page in pages:
                for item in page.get("CommonPrefixes", ()):
                    yield S3Url(base.bucket, item["Prefix"])
        except _TRANSLATED as exc:
            raise self._fail(exc, base, "list") from exc

    # -- reading --

    def head(self, url: str | S3Url) -> ObjectInfo:
        """Size, ETag and metadata of an object; raises :class:`NotFound` when it is missing."""
        target = _object_url(url)
        try:
            resp = self.client.head_object(Bucket=target.bucket, Key=target.key)
        except _TRANSLATED as exc:
            raise self._fail(exc, target, "head") from exc
        return ObjectInfo(
            url=target,
            size=int(resp.get("ContentLength", 0)),
            etag=str(resp.get("ETag", "")).strip('"'),
            last_modified=resp.get("LastModified"),
            metadata=dict(resp.get("Metadata") or {}),
            content_type=resp.get("ContentType"),
        )

    def exists(self, url: str | S3Url) -> bool:
        """True when the object exists (other failures still raise)."""
        try:
            self.head(url)
        except NotFound:
            return False
        return True

    def get(
        self,
        url: str | S3Url,
        *,
        verify: bool = True,
        require_hash: bool = False,
        expected_sha256: str | None = None,
    ) -> StoredObject:
        """Read a whole object into memory and check its SHA-256.

        With ``verify`` the bytes must match the recorded ``sha256`` metadata when there is one;
        ``require_hash`` also fails (:class:`MissingHash`) when there is none; ``expected_sha256``
        (e.g. from a manifest) must match as well. Raises :class:`HashMismatch` on a difference.
        """
        target = _object_url(url)
        try:
            resp = self.client.get_object(Bucket=target.bucket, Key=target.key)
            body = resp["Body"]
            try:
                data = body.read()
            finally:
                body.close()
        except _TRANSLATED as exc:
            raise self._fail(exc, target, "get") from exc
        metadata = dict(resp.get("Metadata") or {})
        actual = hashlib.sha256(data).hexdigest()
        verified = self._verify(target, actual, metadata, verify=verify, require=require_hash, expected=expected_sha256)
        return StoredObject(
            url=target,
            data=data,
            sha256=actual,
            etag=str(resp.get("ETag", "")).strip('"'),
            metadata=metadata,
            content_type=resp.get("ContentType"),
            verified=verified,
        )

    def download_file(
        self,
        url: str | S3Url,
        path: str | os.PathLike[str],
        *,
        verify: bool = True,
        require_hash: bool = False,
        expected_sha256: str | None = None,
    ) -> ObjectInfo:
        """Stream an object to ``path``, checking its hash as :meth:`get` does.

        The bytes go to a temp file beside ``path`` that is renamed into place only after the
        check passed, so ``path`` is never left partial or unverified.
        """
        target = _object_url(url)
        dest = Path(path)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                try:
                    resp = self.client.get_object(Bucket=target.bucket, Key=target.key)
                    body = resp["Body"]
                    try:
                        for chunk in body.iter_chunks(_READ_CHUNK):
                            digest.update(chunk)
                            handle.write(chunk)
                            size += len(chunk)
                    finally:
                        body.close()
                except _TRANSLATED as exc:
                    raise self._fail(exc, target, "download") from exc
                handle.flush()
                os.fsync(handle.fileno())
            metadata = dict(resp.get("Metadata") or {})
            self._verify(
                target, digest.hexdigest(), metadata, verify=verify, require=require_hash, expected=expected_sha256
            )
            os.replace(tmp, dest)
            tmp = ""
        finally:
            if tmp:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
        return ObjectInfo(
            url=target,
            size=size,
            etag=str(resp.get("ETag", "")).strip('"'),
            last_modified=resp.get("LastModified"),
            metadata=metadata,
            content_type=resp.get("ContentType"),
        )

    @staticmethod
    def _verify(
        target: S3Url, actual: str, metadata: Mapping[str, str], *, verify: bool, require: bool, expected: str | None
    ) -> bool:
        checked = False
        if expected is not None:
            if expected.lower() != actual:
                raise HashMismatch(
                    f"sha256 mismatch for {target}: expected {expected!r}, content is {actual!r}: "
                    "the object changed or is corrupt; publish it again",
                    url=str(target),
                )
            checked = True
        if not verify:
            return checked
        recorded = metadata.get(SHA256_METADATA_KEY)
        if recorded is None:
            if require:
                raise MissingHash(
                    f"{target} has no {SHA256_METADATA_KEY!r} metadata: upload it with etl_core.s3 so it carries "
                    "its hash, or read it with require_hash=False",
                    url=str(target),
                )
            return checked
        if recorded.lower() != actual:
            raise HashMismatch(
                f"sha256 mismatch for {target}: metadata says {recorded!r}, content is {actual!r}: "
                "the object is corrupt or was overwritten without its hash; upload it again",
                url=str(target),
            )
        return True

    # -- writing --

    @staticmethod
    def _metadata(sha256: str, extra: Mapping[str, str] | None) -> dict[str, str]:
        meta = {str(k).lower(): str(v) for k, v in (extra or {}).items()}
        meta[SHA256_METADATA_KEY] = sha256
        return meta

    def put(
        self,
        url: str | S3Url,
        data: bytes,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PutResult:
        """Write ``data`` with its SHA-256 in the metadata; in parts when it reaches the threshold."""
        target = _object_url(url)
        sha = hashlib.sha256(data).hexdigest()
        if len(data) >= self.multipart_threshold:
            return self._upload_stream(target, io.BytesIO(data), sha, len(data), content_type, metadata)
        try:
            resp = self.client.put_object(
                Bucket=target.bucket,
                Key=target.key,
                Body=data,
                ContentType=_content_type(target.key, content_type),
                Metadata=self._metadata(sha, metadata),
            )
        except _TRANSLATED as exc:
            raise self._fail(exc, target, "put") from exc
        return PutResult(url=target, sha256=sha, size=len(data), etag=str(resp.get("ETag", "")).strip('"'))

    def upload_file(
        self,
        path: str | os.PathLike[str],
        url: str | S3Url,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> PutResult:
        """Upload a local file (hashed first), in parts when it reaches the multipart threshold."""
        target = _object_url(url)
        source = Path(path)
        try:
            size = source.stat().st_size
            sha = sha256_file(source)
            with open(source, "rb") as handle:
                return self._upload_stream(target, handle, sha, size, content_type, metadata)
        except OSError as exc:
            raise S3RequestError(f"upload of {str(source)!r} to {target} failed: {exc}", url=str(target)) from exc

    def _upload_stream(
        self,
        target: S3Url,
        stream: IO[bytes],
        sha: str,
        size: int,
        content_type: str | None,
        metadata: Mapping[str, str] | None,
    ) -> PutResult:
        extra = {"ContentType": _content_type(target.key, content_type), "Metadata": self._metadata(sha, metadata)}
        try:
            self.client.upload_fileobj(stream, target.bucket, target.key, ExtraArgs=extra, Config=self.transfer_config)
        except _TRANSLATED as exc:
            raise self._fail(exc, target, "upload") from exc
        except Exception as exc:  # boto3 wraps some failures in S3UploadFailedError
            raise self._fail(exc.__cause__ or exc, target, "upload") from exc
        info = self.head(target)
        return PutResult(url=target, sha256=sha, size=size, etag=info.etag)

    def copy(
        self,
        src: str | S3Url,
        dst: str | S3Url,
        *,
        metadata: Mapping[str, str] | None = None,
    ) -> PutResult:
        """Server-side copy, keeping content type and metadata (the ``sha256`` among it).

        ``metadata`` adds or replaces user metadata keys (never ``sha256``). Objects at least as big
        as the multipart threshold are copied in parts. Raises :class:`NotFound` naming ``src``.
        """
        source = _object_url(src)
        target = _object_url(dst)
        info = self.head(source)
        meta = dict(info.metadata)
        for key, value in (metadata or {}).items():
            if key.lower() != SHA256_METADATA_KEY:
                meta[key.lower()] = str(value)
        extra: dict[str, Any] = {"MetadataDirective": "REPLACE", "Metadata": meta}
        if info.content_type:
            extra["ContentType"] = info.content_type
        copy_source = {"Bucket": source.bucket, "Key": source.key}
        try:
            if info.size >= self.multipart_threshold:
                self.client.copy(copy_source, target.bucket, target.key, ExtraArgs=extra, Config=self.transfer_config)
                etag = self.head(target).etag
            else:
                resp = self.client.copy_object(CopySource=copy_source, Bucket=target.bucket, Key=target.key, **extra)
                etag = str(resp.get("CopyObjectResult", {}).get("ETag", "")).strip('"')
        except _TRANSLATED as exc:
            raise self._fail(exc, target, f"copy {source} to") from exc
        return PutResult(url=target, sha256=meta.get(SHA256_METADATA_KEY), size=info.size, etag=etag)

    def delete(self, url: str | S3Url) -> None:
        """Delete an object (no error when it is already gone)."""
        target = _object_url(url)
        try:
            self.client.delete_object(Bucket=target.bucket, Key=target.key)
        except _TRANSLATED as exc:
            raise self._fail(exc, target, "delete") from exc
