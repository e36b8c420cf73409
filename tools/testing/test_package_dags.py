"""One ETL package's DAG specs validate against the platform's spec model and name real jobs.

Shared by every package's `:test_dags` target, which names the package in `ETL_PACKAGE` (its
BUILD.bazel sets `env`) and puts the package's `dags/*.yaml` and job library in the runfiles.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest

from tools.bazel import dagrender

PACKAGE = os.environ.get("ETL_PACKAGE", "")
PACKAGE_DIR = Path(__file__).resolve().parents[2] / "packages" / PACKAGE
SPECS = sorted((PACKAGE_DIR / "dags").glob("*.yaml")) if PACKAGE else []
JOBS = {f"{PACKAGE}.jobs.{p.stem}" for p in (PACKAGE_DIR / "jobs").glob("*.py") if not p.stem.startswith("_")}


def test_there_are_specs() -> None:
    assert PACKAGE, "set ETL_PACKAGE to the package's folder name under packages/ (the test target's env)"
    assert SPECS, f"no DAG specs under {PACKAGE_DIR}/dags"


@pytest.mark.parametrize("spec_path", SPECS, ids=lambda p: p.stem)
def test_spec_is_valid_and_runs_real_jobs(spec_path: Path) -> None:
    spec = dagrender.load_spec(spec_path)
    resolved = dagrender.resolve(spec, spec_path=str(spec_path), package=PACKAGE, entrypoints=JOBS)
    assert spec.dag_id.startswith(PACKAGE + "_")
    for task in resolved.tasks:
        module = importlib.import_module(task.job)
        assert callable(module.run)
        assert task.resources["limits"]["memory"]
        assert task.retries >= 0 and task.execution_timeout
