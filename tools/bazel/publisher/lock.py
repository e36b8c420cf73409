"""The per-package publish lock: ``<ENV>/<pkg>/publish.lock``, created with If-None-Match: *.

It makes the whole write phase of two publishes of the same package mutually exclusive (the
conditional write of metadata.json alone would only protect the commit point, not the live
``dags/`` keys written just before it). A lock older than its ``expires_at`` is stale (its
publisher died) and is taken over with If-Match on the stale lock's ETag, so only one taker wins.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import json
import os
import socket
from typing import Any

from publisher.errors import ConcurrentPublishError, PreconditionFailedError
from publisher.keys import PackageKeys
from publisher.store import Store

__all__ = ["LOCK_TTL_SECONDS", "Lock", "acquire_lock"]

LOCK_TTL_SECONDS = 600


def _owner() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no user name in a container: fall back to the uid
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass
class Lock:
    """A held lock; ``release()`` deletes it only if it is still ours."""

    store: Store
    key: str
    etag: str
    took_over: str | None = None  # description of a stale lock that was replaced

    def release(self) -> None:
        self.store.delete(self.key, if_match=self.etag)


def _describe(body: bytes) -> tuple[str, dt.datetime | None]:
    try:
        info: dict[str, Any] = json.loads(body.decode("utf-8"))
        expires = dt.datetime.strptime(str(info["expires_at"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        return f"held by {info.get('owner')!r} ({info.get('operation')}) since {info.get('created_at')}", expires
    except (ValueError, KeyError, TypeError, AttributeError):
        return "held by an unknown owner (unreadable lock file)", None


def acquire_lock(
    store: Store,
    keys: PackageKeys,
    *,
    operation: str,
    ttl: float = LOCK_TTL_SECONDS,
    now: dt.datetime | None = None,
) -> Lock:
    """Create the lock or raise ConcurrentPublishError with a retry message."""
    now = now or dt.datetime.now(dt.UTC)
    body = (
        json.dumps(
            {
                "owner": _owner(),
                "operation": operation,
                "created_at": _iso(now),
                "expires_at": _iso(now + dt.timedelta(seconds=ttl)),
            },
            sort_keys=True,
        )
        + "\n"
    ).encode("utf-8")
    try:
        return Lock(store=store, key=keys.lock, etag=store.put(keys.lock, body, if_none_match=True))
    except PreconditionFailedError:
        pass
    held = store.get(keys.lock)
    if held is None:  # released between our attempt and this read: one more try
        try:
            return Lock(store=store, key=keys.lock, etag=store.put(keys.lock, body, if_none_match=True))
        except PreconditionFailedError:
            held = store.get(keys.lock)
    description, expires = _describe(held.data) if held is not None else ("held", None)
    if held is not None and expires is not None and expires < now:
        try:
            etag = store.put(keys.lock, body, if_match=held.etag)
        except PreconditionFailedError:
            pass  # someone else took it over first
        else:
            return Lock(store=store, key=keys.lock, etag=etag, took_over=f"stale lock {description}")
    raise ConcurrentPublishError(
        f"another publish of package {keys.package!r} in env {keys.env!r} is in progress "
        f"({store.address(keys.lock)} {description}); retry when it has finished"
    )
