"""Measure, inside a Bazel test, the cold import of airflow + KubernetesPodOperator.

Run by tools/bench/import_bench.py as `bazel test //tools/bench:import_probe`. Each repetition is a
fresh interpreter with the test's own environment (PYTHONPATH as Bazel's stub set it), so the
number includes the cost of every import root Bazel puts on sys.path.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

IMPORTS = "import airflow; from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator"


def measure(python: str, reps: int, env: dict[str, str] | None = None) -> dict[str, float]:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run([python, "-c", IMPORTS], check=True, env=env, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "reps": reps}


def main() -> int:
    reps = int(os.environ.get("IMPORT_REPS", "5"))
    env = dict(os.environ)
    env["AIRFLOW_HOME"] = os.environ.get("TEST_TMPDIR", "/tmp")
    result = measure(sys.executable, reps, env)
    result["sys_path_entries"] = len([p for p in env.get("PYTHONPATH", "").split(":") if p])
    print("IMPORT_PROBE " + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
