"""Convert CSV files to Parquet or Parquet files to CSV, streamed (local paths or S3).

The target format comes from '--to' or else from the destination's suffix. Column types are
inferred from the first 16 MiB of a CSV unless '--column-types id=int64,note=string' pins them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Literal

from etl_core.jobs import JobContext, UsageError, run_job
from pydantic import Field, field_validator

from ..convert import ConvertOptions, convert_files, detect_format, parse_column_types
from ..errors import ConversionError
from ._common import PACKAGE, FileOpSettings, record_report


class Settings(FileOpSettings):
    dest: str = Field(description="output file, or folder / prefix ending with '/'")
    to: Literal["csv", "parquet"] | None = Field(None, description="target format (default: from --dest's suffix)")
    delimiter: str = Field(",", min_length=1, max_length=1, description="CSV field delimiter")
    column_types: str | None = Field(None, description="CSV column types, e.g. 'id=int64,amount=float64,day=date'")
    compression: Literal["zstd", "snappy", "gzip", "none"] = Field("zstd", description="Parquet compression codec")

    @field_validator("column_types")
    @classmethod
    def _check_types(cls, value: str | None) -> str | None:
        parse_column_types(value)
        return value


def main(settings: Settings, ctx: JobContext) -> None:
    target = settings.to or _target_format(settings.source, settings.dest)
    options = ConvertOptions(
        delimiter=settings.delimiter,
        column_types=parse_column_types(settings.column_types),
        compression=settings.compression,
    )
    report, rows = convert_files(
        settings.source, settings.dest, to=str(target), pattern=settings.pattern, options=options
    )
    ctx.gauge("file_ops_rows", "Rows converted by the last run.", ["op"]).labels(op="convert").set(rows)
    record_report(ctx, "convert", report)


def _target_format(source: str, dest: str) -> str:
    """The format 'dest''s suffix names, or for a folder the other format than 'source''s."""
    for url, flip in ((dest, False), (source, True)):
        try:
            found = detect_format(url)
        except ConversionError:
            continue
        return {"csv": "parquet", "parquet": "csv"}[found] if flip else found
    raise UsageError(
        f"cannot tell the target format from --dest {dest!r} or --source {source!r}: pass --to csv|parquet"
    )


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="convert", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
