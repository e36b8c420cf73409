"""Fixtures: a real moto S3 server with a fresh bucket per test (buckets dp-*), and helpers to
run the package's jobs; all shared with the other packages (tools/testing/package_fixtures.py)."""

from __future__ import annotations

from tools.testing.package_fixtures import (
    last_line,
    log_events,
    moto,
    run_module,
    s3_fixture,
)

__all__ = ["last_line", "log_events", "moto", "run_module", "s3"]

s3 = s3_fixture("dp")
