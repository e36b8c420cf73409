"""Profile a dataset: per-column statistics as JSON plus a readable HTML report.

For each column: type, nulls, distinct values, min / max, mean and standard deviation, quantiles,
string lengths and the most frequent values. Writes profile.json and profile.html under --output
(default <input>/_profile/), computed column by column so memory follows the widest column.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Literal

from etl_core import storage
from etl_core.jobs import JobContext, JobSettings, run_job
from pydantic import Field

from ._common import PACKAGE


class Settings(JobSettings):
    input: str = Field(description="a Parquet/CSV file, or a folder / S3 prefix of them")
    dataset: str | None = Field(None, description="name shown in the report and metrics (default: from --input)")
    output: str | None = Field(
        None, description="folder / prefix for profile.json and profile.html (default: <input>/_profile)"
    )
    format: Literal["parquet", "csv"] | None = Field(None, description="input format (default: from file names)")
    top_n: int = Field(10, ge=0, le=1000, description="most frequent values to list per column")


def _default_dataset(location: str) -> str:
    name = storage.basename(location)
    for suffix in (".parquet", ".csv.gz", ".csv", ".tsv.gz", ".tsv"):
        name = name.removesuffix(suffix)
    return name or "dataset"


def _output(settings: Settings) -> str:
    if settings.output:
        return settings.output
    base = settings.input
    if base.lower().endswith((".parquet", ".pq", ".parq", ".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        base = storage.parent(base)
    return storage.join(base, "_profile")


def main(settings: Settings, ctx: JobContext) -> None:
    from etl_core.memory import lean

    from ..profiling import profile_table
    from ..report_html import render_profile_html
    from ..tables import open_table

    lean()
    dataset = settings.dataset or _default_dataset(settings.input)
    ctx.grouping_key["dataset"] = dataset
    with open_table(settings.input, settings.format) as table:
        profile = profile_table(table, dataset=dataset, source=settings.input, top_n=settings.top_n)
    out = _output(settings)
    json_url = storage.join(out, "profile.json")
    html_url = storage.join(out, "profile.html")
    storage.write_bytes(
        json_url, (json.dumps(profile, indent=2, sort_keys=True) + "\n").encode(), content_type="application/json"
    )
    storage.write_bytes(html_url, render_profile_html(profile).encode(), content_type="text/html; charset=utf-8")
    ctx.gauge("profile_rows", "Rows in the profiled dataset.", ["dataset"]).labels(dataset=dataset).set(profile["rows"])
    ctx.gauge("profile_columns", "Columns in the profiled dataset.", ["dataset"]).labels(dataset=dataset).set(
        profile["column_count"]
    )
    nulls = ctx.gauge("profile_null_ratio", "Share of nulls per column (0..1).", ["dataset", "column"])
    for column in profile["columns"]:
        nulls.labels(dataset=dataset, column=column["name"]).set(column["null_ratio"])
    ctx.log.info(
        "profile.done",
        dataset=dataset,
        rows=profile["rows"],
        columns=profile["column_count"],
        json=json_url,
        html=html_url,
    )


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="profile", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
