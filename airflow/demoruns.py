"""Run every published DAG once, in data order, and say what each run wrote.

A DAG starts as soon as the DAGs whose outputs it reads have succeeded (``AFTER``), so on two
cores the independent ingests overlap. A DAG that ``AFTER`` does not name (a new package's) runs
after the ingests with no conf, so a package added with ``//:new_package`` runs in the demo
without an edit here. Each run is triggered with the seeded day as its logical date, waited for,
and reported with its task states; ``describe_outputs`` lists, per DAG, the objects its run wrote
to S3 (row counts from the manifests, the data-quality verdict) and the Pushgateway groups the
checks pushed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from demodata import export_conf, outputs

from tools.bazel.publisher.smoke import AirflowClient, RunOutcome, trigger_run, wait_for_run

__all__ = ["AFTER", "DagRunReport", "describe_outputs", "run_in_order", "upstream_of"]

# Which DAGs' outputs each DAG reads (the platform checks look at everything, and at failed runs).
AFTER: dict[str, tuple[str, ...]] = {
    "data_pipeline_orders_daily": (),
    "data_pipeline_events_daily": (),
    "file_processing_landing_archive": (),
    "file_processing_orders_quality": ("data_pipeline_orders_daily",),
    "file_processing_partner_export": ("data_pipeline_orders_daily",),
    "observability_platform_checks": (
        "data_pipeline_orders_daily",
        "data_pipeline_events_daily",
        "file_processing_landing_archive",
        "file_processing_orders_quality",
        "file_processing_partner_export",
    ),
}

# The DAGs that read only seeded inputs: a DAG missing from AFTER waits for these (its data, if it
# reads any of the demo's, is the ingests' output; a DAG that reads nothing just runs a bit later).
INGESTS: tuple[str, ...] = tuple(dag_id for dag_id, upstream in AFTER.items() if not upstream)


def upstream_of(dag_id: str) -> tuple[str, ...]:
    """The DAGs ``dag_id`` waits for: its AFTER entry, else the ingests."""
    return AFTER.get(dag_id, INGESTS)


@dataclasses.dataclass
class DagRunReport:
    dag_id: str
    outcome: RunOutcome | None  # None: never triggered (an upstream DAG failed)
    outputs: list[str] = dataclasses.field(default_factory=list)

    @property
    def state(self) -> str:
        return self.outcome.state if self.outcome else "not run (an upstream DAG failed)"


def run_in_order(
    client: AirflowClient,
    dag_ids: Sequence[str],
    *,
    run_date: dt.date,
    timeout: float,
    log: Callable[[str], None],
    poll_interval: float = 1.0,
    extra_conf: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, DagRunReport]:
    """Trigger each DAG once its upstream DAGs succeeded; wait for all; return the reports.

    ``extra_conf``: more ``dag_run.conf`` keys per dag_id (the platform's own, e.g. no sidecar to check).
    """
    logical = dt.datetime.combine(run_date, dt.time(), tzinfo=dt.UTC)
    confs: dict[str, Mapping[str, Any]] = {"file_processing_partner_export": export_conf(run_date)}
    for dag_id, extra in (extra_conf or {}).items():
        confs[dag_id] = {**confs.get(dag_id, {}), **extra}
    reports: dict[str, DagRunReport] = {}
    running: dict[str, str] = {}  # dag_id -> run_id
    started = time.monotonic()
    deadline = started + timeout
    pending = list(dag_ids)
    while pending or running:
        for dag_id in list(pending):
            upstream = upstream_of(dag_id)
            if any(
                u in reports and not (reports[u].outcome and reports[u].outcome.ok) for u in upstream if u in dag_ids
            ):
                reports[dag_id] = DagRunReport(dag_id, None)
                pending.remove(dag_id)
            elif all(u in reports for u in upstream if u in dag_ids):
                run = trigger_run(client, dag_id, conf=confs.get(dag_id, {}), logical_date=logical)
                running[dag_id] = str(run["dag_run_id"])
                pending.remove(dag_id)
                log(f"  [{time.monotonic() - started:5.1f}s] triggered {dag_id} (logical date {run_date})")
        for dag_id, run_id in list(running.items()):
            outcome = wait_for_run(client, dag_id, run_id, timeout=0)  # one look: run, tasks, failed tries' logs
            finished = outcome.state in ("success", "failed") or outcome.state.startswith("failing")
            if finished or time.monotonic() >= deadline:
                if not finished:
                    state = outcome.state.partition(",")[0]
                    outcome = dataclasses.replace(outcome, state=f"{state}, not finished after {timeout:.0f}s")
                reports[dag_id] = DagRunReport(dag_id, outcome)
                del running[dag_id]
                log(f"  [{time.monotonic() - started:5.1f}s] {dag_id}: {outcome.describe()}")
        if running:
            time.sleep(poll_interval)
    return {dag_id: reports[dag_id] for dag_id in dag_ids}


def _s3_summary(s3: Any, url: str) -> list[str]:
    """Objects under an s3:// prefix (or one object), with what their content says."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
    if not listing:
        return [f"{url}: nothing written"]
    lines = []
    for item in listing:
        name = item["Key"]
        note = f"{item['Size']:,} B"
        if name.endswith("_manifest.json"):
            manifest = json.loads(s3.get_object(Bucket=bucket, Key=name)["Body"].read())
            note += f", {manifest['data']['rows']:,} rows, {manifest['rejects']['rows']:,} rejected"
        elif name.endswith(".json") and "/_dq_" in name:
            result = json.loads(s3.get_object(Bucket=bucket, Key=name)["Body"].read())
            note += f", success={result.get('success')}, rows={result.get('rows')}"
        lines.append(f"s3://{bucket}/{name} ({note})")
    return lines


def describe_outputs(s3: Any, groups: list[dict[str, Any]], run_date: dt.date) -> dict[str, list[str]]:
    """Per DAG, what its run left behind: S3 objects, or Pushgateway groups for the checks."""
    described: dict[str, list[str]] = {}
    for dag_id, places in outputs(run_date).items():
        lines: list[str] = []
        for place in places:
            if place.startswith("s3://"):
                lines += _s3_summary(s3, place)
            else:
                job = place.split("job=", 1)[1]
                found = [g for g in groups if g.get("labels", {}).get("job") == job]
                families = sorted({name for g in found for name in g if name not in ("labels", "last_push_successful")})
                lines.append(
                    f"pushgateway job={job}: " + (f"{len(families)} metric families" if found else "nothing pushed")
                )
        described[dag_id] = lines
    return described
