"""Health state and the small HTTP server for ``/healthz``, ``/readyz`` and ``/metrics``.

``/healthz`` answers 503 until the first good sync, then 200 until ``failure_threshold``
consecutive cycles fail (the store cannot be read), and 200 again after the next good cycle.
``/readyz`` answers 200 once a good sync has put the DAGs in place; it stays 200 through store
outages because the last good DAGs keep serving. Rejected releases and a failing dags folder
(disk full, read-only) are reported in ``/healthz``'s body (``rejected``, ``local_disk_error``)
without turning it 503: restarting the sidecar would not fix either.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sidecar.metrics import Metrics

__all__ = ["Health", "StatusServer"]


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


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "etl-sidecar"
    health: Health
    metrics: Metrics

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._json(200 if self.health.healthy else 503, {"healthy": self.health.healthy, **self.health.snapshot()})
        elif path == "/readyz":
            self._json(200 if self.health.ready else 503, {"ready": self.health.ready})
        elif path == "/metrics":
            body = generate_latest(self.metrics.registry)
            self._send(200, CONTENT_TYPE_LATEST, body)
        else:
            self._json(404, {"error": f"no such path {path!r}; try /healthz, /readyz or /metrics"})

    def _json(self, status: int, doc: dict[str, Any]) -> None:
        self._send(status, "application/json", (json.dumps(doc, sort_keys=True) + "\n").encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds would flood the JSON log: stay quiet."""


class StatusServer:
    """Serves the health endpoints and metrics from a daemon thread."""

    def __init__(self, *, host: str, port: int, health: Health, metrics: Metrics) -> None:
        handler = type("Handler", (_Handler,), {"health": health, "metrics": metrics})
        self._server = http.server.ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="status-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
