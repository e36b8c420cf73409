"""Test support shared by the ETL packages (file_processing, data_pipeline, observability).

A package's ``tests/conftest.py`` takes what it needs from here::

    from tools.testing.package_fixtures import last_line, log_events, moto, run_module, s3_fixture

    s3 = s3_fixture("dp")  # a fresh bucket dp-<random> per test

- ``moto``: one real moto S3 server (HTTP, on a free loopback port) per test session.
- ``s3_fixture(prefix)``: a fixture giving each test a fresh bucket ``<prefix>-<random>`` on that
  server, with the ``AWS_*`` variables pointing boto3 (and the jobs) at it; the prefix tells whose
  test left a bucket behind in a server log.
- ``run_module``: ``python -m <module> args`` in a child process, as a pod runs a job.
- ``last_line`` / ``log_events``: the last non-empty line of an output, the JSON log events of stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from etl_core import storage as _storage

from tools.testing.servers import MotoServer, moto_server

__all__ = ["PACKAGES", "last_line", "log_events", "moto", "run_module", "s3_fixture"]

PACKAGES = Path(__file__).resolve().parents[2] / "packages"


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


def s3_fixture(prefix: str) -> Callable[..., Iterator[SimpleNamespace]]:
    """A function-scoped ``s3`` fixture whose buckets are named ``<prefix>-<12 hex digits>``."""

    @pytest.fixture
    def s3(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
        """A fresh bucket on the moto server; AWS_* env vars point boto3 (and the jobs) at it."""
        for key, value in moto.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        _storage.reset_clients()
        client = boto3.client("s3", endpoint_url=moto.endpoint_url, region_name="us-east-1")
        bucket = f"{prefix}-{uuid.uuid4().hex[:12]}"
        client.create_bucket(Bucket=bucket)

        def keys(key_prefix: str = "") -> list[str]:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix)
            return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

        def get(key: str) -> bytes:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()

        def put(key: str, data: bytes) -> None:
            client.put_object(Bucket=bucket, Key=key, Body=data)

        yield SimpleNamespace(
            server=moto,
            client=client,
            bucket=bucket,
            url=lambda key: f"s3://{bucket}/{key}",
            keys=keys,
            get=get,
            put=put,
            env=moto.env(),
        )
        _storage.reset_clients()

    return s3


def run_module(module: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m module args`` in a child process, as a pod runs it.

    The child sees the packages folder on PYTHONPATH and none of this process's ``AWS_*`` or
    ``PUSHGATEWAY*`` variables (pass them in ``env``); great-expectations' analytics are off.
    """
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PUSHGATEWAY"))}
    child_env["PYTHONPATH"] = os.pathsep.join([str(PACKAGES), child_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    child_env["GX_ANALYTICS_ENABLED"] = "false"
    child_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, env=child_env, timeout=300, check=False
    )


def last_line(text: str) -> str:
    """The last non-empty line of ``text`` (a job's one-line error is the last line of stderr)."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def log_events(stderr: str) -> list[dict]:
    """The JSON log events a job wrote to stderr, in order."""
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
