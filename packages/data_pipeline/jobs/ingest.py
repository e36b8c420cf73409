"""Ingest raw CSV or JSON-lines files into the dataset's Parquet partition dt=<run date>.

Rows are typed by the dataset spec, bad rows go to _rejects/dt=<run date>/rejects.jsonl with a
reason, duplicates are dropped, the spec's transforms and enrichments run, and the partition is
replaced atomically, so re-running a date gives the same bytes. --conf (dag_run.conf) may set
run_date, source, output and the other flags.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from etl_core.jobs import JobContext, run_job

from ._run import PACKAGE, PipelineSettings, execute


class Settings(PipelineSettings):
    pass


def main(settings: Settings, ctx: JobContext) -> None:
    execute(settings, ctx, expect_format=("csv", "jsonl"))


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="ingest", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
