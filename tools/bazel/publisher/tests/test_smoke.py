"""--smoke against a real Airflow 3 (api-server, scheduler, dag-processor; SQLite) on loopback.

Airflow's dags folder is the live ``dags/`` prefix of a local store, standing in for the
sidecar's mirror. Slow (Airflow takes up to a minute to start on a small machine).
"""

from __future__ import annotations

import io
import json
import os
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.bazel.publisher.cli import main
from tools.bazel.publisher.tests.helpers import FakeRegistry, write_build
from tools.testing.servers import free_port

PKG = "file_processing"
# A task that templates {{ ds }}: it fails at render time unless the run has a logical date.
DAG = (
    "import datetime\n"
    "from airflow.sdk import DAG\n"
    "from airflow.providers.standard.operators.bash import BashOperator\n"
    "with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False):\n"
    "    BashOperator(task_id='show_date', bash_command='echo run date {{{{ ds }}}}')\n"
)
FAILING = (
    "import datetime\n"
    "from airflow.sdk import DAG\n"
    "from airflow.providers.standard.operators.bash import BashOperator\n"
    "with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False,\n"
    "         default_args={{'retries': 0}}):\n"
    "    BashOperator(task_id='load', bash_command='echo input s3://etl-landing/missing/ does not exist; exit 3')\n"
)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, str]]:
    """Airflow 3 (api-server, scheduler with LocalExecutor, dag-processor) whose dags folder is the
    live ``dags/`` prefix of a local store; yields (API URL, store root, admin password)."""
    from controlplane.runner import ControlPlane
    from controlplane.settings import ControlPlaneSettings

    home = tmp_path_factory.mktemp("airflow-home")
    store = home / "store"
    dags = store / "dev" / PKG / "dags"
    dags.mkdir(parents=True)
    settings = ControlPlaneSettings(home=home / "airflow", dags_folder=dags, api_port=free_port(), sync_interval=2)
    # Bazel's runfiles deps, for `python -m airflow`
    plane = ControlPlane(settings, log_dir=home / "logs", extra_env={"PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        plane.migrate()
        plane.start()
        plane.wait_healthy()
        yield settings.api_url, store, plane.password
    finally:
        plane.stop()


def api_get(url: str, password: str, path: str) -> dict:
    body = json.dumps({"username": "admin", "password": password}).encode()
    login = urllib.request.Request(url + "/auth/token", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(login, timeout=30) as response:
        token = json.loads(response.read())["access_token"]
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _publish(
    store: Path, url: str, password: str, build_root: Path, dags: dict[str, str], smoke: str, *extra: str
) -> tuple[int, str, str]:
    build = write_build(build_root, PKG, dags)
    out, err = io.StringIO(), io.StringIO()
    code = main(
        [
            "--package",
            PKG,
            "--dags-dir",
            str(build.dags_dir),
            "--image-layout",
            str(build.layout),
            "--image-digest-file",
            str(build.digest_file),
            "--smoke",
            smoke,
            *extra,
        ],
        environ={
            "DAG_BUCKET": store.as_uri(),
            "AIRFLOW_API_URL": url,
            "AIRFLOW_USERNAME": "admin",
            "AIRFLOW_PASSWORD": password,
        },
        registry=FakeRegistry(),
        stdout=out,
        stderr=err,
    )
    return code, out.getvalue(), err.getvalue()


def test_smoke_runs_the_dag_with_a_logical_date_and_waits_for_success(
    airflow: tuple[str, Path, str], tmp_path: Path
) -> None:
    url, store, password = airflow
    code, out, err = _publish(
        store,
        url,
        password,
        tmp_path,
        {"fp_smoke": DAG.format(dag_id="fp_smoke")},
        "fp_smoke",
        "--smoke-conf",
        '{"rows": 3}',
        "--timeout",
        "240",
        "--output",
        "json",
    )
    assert code == 0, err
    smoke = json.loads(out)["smoke"]
    assert smoke["dag_id"] == "fp_smoke" and smoke["run_id"].startswith("manual__")
    assert smoke["state"] == "success"
    assert [(t["task_id"], t["state"]) for t in smoke["tasks"]] == [("show_date", "success")]
    run = api_get(url, password, f"/api/v2/dags/fp_smoke/dagRuns/{urllib.parse.quote(smoke['run_id'], safe='')}")
    assert run["conf"] == {"rows": 3} and run["state"] == "success"
    assert run["logical_date"] is not None  # so {{ ds }} rendered (the task echoes it)
    assert api_get(url, password, "/api/v2/dags/fp_smoke")["is_paused"] is False
    assert "smoke  task show_date: success (try 1)" in err


def test_smoke_failed_task_exits_1_with_the_log_tail(airflow: tuple[str, Path, str], tmp_path: Path) -> None:
    url, store, password = airflow
    code, _out, err = _publish(
        store,
        url,
        password,
        tmp_path,
        {"fp_smoke": DAG.format(dag_id="fp_smoke"), "fp_failing": FAILING.format(dag_id="fp_failing")},
        "fp_failing",
        "--timeout",
        "240",
    )
    assert code == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("publish: error: release ") and ", but the smoke run failed: run manual__" in last
    assert "of 'fp_failing' ended failed: task 'load' failed (try 1); log tail: " in last
    assert "input s3://etl-landing/missing/ does not exist" in last  # what the task printed before failing
    assert "smoke    | " in err  # the tail is also printed line by line


def test_smoke_timeout_says_what_was_last_seen(airflow: tuple[str, Path, str], tmp_path: Path) -> None:
    url, store, password = airflow
    broken = "import does_not_exist_anywhere\n" + DAG.format(dag_id="fp_never_parsed")
    code, _, err = _publish(
        store,
        url,
        password,
        tmp_path,
        {"fp_smoke": DAG.format(dag_id="fp_smoke"), "fp_never_parsed": broken},
        "fp_never_parsed",
        "--timeout",
        "6",
    )
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert (
        last.startswith("publish: error: release ")
        and ", but the smoke run failed: timed out after 6s waiting "
        "for Airflow to parse the published 'fp_never_parsed'; last seen: Airflow does not know dag "
        "'fp_never_parsed' yet (404)"
        in last
    )


def test_smoke_config_never_shows_secrets() -> None:
    from tools.bazel.publisher.errors import UsageError
    from tools.bazel.publisher.smoke import smoke_config_from_env

    config = smoke_config_from_env(
        {
            "AIRFLOW_API_URL": "http://af:8080",
            "AIRFLOW_API_TOKEN": "tok-123",
            "AIRFLOW_PASSWORD": "pw-456",
            "AIRFLOW_USERNAME": "u",
        },
        timeout=5,
    )
    assert "tok-123" not in repr(config) and "pw-456" not in repr(config)
    with pytest.raises(UsageError, match=r"AIRFLOW_API_URL 'http://\*\*\*@af:8080': put no credentials in the URL"):
        smoke_config_from_env({"AIRFLOW_API_URL": "http://user:hunter2@af:8080"}, timeout=5)


def test_a_run_without_tasks_is_not_a_success(airflow: tuple[str, Path, str]) -> None:
    """A logical date before the DAG's start_date makes a run that succeeds with no task instance."""
    import datetime as dt

    from tools.bazel.publisher.errors import SmokeError
    from tools.bazel.publisher.smoke import SmokeConfig, run_smoke

    url, store, password = airflow
    source = (store / "dev" / PKG / "dags" / "fp_smoke.py").read_bytes()  # published by the tests above
    config = SmokeConfig(api_url=url, username="admin", password=password, timeout=240, run_timeout=120)
    with pytest.raises(
        SmokeError,
        match=r"ended success: no task ran: a run whose logical date "
        r"\(2020-01-01T00:00:00Z\) is before the DAG's start_date",
    ):
        run_smoke(
            config, dag_id="fp_smoke", source=source, conf={}, logical_date=dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        )
