"""Airflow health through its REST API (a local server speaking /auth/token and /api/v2)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from observability.airflow_api import AirflowClient
from observability.errors import AirflowApiError
from observability.jobs import airflow_health
from observability.tests.conftest import last_line, run_module
from observability.tests.fake_airflow import (
    AirflowState,
    dag_run,
    fake_airflow,
    healthy,
)

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
LOGIN = ["--airflow-username", "monitor", "--airflow-password", "s3cret"]


def _run(url: str, *extra: str) -> int:
    return airflow_health.run(["--airflow-url", url, *LOGIN, "--now", NOW.isoformat(), "--log-level", "ERROR", *extra])


def test_healthy_airflow_passes_and_exports_metrics(tmp_path: Path) -> None:
    state = AirflowState(health=healthy(NOW))
    state.dag_runs = [
        dag_run("orders", "old", NOW - dt.timedelta(days=3)),
        dag_run("orders", "ok", NOW - dt.timedelta(hours=1), state="success"),
    ]
    prom = tmp_path / "a.prom"
    with fake_airflow(state) as url:
        assert _run(url, "--metrics-file", str(prom)) == 0
    text = prom.read_text()
    assert "etl_airflow_api_up 1.0" in text
    assert 'etl_airflow_component_healthy{component="scheduler"} 1.0' in text
    assert 'etl_airflow_component_heartbeat_age_seconds{component="scheduler"} 10.0' in text
    assert "etl_airflow_failed_dag_runs 0.0" in text and "etl_airflow_import_errors 0.0" in text
    failed_query = next(q for method, path, q in state.requests if path == "/api/v2/dags/~/dagRuns")
    assert failed_query["state"] == ["failed"] and failed_query["end_date_gte"] == ["2026-11-25T12:00:00Z"]
    assert state.logins == 1


def test_breaches_are_summarised_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    health = healthy(NOW)
    health["scheduler"] = {
        "status": "unhealthy",
        "latest_scheduler_heartbeat": (NOW - dt.timedelta(minutes=9)).isoformat(),
    }
    health["triggerer"] = {"status": None, "latest_triggerer_heartbeat": None}
    state = AirflowState(health=health)
    state.dag_runs = [dag_run("orders_daily", f"r{i}", NOW - dt.timedelta(hours=i)) for i in range(1, 4)]
    state.dag_runs += [dag_run("events_daily", "r9", NOW - dt.timedelta(hours=2))]
    state.dag_runs += [dag_run(f"noise_{i}", "x", NOW - dt.timedelta(hours=1)) for i in range(120)]  # > one page
    state.import_errors = [
        {
            "import_error_id": 1,
            "timestamp": NOW.isoformat(),
            "filename": "file_processing/broken.py",
            "bundle_name": "dags-folder",
            "stack_trace": "SyntaxError",
        }
    ]
    prom = tmp_path / "a.prom"
    with fake_airflow(state) as url:
        assert _run(url, "--metrics-file", str(prom), "--dag-id-prefix", "orders", "--max-failed-runs", "1") == 1
    line = last_line(capsys.readouterr().err)
    assert line == (
        f"python -m observability.jobs.airflow_health: error: airflow at {url}: "
        "scheduler unhealthy (last heartbeat 9m ago); triggerer unhealthy (status None); "
        "3 failed DAG run(s) in the last 24h (orders_daily x3); 1 DAG import error(s) (file_processing/broken.py)"
    )
    text = prom.read_text()
    assert 'etl_airflow_failed_dag_runs_by_dag{dag_id="orders_daily"} 3.0' in text
    assert "etl_airflow_import_errors 1.0" in text
    with fake_airflow(state) as url:  # without the prefix every page is read
        client = AirflowClient(url, username="monitor", password="s3cret")
        assert len(client.failed_runs(NOW - dt.timedelta(days=1))) == 124


def test_expired_token_logs_in_again_and_bad_credentials_fail() -> None:
    state = AirflowState(health=healthy(NOW))
    with fake_airflow(state) as url:
        client = AirflowClient(url, username="monitor", password="s3cret")
        assert client.health()["scheduler"]["status"] == "healthy"
        state.expire_tokens()
        assert client.import_errors() == []
        assert state.logins == 2
        with pytest.raises(
            AirflowApiError, match=r"login to Airflow as 'monitor' failed: POST .*/auth/token answered 401"
        ):
            AirflowClient(url, username="monitor", password="wrong").health()
        with pytest.raises(
            AirflowApiError, match=r"answered 401 .*; set AIRFLOW_TOKEN or AIRFLOW_USERNAME/AIRFLOW_PASSWORD"
        ):
            AirflowClient(url).health()
        token = next(iter(state.tokens))
        assert AirflowClient(url, token=token).health()["metadatabase"]["status"] == "healthy"


def test_unreachable_airflow_is_a_breach_and_secrets_stay_out_of_logs() -> None:
    from tools.testing.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    result = run_module(
        "observability.jobs.airflow_health",
        "--airflow-url",
        url,
        env={"AIRFLOW_USERNAME": "monitor", "AIRFLOW_PASSWORD": "hunter2-secret"},
    )
    assert result.returncode == 1
    assert last_line(result.stderr).startswith(
        f"python -m observability.jobs.airflow_health: error: airflow unreachable: cannot reach Airflow at {url}"
    )
    assert "hunter2-secret" not in result.stderr
    assert '"airflow_password":"***"' in result.stderr
