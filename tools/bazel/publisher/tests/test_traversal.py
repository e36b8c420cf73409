"""Traversal attempts through every input are refused before any request reaches the store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.bazel.publisher import (
    BuildOutputError,
    InvalidNameError,
    MetadataError,
    PublishOptions,
    publish_build,
)
from tools.bazel.publisher.build import load_build_output
from tools.bazel.publisher.tests.helpers import (
    FakeRegistry,
    Harness,
    dag_source,
    do_rollback,
    write_build,
)

BAD = ["..", "../prod", "%2e%2e", "/abs", "a\\b", "a\x00b", "d\u0435v", "\ufb01le"]


@pytest.mark.parametrize("bad", BAD)
def test_bad_env_reaches_nothing(s3: Harness, tmp_path: Path, bad: str) -> None:
    build = write_build(tmp_path, "file_processing", {"fp_daily": dag_source("fp_daily")})
    loaded = load_build_output(build.dags_dir, package="file_processing")
    registry = FakeRegistry()
    mark = s3.mark()
    with pytest.raises(InvalidNameError, match=r"invalid env"):
        publish_build(loaded, store=s3.store(), env=bad, registry=registry, image_layout=build.layout)
    assert s3.requests_since(mark) == []
    assert registry.pushes == []


@pytest.mark.parametrize("bad", BAD)
def test_bad_package_reaches_nothing(s3: Harness, tmp_path: Path, bad: str) -> None:
    mark = s3.mark()
    with pytest.raises(InvalidNameError, match=r"invalid package"):
        do_rollback(s3, bad, "20261127T042000Z-3f2a9c1d", FakeRegistry())
    with pytest.raises((InvalidNameError, BuildOutputError)):
        build = write_build(tmp_path, "file_processing", {"fp_daily": dag_source("fp_daily")})
        load_build_output(build.dags_dir, package=bad)
    assert s3.requests_since(mark) == []


@pytest.mark.parametrize("bad", ["../../20261127T042000Z-3f2a9c1d", "..", "%2e%2e", "20261127T042000Z-3f2a9c1d/../x"])
def test_bad_release_id_reaches_nothing(s3: Harness, bad: str) -> None:
    mark = s3.mark()
    with pytest.raises(InvalidNameError, match=r"invalid release id"):
        do_rollback(s3, "file_processing", bad, FakeRegistry())
    assert s3.requests_since(mark) == []


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dag_id", "../../data_pipeline/dags/evil", r"invalid dag_id '\.\./\.\./data_pipeline/dags/evil'"),
        ("dag_id", "%2e%2e", r"invalid dag_id '%2e%2e'"),
        ("dag_id", "ev\u0456l", r"invalid dag_id .*non-ASCII"),
        ("dag_id", "\uff45vil", r"invalid dag_id .*NFKC"),
        (
            "file",
            "dags/../../data_pipeline/dags/evil.py",
            r"file 'dags/\.\./\.\./data_pipeline/dags/evil\.py' must be 'dags/evil\.py'",
        ),
        ("file", "/etc/passwd", r"file '/etc/passwd' must be 'dags/evil\.py'"),
        ("file", "dags\\evil.py", r"must be 'dags/evil\.py'"),
    ],
)
def test_traversal_in_the_build_metadata_is_refused(
    s3: Harness, tmp_path: Path, field: str, value: str, message: str
) -> None:
    build = write_build(tmp_path, "file_processing", {"evil": dag_source("evil")})
    meta_path = build.dags_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["dags"][0][field] = value
    meta_path.write_text(json.dumps(meta))
    mark = s3.mark()
    with pytest.raises(BuildOutputError, match=message):
        load_build_output(build.dags_dir, package="file_processing")
    assert s3.requests_since(mark) == []


def test_traversal_in_stored_metadata_is_refused_without_writes(s3: Harness, tmp_path: Path) -> None:
    """A tampered metadata.json in the store cannot steer keys outside the prefix."""
    store = s3.store()
    evil = {
        "schema_version": 1,
        "package": "file_processing",
        "env": "dev",
        "image": {"repository": "r/x", "digest": "sha256:" + "a" * 64, "reference": "r/x@sha256:" + "a" * 64},
        "dags": [{"dag_id": "../../prod/file_processing/dags/x", "file": "dags/x.py", "sha256": "b" * 64}],
    }
    store.put("dev/file_processing/metadata.json", json.dumps(evil).encode())
    build = write_build(tmp_path, "file_processing", {"fp_daily": dag_source("fp_daily")})
    mark = s3.mark()
    with pytest.raises(MetadataError, match=r"metadata.json: invalid dag_id '\.\./\.\./prod/file_processing/dags/x'"):
        publish_build(
            load_build_output(build.dags_dir, package="file_processing"),
            store=s3.store(),
            env="dev",
            registry=FakeRegistry(),
            image_layout=build.layout,
            options=PublishOptions(),
        )
    assert s3.writes_since(mark) == []
