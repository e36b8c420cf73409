"""Run in a child interpreter by test_airflow_load.py: load DAG files with Airflow's DagBag.

Usage: python -I airflow_probe.py '<json: {"paths": [...], "folder": ..., "first_party": [...]}>'
The child's sys.path is the interpreter's own plus ``paths`` (third-party code only); it proves
that no first-party module is importable, then prints one JSON document on stdout.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from typing import Any


def _first_party_importable(names: list[str]) -> list[str]:
    found = []
    for name in names:
        try:
            if importlib.util.find_spec(name) is not None:
                found.append(name)
        except ModuleNotFoundError:
            pass
    return found


def main() -> None:
    request = json.loads(sys.argv[1])
    sys.path[:0] = request["paths"]
    leaked = _first_party_importable(request["first_party"])

    from airflow.dag_processing.dagbag import DagBag
    from airflow.serialization.serialized_objects import DagSerialization
    from kubernetes.client import ApiClient

    plain = ApiClient().sanitize_for_serialization
    bag = DagBag(dag_folder=request["folder"])
    dags: dict[str, Any] = {}
    for dag_id, dag in sorted(bag.dags.items()):
        DagSerialization.to_dict(dag)  # what the dag-processor stores; raises if not serializable
        tasks = {}
        for task in dag.tasks:
            pod = task.build_pod_request_obj(dry_run=True)
            container = pod.spec.containers[0]
            tasks[task.task_id] = {
                "operator": type(task).__name__,
                "image": container.image,
                "command": container.command,
                "args": container.args,
                "env": {item.name: item.value for item in container.env or []},
                "resources": plain(container.resources),
                "namespace": pod.metadata.namespace,
                "image_pull_policy": container.image_pull_policy,
                "service_account": pod.spec.service_account_name,
                "container_security_context": plain(container.security_context),
                "pod_security_context": plain(pod.spec.security_context),
                "labels": pod.metadata.labels,
                "annotations": pod.metadata.annotations,
                "volume_mounts": plain(container.volume_mounts),
                "volumes": plain(pod.spec.volumes),
                "retries": task.retries,
                "retry_delay": task.retry_delay.total_seconds(),
                "execution_timeout": task.execution_timeout.total_seconds() if task.execution_timeout else None,
                "upstream": sorted(task.upstream_task_ids),
                "on_finish_action": getattr(task.on_finish_action, "value", task.on_finish_action),
                "get_logs": task.get_logs,
                "owner": task.owner,
            }
        dags[dag_id] = {
            "fileloc": dag.fileloc,
            "schedule": dag.schedule,
            "start_date": dag.start_date.isoformat(),
            "catchup": dag.catchup,
            "tags": sorted(dag.tags),
            "description": dag.description,
            "params": {key: dag.params[key] for key in dag.params},
            "deadlines": [
                {
                    "name": alert.name,
                    "reference": type(alert.reference).__name__,
                    "interval": alert.interval.total_seconds(),
                    "callback": type(alert.callback).__name__,
                    "path": alert.callback.path,
                    "kwargs": alert.callback.kwargs,
                }
                for alert in dag.deadline or []
            ],
            "tasks": tasks,
        }
    print(
        json.dumps(
            {
                "leaked": leaked,
                "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                "dags": dags,
            }
        )
    )


if __name__ == "__main__":
    main()
