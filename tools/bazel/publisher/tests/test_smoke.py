"""--smoke against a real Airflow 3 (api-server + dag-processor, SQLite) on loopback.

Airflow's dags folder is the live ``dags/`` prefix of a local store, standing in for the
sidecar's mirror. Slow (Airflow takes up to a minute to start on a small machine).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher.cli import main
from publisher.tests.helpers import FakeRegistry, write_build
from tools.testing.servers import free_port, wait_for_http

pytest.importorskip("airflow", reason="apache-airflow is not installed")
pytest.importorskip("airflow.providers.standard.operators.empty", reason="the standard provider is not installed")

PKG = "file_processing"
DAG = (
    "import datetime\n"
    "from airflow.sdk import DAG\n"
    "from airflow.providers.standard.operators.empty import EmptyOperator\n"
    "with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False):\n"
    "    EmptyOperator(task_id='noop')\n"
)


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("airflow-home")
    store = home / "store"
    dags = store / "dev" / PKG / "dags"
    dags.mkdir(parents=True)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),  # Bazel's runfiles deps, for `python -m airflow`
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "2",
    }
    airflow_cmd = [sys.executable, "-m", "airflow"]
    subprocess.run([*airflow_cmd, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    procs = []
    try:
        for args, log in (([ "api-server", "--port", str(port)], "api.log"), (["dag-processor"], "dp.log")):
            with open(home / log, "wb") as out:
                procs.append(subprocess.Popen([*airflow_cmd, *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                              start_new_session=True))
        wait_for_http(f"http://127.0.0.1:{port}/api/v2/version", timeout=300, proc=procs[0])
        yield f"http://127.0.0.1:{port}", store
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def api_get(url: str, path: str) -> dict:
    with urllib.request.urlopen(url + "/auth/token", timeout=30) as response:
        token = json.loads(response.read())["access_token"]
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_smoke_waits_for_the_parse_then_unpauses_and_triggers(airflow: tuple[str, Path], tmp_path: Path) -> None:
    url, store = airflow
    build = write_build(tmp_path, PKG, {"fp_smoke": DAG.format(dag_id="fp_smoke")})
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--package", PKG, "--dags-dir", str(build.dags_dir), "--image-layout", str(build.layout),
         "--image-digest-file", str(build.digest_file), "--smoke", "fp_smoke", "--smoke-conf", '{"rows": 3}',
         "--timeout", "240", "--output", "json"],
        environ={"DAG_BUCKET": store.as_uri(), "AIRFLOW_API_URL": url},
        registry=FakeRegistry(), stdout=out, stderr=err,
    )
    assert code == 0, err.getvalue()
    smoke = json.loads(out.getvalue())["smoke"]
    assert smoke["dag_id"] == "fp_smoke" and smoke["run_id"].startswith("manual__")
    run = api_get(url, f"/api/v2/dags/fp_smoke/dagRuns/{urllib.parse.quote(smoke['run_id'], safe='')}")
    assert run["conf"] == {"rows": 3}
    assert api_get(url, "/api/v2/dags/fp_smoke")["is_paused"] is False


def test_smoke_timeout_says_what_was_last_seen(airflow: tuple[str, Path], tmp_path: Path) -> None:
    url, store = airflow
    broken = "import does_not_exist_anywhere\n" + DAG.format(dag_id="fp_never_parsed")
    build = write_build(tmp_path, PKG, {"fp_smoke": DAG.format(dag_id="fp_smoke"), "fp_never_parsed": broken})
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["--package", PKG, "--dags-dir", str(build.dags_dir), "--image-layout", str(build.layout),
         "--image-digest-file", str(build.digest_file), "--smoke", "fp_never_parsed", "--timeout", "6"],
        environ={"DAG_BUCKET": store.as_uri(), "AIRFLOW_API_URL": url},
        registry=FakeRegistry(), stdout=out, stderr=err,
    )
    assert code == 1
    last = err.getvalue().strip().splitlines()[-1]
    assert last.startswith("publish: error: release ") and ", but the smoke run failed: timed out after 6s waiting " \
        "for Airflow to parse the published 'fp_never_parsed'; last seen: Airflow does not know dag " \
        "'fp_never_parsed' yet (404)" in last
