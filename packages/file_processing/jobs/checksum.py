"""Write a checksum manifest of the files under a source, or verify them against one.

The manifest is in 'sha256sum' format ('<hex>  <relative path>' per line), so it can also be
checked with 'sha256sum -c'. With '--verify' the job fails when a file is missing or differs.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Literal

from etl_core import storage
from etl_core.jobs import JobContext, UsageError, run_job
from pydantic import Field

from ..errors import ChecksumMismatch
from ..ops import checksum_files, format_manifest, parse_manifest, verify_manifest
from ._common import PACKAGE, FileOpSettings


class Settings(FileOpSettings):
    algorithm: Literal["sha256", "sha1", "md5"] = Field("sha256", description="hash algorithm")
    manifest: str | None = Field(None, description="write the manifest here (default: stdout)")
    verify: str | None = Field(None, description="check the files against this manifest instead of writing one")


def _verify(settings: Settings, ctx: JobContext) -> None:
    assert settings.verify is not None
    manifest = parse_manifest(storage.read_bytes(settings.verify).decode(), where=settings.verify)
    if not manifest:
        raise UsageError(f"manifest {settings.verify!r} lists no files")
    ok, bad, missing = verify_manifest(settings.source, manifest, algorithm=settings.algorithm)
    gauge = ctx.gauge("checksum_files", "Files checked against a manifest, by result.", ["result"])
    gauge.labels(result="ok").set(len(ok))
    gauge.labels(result="mismatch").set(len(bad))
    gauge.labels(result="missing").set(len(missing))
    ctx.log.info("checksum.verified", ok=len(ok), mismatched=bad, missing=missing)
    if bad or missing:
        parts = []
        if bad:
            parts.append(f"{len(bad)} differ ({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''})")
        if missing:
            parts.append(f"{len(missing)} missing ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''})")
        raise ChecksumMismatch(f"{settings.source!r} does not match {settings.verify!r}: " + "; ".join(parts))


def main(settings: Settings, ctx: JobContext) -> None:
    if settings.verify and settings.manifest:
        raise UsageError("--verify and --manifest exclude each other: verify a manifest or write one")
    if settings.verify:
        _verify(settings, ctx)
        return
    entries = checksum_files(
        settings.source, pattern=settings.pattern, recursive=settings.recursive, algorithm=settings.algorithm
    )
    text = format_manifest(entries)
    if settings.manifest:
        storage.write_bytes(settings.manifest, text.encode(), content_type="text/plain")
    else:
        sys.stdout.write(text)
    ctx.gauge("checksum_files", "Files checked against a manifest, by result.", ["result"]).labels(result="hashed").set(
        len(entries)
    )
    ctx.log.info("checksum.done", files=len(entries), manifest=settings.manifest)


def run(argv: Sequence[str] | None = None) -> int:
    return run_job(
        package=PACKAGE, job="checksum", settings_cls=Settings, main=main, argv=argv, description=__doc__ or ""
    )


if __name__ == "__main__":
    sys.exit(run())
