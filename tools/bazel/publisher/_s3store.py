"""The S3 implementation of Store: SigV4-signed requests over ``http.client`` (stdlib only).

Why not a botocore client: a publish runs as a fresh interpreter, and importing botocore and
building an S3 client (loading S3's service model) takes 0.35-0.6 s, while the publish itself
takes about 0.05 s. The seven S3 calls the publisher makes are small and fixed, so this module
signs them itself (SigV4 with ``hmac``/``hashlib``, header-based auth, signed payload) and sends
them over keep-alive ``http.client`` connections, one per worker thread from a small pool.
(The sidecar's ``sidecar/s3client.py`` keeps botocore's signer instead; it is a long-running
service where start-up time does not matter, and a separate deployable, so not imported here.)

What still comes from botocore, imported lazily and only then:

- credentials, when ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` are not both set: botocore's
  full chain (shared files and ``AWS_PROFILE``, SSO, IRSA web identity, container and instance
  metadata), with ``get_frozen_credentials()`` per request so temporary credentials refresh;
- the region, when neither ``AWS_REGION`` nor ``AWS_DEFAULT_REGION`` is set (the shared config's
  ``region``), else ``us-east-1``.

Endpoint: ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL`` (path-style addressing, as
S3-compatible servers expect), unless ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true; else AWS's
regional endpoint (virtual-hosted addressing; path style for bucket names with dots, which TLS
certificates do not cover). TLS trusts ``AWS_CA_BUNDLE`` if set, else the bundle botocore would
use (certifi, or botocore's own ``cacert.pem``), else the system's. Timeouts: 10 s to connect,
60 s to read. Up to 3 attempts, with short jittered exponential backoff, on connection errors,
timeouts, HTTP 500/502/503/504 and SlowDown/RequestTimeout/InternalError; other errors are not
retried. ETags are unquoted hex strings.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import os
import random
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any, NamedTuple

from publisher.errors import PreconditionFailedError, StoreError
from publisher.store import ObjectInfo, StoredObject

__all__ = ["S3Store"]

_MISSING = {"NoSuchKey", "404", "NotFound"}
_PRECONDITION = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
_RETRY_STATUS = {500, 502, 503, 504}
_RETRY_CODES = {"SlowDown", "RequestTimeout", "InternalError"}
_BAD_CREDENTIALS = {"SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken", "InvalidToken"}
_TRUE = {"1", "true", "yes", "on"}
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNSIGNED = {"user-agent", "accept-encoding", "content-length"}  # may be set or changed in transit
_USER_AGENT = "etl-publisher"

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0
MAX_ATTEMPTS = 3
BACKOFF = 0.1
"""First retry waits up to this many seconds (jittered), doubling per attempt."""

_NO_CREDENTIALS = (
    "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use "
    "an instance role)"
)


class Credentials(NamedTuple):
    """One frozen set of AWS credentials."""

    access_key: str
    secret_key: str
    token: str | None = None


class _ResponseError(Exception):
    """S3 answered with an error status; ``code`` is the XML ``<Code>``, else the status."""

    def __init__(self, status: int, code: str, message: str, headers: http.client.HTTPMessage | None = None,
                 region: str | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.status = status
        self.code = code
        self.message = message
        self.region = region or (headers.get("x-amz-bucket-region") if headers is not None else None)


class _CredentialsError(Exception):
    """No credentials were found, or botocore's credential chain failed (the message says which)."""


class _Response(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes


_FAILURES = (_ResponseError, _CredentialsError, OSError)


def _quote(value: str, safe: str = "-_.~") -> str:
    """AWS URI encoding: every byte but unreserved characters (and ``safe``) as %XX, UTF-8."""
    return urllib.parse.quote(value, safe=safe)


def _etag(value: str | None) -> str | None:
    return value.strip('"') if value else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def canonical_query(query: dict[str, str]) -> str:
    """The query string as sent and as signed: encoded names and values, sorted."""
    return "&".join(f"{k}={v}" for k, v in sorted((_quote(k), _quote(v)) for k, v in query.items()))


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def sign(
    *,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    payload_sha256: str,
    credentials: Credentials,
    region: str,
    amz_date: str,
    service: str = "s3",
) -> dict[str, str]:
    """``headers`` plus x-amz-date, x-amz-content-sha256, the session token and Authorization.

    ``path`` is the already URI-encoded path (S3 does not encode it a second time), ``query`` the
    canonical query string, ``headers`` must include ``Host``.
    """
    out = dict(headers)
    out["x-amz-date"] = amz_date
    out["x-amz-content-sha256"] = payload_sha256
    if credentials.token:
        out["x-amz-security-token"] = credentials.token
    signed: dict[str, str] = {}
    for name, value in out.items():
        lower = name.lower()
        if lower not in _UNSIGNED:
            signed[lower] = " ".join(str(value).split())
    names = sorted(signed)
    signed_headers = ";".join(names)
    canonical = "\n".join(
        [method, path, query, "".join(f"{n}:{signed[n]}\n" for n in names), signed_headers, payload_sha256]
    )
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    signature = hmac.new(
        _signing_key(credentials.secret_key, amz_date[:8], region, service), to_sign.encode(), hashlib.sha256
    ).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return out


def _endpoint_settings() -> str | None:
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() in _TRUE:
        return None
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _ca_bundle() -> str | None:
    """AWS_CA_BUNDLE, else what botocore trusts by default (certifi, else its cacert.pem)."""
    if os.environ.get("AWS_CA_BUNDLE"):
        return os.environ["AWS_CA_BUNDLE"]
    try:
        import certifi  # type: ignore[import-not-found,unused-ignore]

        return str(certifi.where())
    except ImportError:
        pass
    import importlib.util

    spec = importlib.util.find_spec("botocore")  # finds the folder without importing botocore
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "cacert.pem")
        if os.path.isfile(path):
            return path
    return None


class _ConnectionPool:
    """Idle keep-alive connections to one origin; each request takes one, and gives it back."""

    def __init__(self, scheme: str, host: str, port: int | None, max_idle: int) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self.max_idle = max(1, max_idle)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._ssl: Any = None

    def _new(self) -> http.client.HTTPConnection:
        if self.scheme == "http":
            return http.client.HTTPConnection(self.host, self.port, timeout=CONNECT_TIMEOUT)
        with self._lock:
            if self._ssl is None:
                import ssl

                self._ssl = ssl.create_default_context(cafile=_ca_bundle())
        return http.client.HTTPSConnection(self.host, self.port, timeout=CONNECT_TIMEOUT, context=self._ssl)

    def take(self, *, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """A connection, and whether it was used before (the server may have closed it since)."""
        if not fresh:
            with self._lock:
                if self._idle:
                    return self._idle.pop(), True
        conn = self._new()
        conn.connect()
        assert conn.sock is not None
        conn.sock.settimeout(READ_TIMEOUT)
        return conn, False

    def give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class S3Store:
    """DAG store in an S3 bucket. ETags are unquoted hex strings."""

    def __init__(self, *, bucket: str, max_pool_connections: int = 16) -> None:
        self.bucket = bucket
        self.url = f"s3://{bucket}"
        self.max_keys: int | None = None
        """Keys per listing page (S3's default, 1000, when None); tests lower it to page."""
        self._botocore_session: Any = None
        self._botocore_credentials: Any = None
        self._credentials_lock = threading.Lock()
        self._static: Credentials | None = None
        access_key, secret_key = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
        if access_key and secret_key:
            self._static = Credentials(access_key, secret_key, os.environ.get("AWS_SESSION_TOKEN") or None)
        self.region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or ""
        if not self.region:
            try:
                self.region = self._session().get_config_variable("region") or "us-east-1"
            except Exception as exc:  # botocore: e.g. ProfileNotFound for a bad AWS_PROFILE
                raise StoreError(f"opening {self.url!r}: reading the AWS config for the region: {exc}") from exc
        endpoint = _endpoint_settings()
        if endpoint:
            parts = urllib.parse.urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise StoreError(
                    f"invalid AWS_ENDPOINT_URL {endpoint!r}: must be an http:// or https:// URL"
                )
            self._netloc = parts.netloc
            self._base_path = parts.path.rstrip("/") + "/" + _quote(bucket) + "/"
        else:
            parts = urllib.parse.urlsplit(f"https://s3.{self.region}.amazonaws.com")
            if "." in bucket:
                self._base_path = "/" + _quote(bucket) + "/"
            else:
                parts = urllib.parse.urlsplit(f"https://{bucket}.s3.{self.region}.amazonaws.com")
                self._base_path = "/"
            self._netloc = parts.netloc
        self.endpoint = f"{parts.scheme}://{self._netloc}{self._base_path}"
        self._pool = _ConnectionPool(parts.scheme, parts.hostname or "", parts.port, max_pool_connections)

    # -- plumbing ---------------------------------------------------------------------------

    def _session(self) -> Any:
        if self._botocore_session is None:
            import botocore.session  # type: ignore[import-untyped,unused-ignore]

            self._botocore_session = botocore.session.get_session()
        return self._botocore_session

    def _credentials(self) -> Credentials:
        if self._static is not None:
            return self._static
        try:
            with self._credentials_lock:
                if self._botocore_credentials is None:
                    self._botocore_credentials = self._session().get_credentials()
                chain = self._botocore_credentials
            frozen = chain.get_frozen_credentials() if chain is not None else None  # refreshes temporary ones
        except Exception as exc:  # botocore's chain: a bad profile, an expired SSO token, ...
            raise _CredentialsError(f"loading AWS credentials: {exc}") from exc
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            raise _CredentialsError(_NO_CREDENTIALS)
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)

    def _send_once(self, method: str, path: str, query: str, headers: dict[str, str],
                   body: bytes | None) -> _Response:
        payload = hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA256
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        signed = sign(method=method, path=path, query=query, headers={"Host": self._netloc, **headers},
                      payload_sha256=payload, credentials=self._credentials(), region=self.region,
                      amz_date=amz_date)
        signed["User-Agent"] = _USER_AGENT
        signed["Accept-Encoding"] = "identity"  # the stored bytes, not a decoded form
        if body is not None or method in ("PUT", "POST"):
            signed["Content-Length"] = str(len(body or b""))
        conn, reused = self._pool.take()
        target = path + ("?" + query if query else "")
        try:
            try:
                conn.request(method, target, body=body, headers=signed)
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if not reused:
                    raise
                conn.close()  # a keep-alive connection the server had closed: once more on a new one
                conn, reused = self._pool.take(fresh=True)
                conn.request(method, target, body=body, headers=signed)
                resp = conn.getresponse()
            data = resp.read()
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            self._pool.give_back(conn)
        return _Response(resp.status, resp.headers, data)

    def _request(self, method: str, key: str, *, query: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None, body: bytes | None = None) -> _Response:
        """Send a signed request with retries; return a 2xx response, or raise _ResponseError."""
        path = self._base_path + _quote(key, safe="/-_.~")
        query_string = canonical_query(query or {})
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._send_once(method, path, query_string, headers or {}, body)
            except (OSError, http.client.HTTPException) as exc:
                if attempt >= MAX_ATTEMPTS:
                    raise OSError(f"{type(exc).__name__}: {exc} (after {attempt} attempts to "
                                  f"{self._pool.scheme}://{self._netloc})") from exc
            else:
                error = self._error(method, resp)
                if error is None:
                    return resp
                if attempt >= MAX_ATTEMPTS or not (error.status in _RETRY_STATUS or error.code in _RETRY_CODES):
                    raise error
            time.sleep(random.uniform(0.5, 1.0) * BACKOFF * 2 ** (attempt - 1))

    @staticmethod
    def _error(method: str, resp: _Response) -> _ResponseError | None:
        root: ET.Element | None = None
        if resp.body and (resp.status >= 300 or method == "PUT"):  # a copy can fail with a 200
            try:
                root = ET.fromstring(resp.body)
            except ET.ParseError:
                if resp.status >= 300:
                    return _ResponseError(resp.status, str(resp.status),
                                          resp.body[:200].decode(errors="replace").strip(), resp.headers)
        if 200 <= resp.status < 300:
            if root is None or _local(root.tag) != "Error":
                return None
            return _ResponseError(500, _child_text(root, "Code") or "InternalError",
                                  _child_text(root, "Message") or "", resp.headers)
        if root is not None:
            return _ResponseError(resp.status, _child_text(root, "Code") or str(resp.status),
                                  _child_text(root, "Message") or "", resp.headers, _child_text(root, "Region"))
        return _ResponseError(resp.status, str(resp.status), "", resp.headers)

    def address(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _fail(self, action: str, key: str, exc: Exception) -> StoreError:
        where = f"{action} {self.address(key)!r}"
        if isinstance(exc, _CredentialsError):
            return StoreError(f"{where}: {exc}")
        if isinstance(exc, _ResponseError):
            code = exc.code
            if code in _PRECONDITION:
                return PreconditionFailedError(f"{where}: precondition failed ({exc.message or code})")
            if exc.status in (301, 307) or code in ("PermanentRedirect", "AuthorizationHeaderMalformed"):
                if exc.region and exc.region != self.region:
                    return StoreError(
                        f"{where}: bucket {self.bucket!r} is in region {exc.region!r}, not {self.region!r}; "
                        f"set AWS_REGION={exc.region}"
                    )
                if exc.status in (301, 307):
                    return StoreError(
                        f"{where}: bucket {self.bucket!r} is not in region {self.region!r} (HTTP {exc.status} "
                        "redirect); set AWS_REGION to the bucket's region"
                    )
            if code == "NoSuchBucket":
                return StoreError(f"{where}: bucket {self.bucket!r} does not exist")
            if code in ("AccessDenied", "403"):
                return StoreError(f"{where}: access denied (check the IAM policy for this prefix)")
            if code in _BAD_CREDENTIALS:
                return StoreError(f"{where}: {code}: {exc.message} (check the AWS credentials in use)")
            return StoreError(f"{where}: {code}: {exc.message or f'HTTP {exc.status}'}")
        return StoreError(f"{where}: {exc}")

    @staticmethod
    def _code(exc: Exception) -> str:
        return exc.code if isinstance(exc, _ResponseError) else ""

    def _list_pages(self, prefix: str, delimiter: str | None) -> Iterator[ET.Element]:
        query = {"list-type": "2", "prefix": prefix, "encoding-type": "url"}
        if delimiter:
            query["delimiter"] = delimiter
        if self.max_keys:
            query["max-keys"] = str(self.max_keys)
        while True:
            try:
                resp = self._request("GET", "", query=query)
                root = ET.fromstring(resp.body)
            except (*_FAILURES, ET.ParseError) as exc:
                raise self._fail("listing", prefix, exc) from exc
            yield root
            truncated = (_child_text(root, "IsTruncated") or "").strip().lower() == "true"
            token = _child_text(root, "NextContinuationToken")
            if not truncated or not token:
                return
            query["continuation-token"] = token

    @staticmethod
    def _decoded(root: ET.Element, value: str) -> str:
        if (_child_text(root, "EncodingType") or "").lower() == "url":
            return urllib.parse.unquote_plus(value)
        return value

    # -- Store ------------------------------------------------------------------------------

    def iter_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        for root in self._list_pages(prefix, None):
            for item in root:
                if _local(item.tag) != "Contents":
                    continue
                key = _child_text(item, "Key")
                if key:
                    yield ObjectInfo(key=self._decoded(root, key), size=int(_child_text(item, "Size") or 0),
                                     etag=_etag(_child_text(item, "ETag")))

    def list_dirs(self, prefix: str) -> list[str]:
        out: list[str] = []
        for root in self._list_pages(prefix, "/"):
            for item in root:
                if _local(item.tag) == "CommonPrefixes":
                    value = self._decoded(root, _child_text(item, "Prefix") or "")
                    out.append(value[len(prefix):].rstrip("/"))
        return out

    def get(self, key: str) -> StoredObject | None:
        try:
            resp = self._request("GET", key)
        except _FAILURES as exc:
            if self._code(exc) in _MISSING:
                return None
            raise self._fail("reading", key, exc) from exc
        return StoredObject(key=key, data=resp.body, etag=_etag(resp.headers.get("ETag")) or "")

    def head(self, key: str) -> ObjectInfo | None:
        try:
            resp = self._request("HEAD", key)
        except _FAILURES as exc:
            if self._code(exc) in _MISSING:
                return None
            raise self._fail("checking", key, exc) from exc
        return ObjectInfo(
            key=key,
            size=int(resp.headers.get("Content-Length") or 0),
            etag=_etag(resp.headers.get("ETag")),
            sha256=resp.headers.get("x-amz-meta-sha256"),
        )

    def put(
        self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False
    ) -> str:
        digest = hashlib.sha256(data)
        headers = {
            "x-amz-meta-sha256": digest.hexdigest(),
            "x-amz-checksum-sha256": base64.b64encode(digest.digest()).decode("ascii"),
        }
        if key.endswith(".json"):
            headers["Content-Type"] = "application/json"
        elif key.endswith(".py"):
            headers["Content-Type"] = "text/x-python"
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        if if_none_match:
            headers["If-None-Match"] = "*"
        try:
            resp = self._request("PUT", key, headers=headers, body=data)
        except _FAILURES as exc:
            if if_match is not None and self._code(exc) in _MISSING:
                raise PreconditionFailedError(
                    f"writing {self.address(key)!r}: precondition failed (the object is gone)"
                ) from exc
            raise self._fail("writing", key, exc) from exc
        return _etag(resp.headers.get("ETag")) or ""

    def copy(self, src: str, dst: str, *, src_etag: str | None = None) -> str:
        headers = {
            "x-amz-copy-source": "/" + _quote(self.bucket) + "/" + _quote(src, safe="/-_.~"),
            "x-amz-metadata-directive": "COPY",
        }
        if src_etag is not None:
            headers["x-amz-copy-source-if-match"] = f'"{src_etag}"'
        try:
            resp = self._request("PUT", dst, headers=headers)
            root = ET.fromstring(resp.body)
        except (*_FAILURES, ET.ParseError) as exc:
            raise self._fail(f"copying {self.address(src)!r} to", dst, exc) from exc
        return _etag(_child_text(root, "ETag")) or ""

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        headers = {"If-Match": f'"{if_match}"'} if if_match is not None else {}
        try:
            self._request("DELETE", key, headers=headers)
        except _FAILURES as exc:
            if if_match is not None and self._code(exc) in _MISSING:
                raise PreconditionFailedError(
                    f"deleting {self.address(key)!r}: precondition failed (the object is gone)"
                ) from exc
            raise self._fail("deleting", key, exc) from exc

    def close(self) -> None:
        """Close the idle connections (the store stays usable: new ones are opened as needed)."""
        self._pool.close()
