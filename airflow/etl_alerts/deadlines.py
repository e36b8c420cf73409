"""Deadline-alert callback for the platform's DAGs: `sla_callback: etl_alerts.deadlines.notify`.

A DAG spec's task `sla` renders to an Airflow 3 DeadlineAlert whose AsyncCallback names this
function. The triggerer (a control-plane component, not the package's image) imports and awaits it
when a DAG run misses the deadline, so this module ships with the control plane: the local runner
puts it on the components' path, and a deployed control plane installs it into its image (see
docs/airflow/DEPLOYMENT.md).

What it does: logs one JSON line (`"event": "deadline_missed"`) on the triggerer's log and, when
`ETL_ALERTS_WEBHOOK_URL` is set, POSTs the same JSON (plus a `text` field, which Slack-style
incoming webhooks display) to it. A webhook failure is raised, so Airflow records the callback as
failed instead of the alert vanishing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import urllib.request
from typing import Any

log = logging.getLogger(__name__)

WEBHOOK_ENV = "ETL_ALERTS_WEBHOOK_URL"
TIMEOUT_S = 10.0


def _run_field(context: Any, name: str) -> Any:
    """`context["dag_run"].<name>` when Airflow passes a context, else None."""
    if not isinstance(context, dict):
        return None
    dag_run = context.get("dag_run")
    value = getattr(dag_run, name, None) if dag_run is not None else None
    if value is None and isinstance(dag_run, dict):
        value = dag_run.get(name)
    return value


def alert_payload(*, dag_id: str, task_id: str | None, sla: str | None, context: Any = None) -> dict[str, Any]:
    """The JSON document logged and posted for one missed deadline."""
    run_id = _run_field(context, "run_id")
    where = f"{dag_id}.{task_id}" if task_id else dag_id
    return {
        "event": "deadline_missed",
        "dag_id": dag_id,
        "task_id": task_id,
        "sla": sla,
        "run_id": run_id,
        "text": f"Deadline missed: {where} did not finish within {sla or 'its deadline'}"
        + (f" (run {run_id})" if run_id else ""),
    }


def _post(url: str, payload: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload, sort_keys=True).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        return int(response.status)


async def notify(
    context: Any = None, *, dag_id: str, task_id: str | None = None, sla: str | None = None, **_: Any
) -> None:
    """Report a missed deadline: one JSON log line, and a POST to ETL_ALERTS_WEBHOOK_URL if set."""
    payload = alert_payload(dag_id=dag_id, task_id=task_id, sla=sla, context=context)
    log.warning("%s", json.dumps(payload, sort_keys=True))
    url = os.environ.get(WEBHOOK_ENV, "").strip()
    if not url:
        return
    try:
        await asyncio.to_thread(_post, url, payload)
    except OSError as exc:
        raise RuntimeError(
            f"etl_alerts: posting the deadline alert for {dag_id} to {WEBHOOK_ENV}={url} failed: {exc}"
        ) from exc
