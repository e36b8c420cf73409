"""Where requests go and who signs them, from the standard AWS environment variables.

- Endpoint: ``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL`` (path-style addressing, as
  S3-compatible servers expect), unless ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true; else
  AWS's regional endpoint (virtual-hosted addressing; path style for bucket names with dots,
  which TLS certificates do not cover).
- Region: ``AWS_REGION``, else ``AWS_DEFAULT_REGION``, else the shared config's ``region``
  (botocore reads it), else ``us-east-1``.
- Credentials: ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (+ ``AWS_SESSION_TOKEN``) when both
  are set; else botocore's full chain (shared files and ``AWS_PROFILE``, SSO, IRSA web identity,
  container and instance metadata), frozen per request so temporary credentials refresh.
- TLS: ``AWS_CA_BUNDLE``, else what botocore trusts by default (certifi, else its ``cacert.pem``),
  else the system's.

botocore is imported only when the environment does not answer (no static credentials, or no
region): a publish with ``AWS_*`` variables never imports it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import threading
import urllib.parse
from collections.abc import Mapping
from typing import Any

from tools.bazel.s3http.errors import S3ConfigError, S3CredentialsError
from tools.bazel.s3http.sigv4 import Credentials, quote

__all__ = ["AwsSession", "Endpoint", "ca_bundle", "resolve_endpoint"]

_TRUE = frozenset({"1", "true", "yes", "on"})
NO_CREDENTIALS = (
    "no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use an instance role)"
)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One bucket's origin and path prefix: a key ``k`` is at ``{scheme}://{netloc}{base_path}{k}``."""

    scheme: str
    netloc: str
    host: str
    port: int | None
    base_path: str
    """URI-encoded, starting and ending with ``/`` (``/bucket/`` path style, ``/`` virtual-hosted)."""

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.base_path}"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.netloc}"


def configured_endpoint(environ: Mapping[str, str]) -> str | None:
    """The endpoint URL the environment sets for S3, or None for AWS's own."""
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() in _TRUE:
        return None
    return environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL") or None


def resolve_endpoint(bucket: str, region: str, environ: Mapping[str, str] = os.environ) -> Endpoint:
    """The endpoint of ``bucket``; S3ConfigError for an endpoint URL that is not http(s)."""
    configured = configured_endpoint(environ)
    if configured and not configured.isprintable():  # urlsplit would delete a newline or a tab without a word
        raise S3ConfigError(
            f"invalid AWS_ENDPOINT_URL {configured!r}: contains control characters (a newline or a tab?)"
        )
    if configured:
        parts = urllib.parse.urlsplit(configured)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise S3ConfigError(
                f"invalid AWS_ENDPOINT_URL {configured!r}: must be an http:// or https:// URL, e.g. http://127.0.0.1:9000"
            )
        base_path = parts.path.rstrip("/") + "/" + quote(bucket) + "/"
    elif "." in bucket:
        parts = urllib.parse.urlsplit(f"https://s3.{region}.amazonaws.com")
        base_path = "/" + quote(bucket) + "/"
    else:
        parts = urllib.parse.urlsplit(f"https://{bucket}.s3.{region}.amazonaws.com")
        base_path = "/"
    return Endpoint(
        scheme=parts.scheme, netloc=parts.netloc, host=parts.hostname or "", port=parts.port, base_path=base_path
    )


def ca_bundle(environ: Mapping[str, str] = os.environ) -> str | None:
    """AWS_CA_BUNDLE, else what botocore trusts by default (certifi, else its cacert.pem), else None."""
    if environ.get("AWS_CA_BUNDLE"):
        return environ["AWS_CA_BUNDLE"]
    try:
        import certifi  # type: ignore[import-not-found,unused-ignore]

        return str(certifi.where())
    except ImportError:
        pass
    spec = importlib.util.find_spec("botocore")  # finds the folder without importing botocore
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "cacert.pem")
        if os.path.isfile(path):
            return path
    return None


class AwsSession:
    """Region and credentials from the environment, with botocore's session as the fallback (thread-safe)."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        self._environ = environ
        self._lock = threading.Lock()
        self._botocore_session: Any = None
        self._chain: Any = None
        access_key, secret_key = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
        self._static = (
            Credentials(access_key, secret_key, environ.get("AWS_SESSION_TOKEN") or None)
            if access_key and secret_key
            else None
        )

    def _session(self) -> Any:
        with self._lock:
            if self._botocore_session is None:
                import botocore.session  # type: ignore[import-untyped,unused-ignore]

                self._botocore_session = botocore.session.get_session()
            return self._botocore_session

    def region(self) -> str:
        """AWS_REGION, AWS_DEFAULT_REGION, the shared config's region, else us-east-1."""
        region = self._environ.get("AWS_REGION") or self._environ.get("AWS_DEFAULT_REGION")
        if region:
            return region
        try:
            return str(self._session().get_config_variable("region") or "us-east-1")
        except ImportError as exc:
            raise S3ConfigError(
                "no AWS region: set AWS_REGION (botocore, which would read it from the shared config, "
                f"is not installed: {exc})"
            ) from exc
        except Exception as exc:  # botocore: e.g. ProfileNotFound for a bad AWS_PROFILE
            raise S3ConfigError(f"reading the AWS config for the region: {exc}; set AWS_REGION") from exc

    def credentials(self) -> Credentials:
        """The credentials to sign the next request with; S3CredentialsError when there are none."""
        if self._static is not None:
            return self._static
        try:
            session = self._session()
        except ImportError as exc:
            raise S3CredentialsError(f"{NO_CREDENTIALS}; botocore, for profiles and roles, is not installed") from exc
        try:
            with self._lock:
                if self._chain is None:  # looked up again until found (e.g. a token file mounted later)
                    self._chain = session.get_credentials()
                chain = self._chain
            frozen = chain.get_frozen_credentials() if chain is not None else None  # refreshes temporary ones
        except Exception as exc:  # botocore's chain: a bad profile, an expired SSO token, ...
            raise S3CredentialsError(f"loading AWS credentials: {exc}") from exc
        if frozen is None or not frozen.access_key or not frozen.secret_key:
            raise S3CredentialsError(NO_CREDENTIALS)
        return Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)
