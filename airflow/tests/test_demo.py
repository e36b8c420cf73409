"""``./bazelw run //:demo`` end to end, as a user runs it: the demo process seeds, publishes, syncs,
runs every DAG's tasks in podman and keeps running; the test then asks Airflow's REST API and the
local S3 and Pushgateway (not the demo's own report) whether every run succeeded and wrote what it
should, runs a smoke of a DAG whose input is missing, and stops the demo with Ctrl-C."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import demo
import pytest

from tools.bazel.publisher.errors import SmokeError
from tools.bazel.publisher.smoke import AirflowClient, SmokeConfig, run_smoke

DEMO = Path(demo.__file__)
PACKAGES = demo.PACKAGES


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("BUILD_WORKSPACE_DIRECTORY", None)
    return env


def _wait_for(log: Path, proc: subprocess.Popen[bytes], pattern: str, timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        found = re.search(pattern, text, re.MULTILINE)
        if found:
            return found
        assert proc.poll() is None, f"the demo exited {proc.returncode}:\n{text[-6000:]}"
        time.sleep(0.5)
    raise AssertionError(f"no {pattern!r} after {timeout:.0f}s:\n{log.read_text(errors='replace')[-6000:]}")


def _s3(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )


def _read(s3: Any, url: str) -> bytes:
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_demo_runs_every_dag_green_and_stops_cleanly(tmp_path: Path, build_dir: Path) -> None:
    expected = sorted(
        d["dag_id"]
        for pkg in PACKAGES
        for d in json.loads((build_dir / "packages" / pkg / "metadata.json").read_text())["dags"]
    )
    state = tmp_path / "state"
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(DEMO), "--state-dir", str(state), "--build-dir", str(build_dir)],
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        ui = _wait_for(log, proc, r"Airflow UI: (http://\S+)/ +login: (\S+) / (\S+)$", 600)
        moto = _wait_for(log, proc, r"S3 \(moto\) at (http://\S+),", 5).group(1)
        gateway = _wait_for(log, proc, r"Pushgateway at (http://\S+),", 5).group(1)
        _wait_for(log, proc, r"^demo: (running|\d+ DAG runs did not succeed)", 900)
        text = log.read_text()
        assert "demo: running (time from start to all DAGs visible: " in text, text[-6000:]
        assert f", to all {len(expected)} DAG runs successful: " in text

        client = AirflowClient(SmokeConfig(api_url=ui.group(1), username=ui.group(2), password=ui.group(3)))
        run_date = demo.run_date()
        for dag_id in expected:
            runs = client.call("GET", f"/api/v2/dags/{dag_id}/dagRuns")["dag_runs"]
            assert [(r["state"], r["logical_date"][:10]) for r in runs] == [("success", run_date.isoformat())], (
                dag_id,
                runs,
            )
            tasks = client.task_instances(dag_id, runs[0]["dag_run_id"])
            assert tasks and all(t["state"] == "success" for t in tasks), (dag_id, tasks)
            assert all(t["operator"] == "KubernetesPodOperator" for t in tasks)  # as in production

        # the container's own output is in the Airflow task log
        runs = client.call("GET", "/api/v2/dags/data_pipeline_orders_daily/dagRuns")["dag_runs"]
        path = (
            f"/api/v2/dags/data_pipeline_orders_daily/dagRuns/{urllib.parse.quote(runs[0]['dag_run_id'], safe='')}"
            "/taskInstances/ingest_orders/logs/1?full_content=true"
        )
        events = [str(e.get("event")) for e in client.call("GET", path)["content"] if isinstance(e, dict)]
        assert any(
            e.startswith("Running pod etl-jobs/ingest-orders-")
            and "user=65532:65532" in e
            and "read_only_root=True" in e
            for e in events
        ), events
        assert any(e.startswith("[base] ") and '"event":"job.end"' in e and '"exit_code":0' in e for e in events)

        s3 = _s3(moto)
        day = run_date.isoformat()
        orders = json.loads(_read(s3, f"s3://etl-curated/orders/dt={day}/_manifest.json"))
        assert orders["data"]["rows"] == 20_000 - 50 and orders["rejects"]["rows"] == 12  # demodata's counts
        enriched = json.loads(_read(s3, f"s3://etl-curated/orders_enriched/dt={day}/_manifest.json"))
        assert enriched["data"]["rows"] == orders["data"]["rows"]
        events_manifest = json.loads(_read(s3, f"s3://etl-curated/events/dt={day}/_manifest.json"))
        assert 7_000 < events_manifest["data"]["rows"] < 9_000  # 9,000 sent, ~8% bots, 25 re-sent
        dq = json.loads(_read(s3, f"s3://etl-curated/orders/dt={day}/_dq_orders.json"))
        assert dq["success"] is True and dq["rows"] == orders["data"]["rows"]
        assert b"<html" in _read(s3, f"s3://etl-curated/orders/dt={day}/_profile/profile.html").lower()
        sums = _read(s3, f"s3://etl-archive/orders/{day}/SHA256SUMS").decode().splitlines()
        assert len(sums) == 2 and all(line.split()[1].endswith(".csv.gz") for line in sums)
        exported = _read(s3, f"s3://etl-exports/demo/orders-{day}/part-0.csv").decode().splitlines()
        assert len(exported) == orders["data"]["rows"] + 1  # header + every curated order

        with urllib.request.urlopen(gateway + "/api/v1/metrics", timeout=10) as response:
            groups = json.loads(response.read())["data"]
        fresh = {
            m["labels"]["dataset"]: m["value"] for g in groups for m in g.get("etl_freshness_ok", {}).get("metrics", [])
        }
        assert fresh == {"landing_orders": "1", "orders": "1", "orders_enriched": "1", "events": "1"}, fresh

        # a smoke of a day whose input is missing: the task's failure and its log tail, not "triggered"
        source = (state / "dags" / "file_processing" / "file_processing_orders_quality.py").read_bytes()
        config = SmokeConfig(
            api_url=ui.group(1), username=ui.group(2), password=ui.group(3), timeout=60, run_timeout=300
        )
        with pytest.raises(SmokeError) as failure:
            run_smoke(
                config,
                dag_id="file_processing_orders_quality",
                source=source,
                conf={},
                logical_date=dt.datetime(2026, 6, 1, tzinfo=dt.UTC),
            )
        message = str(failure.value)
        assert re.search(r"of 'file_processing_orders_quality' ended failing \((profile|validate)", message), message
        assert re.search(r"task '(profile|validate)' up_for_retry \(try 1\); log tail: ", message), message
        assert "s3://etl-curated/orders/dt=2026-06-01/" in message  # the job's own error line names the input
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=180)
    text = log.read_text()
    assert code == 0, text[-4000:]
    assert "demo: SIGINT: stopped everything it started" in text
