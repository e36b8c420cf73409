"""One sync cycle: for each package, detect a change by content and switch to the new release.

Per package and cycle: one delimited listing of ``<env>/<pkg>/`` gives the metadata.json ETag and
the REMOVED marker. When the ETag differs from the one last applied, a conditional GET
(If-None-Match) fetches metadata.json; its per-file sha256 decide which files to download (the
rest are linked from the current release), and the package switches only when its set of files
(the ``tree`` digest) really changed. A store that cannot be read, or lists nothing, never
removes local DAGs; only a REMOVED marker does.

Hostile input (README "Failure behaviour"): a rejected release is remembered on disk
(``.sidecar/<pkg>/REJECTED.json``, by metadata.json ETag) and a release being worked on is marked
(``STAGING.json``), so a release whose processing killed the process (an OOM kill) is rejected
as ``staging_crashed`` at the next start instead of killing it again. A dag_id is installed from
one package only: the first owner keeps it (``_claim_conflicts``).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from etl_core.logs import EventLogger

from sidecar.errors import (
    LocalDiskError,
    LocalLayoutError,
    MetadataError,
    OversizedObjectError,
    ReleaseRejectedError,
    StoreError,
)
from sidecar.health import Health
from sidecar.layout import REJECTED_RECORD, STAGING_RECORD, DagsDir, LocalRelease
from sidecar.metadata import PackageMetadata, parse_metadata
from sidecar.metrics import Metrics
from sidecar.settings import Settings
from sidecar.stage import Stager, file_sha256
from sidecar.store import Store, open_store
from tools.bazel.retrypolicy import RetryPolicy
from tools.bazel.storecontract import NAME_RE, PackageKeys, env_prefix
from tools.bazel.storecontract.limits import METADATA_MAX_BYTES

__all__ = ["CRASH_LIMIT", "METADATA_MAX_BYTES", "CycleResult", "Syncer", "build_syncer"]

QUARANTINE_COPY_MAX = 256 * 1024
"""Largest metadata.json kept in memory between the cycle's two phases for a quarantine copy."""
CRASH_LIMIT = 2
"""A release whose processing was cut short by the process dying this many times is rejected
(``staging_crashed``): one death may be a node drain, two in a row on the same ETag is the release."""


@dataclasses.dataclass
class _PackageState:
    applied_etag: str | None = None
    rejected_etag: str | None = None
    conflict: dict[str, str] | None = None
    """dag_id -> owning package, when ``rejected_etag`` was rejected as dag_id_conflict (retried once they go)."""
    verified_release: str | None = None
    warned: set[str] = dataclasses.field(default_factory=set)


@dataclasses.dataclass(frozen=True)
class CycleResult:
    """What one cycle did: ``status`` is success, error, noop, or stopped (``stop_event`` cut it
    short: not counted in the metrics nor in health); outcomes are per package."""

    status: str
    outcomes: dict[str, str]
    errors: list[str]
    duration: float


@dataclasses.dataclass
class _Pending:
    """A package whose new release passed every check that needs no download: staged in phase 2."""

    pkg: str
    meta: PackageMetadata
    etag: str
    raw: bytes | None
    """metadata.json's bytes for the quarantine copy; None over QUARANTINE_COPY_MAX (kept per pending package)."""
    reuse: dict[str, Path]

    @property
    def order(self) -> tuple[str, str]:
        # dag_id ties between releases new in one cycle go to the earliest published one, then by name
        return (self.meta.published_at or "9999", self.pkg)


class Syncer:
    """Runs sync cycles of one store into one dags folder. Not thread-safe: one cycle at a time.

    Setting ``stop_event`` (from any thread, or a signal handler) ends a cycle at its next store
    request: give the store the same event (``build_syncer`` does) so retries stop waiting too.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        dags_dir: DagsDir,
        metrics: Metrics,
        health: Health,
        log: EventLogger,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.dags_dir = dags_dir
        self.metrics = metrics
        self.health = health
        self.log = log
        self.stop_event = stop_event if stop_event is not None else threading.Event()
        self._stager = Stager(
            store=store,
            dags_dir=dags_dir,
            env=settings.env,
            max_file_bytes=settings.max_file_bytes,
            concurrency=settings.concurrency,
        )
        self._state: dict[str, _PackageState] = {}
        self._warned: set[str] = set()
        self._crashed: dict[str, dict[str, object]] = {}
        """STAGING.json records found at start: the process died while working on that ETag."""

    # ---------------------------------------------------------------- start-up

    def start(self, *, lock_wait_log_every: float = 30.0) -> bool:
        """Prepare DAGS_DIR and take its lock (waiting while another sidecar holds it).

        Returns False if ``stop_event`` was set while waiting.
        """
        self.dags_dir.prepare()
        waited_since = time.monotonic()
        logged_at = 0.0
        while not self.dags_dir.try_lock():
            now = time.monotonic()
            if logged_at == 0.0 or now - logged_at >= lock_wait_log_every:
                self.log.warning(
                    "waiting_for_lock",
                    dags_dir=str(self.dags_dir.root),
                    waited_seconds=round(now - waited_since, 1),
                    hint="another sidecar writes this DAGS_DIR; only one may",
                )
                logged_at = now
            if self.stop_event.wait(1.0):
                return False
        leftovers = self.dags_dir.clean_leftovers(on_refused=self._gc_refused)
        if leftovers:
            self.log.info("cleaned_leftovers", paths=[str(p) for p in leftovers[:20]], count=len(leftovers))
        self._load_records()
        self.metrics.packages.set(len(self.dags_dir.linked_packages()))
        return True

    def _load_records(self) -> None:
        """Rejections and interrupted work remembered on disk by an earlier process."""
        for pkg in self.dags_dir.recorded_packages(REJECTED_RECORD):
            record = self.dags_dir.read_record(pkg, REJECTED_RECORD)
            if record is None or not isinstance(record.get("metadata_etag"), str):
                continue
            st = self._state.setdefault(pkg, _PackageState())
            st.rejected_etag = record["metadata_etag"]
            conflict = record.get("conflict")
            st.conflict = {str(k): str(v) for k, v in conflict.items()} if isinstance(conflict, dict) else None
            self.health.set_rejected(pkg, record)
            self.log.info(
                "rejection_remembered",
                package=pkg,
                reason=record.get("reason"),
                release=record.get("release"),
                metadata_etag=record["metadata_etag"],
                hint="not retried until metadata.json changes",
            )
        for pkg in self.dags_dir.recorded_packages(STAGING_RECORD):
            record = self.dags_dir.read_record(pkg, STAGING_RECORD)
            if record is None or not isinstance(record.get("metadata_etag"), str):
                self.dags_dir.remove_record(pkg, STAGING_RECORD)
                continue
            self._crashed[pkg] = record
            self.log.warning(
                "staging_interrupted",
                package=pkg,
                metadata_etag=record["metadata_etag"],
                attempts=record.get("attempts"),
                crash_limit=CRASH_LIMIT,
                hint="the process died while working on this release (an OOM kill?); it is "
                f"rejected after {CRASH_LIMIT} such deaths",
            )

    def _gc_refused(self, message: str) -> None:
        self.metrics.gc_refused.inc()
        self.log.error(
            "gc_refused",
            error=message,
            hint="a symlink was planted in the sidecar's state folder; nothing was removed through it",
        )

    def _mark(self, pkg: str, etag: str) -> bool:
        """Write STAGING.json before work that reads the package's release; False when the release
        already killed the process CRASH_LIMIT times (the caller rejects it)."""
        prev = self._crashed.get(pkg)
        attempts = 1
        if prev is not None and prev.get("metadata_etag") == etag:
            count = prev.get("attempts")
            attempts = (count if isinstance(count, int) else 1) + 1
        if attempts > CRASH_LIMIT:
            return False
        self.dags_dir.write_record(
            pkg,
            STAGING_RECORD,
            {
                "metadata_etag": etag,
                "attempts": attempts,
                "pid": os.getpid(),
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        return True

    def _unmark(self, pkg: str, *, finished: bool) -> None:
        self.dags_dir.remove_record(pkg, STAGING_RECORD)
        if finished:
            self._crashed.pop(pkg, None)

    def close(self) -> None:
        self.dags_dir.unlock()
        self.store.close()

    # ---------------------------------------------------------------- cycle

    def run_cycle(self) -> CycleResult:
        started = time.monotonic()
        env = self.settings.env
        outcomes: dict[str, str] = {}
        errors: list[str] = []
        try:
            listed: list[str] | None = self.store.list_packages(env)
        except StoreError as exc:
            if self.stop_event.is_set():  # the store error is the stop cutting the request or its retries short
                return self._stopped(started, outcomes)
            listed = None
            errors.append(str(exc))
            self.log.error("store_unreadable", error=str(exc), hint="keeping the last good DAGs")
        disk_errors: list[str] = []
        if listed is not None:
            # Phase 1 reads each changed metadata.json; phase 2 stages and switches in (published_at,
            # package) order, so two releases new in one cycle that claim one dag_id are decided by
            # the store's content, not by the order packages are listed.
            pending: list[_Pending] = []
            for pkg in self._targets(listed):
                if self.stop_event.is_set():
                    return self._stopped(started, outcomes)
                result = self._guarded(pkg, self._check, outcomes, errors, disk_errors)
                if isinstance(result, _Pending):
                    pending.append(result)
                elif result == "stopped":
                    return self._stopped(started, outcomes)
            for item in sorted(pending, key=lambda p: p.order):
                if self.stop_event.is_set():
                    return self._stopped(started, outcomes)
                result = self._guarded(
                    item.pkg, lambda _pkg, item=item: self._apply(item), outcomes, errors, disk_errors
                )
                if result == "stopped":
                    return self._stopped(started, outcomes)
        try:
            for path in self.dags_dir.gc(grace_period=self.settings.grace_period, on_refused=self._gc_refused):
                self.log.info("release_removed", path=str(path))
        except OSError as exc:
            self.log.warning("gc_failed", error=str(exc))
        self.metrics.packages.set(len(self.dags_dir.linked_packages()))
        self.health.set_disk_error(disk_errors[0] if disk_errors else None)
        changed = any(o in ("switched", "removed") for o in outcomes.values())
        status = "error" if errors else "disk_error" if disk_errors else ("success" if changed else "noop")
        duration = time.monotonic() - started
        self.metrics.syncs.labels(status).inc()
        self.metrics.sync_duration.labels(status).observe(duration)
        if errors:
            self.health.record_failure(errors[0])
        else:
            self.health.record_success()
            self.metrics.last_success.set(time.time())
        self.log.info(
            "sync_cycle",
            status=status,
            seconds=round(duration, 3),
            errors=len(errors),
            changed=sorted(p for p, o in outcomes.items() if o in ("switched", "removed")),
            rejected=sorted(p for p, o in outcomes.items() if o == "rejected"),
            packages=len(outcomes),
            healthy=self.health.healthy,
        )
        return CycleResult(status=status, outcomes=outcomes, errors=errors, duration=duration)

    def _guarded(
        self,
        pkg: str,
        step: Callable[[str], str | _Pending],
        outcomes: dict[str, str],
        errors: list[str],
        disk_errors: list[str],
    ) -> str | _Pending:
        """Run ``step(pkg)``; a failure is recorded as the package's outcome (and "stopped" returned on a stop)."""
        try:
            result = step(pkg)
        except LocalDiskError as exc:
            self._unmark(pkg, finished=False)
            outcomes[pkg] = "disk_error"
            disk_errors.append(str(exc))
            self.metrics.disk_errors.labels(exc.errno_name).inc()
            self.log.error(
                "local_disk_error",
                package=pkg,
                error=str(exc),
                path=exc.path,
                errno=exc.errno_name,
                hint="a local problem of the dags folder's volume, not of the store; its last good DAGs keep serving",
            )
            return "disk_error"
        except (StoreError, LocalLayoutError, OSError) as exc:
            self._unmark(pkg, finished=False)
            if isinstance(exc, StoreError) and self.stop_event.is_set():
                return "stopped"  # its staging was discarded
            outcomes[pkg] = "error"
            errors.append(str(exc))
            self.log.error(
                "package_sync_failed",
                package=pkg,
                error=str(exc),
                error_type=type(exc).__name__,
                hint="keeping its last good DAGs",
            )
            return "error"
        if isinstance(result, _Pending):
            return result
        assert isinstance(result, str)
        outcomes[pkg] = result
        return result

    def _stopped(self, started: float, outcomes: dict[str, str]) -> CycleResult:
        duration = time.monotonic() - started
        self.log.info(
            "sync_cycle",
            status="stopped",
            seconds=round(duration, 3),
            changed=sorted(p for p, o in outcomes.items() if o in ("switched", "removed")),
            packages=len(outcomes),
            hint="stopping: the rest waits for the next start",
        )
        return CycleResult(status="stopped", outcomes=outcomes, errors=[], duration=duration)

    def _warn_once(self, key: str, event: str, **fields: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.warning(event, **fields)

    def _targets(self, listed: list[str]) -> list[str]:
        valid = []
        for name in listed:
            if NAME_RE.fullmatch(name):
                valid.append(name)
            else:
                self._warn_once(
                    f"bad-name:{name}",
                    "package_name_invalid",
                    package=name,
                    hint=f"package prefixes must match {NAME_RE.pattern} (storecontract); skipped",
                )
        allow = self.settings.packages
        if allow is not None:
            for name in sorted(allow - set(valid)):
                self._warn_once(
                    f"absent:{name}",
                    "package_not_in_store",
                    package=name,
                    address=self.store.address(f"{self.settings.env}/{name}/"),
                    hint="listed in PACKAGES but the store has no such prefix; local DAGs kept",
                )
            valid = [p for p in valid if p in allow]
        else:
            for name in sorted(set(self.dags_dir.linked_packages()) - set(valid)):
                self._warn_once(
                    f"gone:{name}",
                    "package_gone_from_store",
                    package=name,
                    hint="local DAGs kept; the publisher writes a REMOVED marker to delete a package",
                )
        if not valid:
            self._warn_once(
                "empty",
                "store_lists_no_packages",
                address=self.store.address(env_prefix(self.settings.env)),
                hint="nothing to sync; local DAGs kept",
            )
        else:
            self._warned.discard("empty")
        return valid

    # ---------------------------------------------------------------- one package

    def sync_package(self, pkg: str) -> str:
        """Bring one package up to date; returns switched, removed, rejected, superseded or noop."""
        result = self._check(pkg)
        return self._apply(result) if isinstance(result, _Pending) else result

    def _check(self, pkg: str) -> str | _Pending:
        """Everything before staging: an outcome, or the release to stage (STAGING.json stays off disk between)."""
        try:
            return self._check_marked(pkg)
        finally:
            self._unmark(pkg, finished=False)

    def _check_marked(self, pkg: str) -> str | _Pending:
        env = self.settings.env
        st = self._state.setdefault(pkg, _PackageState())
        entry = self.store.package_entry(env, pkg)
        if entry.removed:
            st.applied_etag = None
            if self.dags_dir.remove_package(pkg):
                self.metrics.removed.inc()
                self.log.info(
                    "package_removed", package=pkg, marker=self.store.address(PackageKeys(env, pkg).removed_marker)
                )
                return "removed"
            return "noop"
        if entry.metadata_etag is None:
            if "no-metadata" not in st.warned:
                st.warned.add("no-metadata")
                self.log.warning(
                    "metadata_missing",
                    package=pkg,
                    address=self.store.address(PackageKeys(env, pkg).metadata),
                    hint="local DAGs kept until the publisher writes metadata.json or REMOVED",
                )
            return "noop"
        st.warned.discard("no-metadata")
        linked = self.dags_dir.is_linked(pkg)
        if linked and entry.metadata_etag == st.applied_etag:
            return "noop"
        if entry.metadata_etag == st.rejected_etag:
            if not st.conflict or any(self._owners(exclude=pkg).get(d) == o for d, o in st.conflict.items()):
                return "noop"
            self.log.info(
                "dag_id_released",
                package=pkg,
                dag_ids=sorted(st.conflict),
                hint="the packages that owned these dag_ids no longer do; retrying the release",
            )
        if not self._mark(pkg, entry.metadata_etag):
            return self._reject(
                pkg,
                ReleaseRejectedError(
                    "staging_crashed",
                    f"working on {self.store.address(PackageKeys(env, pkg).metadata)!r} (ETag "
                    f"{entry.metadata_etag}) killed the sidecar {CRASH_LIMIT} times (.sidecar/{pkg}/{STAGING_RECORD}); "
                    "publish a fixed release",
                ),
                etag=entry.metadata_etag,
                staging=None,
                metadata=None,
                meta=None,
            )
        current = self.dags_dir.current_release(pkg)
        address = self.store.address(PackageKeys(env, pkg).metadata)
        try:
            obj = self.store.get_metadata(
                env, pkg, if_none_match=st.applied_etag if linked else None, max_bytes=METADATA_MAX_BYTES
            )
        except OversizedObjectError as exc:
            return self._reject(
                pkg,
                ReleaseRejectedError("metadata_too_large", str(exc)),
                etag=entry.metadata_etag,
                staging=None,
                metadata=None,
                meta=None,
            )
        if obj is None:
            return "noop"  # 304: unchanged since it was applied
        self.metrics.objects_fetched.inc()
        self.metrics.bytes_fetched.inc(len(obj.data))
        try:
            meta = parse_metadata(obj.data, package=pkg, env=env, address=address)
        except MetadataError as exc:
            return self._reject(
                pkg,
                ReleaseRejectedError(exc.reason, str(exc)),
                etag=obj.etag,
                staging=None,
                metadata=obj.data if exc.reason in ("invalid_metadata", "empty_release") else None,
                meta=None,
            )
        trusted = self._verify(pkg, current, st)
        if current is not None and trusted and current.tree == meta.tree:
            st.applied_etag = obj.etag
            self._clear_rejection(pkg, st)
            self.log.info("release_unchanged", package=pkg, release=meta.release_id, tree=meta.tree[:12])
            return "noop"
        reuse: dict[str, Path] = {}
        if current is not None and trusted:
            reuse = {sha: current.path / name for name, sha in current.files.items()}
        return _Pending(
            pkg=pkg,
            meta=meta,
            etag=obj.etag,
            raw=obj.data if len(obj.data) <= QUARANTINE_COPY_MAX else None,
            reuse=reuse,
        )

    def _owners(self, *, exclude: str) -> dict[str, str]:
        """dag_id -> package, for the dag_ids of every package installed here but ``exclude``."""
        owners: dict[str, str] = {}
        for other in sorted(self.dags_dir.linked_packages()):
            if other == exclude:
                continue
            release = self.dags_dir.current_release(other)
            if release is not None:
                for dag_id in release.dag_ids:
                    owners.setdefault(dag_id, other)
        return owners

    def _clear_rejection(self, pkg: str, st: _PackageState) -> None:
        """The package's release is good again: forget its rejection, on disk too."""
        self.dags_dir.remove_record(pkg, REJECTED_RECORD)
        if pkg in self.health.rejected():
            self.health.set_rejected(pkg, None)
        st.rejected_etag, st.conflict = None, None

    def _apply(self, item: _Pending) -> str:
        """Stage and switch one package's release, unless another installed package owns one of its dag_ids."""
        pkg, meta, etag = item.pkg, item.meta, item.etag
        st = self._state[pkg]
        owners = self._owners(exclude=pkg)
        lost = {dag_id: owners[dag_id] for dag_id in sorted(meta.dag_ids) if dag_id in owners}
        if lost:
            # The first owner keeps a dag_id: the package already installed here that lists it (README
            # "dag_id ownership"). The whole release waits in quarantine; no file of it is installed.
            st.conflict = lost
            self.metrics.dag_id_conflicts.inc(len(lost))
            address = self.store.address(PackageKeys(self.settings.env, pkg).metadata)
            detail = ", ".join(f"{d!r} (owned by package {o!r})" for d, o in lost.items())
            return self._reject(
                pkg,
                ReleaseRejectedError(
                    "dag_id_conflict",
                    f"{address!r} lists dag_ids another package already owns: {detail}; the first "
                    "owner keeps a dag_id: rename the DAG, or decommission it in the owning package",
                ),
                etag=etag,
                staging=None,
                metadata=item.raw,
                meta=meta,
                conflict=lost,
            )
        if not self._mark(pkg, etag):
            return self._reject(
                pkg,
                ReleaseRejectedError(
                    "staging_crashed",
                    f"staging release {meta.release_id!r} of package {pkg!r} killed the sidecar "
                    f"{CRASH_LIMIT} times; publish a fixed release",
                ),
                etag=etag,
                staging=None,
                metadata=None,
                meta=meta,
            )
        try:
            outcome = self._stage_and_switch(pkg, meta, etag, item.raw, item.reuse, st)
        except BaseException:
            self._unmark(pkg, finished=False)
            raise
        self._unmark(pkg, finished=True)
        return outcome

    def _stage_and_switch(
        self, pkg: str, meta: PackageMetadata, etag: str, raw: bytes | None, reuse: dict[str, Path], st: _PackageState
    ) -> str:
        started = time.monotonic()
        staging = self.dags_dir.new_staging(pkg)
        try:
            result = self._stager.stage(meta, staging=staging, metadata_etag=etag, reuse=reuse)
        except ReleaseRejectedError as exc:
            try:
                changed = (
                    self.store.get_metadata(self.settings.env, pkg, if_none_match=etag, max_bytes=METADATA_MAX_BYTES)
                    is not None
                )
            except BaseException:
                self.dags_dir.discard(staging)
                raise
            if changed:
                self.dags_dir.discard(staging)
                self.log.info(
                    "release_superseded",
                    package=pkg,
                    release=meta.release_id,
                    reason=exc.reason,
                    detail=str(exc),
                    hint="metadata.json changed while staging; next cycle takes it",
                )
                return "superseded"
            return self._reject(pkg, exc, etag=etag, staging=staging, metadata=raw, meta=meta)
        except BaseException:
            self.dags_dir.discard(staging)
            raise
        self.metrics.objects_fetched.inc(result.fetched_objects)
        self.metrics.bytes_fetched.inc(result.fetched_bytes)
        self.metrics.objects_reused.inc(result.reused)
        if result.bundle != "unused":
            self.metrics.bundles.labels(result.bundle).inc()
        if result.bundle_problem:
            self.log.warning(
                "bundle_fallback",
                package=pkg,
                release=meta.release_id,
                problem=result.bundle_problem,
                hint="the files were fetched one by one instead; check the publisher's bundle",
            )
        if result.live_mismatches:
            self.log.warning(
                "live_file_mismatch",
                package=pkg,
                release=meta.release_id,
                files=list(result.live_mismatches),
                hint="these live dags/ files differ from metadata.json (a publish in progress, or one "
                "that was interrupted); the release's bundle was used. If it persists, run "
                f"`bazel run //packages/{pkg}:publish -- --repair`",
            )
        previous = self.dags_dir.current_release(pkg)
        self.dags_dir.switch(pkg, result.release_dir)
        st.applied_etag = etag
        self._clear_rejection(pkg, st)
        st.verified_release = result.release_dir.name
        self.metrics.switches.inc()
        self.log.info(
            "release_switched",
            package=pkg,
            release=meta.release_id,
            tree=meta.tree[:12],
            dir=str(result.release_dir),
            previous=previous.name if previous else None,
            files=len(meta.dags),
            fetched=result.fetched_objects,
            fetched_bytes=result.fetched_bytes,
            reused=result.reused,
            bundle=result.bundle,
            seconds=round(time.monotonic() - started, 3),
        )
        return "switched"

    def _reject(
        self,
        pkg: str,
        exc: ReleaseRejectedError,
        *,
        etag: str,
        staging: Path | None,
        metadata: bytes | None,
        meta: PackageMetadata | None,
        conflict: dict[str, str] | None = None,
    ) -> str:
        st = self._state[pkg]
        st.rejected_etag = etag
        st.conflict = conflict
        self._unmark(pkg, finished=True)
        report: dict[str, object] = {
            "package": pkg,
            "env": self.settings.env,
            "message": str(exc),
            "metadata_etag": etag,
            "release": meta.release_id if meta else None,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "conflict": conflict,
        }
        try:
            where: str | None = str(
                self.dags_dir.quarantine(
                    pkg,
                    staging=staging,
                    tree=meta.tree if meta else "",
                    reason=exc.reason,
                    report=report,
                    metadata=metadata,
                    keep=self.settings.quarantine_keep,
                )
            )
        except (OSError, LocalDiskError) as qexc:
            where = None
            if staging is not None:
                self.dags_dir.discard(staging)
            self.log.warning("quarantine_failed", package=pkg, error=str(qexc))
        record = {**report, "reason": exc.reason, "conflict": conflict, "quarantine": where}
        try:
            self.dags_dir.write_record(pkg, REJECTED_RECORD, record, fsync=True)
        except (OSError, LocalDiskError) as rexc:
            self.log.warning(
                "rejection_not_recorded", package=pkg, error=str(rexc), hint="it is retried after a restart"
            )
        self.health.set_rejected(pkg, record)
        self.metrics.rejected.labels(exc.reason).inc()
        self.log.error(
            "release_rejected",
            package=pkg,
            reason=exc.reason,
            error=str(exc),
            conflict=conflict,
            release=meta.release_id if meta else None,
            quarantine=where,
            hint="the previous release keeps serving",
        )
        return "rejected"

    def _verify(self, pkg: str, current: LocalRelease | None, st: _PackageState) -> bool:
        """Check the current release's files against its manifest, once per process and release."""
        if current is None:
            return False
        if st.verified_release == current.name:
            return True
        problems = []
        try:
            on_disk = {p.name for p in current.path.iterdir() if p.name.endswith(".py")}
        except OSError as exc:
            on_disk = set()
            problems.append(str(exc))
        if on_disk != set(current.files):
            problems.append("file set differs from the manifest")
        for name, sha in current.files.items():
            if problems:
                break
            try:
                if file_sha256(current.path / name) != sha:
                    problems.append(f"{name!r} changed on disk")
            except OSError as exc:
                problems.append(f"{name!r}: {exc}")
        if problems:
            self.log.warning(
                "local_release_invalid",
                package=pkg,
                dir=str(current.path),
                problems=problems[:5],
                hint="it will be replaced by a fresh download",
            )
            return False
        st.verified_release = current.name
        return True


def build_syncer(settings: Settings, *, log: EventLogger, metrics: Metrics | None = None) -> Syncer:
    """A Syncer wired to the store, dags folder and metrics that ``settings`` describe."""
    metrics = metrics if metrics is not None else Metrics()
    health = Health(failure_threshold=settings.failure_threshold, metrics=metrics)
    policy = RetryPolicy(retries=settings.retries, backoff=settings.retry_backoff)

    def on_retry(what: str, number: int, delay: float, exc: BaseException) -> None:
        metrics.retries.inc()
        log.warning(
            "store_retry", request=what, attempt=number + 1, delay=round(delay, 3), error=f"{type(exc).__name__}: {exc}"
        )

    stop = threading.Event()  # one event: the syncer's cycle and the store's retries end together
    store = open_store(
        settings.store,
        policy=policy,
        timeout=settings.timeout,
        max_connections=settings.concurrency + 2,
        on_retry=on_retry,
        stop=stop,
    )
    return Syncer(
        settings=settings,
        store=store,
        dags_dir=DagsDir(settings.dags_dir),
        metrics=metrics,
        health=health,
        log=log,
        stop_event=stop,
    )
