"""AWS Signature Version 4 for S3, header-based, with a signed payload (``hmac``/``hashlib``)."""

from __future__ import annotations

import hashlib
import hmac
import urllib.parse
from typing import NamedTuple

__all__ = ["EMPTY_SHA256", "Credentials", "canonical_query", "quote", "quote_key", "sign"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_UNSIGNED = frozenset({"user-agent", "accept-encoding", "content-length"})  # may be set or changed in transit


class Credentials(NamedTuple):
    """One frozen set of AWS credentials."""

    access_key: str
    secret_key: str
    token: str | None = None


def quote(value: str, safe: str = "-_.~") -> str:
    """AWS URI encoding: every byte but the unreserved characters (and ``safe``) as %XX of UTF-8."""
    return urllib.parse.quote(value, safe=safe)


def quote_key(key: str) -> str:
    """An object key as a path: ``/`` kept, everything else AWS-encoded (S3 does not encode twice)."""
    return quote(key, safe="/-_.~")


def canonical_query(query: dict[str, str]) -> str:
    """The query string as sent and as signed: encoded names and values, sorted."""
    return "&".join(f"{k}={v}" for k, v in sorted((quote(k), quote(v)) for k, v in query.items()))


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

    ``path`` is the already URI-encoded path, ``query`` the canonical query string, ``headers``
    must include ``Host``; ``amz_date`` is ``YYYYMMDDTHHMMSSZ`` (UTC).
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
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signature = hmac.new(
        _signing_key(credentials.secret_key, amz_date[:8], region, service), to_sign.encode(), hashlib.sha256
    ).hexdigest()
    out["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return out
