"""List the files under a local folder or S3 prefix as JSON (stdout, or a file with --output)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from etl_core import storage
from etl_core.jobs import JobContext, run_job
from pydantic import Field

from ..ops import list_source
from ._common import PACKAGE, FileOpSettings


class Settings(FileOpSettings):
    output: str | None = Field(None, description="write the listing (a JSON array) here instead of stdout")


def main(settings: Settings, ctx: JobContext) -> None:
    files = list_source(settings.source, pattern=settings.pattern, recursive=settings.recursive)
    listing = [info.to_json() for info in files]
    ctx.gauge("file_ops_files", "Files handled by the last run, by result.", ["op", "result"]).labels(
        op="list", result="done"
    ).set(len(files))
    ctx.gauge("file_ops_bytes", "Bytes read and written by the last run.", ["op", "direction"]).labels(
        op="list", direction="in"
    ).set(sum(info.size for info in files))
    text = json.dumps(listing, indent=2, sort_keys=True) + "\n"
    if settings.output:
        storage.write_bytes(settings.output, text.encode(), content_type="application/json")
    else:
        sys.stdout.write(text)
    ctx.log.info("list.done", files=len(files), source=settings.source)
    if not files:
        ctx.noop()


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="list_files", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
