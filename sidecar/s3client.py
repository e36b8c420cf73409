"""A small read-only S3 client: ListObjectsV2 and GetObject, signed with SigV4, over urllib3.

Why not a boto3 client: the botocore *client* loads S3's service model (endpoint rules, shapes,
paginators), about 48 MB of RSS in a sidecar that needs two read calls. This module keeps the
parts of botocore that are worth keeping and cheap:

- the credential chain (``botocore.session.get_session().get_credentials()``): environment,
  shared files, IRSA web identity, SSO, container and instance metadata providers, with
  botocore's own refresh of temporary credentials;
- SigV4 signing (``botocore.auth.S3SigV4Auth`` over a ``botocore.awsrequest.AWSRequest``);

and does the HTTP itself with one urllib3 pool (keep-alive, thread-safe, bounded, timeouts).

Endpoint: ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL`` (path-style addressing, as
S3-compatible servers expect), else AWS's regional endpoint (virtual-hosted addressing; path
style for bucket names with dots, which TLS certificates do not cover). Region: ``AWS_REGION``,
else ``AWS_DEFAULT_REGION``, else the shared config's ``region``, else ``us-east-1``.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from typing import Any

import botocore.auth  # type: ignore[import-untyped]
import botocore.awsrequest  # type: ignore[import-untyped]
import botocore.httpsession  # type: ignore[import-untyped]  # loaded by botocore.awsrequest anyway; for its default CA bundle
import botocore.session  # type: ignore[import-untyped]
import urllib3

__all__ = ["ListPage", "NoCredentials", "S3Client", "S3ResponseError", "endpoint_settings"]

_TRUE = {"1", "true", "yes", "on"}


class S3ResponseError(Exception):
    """S3 answered with an error status; ``code`` is the XML ``<Code>`` when there was one."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"HTTP {status} {code}: {message}".rstrip(": "))
        self.status = status
        self.code = code


class NoCredentials(Exception):
    """The botocore credential chain found no credentials."""


@dataclasses.dataclass(frozen=True)
class ListPage:
    """One ListObjectsV2 page: common prefixes, objects as (key, etag), and the next token."""

    prefixes: list[str]
    objects: list[tuple[str, str]]
    next_token: str | None


def endpoint_settings(session: Any = None) -> tuple[str | None, str]:
    """(endpoint URL from the environment or None, region), as described in the module doc."""
    endpoint: str | None = None
    if os.environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() not in _TRUE:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region and session is not None:
        region = session.get_config_variable("region")
    return endpoint, region or "us-east-1"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text or ""
    return None


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


class S3Client:
    """Read-only, thread-safe access to one bucket."""

    def __init__(self, bucket: str, *, timeout: float, max_connections: int) -> None:
        self._session = botocore.session.get_session()
        self._credentials = self._session.get_credentials()
        self._credentials_lock = threading.Lock()
        endpoint, self.region = endpoint_settings(self._session)
        self.bucket = bucket
        if endpoint:
            if not endpoint.isprintable():  # urlsplit would delete a newline or tab without a word
                raise ValueError(f"AWS_ENDPOINT_URL={endpoint!r} contains control characters (a newline or a tab?)")
            parts = urllib.parse.urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"AWS_ENDPOINT_URL={endpoint!r} is not an http(s) URL")
            self.origin = f"{parts.scheme}://{parts.netloc}"
            self._base_path = parts.path.rstrip("/") + "/" + _quote(bucket) + "/"
        elif "." in bucket:
            self.origin = f"https://s3.{self.region}.amazonaws.com"
            self._base_path = "/" + _quote(bucket) + "/"
        else:
            self.origin = f"https://{bucket}.s3.{self.region}.amazonaws.com"
            self._base_path = "/"
        self.endpoint = self.origin + self._base_path
        self.max_keys: int | None = None
        """Keys per listing page (S3's default, 1000, when None); tests lower it to page."""
        ca = os.environ.get("AWS_CA_BUNDLE") or self._session.get_config_variable("ca_bundle") or None
        if ca is None:
            ca = botocore.httpsession.get_cert_path(True)  # botocore's default: certifi or its own bundle
        self._http = urllib3.PoolManager(
            num_pools=2,
            maxsize=max(1, max_connections),
            block=False,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,  # retries are the caller's: logged, counted, with backoff
            ca_certs=ca,
        )

    def url(self, key: str, query: dict[str, str] | None = None) -> str:
        path = self._base_path + urllib.parse.quote(key, safe="/-_.~")
        if query:
            path += "?" + "&".join(f"{_quote(k)}={_quote(v)}" for k, v in sorted(query.items()))
        return self.origin + path

    def _signed_headers(self, method: str, url: str, headers: dict[str, str]) -> dict[str, str]:
        credentials = self._credentials
        if credentials is None:
            with self._credentials_lock:  # maybe they appeared since (e.g. a mounted token file)
                if self._credentials is None:
                    self._credentials = self._session.get_credentials()
                credentials = self._credentials
            if credentials is None:
                raise NoCredentials("the AWS credential chain found no credentials")
        request = botocore.awsrequest.AWSRequest(method=method, url=url, headers=dict(headers))
        # get_frozen_credentials() refreshes temporary credentials (IRSA, IMDS) when they near expiry
        botocore.auth.S3SigV4Auth(credentials.get_frozen_credentials(), "s3", self.region).add_auth(request)
        return {name: str(value) for name, value in request.headers.items()}

    def request(
        self, method: str, key: str, *, query: dict[str, str] | None = None, headers: dict[str, str] | None = None
    ) -> urllib3.BaseHTTPResponse:
        """Send a signed request; the body is not read yet (``preload_content=False``).

        2xx and 304 are returned; any other status raises S3ResponseError (connection released).
        """
        url = self.url(key, query)
        signed = self._signed_headers(method, url, headers or {})
        # decode_content=False: the stored bytes, as boto3 gives them (sha256s are of those bytes)
        resp = self._http.request(
            method, url, headers=signed, preload_content=False, decode_content=False, redirect=False
        )
        if 200 <= resp.status < 300 or resp.status == 304:
            return resp
        try:
            body = resp.read(64 * 1024)
        except (urllib3.exceptions.HTTPError, OSError):
            body = b""
        finally:
            if resp.length_remaining != 0:
                resp.close()  # do not reuse a connection with unread bytes
            resp.release_conn()
        code, message = "", ""
        if body:
            try:
                root = ET.fromstring(body)
                code = _child_text(root, "Code") or ""
                message = _child_text(root, "Message") or ""
            except ET.ParseError:
                message = body[:200].decode(errors="replace")
        raise S3ResponseError(resp.status, code, message)

    def list_page(self, prefix: str, *, delimiter: str = "/", token: str | None = None) -> ListPage:
        """One ListObjectsV2 page of ``prefix`` (a full key prefix, bucket root included)."""
        query = {"list-type": "2", "prefix": prefix, "delimiter": delimiter}
        if token:
            query["continuation-token"] = token
        if self.max_keys:
            query["max-keys"] = str(self.max_keys)
        resp = self.request("GET", "", query=query)
        try:
            body = resp.read()
        finally:
            resp.release_conn()
        root = ET.fromstring(body)
        prefixes: list[str] = []
        objects: list[tuple[str, str]] = []
        truncated = False
        next_token: str | None = None
        for child in root:
            name = _local(child.tag)
            if name == "CommonPrefixes":
                value = _child_text(child, "Prefix")
                if value:
                    prefixes.append(value)
            elif name == "Contents":
                key = _child_text(child, "Key")
                if key:
                    objects.append((key, _child_text(child, "ETag") or ""))
            elif name == "IsTruncated":
                truncated = (child.text or "").strip().lower() == "true"
            elif name == "NextContinuationToken":
                next_token = child.text or None
        return ListPage(prefixes=prefixes, objects=objects, next_token=next_token if truncated else None)

    def get(self, key: str, *, if_none_match: str | None = None) -> urllib3.BaseHTTPResponse | None:
        """GetObject, body not read; None for 304 Not Modified. The caller releases the response."""
        headers = {"If-None-Match": if_none_match} if if_none_match else {}
        resp = self.request("GET", key, headers=headers)
        if resp.status == 304:
            resp.drain_conn()
            resp.release_conn()
            return None
        return resp

    def close(self) -> None:
        self._http.clear()
