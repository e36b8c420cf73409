"""Prometheus metrics of the sidecar (prefix ``etl_sidecar_``), on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sidecar.localfs import DISK_ERRNOS
from sidecar.stage import REJECT_REASONS

__all__ = ["STATUSES", "Metrics"]

STATUSES = ("success", "error", "disk_error", "noop")
"""Outcome of a sync cycle: something switched, the store could not be read, the dags folder could
not be written (no space, quota, read-only), nothing changed."""

_DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """Every metric the sidecar exports; one instance per process (or per test)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, version: str = "") -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.syncs = Counter("etl_sidecar_syncs_total", "Sync cycles by outcome.", ["status"], registry=r)
        self.sync_duration = Histogram(
            "etl_sidecar_sync_duration_seconds",
            "Wall time of a sync cycle.",
            ["status"],
            buckets=_DURATION_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            "etl_sidecar_last_success_timestamp_seconds", "Unix time of the last cycle that did not fail.", registry=r
        )
        self.objects_fetched = Counter(
            "etl_sidecar_objects_fetched_total",
            "Objects downloaded from the store (metadata and DAG files).",
            registry=r,
        )
        self.bytes_fetched = Counter("etl_sidecar_bytes_fetched_total", "Bytes downloaded from the store.", registry=r)
        self.objects_reused = Counter(
            "etl_sidecar_objects_reused_total",
            "DAG files taken from the previous local release by sha256.",
            registry=r,
        )
        self.bundles = Counter(
            "etl_sidecar_bundles_total",
            "Releases staged from their bundle, by result (used, fallback).",
            ["result"],
            registry=r,
        )
        self.packages = Gauge("etl_sidecar_packages", "Packages whose DAGs are served from DAGS_DIR.", registry=r)
        self.switches = Counter("etl_sidecar_release_switches_total", "Packages switched to a new release.", registry=r)
        self.rejected = Counter(
            "etl_sidecar_rejected_releases_total",
            "Releases rejected whole and quarantined, by reason.",
            ["reason"],
            registry=r,
        )
        self.rejected_packages = Gauge(
            "etl_sidecar_rejected_packages",
            "Packages whose latest release stays rejected (remembered on disk), by reason.",
            ["reason"],
            registry=r,
        )
        self.dag_id_conflicts = Counter(
            "etl_sidecar_dag_id_conflicts_total",
            "dag_ids a release claimed that another installed package owns "
            "(the release is quarantined, reason dag_id_conflict).",
            registry=r,
        )
        self.disk_errors = Counter(
            "etl_sidecar_local_disk_errors_total",
            "Failed writes to the dags folder, by errno (ENOSPC, EDQUOT, EROFS, other); the live release is kept.",
            ["errno"],
            registry=r,
        )
        self.gc_refused = Counter(
            "etl_sidecar_gc_refused_total",
            "Folders GC refused to enter because they were symlinks.",
            registry=r,
        )
        self.removed = Counter(
            "etl_sidecar_packages_removed_total", "Packages removed locally because of a REMOVED marker.", registry=r
        )
        self.retries = Counter(
            "etl_sidecar_store_retries_total", "Store requests retried after an error or timeout.", registry=r
        )
        self.consecutive_failures = Gauge(
            "etl_sidecar_consecutive_failed_syncs", "Failed sync cycles since the last good one.", registry=r
        )
        self.healthy = Gauge("etl_sidecar_healthy", "1 when /healthz answers 200, else 0.", registry=r)
        self.info = Gauge("etl_sidecar_build_info", "Always 1; the version is a label.", ["version"], registry=r)
        self.info.labels(version).set(1)
        for status in STATUSES:
            self.syncs.labels(status)
            self.sync_duration.labels(status)
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
            self.rejected_packages.labels(reason).set(0)
        for name in DISK_ERRNOS:
            self.disk_errors.labels(name)
        for result in ("used", "fallback"):
            self.bundles.labels(result)
