"""Settings shared by the file-operation jobs, and their metrics."""

from __future__ import annotations

from typing import Literal

from etl_core.jobs import JobContext, JobSettings
from pydantic import Field

from ..ops import TransferReport

__all__ = ["FileOpSettings", "record_report"]

PACKAGE = "file_processing"


class FileOpSettings(JobSettings):
    """A source (one file, or a folder / prefix) and an optional name filter."""

    source: str = Field(description="file, folder or S3 prefix to process: /data/in, s3://bucket/landing/")
    pattern: str | None = Field(None, description="only files whose name matches this glob, e.g. '*.csv'")
    recursive: bool = Field(True, description="include files in sub-folders of the source")


class TransferSettings(FileOpSettings):
    """A source, a destination and what to do when the destination exists."""

    dest: str = Field(description="destination file, or folder / prefix (ending with '/' for S3)")
    if_exists: Literal["overwrite", "skip", "fail"] = Field(
        "overwrite", description="when a different destination file exists: overwrite, skip or fail"
    )


def record_report(ctx: JobContext, op: str, report: TransferReport) -> None:
    """Export what an operation did as 'etl_file_ops_*' gauges and a log event."""
    files = ctx.gauge("file_ops_files", "Files handled by the last run, by result.", ["op", "result"])
    files.labels(op=op, result="done").set(len(report.done))
    files.labels(op=op, result="skipped").set(len(report.skipped))
    size = ctx.gauge("file_ops_bytes", "Bytes read and written by the last run.", ["op", "direction"])
    size.labels(op=op, direction="in").set(report.bytes_in)
    size.labels(op=op, direction="out").set(report.bytes_out)
    ctx.log.info(
        f"{op}.done",
        done=len(report.done),
        skipped=len(report.skipped),
        bytes_in=report.bytes_in,
        bytes_out=report.bytes_out,
    )
    if report.files == 0 or not report.done:
        ctx.noop()
