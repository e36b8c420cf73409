"""Run in a child interpreter by test_hostile.py: import DAG files as Airflow's dag-processor does.

Usage: python -I airflow_import.py '<json: {"paths": [...], "folder": ...}>'
Prints one JSON object: file path -> {"dag_ids": [...]} when the file imports and every task's pod
builds (``build_pod_request_obj(dry_run=True)``), or {"error": "<first line>"}.
A child process, because Airflow reads its configuration (AIRFLOW_HOME) once per process.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def _first_line(text: str) -> str:
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def main() -> None:
    request = json.loads(sys.argv[1])
    sys.path[:0] = request["paths"]
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=request["folder"])
    result: dict[str, Any] = {path: {"error": _first_line(error)} for path, error in bag.import_errors.items()}
    for dag in bag.dags.values():
        entry = result.setdefault(dag.fileloc, {"dag_ids": []})
        if "error" in entry:
            continue
        try:
            for task in dag.tasks:
                task.build_pod_request_obj(dry_run=True)
        except Exception as exc:
            result[dag.fileloc] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        entry["dag_ids"].append(dag.dag_id)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
