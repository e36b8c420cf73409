"""``S3Client``: one bucket over keep-alive ``http.client`` connections, SigV4-signed, retried.

Calls: ``list_page``/``iter_objects``/``list_prefixes`` (ListObjectsV2, paged, URL-encoded keys),
``get``/``head``/``open`` (GetObject whole, HeadObject, GetObject as a stream that is never read
whole into memory, with ``If-None-Match`` and 304), ``put`` (``If-Match``/``If-None-Match: *``
conditional writes, SHA-256 checksum and ``x-amz-meta-sha256``), ``copy`` (``x-amz-copy-source-if-match``)
and ``delete`` (``If-Match``). ETags are unquoted hex strings everywhere, in and out.

Failures raise the classes of ``s3http.errors``; the caller adds the object's address
(``describe`` words the common cases). Requests are retried by ``retry`` (a
``retrypolicy.RetryPolicy``; ``RetryPolicy(retries=0)`` leaves retries to the caller) on
connection errors, timeouts, throttling and 5xx (``is_transient``), and a connection error that
outlasts them is raised as S3ConnectionError (with ``RetryPolicy(retries=0)``, as it came, for the
caller's ``is_transient``); a keep-alive connection the
server closed is replaced once without counting as a retry.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.client
import os
import socket
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import NamedTuple, TypeVar

from tools.bazel.retrypolicy import RetryPolicy, call_with_retry
from tools.bazel.s3http import _xml
from tools.bazel.s3http._pool import ConnectionPool
from tools.bazel.s3http.errors import S3ConnectionError, S3ResponseError
from tools.bazel.s3http.settings import AwsSession, Endpoint, resolve_endpoint
from tools.bazel.s3http.sigv4 import EMPTY_SHA256, canonical_query, quote, quote_key, sign

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_RETRY",
    "HeadResult",
    "ListPage",
    "ListedObject",
    "ObjectStream",
    "S3Client",
    "is_transient",
]

CHUNK_BYTES = 64 * 1024
DEFAULT_RETRY = RetryPolicy(retries=2, backoff=0.1, max_delay=1.0)
"""Three attempts; the retries wait 0.05-0.1 s and 0.1-0.2 s."""
_ERROR_BODY_BYTES = 64 * 1024
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """True for failures worth another attempt: throttling, 5xx, refused or dropped connections,
    timeouts, DNS failures, broken HTTP. Not other OSErrors (a full disk while streaming is not
    the network's fault), and not S3ConnectionError (raised after the client's own retries)."""
    if isinstance(exc, S3ResponseError):
        return exc.retryable
    if isinstance(exc, S3ConnectionError):
        return False
    return isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror, http.client.HTTPException))


def _etag(value: str | None) -> str:
    return value.strip('"') if value else ""


@dataclasses.dataclass(frozen=True)
class ListedObject:
    """One ``<Contents>`` entry of a listing: the full key, its size and (unquoted) ETag."""

    key: str
    size: int
    etag: str


@dataclasses.dataclass(frozen=True)
class ListPage:
    """One ListObjectsV2 page: common prefixes (full, ending with the delimiter), objects, next token."""

    prefixes: list[str]
    objects: list[ListedObject]
    next_token: str | None


@dataclasses.dataclass(frozen=True)
class HeadResult:
    """What HeadObject says: size, ETag and the ``x-amz-meta-*`` values (names lower case, prefix cut)."""

    size: int
    etag: str
    metadata: dict[str, str]


class _Response(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes


class ObjectStream:
    """A GetObject body read as it arrives (``read``, ``iter_chunks``); close it (or use ``with``).

    Closing after the last byte gives the connection back to the pool; closing earlier drops the
    connection (unread bytes would corrupt the next request on it).
    """

    def __init__(self, pool: ConnectionPool, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        self._pool = pool
        self._conn: http.client.HTTPConnection | None = conn
        self._resp = resp
        self.status = resp.status
        self.headers = resp.headers
        self.etag = _etag(resp.headers.get("ETag"))
        length = resp.headers.get("Content-Length")
        self.length: int | None = int(length) if length is not None and length.isdigit() else None
        """Content-Length as sent, None when the server did not say."""

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all the rest when negative); b"" at the end."""
        if self._conn is None:
            return b""
        data = self._resp.read() if size is None or size < 0 else self._resp.read(size)
        return data

    def iter_chunks(self, size: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The rest of the body in pieces of at most ``size`` bytes."""
        while chunk := self.read(size):
            yield chunk

    @property
    def done(self) -> bool:
        """Every byte of the body was read."""
        return self._resp.isclosed()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._resp.isclosed() and not self._resp.will_close:
            self._pool.give_back(conn)
        else:
            self._resp.close()
            conn.close()

    def __enter__(self) -> ObjectStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _response_error(method: str, status: int, headers: http.client.HTTPMessage, body: bytes) -> S3ResponseError | None:
    """The error a response carries, if any (a copy can fail after a 200 status line)."""
    root: ET.Element | None = None
    if body and (status >= 300 or method == "PUT"):
        try:
            root = _xml.parse(body)
        except _xml.ParseError:
            if status >= 300:
                return S3ResponseError(
                    status,
                    str(status),
                    body[:200].decode(errors="replace").strip(),
                    region=headers.get("x-amz-bucket-region"),
                )
    if 200 <= status < 300 or status == 304:
        if root is None or _xml.local(root.tag) != "Error":
            return None
        return S3ResponseError(
            500, _xml.child_text(root, "Code") or "InternalError", _xml.child_text(root, "Message") or ""
        )
    region = headers.get("x-amz-bucket-region")
    if root is not None:
        return S3ResponseError(
            status,
            _xml.child_text(root, "Code") or str(status),
            _xml.child_text(root, "Message") or "",
            region=region or _xml.child_text(root, "Region"),
        )
    return S3ResponseError(status, str(status), "", region=region)


class S3Client:
    """Thread-safe access to one bucket (see the module doc)."""

    def __init__(
        self,
        bucket: str,
        *,
        max_connections: int = 16,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        user_agent: str = "etl-s3http",
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.bucket = bucket
        self.retry = retry
        self.user_agent = user_agent
        self._aws = AwsSession(environ)
        self.region = self._aws.region()
        self._endpoint: Endpoint = resolve_endpoint(bucket, self.region, environ)
        self.endpoint = self._endpoint.url
        """``<scheme>://<host>[:port]<base path>``: where keys are (for messages and tests)."""
        self.max_keys: int | None = None
        """Keys per listing page (S3's default, 1000, when None); tests lower it to page."""
        self._pool = ConnectionPool(
            self._endpoint, max_idle=max_connections, connect_timeout=connect_timeout, read_timeout=read_timeout
        )

    def address(self, key: str) -> str:
        """``s3://bucket/key``, for messages."""
        return f"s3://{self.bucket}/{key}"

    def url(self, key: str, query: Mapping[str, str] | None = None) -> str:
        """The request URL of ``key`` (and ``query``), as sent."""
        path = self._endpoint.base_path + quote_key(key)
        return self._endpoint.origin + path + ("?" + canonical_query(dict(query)) if query else "")

    # -- sending ------------------------------------------------------------------------------

    def _start(
        self, method: str, key: str, query: str, headers: Mapping[str, str], body: bytes | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """Send one signed request; the response's headers are read, its body is not."""
        path = self._endpoint.base_path + quote_key(key)
        payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        signed = sign(
            method=method,
            path=path,
            query=query,
            headers={"Host": self._endpoint.netloc, **headers},
            payload_sha256=payload,
            credentials=self._aws.credentials(),
            region=self.region,
            amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        )
        signed["User-Agent"] = self.user_agent
        signed["Accept-Encoding"] = "identity"  # the stored bytes, not a decoded form (sha256s are of those)
        if body is not None or method in ("PUT", "POST"):
            signed["Content-Length"] = str(len(body or b""))
        target = path + ("?" + query if query else "")
        conn, reused = self._pool.take()
        try:
            try:
                conn.request(method, target, body=body, headers=signed)
                return conn, conn.getresponse()
            except _STALE:
                if not reused:
                    raise
                conn.close()  # a keep-alive connection the server had closed: once more on a new one
                conn, _ = self._pool.take(fresh=True)
                conn.request(method, target, body=body, headers=signed)
                return conn, conn.getresponse()
        except BaseException:
            conn.close()
            raise

    def _finish(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse, *, limit: int | None) -> bytes:
        """Read the body (at most ``limit`` bytes) and give the connection back, or drop it."""
        try:
            data = resp.read() if limit is None else resp.read(limit)
        except BaseException:
            conn.close()
            raise
        if resp.isclosed() and not resp.will_close:
            self._pool.give_back(conn)
        else:
            resp.close()
            conn.close()
        return data

    def _retried(self, what: str, fn: Callable[[], T]) -> T:
        attempts = 1

        def counted(number: int, delay: float, exc: BaseException) -> None:
            nonlocal attempts
            attempts = number + 1

        try:
            return call_with_retry(fn, policy=self.retry, is_retryable=is_transient, on_retry=counted)
        except (OSError, http.client.HTTPException) as exc:
            if isinstance(exc, S3ConnectionError) or self.retry.retries == 0:
                raise  # without retries of its own, the caller's loop sees the error itself
            tries = f"after {attempts} attempts" if attempts > 1 else "1 attempt"
            raise S3ConnectionError(
                f"{type(exc).__name__}: {exc} ({tries} to {self._endpoint.origin}; {what})"
            ) from exc

    def request(
        self,
        method: str,
        key: str,
        *,
        query: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> _Response:
        """A signed request with retries; the whole 2xx response, else S3ResponseError/S3ConnectionError."""
        query_string = canonical_query(dict(query or {}))

        def attempt() -> _Response:
            conn, resp = self._start(method, key, query_string, headers or {}, body)
            data = self._finish(conn, resp, limit=None)
            error = _response_error(method, resp.status, resp.headers, data)
            if error is not None:
                raise error
            return _Response(resp.status, resp.headers, data)

        result: _Response = self._retried(f"{method} {key or '/'}", attempt)
        return result

    def open(self, key: str, *, if_none_match: str | None = None) -> ObjectStream | None:
        """GetObject with the body unread; None for 304 Not Modified (``if_none_match``: an ETag).

        Opening is retried; reading is not (a broken stream raises OSError or http.client errors).
        """
        headers = {"If-None-Match": f'"{if_none_match}"'} if if_none_match else {}

        def attempt() -> ObjectStream | None:
            conn, resp = self._start("GET", key, "", headers, None)
            if 200 <= resp.status < 300:
                return ObjectStream(self._pool, conn, resp)
            body = self._finish(conn, resp, limit=None if resp.status == 304 else _ERROR_BODY_BYTES)
            if resp.status == 304:
                return None
            error = _response_error("GET", resp.status, resp.headers, body)
            assert error is not None
            raise error

        result: ObjectStream | None = self._retried(f"GET {key}", attempt)
        return result

    # -- objects ------------------------------------------------------------------------------

    def get(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and ETag."""
        resp = self.request("GET", key)
        return resp.body, _etag(resp.headers.get("ETag"))

    def head(self, key: str) -> HeadResult:
        resp = self.request("HEAD", key)
        meta = {
            name.lower()[len("x-amz-meta-") :]: value
            for name, value in resp.headers.items()
            if name.lower().startswith("x-amz-meta-")
        }
        return HeadResult(
            size=int(resp.headers.get("Content-Length") or 0), etag=_etag(resp.headers.get("ETag")), metadata=meta
        )

    def put(
        self,
        key: str,
        data: bytes,
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> str:
        """PutObject with a SHA-256 checksum (and ``x-amz-meta-sha256``); the new ETag.

        ``if_match``: only over that ETag; ``if_none_match``: only if the key does not exist.
        """
        digest = hashlib.sha256(data)
        headers = {
            "x-amz-meta-sha256": digest.hexdigest(),
            "x-amz-checksum-sha256": base64.b64encode(digest.digest()).decode("ascii"),
        }
        headers.update({f"x-amz-meta-{name}": value for name, value in (metadata or {}).items()})
        if content_type:
            headers["Content-Type"] = content_type
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        if if_none_match:
            headers["If-None-Match"] = "*"
        return _etag(self.request("PUT", key, headers=headers, body=data).headers.get("ETag"))

    def copy(self, src: str, dst: str, *, src_etag: str | None = None) -> str:
        """CopyObject within the bucket, metadata kept; only from ``src_etag`` when given. The new ETag."""
        headers = {
            "x-amz-copy-source": "/" + quote(self.bucket) + "/" + quote_key(src),
            "x-amz-metadata-directive": "COPY",
        }
        if src_etag is not None:
            headers["x-amz-copy-source-if-match"] = f'"{src_etag}"'
        body = self.request("PUT", dst, headers=headers).body
        try:
            return _etag(_xml.child_text(_xml.parse(body), "ETag"))
        except _xml.ParseError as exc:
            raise S3ResponseError(502, "MalformedXML", f"copy answer is not XML: {body[:100]!r}") from exc

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        self.request("DELETE", key, headers={"If-Match": f'"{if_match}"'} if if_match is not None else {})

    # -- listings -----------------------------------------------------------------------------

    def list_page(self, prefix: str, *, delimiter: str | None = None, token: str | None = None) -> ListPage:
        """One ListObjectsV2 page of keys starting with ``prefix``; pass ``next_token`` for the next."""
        query = {"list-type": "2", "prefix": prefix, "encoding-type": "url"}
        if delimiter:
            query["delimiter"] = delimiter
        if token:
            query["continuation-token"] = token
        if self.max_keys:
            query["max-keys"] = str(self.max_keys)
        body = self.request("GET", "", query=query).body
        try:
            root = _xml.parse(body)
        except _xml.ParseError as exc:
            raise S3ResponseError(502, "MalformedXML", f"listing answer is not XML: {body[:100]!r}") from exc
        encoded = (_xml.child_text(root, "EncodingType") or "").lower() == "url"

        def decoded(value: str) -> str:
            return urllib.parse.unquote_plus(value) if encoded else value

        prefixes: list[str] = []
        objects: list[ListedObject] = []
        truncated, next_token = False, None
        for child in root:
            name = _xml.local(child.tag)
            if name == "CommonPrefixes":
                value = _xml.child_text(child, "Prefix")
                if value:
                    prefixes.append(decoded(value))
            elif name == "Contents":
                key = _xml.child_text(child, "Key")
                if key:
                    objects.append(
                        ListedObject(
                            key=decoded(key),
                            size=int(_xml.child_text(child, "Size") or 0),
                            etag=_etag(_xml.child_text(child, "ETag")),
                        )
                    )
            elif name == "IsTruncated":
                truncated = (child.text or "").strip().lower() == "true"
            elif name == "NextContinuationToken":
                next_token = child.text or None
        return ListPage(prefixes=prefixes, objects=objects, next_token=next_token if truncated else None)

    def iter_objects(self, prefix: str) -> Iterator[ListedObject]:
        """Every object under ``prefix`` in key order; pages are fetched as the iteration reaches them."""
        token: str | None = None
        while True:
            page = self.list_page(prefix, token=token)
            yield from page.objects
            if not page.next_token:
                return
            token = page.next_token

    def list_prefixes(self, prefix: str, *, delimiter: str = "/") -> list[str]:
        """The common prefixes directly under ``prefix`` (full, e.g. ``dev/pkg/``), every page."""
        out: list[str] = []
        token: str | None = None
        while True:
            page = self.list_page(prefix, delimiter=delimiter, token=token)
            out.extend(page.prefixes)
            if not page.next_token:
                return out
            token = page.next_token

    def close(self) -> None:
        """Close the idle connections (the client stays usable: new ones are opened as needed)."""
        self._pool.close()
