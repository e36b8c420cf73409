"""gzip files ('x' -> 'x.gz') on local paths or S3; the output bytes depend only on the input.

Without '--dest' each '.gz' goes beside its source. '--delete-source' removes each source
after its compressed copy was published.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Literal

from etl_core.jobs import JobContext, run_job
from pydantic import Field

from ..ops import compress_files
from ._common import PACKAGE, FileOpSettings, record_report


class Settings(FileOpSettings):
    dest: str | None = Field(None, description="destination file or folder (default: beside each source)")
    level: int = Field(6, ge=1, le=9, description="gzip compression level 1 (fast) .. 9 (small)")
    delete_source: bool = Field(False, description="delete each source once its .gz is written")
    if_exists: Literal["overwrite", "skip", "fail"] = Field("overwrite", description="when the output exists")


def main(settings: Settings, ctx: JobContext) -> None:
    report = compress_files(
        settings.source,
        settings.dest,
        pattern=settings.pattern,
        recursive=settings.recursive,
        level=settings.level,
        delete_source=settings.delete_source,
        if_exists=settings.if_exists,
    )
    record_report(ctx, "compress", report)


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="compress", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
