"""The settings and body shared by the ingest and transform jobs."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from etl_core.jobs import JobContext, JobSettings, UsageError
from pydantic import Field, field_validator

__all__ = ["PACKAGE", "PipelineSettings", "execute"]

PACKAGE = "data_pipeline"


def _parse_references(value: Any) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            parsed = json.loads(text)
            if not isinstance(parsed, dict):
                raise ValueError("must be a JSON object of name -> location")
            return {str(k): str(v) for k, v in parsed.items()}
        out: dict[str, str] = {}
        for part in text.split(","):
            name, sep, location = part.partition("=")
            if not sep or not name.strip() or not location.strip():
                raise ValueError(f"{part!r} is not name=location")
            out[name.strip()] = location.strip()
        return out
    raise ValueError("must be name=location[,name=location] or a JSON object")


class PipelineSettings(JobSettings):
    dataset: str = Field(description="dataset name: selects the spec data_pipeline/datasets/<dataset>.yaml")
    run_date: dt.date = Field(description="logical date of the run, YYYY-MM-DD: names the partition dt=<run_date>")
    source: str | None = Field(
        None, description="input file, folder or S3 prefix (default: the spec's source.location)"
    )
    output: str | None = Field(None, description="output folder or S3 prefix (default: the spec's output)")
    spec: str | None = Field(None, description="spec file to use instead of the packaged one (local or s3://)")
    references: str | None = Field(
        None, description="reference locations overriding the spec: name=location[,name=location] or a JSON object"
    )
    max_reject_ratio: float | None = Field(
        None, ge=0, le=1, description="override the spec's max share of rejected rows"
    )
    compression: Literal["snappy", "zstd", "gzip", "none"] = Field(
        "snappy", description="Parquet compression codec (zstd: smaller files, more CPU)"
    )
    sql_url: str | None = Field(
        None, description="also load the partition into this SQLAlchemy URL, e.g. sqlite:////data/etl.db"
    )
    sql_table: str | None = Field(None, description="table for --sql-url (default: the dataset name)")

    @field_validator("references", mode="before")
    @classmethod
    def _references(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, sort_keys=True)
        _parse_references(value)
        return value


def export_metrics(ctx: JobContext, report: Any) -> None:
    dataset = report.dataset
    rows = ctx.gauge("pipeline_rows", "Rows of the last run by stage.", ["dataset", "stage"])
    for stage, value in (
        ("read", report.records),
        ("rejected", report.rejected),
        ("duplicates", report.duplicates),
        ("filtered", report.filtered),
        ("written", report.written),
    ):
        rows.labels(dataset=dataset, stage=stage).set(value)
    reasons = ctx.gauge("pipeline_rejected_rows", "Rejected rows of the last run by reason.", ["dataset", "reason"])
    for reason in ("malformed", "type", "required", "cast", "enrich"):
        reasons.labels(dataset=dataset, reason=reason).set(report.reject_reasons.get(reason, 0))
    size = ctx.gauge("pipeline_bytes", "Bytes read and written by the last run.", ["dataset", "direction"])
    size.labels(dataset=dataset, direction="in").set(report.bytes_in)
    size.labels(dataset=dataset, direction="out").set(report.bytes_out)
    ctx.gauge("pipeline_input_files", "Input files of the last run.", ["dataset"]).labels(dataset=dataset).set(
        len(report.inputs)
    )
    day = dt.datetime.fromisoformat(report.run_date).replace(tzinfo=dt.UTC)
    ctx.gauge(
        "pipeline_partition_timestamp_seconds", "Run date (midnight UTC) of the last partition written.", ["dataset"]
    ).labels(dataset=dataset).set(day.timestamp())
    if report.sql_rows is not None:
        ctx.gauge("pipeline_sql_rows", "Rows loaded into the SQL sink by the last run.", ["dataset"]).labels(
            dataset=dataset
        ).set(report.sql_rows)


def execute(settings: PipelineSettings, ctx: JobContext, *, expect_format: tuple[str, ...]) -> None:
    from etl_core.memory import lean

    from ..pipeline import run
    from ..spec import load_spec, spec_location

    lean(immediate=False)  # jemalloc: lower peak RSS than Arrow's default mimalloc, same speed
    ctx.grouping_key["dataset"] = settings.dataset
    spec_url = settings.spec or str(spec_location(settings.dataset))
    spec = load_spec(spec_url, dataset=settings.dataset)
    if spec.source.format not in expect_format:
        raise UsageError(
            f"dataset {spec.dataset!r} reads {spec.source.format} files; this job handles "
            f"{' / '.join(expect_format)} (use the {'transform' if spec.source.format == 'parquet' else 'ingest'} job)"
        )
    day = settings.run_date.isoformat()
    source = settings.source or spec.location(spec.source.location, day)
    output = settings.output or spec.location(spec.output, day)
    if not source:
        raise UsageError(f"no source: pass --source or set source.location in {spec_url}")
    if not output:
        raise UsageError(f"no output: pass --output or set output in {spec_url}")
    ctx.log.info("run.start", dataset=spec.dataset, run_date=day, source=source, output=output)
    report = run(
        spec,
        source=source,
        output=output,
        run_date=settings.run_date,
        references=_parse_references(settings.references),
        max_reject_ratio=settings.max_reject_ratio,
        compression=settings.compression,
        sql_url=settings.sql_url,
        sql_table=settings.sql_table,
        log=ctx.log,
    )
    export_metrics(ctx, report)
    ctx.log.info("run.done", seconds=round(report.seconds, 3), **report.to_json())
    if report.written == 0:
        ctx.noop()
