"""Build a dataset's partition from Parquet data (e.g. another dataset's dt=<run date>).

The spec's columns are checked and cast, then its de-duplication, transforms (rename, cast,
filter, derive) and reference-data enrichments run; the result replaces the partition
dt=<run date> atomically. --conf (dag_run.conf) may set run_date, source, output and the rest.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from etl_core.jobs import JobContext, run_job

from ._run import PACKAGE, PipelineSettings, execute


class Settings(PipelineSettings):
    pass


def main(settings: Settings, ctx: JobContext) -> None:
    execute(settings, ctx, expect_format=("parquet",))


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="transform", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
