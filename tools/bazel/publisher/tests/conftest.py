"""Fixtures: one moto server per test module (a fresh bucket per test), local folder stores."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from tools.bazel.publisher.tests.helpers import FakeRegistry, Harness
from tools.testing.servers import MotoServer, moto_server


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with moto_server(log_dir=tmp_path_factory.mktemp("moto")) as server:
        yield server


def _s3_harness(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Harness:
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"dags-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto.endpoint_url, region_name="us-east-1").create_bucket(Bucket=bucket)
    return Harness(kind="s3", url=f"s3://{bucket}", moto=moto, bucket=bucket)


def _file_harness(tmp_path: Path) -> Harness:
    root = tmp_path / "dag-store"
    return Harness(kind="file", url=root.as_uri(), root=root)


@pytest.fixture(params=["s3", "file"])
def harness(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """A fresh, empty DAG store: an S3 bucket on a real moto server, or a local folder."""
    if request.param == "s3":
        return _s3_harness(request.getfixturevalue("moto"), monkeypatch)
    return _file_harness(tmp_path)


@pytest.fixture
def s3(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """A fresh bucket on the moto server (for tests that read moto's request log)."""
    return _s3_harness(moto, monkeypatch)


@pytest.fixture
def registry() -> FakeRegistry:
    return FakeRegistry()
