"""One sync cycle: for each package, detect a change by content and switch to the new release.

Per package and cycle: one delimited listing of ``<env>/<pkg>/`` gives the metadata.json ETag and
the REMOVED marker. When the ETag differs from the one last applied, a conditional GET
(If-None-Match) fetches metadata.json; its per-file sha256 decide which files to download (the
rest are linked from the current release), and the package switches only when its set of files
(the ``tree`` digest) really changed. A store that cannot be read, or lists nothing, never
removes local DAGs; only a REMOVED marker does.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

from sidecar.errors import (
    LocalLayoutError,
    MetadataError,
    OversizedObjectError,
    ReleaseRejectedError,
    StoreError,
)
from sidecar.health import Health
from sidecar.layout import DagsDir, LocalRelease
from sidecar.logs import JsonLogger
from sidecar.metadata import NAME_RE, PackageMetadata, parse_metadata
from sidecar.metrics import Metrics
from sidecar.retry import RetryPolicy
from sidecar.settings import Settings
from sidecar.stage import Stager, file_sha256
from sidecar.store import METADATA_NAME, Store, open_store

__all__ = ["METADATA_MAX_BYTES", "CycleResult", "Syncer", "build_syncer"]

METADATA_MAX_BYTES = 64 * 1024 * 1024


@dataclasses.dataclass
class _PackageState:
    applied_etag: str | None = None
    rejected_etag: str | None = None
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
        log: JsonLogger,
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
                self.log.warning("waiting_for_lock", dags_dir=str(self.dags_dir.root),
                                 waited_seconds=round(now - waited_since, 1),
                                 hint="another sidecar writes this DAGS_DIR; only one may")
                logged_at = now
            if self.stop_event.wait(1.0):
                return False
        leftovers = self.dags_dir.clean_leftovers()
        if leftovers:
            self.log.info("cleaned_leftovers", paths=[str(p) for p in leftovers[:20]], count=len(leftovers))
        self.metrics.packages.set(len(self.dags_dir.linked_packages()))
        return True

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
        if listed is not None:
            for pkg in self._targets(listed):
                if self.stop_event.is_set():
                    return self._stopped(started, outcomes)
                try:
                    outcomes[pkg] = self.sync_package(pkg)
                except (StoreError, LocalLayoutError, OSError) as exc:
                    if isinstance(exc, StoreError) and self.stop_event.is_set():
                        return self._stopped(started, outcomes)  # its staging was discarded
                    outcomes[pkg] = "error"
                    errors.append(str(exc))
                    self.log.error("package_sync_failed", package=pkg, error=str(exc),
                                   error_type=type(exc).__name__, hint="keeping its last good DAGs")
        try:
            for path in self.dags_dir.gc(grace_period=self.settings.grace_period):
                self.log.info("release_removed", path=str(path))
        except OSError as exc:
            self.log.warning("gc_failed", error=str(exc))
        self.metrics.packages.set(len(self.dags_dir.linked_packages()))
        changed = any(o in ("switched", "removed") for o in outcomes.values())
        status = "error" if errors else ("success" if changed else "noop")
        duration = time.monotonic() - started
        self.metrics.syncs.labels(status).inc()
        self.metrics.sync_duration.labels(status).observe(duration)
        if errors:
            self.health.record_failure(errors[0])
        else:
            self.health.record_success()
            self.metrics.last_success.set(time.time())
        self.log.info("sync_cycle", status=status, seconds=round(duration, 3), errors=len(errors),
                      changed=sorted(p for p, o in outcomes.items() if o in ("switched", "removed")),
                      rejected=sorted(p for p, o in outcomes.items() if o == "rejected"),
                      packages=len(outcomes), healthy=self.health.healthy)
        return CycleResult(status=status, outcomes=outcomes, errors=errors, duration=duration)

    def _stopped(self, started: float, outcomes: dict[str, str]) -> CycleResult:
        duration = time.monotonic() - started
        self.log.info("sync_cycle", status="stopped", seconds=round(duration, 3),
                      changed=sorted(p for p, o in outcomes.items() if o in ("switched", "removed")),
                      packages=len(outcomes), hint="stopping: the rest waits for the next start")
        return CycleResult(status="stopped", outcomes=outcomes, errors=[], duration=duration)

    def _warn_once(self, key: str, event: str, **fields: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.log.warning(event, **fields)

    def _targets(self, listed: list[str]) -> list[str]:
        valid = []
        for name in listed:
            if NAME_RE.match(name):
                valid.append(name)
            else:
                self._warn_once(f"bad-name:{name}", "package_name_invalid", package=name,
                                hint="package prefixes must match ^[a-z][a-z0-9_-]{0,62}$; skipped")
        allow = self.settings.packages
        if allow is not None:
            for name in sorted(allow - set(valid)):
                self._warn_once(f"absent:{name}", "package_not_in_store", package=name,
                                address=self.store.address(f"{self.settings.env}/{name}/"),
                                hint="listed in PACKAGES but the store has no such prefix; local DAGs kept")
            valid = [p for p in valid if p in allow]
        else:
            for name in sorted(set(self.dags_dir.linked_packages()) - set(valid)):
                self._warn_once(f"gone:{name}", "package_gone_from_store", package=name,
                                hint="local DAGs kept; the publisher writes a REMOVED marker to delete a package")
        if not valid:
            self._warn_once("empty", "store_lists_no_packages",
                            address=self.store.address(f"{self.settings.env}/"),
                            hint="nothing to sync; local DAGs kept")
        else:
            self._warned.discard("empty")
        return valid

    # ---------------------------------------------------------------- one package

    def sync_package(self, pkg: str) -> str:
        """Bring one package up to date; returns switched, removed, rejected, superseded or noop."""
        env = self.settings.env
        st = self._state.setdefault(pkg, _PackageState())
        entry = self.store.package_entry(env, pkg)
        if entry.removed:
            st.applied_etag = None
            if self.dags_dir.remove_package(pkg):
                self.metrics.removed.inc()
                self.log.info("package_removed", package=pkg,
                              marker=self.store.address(f"{env}/{pkg}/REMOVED"))
                return "removed"
            return "noop"
        if entry.metadata_etag is None:
            if "no-metadata" not in st.warned:
                st.warned.add("no-metadata")
                self.log.warning("metadata_missing", package=pkg,
                                 address=self.store.address(f"{env}/{pkg}/{METADATA_NAME}"),
                                 hint="local DAGs kept until the publisher writes metadata.json or REMOVED")
            return "noop"
        st.warned.discard("no-metadata")
        linked = self.dags_dir.is_linked(pkg)
        if linked and entry.metadata_etag == st.applied_etag:
            return "noop"
        if entry.metadata_etag == st.rejected_etag:
            return "noop"
        current = self.dags_dir.current_release(pkg)
        address = self.store.address(f"{env}/{pkg}/{METADATA_NAME}")
        try:
            obj = self.store.get_metadata(
                env, pkg, if_none_match=st.applied_etag if linked else None, max_bytes=METADATA_MAX_BYTES
            )
        except OversizedObjectError as exc:
            return self._reject(pkg, ReleaseRejectedError("oversized", str(exc)), etag=entry.metadata_etag,
                                staging=None, metadata=None, meta=None)
        if obj is None:
            return "noop"  # 304: unchanged since it was applied
        self.metrics.objects_fetched.inc()
        self.metrics.bytes_fetched.inc(len(obj.data))
        try:
            meta = parse_metadata(obj.data, package=pkg, env=env, address=address)
        except MetadataError as exc:
            return self._reject(pkg, ReleaseRejectedError("invalid_metadata", str(exc)), etag=obj.etag,
                                staging=None, metadata=obj.data, meta=None)
        if not meta.dags:
            return self._reject(
                pkg,
                ReleaseRejectedError("empty_release", f"{address!r} lists no DAGs; an empty release never wipes "
                                     "local DAGs: the publisher writes a REMOVED marker to remove a package"),
                etag=obj.etag, staging=None, metadata=obj.data, meta=meta,
            )
        trusted = self._verify(pkg, current, st)
        if current is not None and trusted and current.tree == meta.tree:
            st.applied_etag = obj.etag
            st.rejected_etag = None
            self.log.info("release_unchanged", package=pkg, release=meta.release_id, tree=meta.tree[:12])
            return "noop"
        reuse: dict[str, Path] = {}
        if current is not None and trusted:
            reuse = {sha: current.path / name for name, sha in current.files.items()}
        return self._stage_and_switch(pkg, meta, obj.etag, obj.data, reuse, st)

    def _stage_and_switch(
        self, pkg: str, meta: PackageMetadata, etag: str, raw: bytes, reuse: dict[str, Path], st: _PackageState
    ) -> str:
        started = time.monotonic()
        staging = self.dags_dir.new_staging(pkg)
        try:
            result = self._stager.stage(meta, staging=staging, metadata_etag=etag, reuse=reuse)
        except ReleaseRejectedError as exc:
            try:
                changed = self.store.get_metadata(self.settings.env, pkg, if_none_match=etag,
                                                  max_bytes=METADATA_MAX_BYTES) is not None
            except BaseException:
                self.dags_dir.discard(staging)
                raise
            if changed:
                self.dags_dir.discard(staging)
                self.log.info("release_superseded", package=pkg, release=meta.release_id, reason=exc.reason,
                              detail=str(exc), hint="metadata.json changed while staging; next cycle takes it")
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
            self.log.warning("bundle_fallback", package=pkg, release=meta.release_id, problem=result.bundle_problem,
                             hint="the files were fetched one by one instead; check the publisher's bundle")
        if result.live_mismatches:
            self.log.warning("live_file_mismatch", package=pkg, release=meta.release_id,
                             files=list(result.live_mismatches),
                             hint="these live dags/ files differ from metadata.json (a publish in progress, or one "
                                  "that was interrupted); the release's own copy was used. If it persists, run "
                                  f"`bazel run //packages/{pkg}:publish -- --repair`")
        previous = self.dags_dir.current_release(pkg)
        self.dags_dir.switch(pkg, result.release_dir)
        st.applied_etag = etag
        st.rejected_etag = None
        st.verified_release = result.release_dir.name
        self.metrics.switches.inc()
        self.log.info("release_switched", package=pkg, release=meta.release_id, tree=meta.tree[:12],
                      dir=str(result.release_dir), previous=previous.name if previous else None,
                      files=len(meta.dags), fetched=result.fetched_objects, fetched_bytes=result.fetched_bytes,
                      reused=result.reused, bundle=result.bundle, seconds=round(time.monotonic() - started, 3))
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
    ) -> str:
        st = self._state[pkg]
        st.rejected_etag = etag
        report = {
            "package": pkg,
            "env": self.settings.env,
            "message": str(exc),
            "metadata_etag": etag,
            "release": meta.release_id if meta else None,
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        try:
            where: str | None = str(self.dags_dir.quarantine(
                pkg, staging=staging, tree=meta.tree if meta else "", reason=exc.reason, report=report,
                metadata=metadata, keep=self.settings.quarantine_keep,
            ))
        except OSError as qexc:
            where = None
            if staging is not None:
                self.dags_dir.discard(staging)
            self.log.warning("quarantine_failed", package=pkg, error=str(qexc))
        self.metrics.rejected.labels(exc.reason).inc()
        self.log.error("release_rejected", package=pkg, reason=exc.reason, error=str(exc),
                       release=meta.release_id if meta else None, quarantine=where,
                       hint="the previous release keeps serving")
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
            self.log.warning("local_release_invalid", package=pkg, dir=str(current.path), problems=problems[:5],
                             hint="it will be replaced by a fresh download")
            return False
        st.verified_release = current.name
        return True


def build_syncer(settings: Settings, *, log: JsonLogger, metrics: Metrics | None = None) -> Syncer:
    """A Syncer wired to the store, dags folder and metrics that ``settings`` describe."""
    metrics = metrics if metrics is not None else Metrics()
    health = Health(failure_threshold=settings.failure_threshold, metrics=metrics)
    policy = RetryPolicy(retries=settings.retries, backoff=settings.retry_backoff)

    def on_retry(what: str, number: int, delay: float, exc: BaseException) -> None:
        metrics.retries.inc()
        log.warning("store_retry", request=what, attempt=number + 1, delay=round(delay, 3),
                    error=f"{type(exc).__name__}: {exc}")

    stop = threading.Event()  # one event: the syncer's cycle and the store's retries end together
    store = open_store(settings.store, policy=policy, timeout=settings.timeout,
                       max_connections=settings.concurrency + 2, on_retry=on_retry, stop=stop)
    return Syncer(settings=settings, store=store, dags_dir=DagsDir(settings.dags_dir), metrics=metrics,
                  health=health, log=log, stop_event=stop)
