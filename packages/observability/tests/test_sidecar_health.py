"""The sidecar's freshness, read from a real /metrics endpoint exporting the sidecar's own metrics."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from etl_core import metrics as etl_metrics

from observability.jobs import sidecar_health
from observability.tests.conftest import last_line
from sidecar.metrics import Metrics
from tools.testing.servers import free_port

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


def _serve(last_success: float | None) -> etl_metrics.MetricsServer:
    sidecar = Metrics()
    if last_success is not None:
        sidecar.last_success.set(last_success)
        sidecar.consecutive_failures.set(4)
    return etl_metrics.serve(0, registry=sidecar.registry, host="127.0.0.1")


def _run(*urls: str, extra: tuple[str, ...] = ()) -> int:
    return sidecar_health.run(
        ["--sidecar-url", ",".join(urls), "--max-age", "15m", "--now", NOW.isoformat(), "--log-level", "ERROR", *extra]
    )


def test_fresh_sidecar_passes(tmp_path: Path) -> None:
    prom = tmp_path / "s.prom"
    with _serve((NOW - dt.timedelta(minutes=3)).timestamp()) as server:
        assert _run(server.url + "/metrics", extra=("--metrics-file", str(prom))) == 0
        target = f"127.0.0.1:{server.port}"
    text = prom.read_text()
    assert f'etl_sidecar_sync_age_seconds{{target="{target}"}} 180.0' in text
    assert f'etl_sidecar_fresh{{target="{target}"}} 1.0' in text


def test_stale_never_synced_and_unreachable_sidecars(capsys: pytest.CaptureFixture[str]) -> None:
    down = f"http://127.0.0.1:{free_port()}/metrics"
    with _serve((NOW - dt.timedelta(hours=2)).timestamp()) as stale, _serve(None) as never:
        assert _run(stale.url + "/metrics", never.url + "/metrics", down) == 1
        line = last_line(capsys.readouterr().err)
        assert line.startswith("python -m observability.jobs.sidecar_health: error: 3 of 3 sidecar(s) stale: ")
        assert f"sidecar 127.0.0.1:{stale.port} (last success 2h ago > max 15m, 4 failed syncs in a row)" in line
        assert f"sidecar 127.0.0.1:{never.port} (it never synced successfully)" in line
        assert f"cannot reach {down}" in line


def test_endpoint_without_the_metric(capsys: pytest.CaptureFixture[str]) -> None:
    with etl_metrics.serve(0, registry=etl_metrics.new_registry(), host="127.0.0.1") as server:
        assert _run(server.url + "/metrics") == 1
    assert "(no etl_sidecar_last_success_timestamp_seconds metric)" in last_line(capsys.readouterr().err)
