"""gunzip '*.gz' files ('x.gz' -> 'x') on local paths or S3; a corrupt file fails the job."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Literal

from etl_core.jobs import JobContext, run_job
from pydantic import Field

from ..ops import decompress_files
from ._common import PACKAGE, FileOpSettings, record_report


class Settings(FileOpSettings):
    pattern: str | None = Field("*.gz", description="only files whose name matches this glob")
    dest: str | None = Field(None, description="destination file or folder (default: beside each source)")
    delete_source: bool = Field(False, description="delete each .gz once its content is written")
    if_exists: Literal["overwrite", "skip", "fail"] = Field("overwrite", description="when the output exists")


def main(settings: Settings, ctx: JobContext) -> None:
    report = decompress_files(
        settings.source,
        settings.dest,
        pattern=settings.pattern,
        recursive=settings.recursive,
        delete_source=settings.delete_source,
        if_exists=settings.if_exists,
    )
    record_report(ctx, "decompress", report)


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="decompress", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
