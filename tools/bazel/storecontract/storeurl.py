"""``DAG_BUCKET``: where the store is. One rule for every program that opens it.

* ``s3://<bucket>`` (a trailing ``/`` is allowed): keys start at the bucket's root with
  ``<ENV>/``. A key prefix inside the bucket (``s3://bucket/root``) is refused: the publisher's
  prefix guard, the IAM policies (``arn:aws:s3:::<bucket>/<ENV>/<pkg>/*``) and every reader agree
  on keys that start with ``<ENV>/``; a root known to one program and not the others would make
  the sidecar read where no publisher writes. Use a bucket per store, or ``ENV`` to separate.
* ``file:///<absolute dir>`` (or ``file://localhost/<dir>``): the same keys as relative paths
  under that folder; ``%XX`` is decoded, ``..`` and NUL are refused, the path is normalised.

Control characters anywhere are refused: ``urllib.parse.urlsplit`` silently deletes tabs and
newlines (``"s3://buck\\net"`` is the bucket ``bucket``), so a pasted value with a trailing
newline would otherwise name a store the user did not write.
"""

from __future__ import annotations

import dataclasses
import os
import re
from urllib.parse import unquote, urlsplit

from tools.bazel.storecontract.errors import StoreUrlError

__all__ = ["BUCKET_RE", "StoreUrl", "parse_dag_bucket"]

BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", re.ASCII)
FORMS = "s3://<bucket> or file:///<absolute dir>"


@dataclasses.dataclass(frozen=True)
class StoreUrl:
    """A parsed ``DAG_BUCKET``: ``scheme`` ``s3`` with ``bucket``, or ``file`` with ``path``."""

    scheme: str
    bucket: str = ""
    path: str = ""

    def __str__(self) -> str:
        return f"s3://{self.bucket}" if self.scheme == "s3" else f"file://{self.path}"

    def address(self, key: str) -> str:
        """Full address of ``key`` for messages: ``s3://bucket/key`` or ``file:///dir/key``."""
        return f"s3://{self.bucket}/{key}" if self.scheme == "s3" else f"file://{self.path.rstrip('/')}/{key}"


def _fail(url: str, reason: str) -> StoreUrlError:
    return StoreUrlError(f"{url!r}: {reason}", problem=reason)


def parse_dag_bucket(url: str) -> StoreUrl:
    """Parse a ``DAG_BUCKET`` value; raise StoreUrlError ``"<value!r>: <reason>"``."""
    if not url.isprintable():
        raise _fail(url, "contains control characters (a newline or a tab?)")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise _fail(url, f"must be {FORMS}, without '?' or '#'")
    if parts.scheme == "s3":
        bucket = parts.netloc
        if parts.path not in ("", "/"):
            raise _fail(url, "give the bucket only (s3://<bucket>): keys start with <ENV>/ at the bucket's root")
        if not BUCKET_RE.fullmatch(bucket) or ".." in bucket:
            raise _fail(url, f"{bucket!r} is not a valid S3 bucket name")
        return StoreUrl(scheme="s3", bucket=bucket)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise _fail(url, "a local store must be an absolute path, file:///<dir>")
        path = unquote(parts.path)
        if "\x00" in path or any(part == ".." for part in path.split("/")):
            raise _fail(url, "'..' and NUL are not allowed")
        return StoreUrl(scheme="file", path=os.path.normpath(path))
    raise _fail(url, f"must be {FORMS}")
