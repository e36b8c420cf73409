"""Command line: ``python -m sidecar [flags]`` runs the sync loop, ``--once`` one cycle (init container).

Exit codes: 0 on success (or after SIGTERM in loop mode), 1 when ``--once`` could not read the
store or write the dags folder, was stopped before its cycle finished, or start-up failed, 2 on usage errors (one line on
stderr). SIGTERM/SIGINT set the syncer's stop event: waits and retries end at once (README,
"Stopping").
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from etl_core.logs import stream_logger
from etl_core.metrics import MetricsServer, MetricsServerError

from sidecar import __version__
from sidecar.errors import ConfigError, SidecarError
from sidecar.health import serve_status
from sidecar.memory import limit_malloc_arenas, trim_heap
from sidecar.metrics import Metrics
from sidecar.settings import parse_settings, stop_grace
from sidecar.syncer import Syncer, build_syncer

__all__ = ["main", "run_loop"]


def run_loop(syncer: Syncer, *, interval: float) -> None:
    """Run cycles every ``interval`` seconds (start to start) until ``syncer.stop_event`` is set."""
    while not syncer.stop_event.is_set():
        started = time.monotonic()
        syncer.run_cycle()
        trim_heap()  # steady state between cycles: give back what the cycle freed
        delay = max(0.0, interval - (time.monotonic() - started))
        syncer.stop_event.wait(delay)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = parse_settings(argv, os.environ)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    limit_malloc_arenas()
    log = stream_logger("sidecar", sys.stdout, level=settings.log_level, fmt="json")
    log.info(
        "starting",
        version=__version__,
        python=sys.version.split()[0],
        pid=os.getpid(),
        settings=settings.for_log(),
        stop_grace_seconds=stop_grace(settings.timeout),
        aws_endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3")
        or os.environ.get("AWS_ENDPOINT_URL"),  # password masked by the log
        aws_region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
    )
    metrics = Metrics(version=__version__)
    try:
        syncer = build_syncer(settings, log=log, metrics=metrics)
    except SidecarError as exc:
        log.error("startup_failed", error=str(exc))
        return 1

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", signal=signal.Signals(signum).name)
        syncer.stop_event.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server: MetricsServer | None = None
    try:
        if settings.metrics_port:
            try:
                server = serve_status(
                    host=settings.metrics_host, port=settings.metrics_port, health=syncer.health, metrics=metrics
                )
            except MetricsServerError as exc:
                log.error("startup_failed", error=str(exc), hint="pick another --metrics-port")
                return 1
            log.info(
                "status_server", host=settings.metrics_host, port=server.port, paths=["/healthz", "/readyz", "/metrics"]
            )
        try:
            if not syncer.start():
                return 0
        except (SidecarError, OSError) as exc:
            log.error("startup_failed", error=str(exc), dags_dir=str(settings.dags_dir))
            return 1
        if settings.once:
            result = syncer.run_cycle()
            if result.status == "stopped":
                log.warning(
                    "stopped", hint="--once was stopped before its cycle finished; the dags folder keeps what it had"
                )
                return 1
            if result.status == "error":
                log.error(
                    "sync_failed",
                    error=result.errors[0],
                    errors=len(result.errors),
                    hint="init container: the pod restarts it; the store must be readable",
                )
                return 1
            if result.status == "disk_error":
                log.error(
                    "sync_failed",
                    error=syncer.health.snapshot().get("local_disk_error"),
                    hint="init container: the dags folder's volume cannot be written",
                )
                return 1
            return 0
        run_loop(syncer, interval=settings.sync_interval)
        log.info("stopped")
        return 0
    finally:
        if server is not None:
            server.stop()
        syncer.close()
