"""Check Airflow through its REST API: component health, recent failed DAG runs, import errors.

Components come from /api/v2/monitor/health; failed runs of every DAG that ended within
--failed-runs-window from /api/v2/dags/~/dagRuns; DAG files that do not import from
/api/v2/importErrors. Authenticates with AIRFLOW_TOKEN, or AIRFLOW_USERNAME/AIRFLOW_PASSWORD via
POST /auth/token. Exports metrics and exits 1 with a summary when anything breached.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import Counter
from collections.abc import Sequence

from etl_core.jobs import JobContext, run_job
from pydantic import Field, SecretStr, field_validator

from ..durations import format_duration, parse_duration
from ..errors import AirflowApiError, Breach
from ._common import PACKAGE, CheckSettings, check_duration, duration_field, now_from

COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


class Settings(CheckSettings):
    airflow_url: str = Field(description="base URL of the Airflow API server, e.g. http://airflow-api-server:8080")
    airflow_token: SecretStr | None = Field(
        None, description="bearer token for the API (else log in with user/password)"
    )
    airflow_username: str | None = Field(None, description="user to log in as at POST /auth/token")
    airflow_password: SecretStr | None = Field(None, description="password of --airflow-username")
    components: str = Field(",".join(COMPONENTS), description="components that must be healthy (comma-separated)")
    heartbeat_max_age: str = duration_field("5m", "a component whose last heartbeat is older is unhealthy")
    failed_runs_window: str = duration_field("24h", "look back this far for failed DAG runs")
    max_failed_runs: int = Field(0, ge=0, description="breach when more DAG runs failed in the window")
    max_import_errors: int = Field(0, ge=0, description="breach when more DAG files fail to import")
    dag_id_prefix: str | None = Field(None, description="only count failed runs of DAGs whose id starts with this")
    timeout: float = Field(10.0, gt=0, description="seconds to wait for each API call")

    @field_validator("heartbeat_max_age", "failed_runs_window")
    @classmethod
    def _durations(cls, value: str) -> str:
        return check_duration(value)


def _heartbeat(info: dict, component: str) -> dt.datetime | None:
    for key in (f"latest_{component}_heartbeat", "latest_heartbeat"):
        value = info.get(key)
        if value:
            try:
                stamp = dt.datetime.fromisoformat(str(value))
            except ValueError:
                return None
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
    return None


def main(settings: Settings, ctx: JobContext) -> None:
    from ..airflow_api import AirflowClient

    now = now_from(settings)
    client = AirflowClient(
        settings.airflow_url,
        token=settings.airflow_token.get_secret_value() if settings.airflow_token else None,
        username=settings.airflow_username,
        password=settings.airflow_password.get_secret_value() if settings.airflow_password else None,
        timeout=settings.timeout,
    )
    up = ctx.gauge("airflow_api_up", "1 when the Airflow REST API answered.")
    problems: list[str] = []
    try:
        health = client.health()
    except AirflowApiError as exc:
        up.set(0)
        raise Breach(f"airflow unreachable: {exc}") from None
    up.set(1)

    healthy = ctx.gauge("airflow_component_healthy", "1 when the component reports healthy.", ["component"])
    beat_age = ctx.gauge(
        "airflow_component_heartbeat_age_seconds", "Seconds since the component's last heartbeat.", ["component"]
    )
    beat_limit = parse_duration(settings.heartbeat_max_age)
    for component in [c.strip() for c in settings.components.split(",") if c.strip()]:
        info = health.get(component) or {}
        status = info.get("status") if isinstance(info, dict) else None
        beat = _heartbeat(info, component) if isinstance(info, dict) else None
        ok = status == "healthy"
        reason = f"status {status!r}" if not ok else ""
        if beat is not None:
            age = max(now - beat, dt.timedelta(0))
            beat_age.labels(component=component).set(age.total_seconds())
            if age > beat_limit:
                ok = False
                reason = f"last heartbeat {format_duration(age)} ago"
        healthy.labels(component=component).set(1 if ok else 0)
        if not ok:
            problems.append(f"{component} unhealthy ({reason})")

    since = now - parse_duration(settings.failed_runs_window)
    runs = [
        r
        for r in client.failed_runs(since)
        if not settings.dag_id_prefix or str(r.get("dag_id", "")).startswith(settings.dag_id_prefix)
    ]
    by_dag = Counter(str(r.get("dag_id")) for r in runs)
    ctx.gauge("airflow_failed_dag_runs", "Failed DAG runs that ended within the window.").set(len(runs))
    per_dag = ctx.gauge("airflow_failed_dag_runs_by_dag", "Failed DAG runs within the window, per DAG.", ["dag_id"])
    for dag_id, count in sorted(by_dag.items()):
        per_dag.labels(dag_id=dag_id).set(count)
    if len(runs) > settings.max_failed_runs:
        listing = ", ".join(f"{d} x{c}" if c > 1 else d for d, c in by_dag.most_common(5))
        problems.append(f"{len(runs)} failed DAG run(s) in the last {settings.failed_runs_window} ({listing})")

    errors = client.import_errors()
    ctx.gauge("airflow_import_errors", "DAG files that fail to import.").set(len(errors))
    if len(errors) > settings.max_import_errors:
        files = ", ".join(sorted({str(e.get("filename")) for e in errors})[:5])
        problems.append(f"{len(errors)} DAG import error(s) ({files})")

    ctx.log.info("airflow.checked", problems=problems, failed_runs=len(runs), import_errors=len(errors))
    if problems:
        raise Breach(f"airflow at {settings.airflow_url}: " + "; ".join(problems))


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="airflow_health", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
