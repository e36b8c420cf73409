"""Check that the DAG sync sidecar(s) synced successfully recently, from their /metrics.

Reads etl_sidecar_last_success_timestamp_seconds from each --sidecar-url; a sidecar that cannot
be reached, never synced, or last succeeded longer ago than --max-age is a breach (exit 1).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from etl_core.jobs import JobContext, run_job
from pydantic import Field, field_validator

from ..durations import parse_duration
from ..errors import Breach
from ._common import PACKAGE, CheckSettings, check_duration, duration_field, now_from


class Settings(CheckSettings):
    sidecar_url: str = Field(
        "http://localhost:9108/metrics",
        description="metrics URL(s) of the sidecar(s), comma-separated",
    )
    max_age: str = duration_field("15m", "allowed time since the last successful sync")
    timeout: float = Field(5.0, gt=0, description="seconds to wait for each scrape")

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str) -> str:
        return check_duration(value)


def main(settings: Settings, ctx: JobContext) -> None:
    from ..sidecar_probe import check_sidecar

    now = now_from(settings)
    limit = parse_duration(settings.max_age)
    up = ctx.gauge("sidecar_check_up", "1 when the sidecar's /metrics answered.", ["target"])
    age = ctx.gauge("sidecar_sync_age_seconds", "Seconds since the sidecar's last successful sync.", ["target"])
    fresh = ctx.gauge("sidecar_fresh", "1 when the last successful sync is recent enough.", ["target"])
    breaches = []
    urls = [u.strip() for u in settings.sidecar_url.split(",") if u.strip()]
    for url in urls:
        result = check_sidecar(url, max_age=limit, now=now, timeout=settings.timeout)
        up.labels(target=result.target).set(1 if result.reachable else 0)
        fresh.labels(target=result.target).set(1 if result.ok else 0)
        if result.age is not None:
            age.labels(target=result.target).set(result.age.total_seconds())
        ctx.log.info("sidecar.checked", target=result.target, ok=result.ok, detail=result.detail)
        if not result.ok:
            breaches.append(result)
    if breaches:
        raise Breach(f"{len(breaches)} of {len(urls)} sidecar(s) stale: " + "; ".join(r.summary() for r in breaches))


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="sidecar_health", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
