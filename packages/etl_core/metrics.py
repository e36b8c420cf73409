"""Prometheus metrics: ``etl_``-prefixed metric factories, a ``/metrics`` server for services,
and textfile / Pushgateway output for batch jobs.

Services::

    registry = metrics.new_registry()
    syncs = metrics.counter("sidecar_syncs", "Syncs by result.", ["status"], registry=registry)
    server = metrics.serve(9102, registry=registry, health=lambda: state.synced_once)
    ...
    server.stop()

Batch jobs::

    registry = metrics.new_registry()
    with metrics.track_job("profile", registry=registry) as run:
        if nothing_to_do:
            run.status = "noop"
    metrics.write_textfile("/var/lib/node_exporter/profile.prom", registry)   # atomic
    metrics.push("http://pushgateway:9091", job="profile", registry=registry)

Names follow Prometheus conventions: a product prefix (``etl_``), counters exposed with
``_total``, durations in ``_seconds``, and a small fixed set of status label values.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import choose_encoder, delete_from_gateway, push_to_gateway, pushadd_to_gateway

from etl_core.errors import EtlCoreError

__all__ = [
    "PREFIX",
    "STATUSES",
    "JobRun",
    "JobStatusError",
    "MetricNameError",
    "MetricsServer",
    "MetricsServerError",
    "PushError",
    "Route",
    "TextfileError",
    "counter",
    "delete_pushed",
    "gauge",
    "histogram",
    "metric_name",
    "new_registry",
    "push",
    "serve",
    "track_job",
    "write_textfile",
]

PREFIX = "etl_"
STATUSES = ("success", "error", "noop")
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0)

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class MetricNameError(EtlCoreError):
    """A metric name is not a valid Prometheus name."""


class MetricsServerError(EtlCoreError):
    """The ``/metrics`` server could not start (port taken, bad address)."""


class TextfileError(EtlCoreError):
    """Metrics could not be written to a textfile-collector file."""


class JobStatusError(EtlCoreError):
    """A batch job run was given a status outside ``STATUSES``."""


class PushError(EtlCoreError):
    """Metrics could not be pushed to (or deleted from) a Pushgateway."""


def metric_name(name: str) -> str:
    """``name`` with the product prefix ``etl_`` added when missing; raises :class:`MetricNameError`."""
    if not _NAME_RE.match(name):
        raise MetricNameError(f"invalid metric name {name!r}: use letters, digits and '_' (e.g. 'sidecar_syncs')")
    return name if name.startswith(PREFIX) else PREFIX + name


def new_registry(*, process: bool = False) -> CollectorRegistry:
    """A fresh registry; ``process=True`` adds the process, platform and GC collectors (services)."""
    registry = CollectorRegistry(auto_describe=True)
    if process:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


def counter(name: str, documentation: str, labelnames: Sequence[str] = (), *, registry: CollectorRegistry) -> Counter:
    """A counter named ``etl_<name>``; it is exposed as ``etl_<name>_total``."""
    base = metric_name(name.removesuffix("_total"))
    return Counter(base, documentation, labelnames=tuple(labelnames), registry=registry)


def gauge(name: str, documentation: str, labelnames: Sequence[str] = (), *, registry: CollectorRegistry) -> Gauge:
    """A gauge named ``etl_<name>``."""
    return Gauge(metric_name(name), documentation, labelnames=tuple(labelnames), registry=registry)


def histogram(
    name: str,
    documentation: str,
    labelnames: Sequence[str] = (),
    *,
    registry: CollectorRegistry,
    buckets: Sequence[float] = DURATION_BUCKETS,
) -> Histogram:
    """A histogram named ``etl_<name>`` (use ``..._seconds`` for durations)."""
    return Histogram(metric_name(name), documentation, labelnames=tuple(labelnames), registry=registry, buckets=buckets)


# --- batch jobs --------------------------------------------------------------------------------


class JobRun:
    """The run being tracked by :func:`track_job`; set ``status = "noop"`` when nothing was done."""

    def __init__(self, job: str, started: float) -> None:
        self.job = job
        self.started = started
        self._status = "success"

    @property
    def status(self) -> str:
        return self._status

    @status.setter
    def status(self, value: str) -> None:
        if value not in STATUSES:
            raise JobStatusError(f"job status {value!r} is not one of {', '.join(STATUSES)}")
        self._status = value


@contextlib.contextmanager
def track_job(job: str, *, registry: CollectorRegistry, clock: Callable[[], float] = time.time) -> Iterator[JobRun]:
    """Record one run of a batch job in ``registry``.

    Sets ``etl_job_runs_total{job,status}``, ``etl_job_duration_seconds{job}`` (last run),
    ``etl_job_last_run_timestamp_seconds{job}`` and, unless the run failed,
    ``etl_job_last_success_timestamp_seconds{job}``. An exception marks the run ``error`` and
    propagates. The metrics are created on first use in a registry and reused afterwards.
    """
    runs, duration, last_run, last_success = _job_metrics(registry)
    run = JobRun(job, clock())
    try:
        yield run
    except BaseException:
        run.status = "error"
        raise
    finally:
        end = clock()
        runs.labels(job=job, status=run.status).inc()
        duration.labels(job=job).set(max(0.0, end - run.started))
        last_run.labels(job=job).set(end)
        if run.status != "error":
            last_success.labels(job=job).set(end)


_job_metric_lock = threading.Lock()
_job_metric_cache: weakref.WeakKeyDictionary[CollectorRegistry, tuple[Counter, Gauge, Gauge, Gauge]] = (
    weakref.WeakKeyDictionary()
)


def _job_metrics(registry: CollectorRegistry) -> tuple[Counter, Gauge, Gauge, Gauge]:
    with _job_metric_lock:
        found = _job_metric_cache.get(registry)
        if found is not None:
            return found
        created = (
            counter("job_runs", "Batch job runs by final status.", ["job", "status"], registry=registry),
            gauge("job_duration_seconds", "Duration of the last run of a batch job.", ["job"], registry=registry),
            gauge("job_last_run_timestamp_seconds", "Unix time the last run ended.", ["job"], registry=registry),
            gauge(
                "job_last_success_timestamp_seconds",
                "Unix time the last successful (or noop) run ended.",
                ["job"],
                registry=registry,
            ),
        )
        _job_metric_cache[registry] = created
        return created


def write_textfile(path: str | os.PathLike[str], registry: CollectorRegistry) -> Path:
    """Write ``registry`` in the text exposition format to ``path``, atomically.

    The data goes to a temp file in the same directory (named ``.<name>.*.tmp``, which the node
    exporter's textfile collector ignores), is flushed to disk, then renamed over ``path``: a
    reader sees the old file or the new one, never a partial one. Returns the path written.
    """
    target = Path(path)
    try:
        data = generate_latest(registry)
    except Exception as exc:
        raise TextfileError(f"cannot collect metrics for {str(target)!r}: {type(exc).__name__}: {exc}") from exc
    directory = target.parent
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        raise TextfileError(
            f"cannot write metrics to {str(target)!r}: {exc.strerror or exc}: check that {str(directory)!r} "
            "exists and is writable"
        ) from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return target


def _gateway_url(gateway: str | None) -> str:
    url = gateway or os.environ.get("PUSHGATEWAY_URL") or ""
    if not url:
        raise PushError("no Pushgateway given: pass gateway= or set PUSHGATEWAY_URL (e.g. http://pushgateway:9091)")
    if "://" not in url:
        url = "http://" + url
    if urlsplit(url).scheme not in {"http", "https"}:
        raise PushError(f"invalid Pushgateway URL {url!r}: use http://host:port or https://host:port")
    return url.rstrip("/")


def push(
    gateway: str | None,
    *,
    job: str,
    registry: CollectorRegistry,
    grouping_key: Mapping[str, str] | None = None,
    replace: bool = True,
    timeout: float = 10.0,
) -> None:
    """Push ``registry`` to a Pushgateway (``gateway`` or ``$PUSHGATEWAY_URL``) under ``job``.

    ``replace=True`` (HTTP PUT) replaces every metric of the group; ``False`` (POST) replaces
    only the metrics with the same names. Raises :class:`PushError` naming the gateway URL.
    """
    url = _gateway_url(gateway)
    send = push_to_gateway if replace else pushadd_to_gateway
    try:
        send(url, job=job, registry=registry, grouping_key=dict(grouping_key or {}), timeout=timeout)
    except Exception as exc:
        raise PushError(
            f"push of job {job!r} to Pushgateway {url!r} failed: {type(exc).__name__}: {exc}: "
            "check the URL and that the gateway is up"
        ) from exc


def delete_pushed(
    gateway: str | None, *, job: str, grouping_key: Mapping[str, str] | None = None, timeout: float = 10.0
) -> None:
    """Delete the group ``job`` (+ ``grouping_key``) from a Pushgateway; raises :class:`PushError`."""
    url = _gateway_url(gateway)
    try:
        delete_from_gateway(url, job=job, grouping_key=dict(grouping_key or {}), timeout=timeout)
    except Exception as exc:
        raise PushError(f"delete of job {job!r} from Pushgateway {url!r} failed: {type(exc).__name__}: {exc}") from exc


# --- services -----------------------------------------------------------------------------------

Route = Callable[[], tuple[int, str, bytes]]
"""One extra path of :func:`serve`: called per request, returns (status, content type, body)."""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _respond(self, *, head: bool) -> None:
        path = urlsplit(self.path).path
        route = self.server.routes.get(path)
        if route is not None:
            try:
                status, content_type, body = route()
            except Exception as exc:
                body, content_type, status = f"{path} failed: {exc}\n".encode(), "text/plain; charset=utf-8", 500
        elif path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            try:
                body = encoder(self.server.registry)
                status = 200
            except Exception as exc:
                body, content_type, status = f"collect failed: {exc}\n".encode(), "text/plain; charset=utf-8", 500
        elif path in {"/healthz", "/health"}:
            healthy, detail = self.server.check_health()
            status = 200 if healthy else 503
            body, content_type = (detail + "\n").encode(), "text/plain; charset=utf-8"
        elif path == "/":
            status, content_type = 200, "text/plain; charset=utf-8"
            body = b"etl metrics server: /metrics, /healthz\n"
        else:
            status, content_type, body = 404, "text/plain; charset=utf-8", b"not found: try /metrics or /healthz\n"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return  # scrapes every few seconds would flood the service's log


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        registry: CollectorRegistry,
        health: Callable[[], bool] | None,
        routes: Mapping[str, Route],
    ) -> None:
        self.registry = registry
        self.health = health
        self.routes = dict(routes)
        super().__init__(address, _Handler)

    def check_health(self) -> tuple[bool, str]:
        if self.health is None:
            return True, "ok"
        try:
            return (True, "ok") if self.health() else (False, "unhealthy")
        except Exception as exc:
            return False, f"unhealthy: {type(exc).__name__}: {exc}"


class MetricsServer:
    """A running ``/metrics`` + ``/healthz`` HTTP server on a background thread."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host = str(server.server_address[0])
        self.port = int(server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9102`` (``0.0.0.0`` shown as ``127.0.0.1``)."""
        host = "127.0.0.1" if self.host in {"0.0.0.0", ""} else self.host
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    port: int,
    *,
    registry: CollectorRegistry,
    host: str = "0.0.0.0",
    health: Callable[[], bool] | None = None,
    routes: Mapping[str, Route] | None = None,
) -> MetricsServer:
    """Serve ``registry`` at ``http://host:port/metrics`` and ``/healthz`` from a daemon thread.

    ``/healthz`` answers 200 while ``health()`` is true (or no check is given) and 503 otherwise.
    ``routes`` maps further paths (or replaces these) to a :data:`Route`, e.g. a service's JSON
    ``/readyz``; a route that raises answers 500.
    ``port=0`` picks a free port (read it from ``.port``). Raises :class:`MetricsServerError`.
    """
    try:
        server = _Server((host, port), registry=registry, health=health, routes=routes or {})
    except OSError as exc:
        raise MetricsServerError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}: choose a free port"
        ) from exc
    thread = threading.Thread(target=server.serve_forever, name=f"metrics-{server.server_address[1]}", daemon=True)
    thread.start()
    return MetricsServer(server, thread)
