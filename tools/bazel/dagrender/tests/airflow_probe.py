"""Run in a child interpreter by test_airflow_load.py: load DAG files with Airflow's DagBag.

Usage: python -I airflow_probe.py '<json: {"paths": [...], "folder": ..., "first_party": [...]}>'
The child's sys.path is the interpreter's own plus ``paths`` (third-party code only); it proves
that no first-party module is importable, then prints one JSON document on stdout.

Each task's pod is built twice more after Airflow rendered its templates with the context that
Airflow 3's task runner builds (``RuntimeTaskInstance.get_template_context``): for a run with a
logical date, and for a run triggered without one. The template environment is the DAG's own
(StrictUndefined), so a template that reads a name the run does not have fails here.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import json
import sys
import uuid
from typing import Any

# The two runs the templates are rendered for (RUN_AFTER: when the run was queued).
LOGICAL_DATE = dt.datetime(2026, 3, 4, 3, 0, tzinfo=dt.UTC)
RUN_AFTER = dt.datetime(2026, 3, 5, 9, 30, tzinfo=dt.UTC)
RUNS = {
    "with_logical_date": ("scheduled__2026-03-04T03:00:00+00:00", LOGICAL_DATE),
    "without_logical_date": ("manual__2026-03-05T09:30:00+00:00", None),
}


def _first_party_importable(names: list[str]) -> list[str]:
    found = []
    for name in names:
        try:
            if importlib.util.find_spec(name) is not None:
                found.append(name)
        except ModuleNotFoundError:
            pass
    return found


def _rendered(task: Any, run_id: str, logical_date: dt.datetime | None) -> Any:
    """The pod of a copy of ``task`` after Airflow rendered its templates for the given run."""
    from airflow.sdk.api.datamodels._generated import DagRun, TIRunContext
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    task = copy.deepcopy(task)
    dag_run = DagRun(
        dag_id=task.dag_id,
        run_id=run_id,
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        run_after=RUN_AFTER,
        start_date=RUN_AFTER,
        end_date=None,
        run_type="scheduled" if logical_date else "manual",
        state="running",
        conf={},
        consumed_asset_events=[],
        partition_key=None,
    )
    # model_construct: a bundle is not needed to build the context.
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=task.task_id,
        dag_id=task.dag_id,
        run_id=run_id,
        try_number=1,
        dag_version_id=uuid.uuid4(),
        map_index=-1,
        task=task,
        max_tries=task.retries,
        start_date=RUN_AFTER,
    )
    ti._ti_context_from_server = TIRunContext(dag_run=dag_run, max_tries=task.retries)
    task.render_template_fields(ti.get_template_context())
    return task.build_pod_request_obj(dry_run=True)


def _render_runs(task: Any, plain: Any) -> dict[str, Any]:
    """The rendered container's args and env for each of RUNS, or the error rendering raised."""
    out: dict[str, Any] = {}
    for run, (run_id, logical_date) in RUNS.items():
        try:
            container = _rendered(task, run_id, logical_date).spec.containers[0]
        except Exception as exc:
            out[run] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        out[run] = {"args": container.args, "env": plain(container.env)}
    return out


def _control(plain: Any) -> dict[str, Any]:
    """A hand-written task templating {{ ds }}: what the build-time check refuses, and why."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk import DAG

    with DAG("control_ds", schedule=None, start_date=LOGICAL_DATE):
        task = KubernetesPodOperator(task_id="control", image="control", arguments=["{{ ds }}"])
    return _render_runs(task, plain)


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
                "env": plain(container.env),
                "env_from": plain(container.env_from),
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
                "rendered": _render_runs(task, plain),
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
                "control": _control(plain),
                "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                "dags": dags,
            }
        )
    )


if __name__ == "__main__":
    main()
