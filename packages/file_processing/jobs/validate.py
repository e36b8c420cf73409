"""Validate a dataset against its expectation suite (great-expectations 1.x on pandas).

The suite is file_processing/suites/<dataset>.yaml unless --suite names another file. Results go
to a JSON file next to the data (default <input>/_dq_<dataset>.json), an HTML report beside it
(_dq_<dataset>.html) and to metrics; the job fails (exit 1) when a critical expectation fails, and
only reports non-critical ones.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Literal

from etl_core import storage
from etl_core.jobs import JobContext, JobSettings, run_job
from pydantic import Field

from ..errors import ValidationFailed
from ._common import PACKAGE


class Settings(JobSettings):
    dataset: str = Field(description="dataset name: selects the suite file_processing/suites/<dataset>.yaml")
    input: str = Field(description="data to validate: a Parquet/CSV file, or a folder / S3 prefix of them")
    suite: str | None = Field(None, description="suite file to use instead of the packaged one (local or s3://)")
    format: Literal["parquet", "csv"] | None = Field(None, description="input format (default: from file names)")
    results: str | None = Field(
        None, description="where to write the results JSON (default: <input>/_dq_<dataset>.json)"
    )
    result_format: Literal["BOOLEAN_ONLY", "BASIC", "SUMMARY"] = Field(
        "SUMMARY", description="detail of each result: SUMMARY adds sample unexpected values"
    )
    grouping: Literal["columns", "table"] = Field(
        "columns", description="columns: load and check one column group at a time (less memory); table: all at once"
    )


def results_location(settings: Settings) -> str:
    if settings.results:
        return settings.results
    base = settings.input
    if base.lower().endswith((".parquet", ".pq", ".parq", ".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        base = storage.parent(base)
    return storage.join(base, f"_dq_{settings.dataset}.json")


def export_metrics(ctx: JobContext, result: object) -> None:
    from ..validation import SuiteResult

    assert isinstance(result, SuiteResult)
    dataset = result.dataset
    ctx.gauge("dq_success", "1 when no critical expectation failed in the last run.", ["dataset"]).labels(
        dataset=dataset
    ).set(1 if result.success else 0)
    ctx.gauge("dq_rows", "Rows validated by the last run.", ["dataset"]).labels(dataset=dataset).set(result.rows)
    counts = ctx.gauge(
        "dq_expectations", "Expectations of the last run by result and severity.", ["dataset", "result", "severity"]
    )
    for severity, critical in (("critical", True), ("warning", False)):
        mine = [o for o in result.outcomes if o.critical is critical]
        counts.labels(dataset=dataset, result="passed", severity=severity).set(sum(1 for o in mine if o.success))
        counts.labels(dataset=dataset, result="failed", severity=severity).set(
            sum(1 for o in mine if not o.success and not o.error)
        )
        counts.labels(dataset=dataset, result="error", severity=severity).set(sum(1 for o in mine if o.error))
    each = ctx.gauge(
        "dq_expectation_success", "1 when the expectation passed in the last run.", ["dataset", "expectation"]
    )
    ratio = ctx.gauge(
        "dq_unexpected_ratio", "Share of unexpected values (0..1) in the last run.", ["dataset", "expectation"]
    )
    for outcome in result.outcomes:
        each.labels(dataset=dataset, expectation=outcome.id).set(1 if outcome.success else 0)
        if outcome.unexpected_percent is not None:
            ratio.labels(dataset=dataset, expectation=outcome.id).set(outcome.unexpected_percent / 100.0)
    ctx.gauge("dq_duration_seconds", "Seconds the last validation took.", ["dataset"]).labels(dataset=dataset).set(
        result.seconds
    )


def main(settings: Settings, ctx: JobContext) -> None:
    from etl_core.memory import lean

    from ..report_html import render_dq_html
    from ..suites import load_suite, suite_location
    from ..tables import open_table
    from ..validation import failure_message, run_suite

    lean()
    ctx.grouping_key["dataset"] = settings.dataset
    suite_url = settings.suite or str(suite_location(settings.dataset))
    suite = load_suite(suite_url, dataset=settings.dataset)
    with open_table(settings.input, settings.format) as table:
        ctx.log.info(
            "validate.start",
            dataset=settings.dataset,
            rows=table.rows,
            columns=len(table.columns),
            files=len(table.paths),
            expectations=len(suite.expectations),
        )
        result = run_suite(suite, table, result_format=settings.result_format, grouping=settings.grouping)
    doc = result.to_json(
        source=settings.input, suite=suite_url, result_format=settings.result_format, grouping=settings.grouping
    )
    target = results_location(settings)
    storage.write_bytes(
        target, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(), content_type="application/json"
    )
    report = target.removesuffix(".json") + ".html"
    storage.write_bytes(report, render_dq_html(doc).encode(), content_type="text/html; charset=utf-8")
    export_metrics(ctx, result)
    ctx.log.info(
        "validate.done",
        dataset=settings.dataset,
        success=result.success,
        results=target,
        report=report,
        failed_critical=[o.id for o in result.critical_failures],
        failed_warning=[o.id for o in result.warnings],
        seconds=round(result.seconds, 3),
    )
    if not result.success:
        raise ValidationFailed(failure_message(result, settings.input) + f"; results in {target}")


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="validate", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
