"""Move files between local paths and S3: copy each, check the copy's size, then delete the source.

Re-running after a failure is safe: files already moved are gone from the source, and a
destination that already holds a file's bytes is not copied again.
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
    report = transfer_files(transfers, if_exists=settings.if_exists, delete_source=True)
    record_report(ctx, "move", report)


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="move_files", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
