"""etl_core.storage on local disk and on a real moto S3 server."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from etl_core import storage
from etl_core.errors import EtlCoreError, NotFoundError, StorageError
from tools.testing.package_fixtures import moto, s3_fixture  # noqa: F401 - pytest fixtures

s3 = s3_fixture("st")


@pytest.fixture
def bucket(s3: SimpleNamespace) -> str:
    """A fresh bucket on the shared moto server, AWS_* pointing at it, storage clients reset."""
    return str(s3.bucket)


def test_errors_are_etl_core_errors() -> None:
    assert issubclass(NotFoundError, StorageError) and issubclass(StorageError, EtlCoreError)


def test_local_write_list_read_and_hidden_files_skipped(tmp_path: Path) -> None:
    storage.write_bytes(str(tmp_path / "a" / "x.csv"), b"1,2\n")
    storage.write_bytes(str(tmp_path / "a" / "y.txt"), b"hello")
    (tmp_path / "a" / ".x.csv.123.tmp").write_bytes(b"partial")
    names = [info.name for info in storage.list_files(str(tmp_path / "a"))]
    assert names == ["x.csv", "y.txt"]
    assert [i.name for i in storage.list_files(f"file://{tmp_path}/a", pattern="*.csv")] == ["x.csv"]
    assert storage.read_bytes(str(tmp_path / "a" / "y.txt")) == b"hello"
    assert storage.stat(str(tmp_path / "a" / "x.csv")).size == 4


def test_local_missing_and_bad_locations(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match=r"no such file or directory: '.*/missing'"):
        storage.list_files(str(tmp_path / "missing"))
    assert not storage.exists(str(tmp_path / "missing"))
    with pytest.raises(StorageError, match=r"unsupported location 'gs://b/k'"):
        storage.read_bytes("gs://b/k")
    with pytest.raises(StorageError, match=r"unknown hash algorithm 'nope'"):
        storage.digest(str(tmp_path), "nope")


def test_staged_output_publishes_nothing_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError, match="boom"), storage.staged_output(str(target)) as local:
        local.write_bytes(b"half")
        raise RuntimeError("boom")
    assert not target.exists()
    with storage.staged_output(str(target)) as local:
        local.write_bytes(b"whole")
    assert target.read_bytes() == b"whole"


def test_s3_roundtrip_copy_digest_and_delete(bucket: str, tmp_path: Path) -> None:
    src = f"s3://{bucket}/in/day=1/a.csv"
    storage.write_bytes(src, b"id\n1\n")
    storage.write_bytes(f"s3://{bucket}/in/.staging/tmp", b"x")
    assert [i.url for i in storage.list_files(f"s3://{bucket}/in")] == [src]
    assert storage.list_folders(f"s3://{bucket}/in") == ["day=1"]
    storage.copy(src, f"s3://{bucket}/out/a.csv")
    storage.copy(src, str(tmp_path / "local.csv"))
    assert (tmp_path / "local.csv").read_bytes() == b"id\n1\n"
    assert storage.digest(f"s3://{bucket}/out/a.csv", "sha256") == storage.digest(str(tmp_path / "local.csv"))
    storage.delete(src)
    assert not storage.exists(src)
    with pytest.raises(NotFoundError, match=rf"no such object: 's3://{bucket}/in/day=1/a.csv'"):
        storage.read_bytes(src)
    with pytest.raises(NotFoundError, match=r"nothing at 's3://.*/nope'"):
        storage.list_files(f"s3://{bucket}/nope")
