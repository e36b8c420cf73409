"""The package's DAG specs validate against the platform's DAG spec model and name real jobs."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PACKAGE_DIR = HERE.parent
try:
    import dagrender
except ImportError:  # dev venv without tools/bazel on PYTHONPATH; Bazel provides it as a dep
    sys.path.insert(0, str(PACKAGE_DIR.parents[1] / "tools" / "bazel"))
    import dagrender

SPECS = sorted((PACKAGE_DIR / "dags").glob("*.yaml"))
JOBS = {f"{PACKAGE_DIR.name}.jobs.{p.stem}" for p in (PACKAGE_DIR / "jobs").glob("*.py") if not p.stem.startswith("_")}


def test_there_are_specs() -> None:
    assert SPECS


@pytest.mark.parametrize("spec_path", SPECS, ids=lambda p: p.stem)
def test_spec_is_valid_and_runs_real_jobs(spec_path: Path) -> None:
    spec = dagrender.load_spec(spec_path)
    resolved = dagrender.resolve(spec, spec_path=str(spec_path), entrypoints=JOBS)
    assert spec.dag_id.startswith(PACKAGE_DIR.name + "_")
    for task in resolved.tasks:
        module = importlib.import_module(task.job)
        assert callable(module.run)
        assert task.resources["limits"]["memory"]
        assert task.retries >= 0 and task.execution_timeout
