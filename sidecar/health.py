"""Health state, served with the metrics at ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` answers 503 until the first good sync, then 200 until ``failure_threshold``
consecutive cycles fail (the store cannot be read), and 200 again after the next good cycle.
``/readyz`` answers 200 once a good sync has put the DAGs in place; it stays 200 through store
outages because the last good DAGs keep serving. Rejected releases and a failing dags folder
(disk full, read-only) are reported in ``/healthz``'s body (``rejected``, ``local_disk_error``)
without turning it 503: restarting the sidecar would not fix either.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from etl_core.metrics import MetricsServer, serve

from sidecar.metrics import Metrics

__all__ = ["Health", "serve_status"]


class Health:
    """Counts consecutive failed cycles; thread-safe."""

    def __init__(self, *, failure_threshold: int, metrics: Metrics | None = None) -> None:
        self._threshold = failure_threshold
        self._metrics = metrics
        self._lock = threading.Lock()
        self._first_success: float | None = None
        self._last_success: float | None = None
        self._failures = 0
        self._last_error: str | None = None
        self._rejected: dict[str, dict[str, Any]] = {}
        self._disk_error: str | None = None
        self._publish()

    def set_rejected(self, package: str, record: dict[str, Any] | None) -> None:
        """The package's latest release is rejected (``record``: reason, release, message...), or not (None)."""
        with self._lock:
            if record is None:
                self._rejected.pop(package, None)
            else:
                self._rejected[package] = {k: record.get(k) for k in ("reason", "release", "at", "message")}
        self._publish()

    def rejected(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {p: dict(r) for p, r in self._rejected.items()}

    def set_disk_error(self, message: str | None) -> None:
        with self._lock:
            self._disk_error = message

    def record_success(self) -> None:
        with self._lock:
            now = time.time()
            if self._first_success is None:
                self._first_success = now
            self._last_success = now
            self._failures = 0
            self._last_error = None
        self._publish()

    def record_failure(self, error: str) -> None:
        with self._lock:
            self._failures += 1
            self._last_error = error
        self._publish()

    @property
    def healthy(self) -> bool:
        with self._lock:
            return self._first_success is not None and self._failures < self._threshold

    @property
    def ready(self) -> bool:
        with self._lock:
            return self._first_success is not None

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "synced_once": self._first_success is not None,
                "last_success": self._last_success,
                "consecutive_failures": self._failures,
                "failure_threshold": self._threshold,
                "last_error": self._last_error,
                "rejected": {p: dict(r) for p, r in sorted(self._rejected.items())},
                "local_disk_error": self._disk_error,
            }

    def _publish(self) -> None:
        if self._metrics is not None:
            self._metrics.consecutive_failures.set(self._failures)
            self._metrics.healthy.set(1 if self.healthy else 0)
            with self._lock:
                counts: dict[str, int] = {}
                for record in self._rejected.values():
                    counts[str(record.get("reason"))] = counts.get(str(record.get("reason")), 0) + 1
            for reason in {
                *counts,
                *(s.labels["reason"] for m in self._metrics.rejected_packages.collect() for s in m.samples),
            }:
                self._metrics.rejected_packages.labels(reason).set(counts.get(reason, 0))


def serve_status(*, host: str, port: int, health: Health, metrics: Metrics) -> MetricsServer:
    """``/healthz`` and ``/readyz`` (JSON) and ``/metrics`` from a daemon thread: etl_core's metrics
    server with the sidecar's two health routes. Raises ``MetricsServerError`` naming the port."""

    def healthz() -> tuple[int, str, bytes]:
        healthy = health.healthy
        return _json(200 if healthy else 503, {"healthy": healthy, **health.snapshot()})

    def readyz() -> tuple[int, str, bytes]:
        ready = health.ready
        return _json(200 if ready else 503, {"ready": ready})

    return serve(port, registry=metrics.registry, host=host, routes={"/healthz": healthz, "/readyz": readyz})


def _json(status: int, doc: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", (json.dumps(doc, sort_keys=True) + "\n").encode()
