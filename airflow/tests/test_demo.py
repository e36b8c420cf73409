"""`demo --once` end to end: moto S3, docker-registry, publisher, sidecar and a real Airflow 3."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import demo
from tools.testing.registry import registry_binary

DEMO = Path(demo.__file__)
PACKAGES = demo.PACKAGES


@pytest.mark.skipif(registry_binary() is None, reason="docker-registry is not installed")
def test_demo_once_lists_every_dag_and_triggers_a_run(tmp_path: Path, build_dir: Path) -> None:
    build = build_dir
    expected = sorted(
        d["dag_id"]
        for pkg in PACKAGES
        for d in json.loads((build / "packages" / pkg / "metadata.json").read_text())["dags"]
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("BUILD_WORKSPACE_DIRECTORY", None)
    done = subprocess.run(
        [sys.executable, str(DEMO), "--once", "--state-dir", str(tmp_path / "state"), "--build-dir", str(build)],
        env=env, capture_output=True, text=True, timeout=1200, check=False,
    )
    out = done.stdout
    assert done.returncode == 0, f"stdout:\n{out}\nstderr:\n{done.stderr[-3000:]}"
    assert f"all {len(expected)} DAGs visible, 0 import errors" in out
    assert re.search(r"login: admin / \S+", out)
    for pkg in PACKAGES:
        assert re.search(rf"^  {pkg} +\d+ +sha256:[0-9a-f]{{12}}\.\.\. +synced$", out, re.MULTILINE), out
    triggered = re.search(r"triggered (\S+): run (manual__\S+)", out)
    assert triggered and triggered.group(1) in expected, out
    assert "demo: ok: time from start to all DAGs visible:" in out
    # every DAG file the sidecar wrote is one Airflow now lists, under the state folder
    synced = sorted(p.stem for p in (tmp_path / "state" / "dags").glob("*/*.py"))
    assert synced == expected
    # nothing left running: the demo stopped what it started
    logs = tmp_path / "state" / "logs"
    assert {p.name for p in logs.iterdir()} >= {"sidecar.log", "airflow-api-server.log", "airflow-scheduler.log",
                                                 "airflow-dag-processor.log"}


def test_demo_without_state_dir_outside_bazel_is_a_usage_error() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("BUILD_WORKSPACE_DIRECTORY", None)
    done = subprocess.run([sys.executable, str(DEMO), "--once"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2
    assert "--state-dir is required outside `bazel run`" in done.stderr.strip().splitlines()[-1]
