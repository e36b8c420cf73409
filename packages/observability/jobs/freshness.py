"""Check that every declared dataset's newest partition (or object) is recent enough.

Datasets come from observability/checks/freshness.yaml unless --checks names another file. Each
result is exported as metrics; the job exits 1 with a summary of every dataset that breached.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from etl_core.jobs import JobContext, run_job
from pydantic import Field

from ..errors import Breach
from ._common import PACKAGE, CheckSettings, now_from


class Settings(CheckSettings):
    checks: str | None = Field(None, description="freshness checks file (default: the packaged checks/freshness.yaml)")
    datasets: str | None = Field(None, description="only check these datasets (comma-separated names)")


def main(settings: Settings, ctx: JobContext) -> None:
    from ..freshness import CHECKS_DIR, check_dataset, load_config

    config = load_config(settings.checks or CHECKS_DIR / "freshness.yaml")
    wanted = {n.strip() for n in (settings.datasets or "").split(",") if n.strip()}
    unknown = wanted - {d.name for d in config.datasets}
    if unknown:
        from etl_core.jobs import UsageError

        raise UsageError(
            f"--datasets names unknown dataset(s) {sorted(unknown)}; known: {[d.name for d in config.datasets]}"
        )
    now = now_from(settings)
    age = ctx.gauge("freshness_age_seconds", "Age of the newest partition or object.", ["dataset"])
    limit = ctx.gauge("freshness_max_age_seconds", "Allowed age of the newest partition or object.", ["dataset"])
    newest = ctx.gauge("freshness_newest_timestamp_seconds", "Time the newest data is from (Unix).", ["dataset"])
    fresh = ctx.gauge("freshness_ok", "1 when the dataset is fresh enough, else 0.", ["dataset"])
    breaches = []
    for check in config.datasets:
        if wanted and check.name not in wanted:
            continue
        result = check_dataset(check, now)
        limit.labels(dataset=check.name).set(result.max_age.total_seconds())
        fresh.labels(dataset=check.name).set(1 if result.ok else 0)
        if result.age is not None:
            age.labels(dataset=check.name).set(result.age.total_seconds())
        if result.newest is not None:
            newest.labels(dataset=check.name).set(result.newest.timestamp())
        ctx.log.info(
            "freshness.checked",
            dataset=check.name,
            ok=result.ok,
            detail=result.detail,
            age_seconds=result.age.total_seconds() if result.age else None,
        )
        if not result.ok:
            breaches.append(result)
    checked = len(wanted) if wanted else len(config.datasets)
    ctx.gauge("freshness_breached_datasets", "Datasets that breached their allowed age.").set(len(breaches))
    if breaches:
        raise Breach(
            f"freshness breached for {len(breaches)} of {checked} dataset(s): "
            + "; ".join(r.summary() for r in breaches)
        )


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="freshness", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
