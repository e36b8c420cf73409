"""A small OCI distribution (registry v2) client on the standard library's ``http.client``.

- Addresses: ``host[:port]/path``; plain http only for loopback hosts (127.0.0.0/8, localhost,
  ``[::1]``), https for everything else (through ``HTTPS_PROXY`` when set and not bypassed).
- Auth: Docker's ``config.json`` (``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``,
  ``auths.<registry>.auth`` = base64 ``user:password``) answering a ``Basic`` challenge, or
  used to fetch a token when the registry answers with a ``Bearer realm=...`` challenge.
- Retries (``retrypolicy``: exponential backoff, equal jitter) on 5xx, 429, timeouts and dropped
  connections; 401, 403 and 404 raise one-line errors that name the registry and the repository.
"""

from __future__ import annotations

import base64
import dataclasses
import http.client
import ipaddress
import json
import os
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tools.bazel.ocitool.errors import (
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
    RegistryUnavailableError,
    UsageError,
)
from tools.bazel.retrypolicy import RetryPolicy, call_with_retry

__all__ = [
    "Credentials",
    "RegistryClient",
    "Repository",
    "docker_credentials",
    "is_loopback",
    "manifest_exists",
    "parse_repository",
]

_MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_ACCEPT = ", ".join(_MANIFEST_TYPES)
_NAME_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_HOST_RE = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?$")


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1 (``host`` may carry a port or brackets)."""
    if host.startswith("["):
        host = host[1 : host.index("]")]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class Repository:
    """``registry`` (``host[:port]``) and ``name`` (the repository path) of an image address."""

    registry: str
    name: str

    @property
    def scheme(self) -> str:
        return "http" if is_loopback(self.registry) else "https"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.registry}"

    def __str__(self) -> str:
        return f"{self.registry}/{self.name}"


def parse_repository(value: str) -> Repository:
    """Parse ``host[:port]/path`` (no scheme, tag or digest)."""
    text = (value or "").strip()
    if not text:
        raise UsageError("required flag: --repository, e.g. 127.0.0.1:5000/etl/pkg")
    if "://" in text:
        raise UsageError(f"invalid flag: --repository {value!r} must not have a scheme: use host[:port]/path")
    registry, _, name = text.partition("/")
    if "@" in name or ":" in name:
        raise UsageError(f"invalid flag: --repository {value!r} must not carry a tag or digest: use --tag")
    if not name or not _HOST_RE.match(registry) or not ("." in registry or ":" in registry or registry == "localhost"):
        raise UsageError(f"invalid flag: --repository {value!r} must look like registry.example.com[:port]/path")
    if not _NAME_RE.match(name):
        raise UsageError(
            f"invalid flag: --repository {value!r}: path {name!r} must be lower-case letters, digits and . _ - /"
        )
    return Repository(registry=registry, name=name)


@dataclasses.dataclass(frozen=True)
class Credentials:
    """A user name and password (or token) for one registry, and where they came from."""

    username: str
    password: str
    source: str

    def basic(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")


def docker_config_path() -> Path:
    directory = os.environ.get("DOCKER_CONFIG")
    return Path(directory) / "config.json" if directory else Path.home() / ".docker" / "config.json"


def _auth_key(key: str) -> str:
    key = re.sub(r"^[a-z]+://", "", key.strip())
    return key.split("/", 1)[0]


def docker_credentials(registry: str, config: Path | None = None) -> Credentials | None:
    """Basic credentials for ``registry`` from Docker's config.json, or None.

    Only inline ``auth`` (or ``username``/``password``) entries are read; credential helpers
    (``credsStore``, ``credHelpers``) are not run.
    """
    path = config or docker_config_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cannot read Docker config {str(path)!r}: {exc}") from None
    for key, entry in sorted((data.get("auths") or {}).items()):
        if _auth_key(key) != registry or not isinstance(entry, dict):
            continue
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                raise UsageError(
                    f"Docker config {str(path)!r}: 'auth' for {key!r} is not base64 user:password"
                ) from None
            return Credentials(user, password, str(path))
        if entry.get("username") and entry.get("password"):
            return Credentials(str(entry["username"]), str(entry["password"]), str(path))
    return None


@dataclasses.dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name, "") or ""


def _registry_error(body: bytes) -> str:
    try:
        errors = json.loads(body).get("errors") or []
    except (ValueError, AttributeError):
        return " ".join(body.decode("utf-8", "replace").split())[:200]
    return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errors)[:300]


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


Body = bytes | Callable[[], BinaryIO] | None


class RegistryClient:
    """Talks to one repository. Thread-safe: each thread keeps its own connections."""

    def __init__(
        self,
        repository: Repository,
        *,
        credentials: Credentials | None = None,
        actions: str = "pull,push",
        timeout: float = 60.0,
        retries: int = 4,
        backoff: float = 0.5,
    ) -> None:
        self.repository = repository
        self.credentials = credentials
        self.actions = actions
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._policy = RetryPolicy(retries=retries, backoff=backoff)
        self._authorization = ""
        self._auth_lock = threading.Lock()
        self._local = threading.local()

    # -- connections ---------------------------------------------------------------------------
    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault("pool", {})
        conn = pool.get((scheme, netloc))
        if conn is None:
            conn = self._new_connection(scheme, netloc)
            pool[(scheme, netloc)] = conn
        return conn

    def _new_connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "http":
            if not is_loopback(netloc):
                raise UsageError(f"refusing plain http to {netloc!r}: only loopback registries may use http")
            return http.client.HTTPConnection(netloc, timeout=self.timeout, blocksize=1 << 20)
        context = ssl.create_default_context()
        host = netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc
        proxy = urllib.request.getproxies().get("https")
        if proxy and not urllib.request.proxy_bypass(host):
            parsed = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
            conn = http.client.HTTPSConnection(
                parsed.hostname or "",
                parsed.port or 3128,
                timeout=self.timeout,
                context=context,
                blocksize=1 << 20,
            )
            conn.set_tunnel(netloc)
            return conn
        return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=context, blocksize=1 << 20)

    def _drop_connection(self, scheme: str, netloc: str) -> None:
        pool = self._local.__dict__.get("pool", {})
        conn = pool.pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for conn in self._local.__dict__.get("pool", {}).values():
            conn.close()
        self._local.__dict__["pool"] = {}

    # -- requests ------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.repository.base_url}/v2/{self.repository.name}/{path}"

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: Body = None,
        ok: tuple[int, ...] = (200,),
        retries: int | None = None,
        what: str = "",
    ) -> Response:
        """Send one request (retrying transient failures) and return a response whose status is in ``ok``."""
        if url.startswith("/"):
            url = self.repository.base_url + url
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        attempts = (self.retries if retries is None else retries) + 1
        authenticated = False
        attempt = 0
        last = ""
        while attempt < attempts:
            attempt += 1
            send_headers = dict(headers or {})
            if self._authorization and parts.netloc == self.repository.registry:
                send_headers["Authorization"] = self._authorization
            stream = body() if callable(body) else None
            payload = stream if stream is not None else body
            if payload is None and method in ("PUT", "POST", "PATCH"):
                send_headers.setdefault("Content-Length", "0")
            try:
                conn = self._connection(parts.scheme, parts.netloc)
                conn.request(method, target, body=payload, headers=send_headers)  # type: ignore[arg-type]
                resp = conn.getresponse()
                data = resp.read()
                response = Response(resp.status, resp.headers, data)
            except (OSError, http.client.HTTPException) as exc:
                self._drop_connection(parts.scheme, parts.netloc)
                last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if attempt < attempts:
                    time.sleep(self._policy.delay(attempt))
                continue
            finally:
                if stream is not None:
                    stream.close()
            if response.header("Connection").lower() == "close":
                self._drop_connection(parts.scheme, parts.netloc)
            if response.status in ok:
                return response
            if response.status == 401 and not authenticated:
                self._authenticate(response.header("WWW-Authenticate"))
                authenticated = True
                attempt -= 1  # answering the challenge is not a retry
                continue
            if response.status >= 500 or response.status == 429:
                last = f"{response.status} {_registry_error(response.body)}".strip()
                if attempt < attempts:
                    time.sleep(self._policy.delay(attempt))
                continue
            raise self._error(response, method, what or target)
        raise RegistryUnavailableError(
            f"registry {self.repository.registry!r} (repository {self.repository.name!r}) failed "
            f"{method} {what or target} {attempts} times, last: {last}: check that it is up and retry"
        )

    def _error(self, response: Response, method: str, what: str) -> RegistryError:
        reg, name = self.repository.registry, self.repository.name
        detail = _registry_error(response.body)
        detail = f": {detail}" if detail else ""
        if response.status == 401:
            who = f"the credentials from {self.credentials.source}" if self.credentials else "anonymous access"
            return RegistryAuthError(
                f"registry {reg!r} rejected {who} for repository {name!r} (401{detail}): "
                f"log in with `docker login {reg}` or set DOCKER_CONFIG"
            )
        if response.status == 403:
            return RegistryAuthError(
                f"registry {reg!r} denied {self.actions} on repository {name!r} (403{detail}): "
                "ask for access or choose another --repository"
            )
        if response.status == 404:
            return RegistryNotFoundError(
                f"registry {reg!r} has no repository {name!r} (404 on {method} {what}{detail}): check --repository"
            )
        return RegistryError(
            f"registry {reg!r} answered {response.status} to {method} {what} in repository {name!r}{detail}"
        )

    # -- auth ----------------------------------------------------------------------------------
    def _authenticate(self, challenge: str) -> None:
        reg, name = self.repository.registry, self.repository.name
        scheme, params = _parse_challenge(challenge)
        with self._auth_lock:
            if scheme == "basic":
                if self.credentials is None:
                    raise RegistryAuthError(
                        f"registry {reg!r} requires credentials for repository {name!r} (401) and "
                        f"{str(docker_config_path())!r} has none for it: run `docker login {reg}` or set DOCKER_CONFIG"
                    )
                self._authorization = self.credentials.basic()
            elif scheme == "bearer":
                self._authorization = "Bearer " + self._fetch_token(params)
            else:
                raise RegistryAuthError(
                    f"registry {reg!r} asked for unsupported auth {challenge!r} for repository {name!r} (401)"
                )

    def _fetch_token(self, params: dict[str, str]) -> str:
        reg, name = self.repository.registry, self.repository.name
        realm = params.get("realm", "")
        realm_parts = urllib.parse.urlsplit(realm)
        if realm_parts.scheme not in ("http", "https") or (
            realm_parts.scheme == "http" and not is_loopback(realm_parts.netloc)
        ):
            raise RegistryAuthError(f"registry {reg!r}: token realm {realm!r} must be https (http only for loopback)")
        query = {"scope": f"repository:{name}:{self.actions}"}
        if params.get("service"):
            query["service"] = params["service"]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(sorted(query.items()))
        request = urllib.request.Request(url)
        if self.credentials is not None:
            request.add_header("Authorization", self.credentials.basic())
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                data = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            who = f"the credentials from {self.credentials.source}" if self.credentials else "anonymous access"
            raise RegistryAuthError(
                f"token service {realm!r} of registry {reg!r} rejected {who} for repository {name!r} "
                f"({exc.code}): log in with `docker login {reg}`"
            ) from None
        except (OSError, ValueError) as exc:
            raise RegistryUnavailableError(f"token service {realm!r} of registry {reg!r} failed: {exc}") from None
        token = data.get("token") or data.get("access_token")
        if not token:
            raise RegistryAuthError(f"token service {realm!r} of registry {reg!r} returned no token")
        return str(token)

    # -- registry operations -------------------------------------------------------------------
    def ping(self) -> None:
        """GET /v2/ (authenticating when challenged): fails early with a clear error."""
        self.request("GET", f"{self.repository.base_url}/v2/", ok=(200,), what="/v2/")

    def blob_exists(self, digest: str) -> bool:
        return self.request("HEAD", self.url(f"blobs/{digest}"), ok=(200, 404)).status == 200

    def manifest_exists(self, reference: str) -> bool:
        response = self.request(
            "HEAD",
            self.url(f"manifests/{reference}"),
            headers={"Accept": MANIFEST_ACCEPT},
            ok=(200, 404),
        )
        return response.status == 200

    def upload_blob(self, digest: str, path: Path, size: int, *, chunk_size: int | None = None) -> None:
        """POST an upload session, then PUT the whole blob (or PATCH chunks); restart on failure."""
        call_with_retry(
            lambda: self._upload_once(digest, path, size, chunk_size),
            policy=self._policy,
            is_retryable=lambda exc: isinstance(exc, RegistryUnavailableError),
        )

    def _upload_once(self, digest: str, path: Path, size: int, chunk_size: int | None) -> None:
        started = self.request("POST", self.url("blobs/uploads/"), ok=(202,), what=f"upload of {digest}")
        location = urllib.parse.urljoin(self.repository.base_url + "/", started.header("Location"))
        if chunk_size and size > chunk_size:
            with open(path, "rb") as fh:
                offset = 0
                while offset < size:
                    data = fh.read(chunk_size)
                    response = self.request(
                        "PATCH",
                        location,
                        headers={
                            "Content-Type": "application/octet-stream",
                            "Content-Range": f"{offset}-{offset + len(data) - 1}",
                            "Content-Length": str(len(data)),
                        },
                        body=data,
                        ok=(202,),
                        retries=0,
                        what=f"upload of {digest}",
                    )
                    offset += len(data)
                    location = urllib.parse.urljoin(location, response.header("Location") or location)
            body: Body = None
            length = 0
        else:
            body, length = (lambda: open(path, "rb")), size  # noqa: SIM115 - closed by request()
        sep = "&" if "?" in location else "?"
        self.request(
            "PUT",
            f"{location}{sep}digest={urllib.parse.quote(digest)}",
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(length),
            },
            body=body,
            ok=(201, 204),
            retries=0,
            what=f"upload of {digest}",
        )

    def put_manifest(self, reference: str, data: bytes, media_type: str) -> str:
        """PUT a manifest by digest or tag; returns the digest the registry reports."""
        response = self.request(
            "PUT",
            self.url(f"manifests/{reference}"),
            headers={"Content-Type": media_type, "Content-Length": str(len(data))},
            body=data,
            ok=(200, 201, 202),
            what=f"manifest {reference}",
        )
        return response.header("Docker-Content-Digest")


def manifest_exists(repository: str, digest: str) -> bool:
    """True when ``repository`` (``host[:port]/path``) already holds the manifest ``digest``."""
    repo = parse_repository(repository)
    client = RegistryClient(repo, credentials=docker_credentials(repo.registry), actions="pull")
    try:
        return client.manifest_exists(digest)
    finally:
        client.close()
