"""Copy files between local paths and S3 (S3 to S3 server-side), keeping their relative layout.

A destination that already holds the same bytes is skipped, so a re-run copies only what changed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from etl_core.jobs import JobContext, run_job

from ..ops import plan, transfer_files
from ._common import PACKAGE, TransferSettings, record_report


class Settings(TransferSettings):
    pass


def main(settings: Settings, ctx: JobContext) -> None:
    transfers = plan(settings.source, settings.dest, pattern=settings.pattern, recursive=settings.recursive)
    report = transfer_files(transfers, if_exists=settings.if_exists)
    record_report(ctx, "copy", report)


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="copy_files", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
