"""Read the package's current state from the store and work out what a publish must change."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from tools.bazel.publisher.build import DagFile
from tools.bazel.publisher.errors import MassDeleteError, MetadataError
from tools.bazel.publisher.store import ObjectInfo, Store
from tools.bazel.storecontract import Metadata, PackageKeys, parse_metadata

__all__ = ["CurrentState", "Plan", "check_mass_delete", "make_plan", "read_state"]

_MD5_RE = re.compile(r"[0-9a-f]{32}", re.ASCII)


@dataclasses.dataclass(frozen=True)
class CurrentState:
    """What is stored under ``<ENV>/<pkg>/`` now: metadata.json, and the live objects if listed."""

    metadata: Metadata | None
    metadata_etag: str | None
    live: dict[str, ObjectInfo] | None  # dag_id -> live object under dags/; None: not listed
    removed_marker: bool  # a REMOVED marker was listed (only known when listed)
    ignored_keys: tuple[str, ...]  # objects under dags/ that are not <dag_id>.py
    unreadable: str | None = None  # why the stored metadata.json could not be read (--repair replaces it)
    latest_release: str | None = None  # then: the newest releases/<id>.json, which the next release follows

    @property
    def release_id(self) -> str | None:
        return self.metadata.release_id if self.metadata else self.latest_release

    @property
    def decommissioned(self) -> bool:
        """metadata.json says ``--decommission`` removed the package (it owns no dag_id then)."""
        return self.metadata is not None and self.metadata.decommissioned

    @property
    def owns_nothing(self) -> bool:
        return self.decommissioned or self.removed_marker


def read_state(
    store: Store, keys: PackageKeys, *, list_live: bool = False, replace_unreadable: bool = False
) -> CurrentState:
    """Read the current metadata.json (one GET); with ``list_live`` also list the package prefix
    up to ``releases/`` (live DAG files, strays, a REMOVED marker written by hand).

    A plain publish trusts metadata.json for what is live: it is the commit point, and a publish
    that fails before committing puts back the live keys it wrote. ``--repair`` lists and checks.
    The GET runs alongside the listing; its ETag, not the listing's, is what the commit's If-Match
    compares against, so the two reads need not be atomic.

    A metadata.json that does not parse (written by hand, or damaged) stops a publish: what it
    cannot read it does not overwrite. With ``replace_unreadable`` (``--repair``) the state has no
    metadata, ``unreadable`` says why, and the ETag stays, so the commit replaces exactly that object.
    """
    live: dict[str, ObjectInfo] | None = None
    ignored: list[str] = []
    removed = False
    if not list_live:
        obj = store.get(keys.metadata)
    else:
        from concurrent.futures import ThreadPoolExecutor

        live = {}
        with ThreadPoolExecutor(max_workers=1) as pool:
            metadata_future = pool.submit(store.get, keys.metadata)
            for info in store.iter_objects(keys.prefix):
                if info.key >= keys.releases_prefix:
                    break  # keys are listed in order: releases/ (possibly long) comes after all we need
                if info.key == keys.removed_marker:
                    removed = True
                elif info.key.startswith(keys.dags_prefix):
                    dag_id = keys.dag_id_of_live_key(info.key)
                    if dag_id is None:
                        ignored.append(info.key)
                    else:
                        live[dag_id] = info
            obj = metadata_future.result()
    metadata = None
    etag = None
    unreadable = latest = None
    if obj is not None:
        etag = obj.etag
        try:
            metadata = parse_metadata(obj.data, where=store.address(keys.metadata), package=keys.package, env=keys.env)
        except MetadataError as exc:
            if not replace_unreadable:
                raise MetadataError(
                    f"{exc}; a publish does not overwrite a metadata.json it cannot read: re-run with --repair "
                    "to replace it with this build's release (releases/ keeps the earlier ones)"
                ) from exc
            unreadable = str(exc)
            stored = (keys.release_id_of_metadata_key(info.key) for info in store.iter_objects(keys.releases_prefix))
            latest = max((release_id for release_id in stored if release_id), default=None)
    return CurrentState(
        metadata=metadata,
        metadata_etag=etag,
        live=live,
        removed_marker=removed,
        ignored_keys=tuple(ignored),
        unreadable=unreadable,
        latest_release=latest,
    )


@dataclasses.dataclass(frozen=True)
class Plan:
    """Differences between what is published and what this publish ships.

    ``added``/``changed``/``removed``/``unchanged`` compare DAG sha256s with the current
    metadata.json (never size or mtime). ``repair`` (only with a listing, ``--repair``) lists DAGs
    whose metadata entry is unchanged but whose live object is missing or has other bytes. ``live_ok`` maps each DAG whose live
    object already holds the new bytes to that object's ETag.
    """

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: tuple[str, ...]
    repair: tuple[str, ...]
    live_ok: Mapping[str, str]
    digest_before: str | None
    digest_after: str
    metadata_current: bool  # the stored metadata already describes this release's content

    @property
    def to_live(self) -> tuple[str, ...]:
        """DAGs whose live ``dags/<dag_id>.py`` must be written."""
        return tuple(d for d in (*self.added, *self.changed, *self.repair) if d not in self.live_ok)

    @property
    def noop(self) -> bool:
        return self.metadata_current and not self.to_live and not self.removed

    @property
    def maintenance_only(self) -> bool:
        """Only live objects need fixing (repair or prune); metadata.json stays as it is."""
        return self.metadata_current and not self.noop


def _live_matches(store: Store, info: ObjectInfo, dag: DagFile) -> bool:
    """Whether a live object holds ``dag``'s bytes, from the listing when possible, else HEAD."""
    if info.size != len(dag.data):
        return False
    if info.sha256 is not None:
        return info.sha256 == dag.sha256
    if info.etag is not None and _MD5_RE.fullmatch(info.etag):
        return info.etag == dag.md5  # single-part upload: the S3 ETag is the MD5 of the bytes
    head = store.head(info.key)  # multipart or SSE-KMS ETag: use the sha256 stored as metadata
    return head is not None and head.sha256 == dag.sha256


def make_plan(
    store: Store,
    state: CurrentState,
    *,
    build: dict[str, Any],
    dags: Mapping[str, DagFile],
    env: str,
) -> Plan:
    """Compare the build with the current state; verify live objects against the new bytes."""
    current = state.metadata.sha256s if state.metadata else {}
    added = tuple(d for d in dags if d not in current)
    changed = tuple(d for d in dags if d in current and current[d] != dags[d].sha256)
    unchanged = tuple(d for d in dags if d in current and current[d] == dags[d].sha256)
    live = state.live or {}
    removed = tuple(sorted((set(current) | set(live)) - set(dags)))
    live_ok: dict[str, str] = {}
    for dag_id, dag in dags.items():
        info = live.get(dag_id)
        if info is not None and _live_matches(store, info, dag):
            live_ok[dag_id] = info.etag or ""
    # Without a listing (a plain publish) the live objects are taken to be what metadata.json says.
    repair = tuple(d for d in unchanged if d not in live_ok) if state.live is not None else ()
    metadata_current = (
        state.metadata is not None
        and state.metadata.build == build
        and state.metadata.document.get("env") == env
        and not state.owns_nothing
    )
    return Plan(
        added=added,
        changed=changed,
        removed=removed,
        unchanged=unchanged,
        repair=repair,
        live_ok=live_ok,
        digest_before=state.metadata.image.digest if state.metadata else None,
        digest_after=str(build["image"]["digest"]),
        metadata_current=metadata_current,
    )


def check_mass_delete(plan: Plan, state: CurrentState, *, keys: PackageKeys, allow: bool) -> None:
    """Refuse a release that removes more than half of the package's DAGs (unless ``allow``)."""
    current = set(state.metadata.sha256s if state.metadata else {}) | set(state.live or {})
    if allow or not plan.removed or len(plan.removed) * 2 <= len(current):
        return
    raise MassDeleteError(
        f"refusing to remove {len(plan.removed)} of the {len(current)} DAGs of package "
        f"{keys.package!r} in env {keys.env!r} ({', '.join(plan.removed)}): that is more than half; "
        "pass --allow-mass-delete if this is intended"
    )
