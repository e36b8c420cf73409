"""Releases: --list-releases and --rollback restore a stored release byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.bazel.publisher import (
    DagIdCollisionError,
    ImageError,
    ReleaseNotFoundError,
    list_releases,
)
from tools.bazel.publisher.tests.helpers import (
    FakeRegistry,
    Harness,
    dag_source,
    digest_of,
    do_publish,
    do_rollback,
    write_build,
)
from tools.bazel.storecontract import PackageKeys, write_bundle

PKG = "file_processing"


def test_rollback_restores_the_previous_files_byte_for_byte(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    v1 = write_build(
        tmp_path, PKG, {"fp_a": dag_source("fp_a", 1), "fp_b": dag_source("fp_b", 1), "fp_c": dag_source("fp_c", 1)}
    )
    first = do_publish(harness, v1, registry)
    v1_meta = harness.metadata("dev", PKG)
    v2 = write_build(
        tmp_path,
        PKG,
        {"fp_a": dag_source("fp_a", 2), "fp_b": dag_source("fp_b", 1), "fp_new": dag_source("fp_new", 1)},
        digest=digest_of("image-2"),
    )
    second = do_publish(harness, v2, registry)
    assert harness.read(f"dev/{PKG}/dags/fp_c.py") is None

    result = do_rollback(harness, PKG, str(first.release_id), registry)

    assert result.outcome == "published" and result.action == "rollback"
    assert result.rollback_of == first.release_id
    assert result.plan.changed == ("fp_a",) and result.plan.added == ("fp_c",) and result.plan.removed == ("fp_new",)
    live = {k.rsplit("/", 1)[1]: v for k, v in harness.snapshot().items() if k.startswith(f"dev/{PKG}/dags/")}
    assert live == {f"{d}.py": data for d, data in v1.files.items()}  # byte for byte, nothing else
    meta = harness.metadata("dev", PKG)
    assert meta is not None and v1_meta is not None
    assert meta["dags"] == v1_meta["dags"] and meta["image"] == v1_meta["image"]
    assert meta["release"]["rollback_of"] == first.release_id
    assert meta["release"]["previous"] == second.release_id
    assert meta["release"]["id"].split("-")[1] == str(first.release_id).split("-")[1]  # same content hash
    assert meta["release"]["id"] > str(second.release_id)
    # Deterministic bundles: the rollback's tar has the very bytes of the release it restores.
    assert meta["release"]["bundle"]["sha256"] == v1_meta["release"]["bundle"]["sha256"]
    assert harness.read(f"dev/{PKG}/releases/{result.release_id}.json") == harness.read(f"dev/{PKG}/metadata.json")
    # Rolling back checks the image is still there but never pushes.
    assert registry.checks[-1] == (v1.repository, v1.digest)

    releases = list_releases(harness.store(), PackageKeys(env="dev", package=PKG))
    assert [r.id for r in releases] == [first.release_id, second.release_id, result.release_id]
    assert [r.current for r in releases] == [False, False, True]
    assert all(r.committed for r in releases)
    assert [r.dag_count for r in releases] == [3, 3, 3]
    assert releases[2].rollback_of == first.release_id
    assert releases[1].image_digest == digest_of("image-2")


def test_rollback_to_an_unknown_release_fails_clearly(harness: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    do_publish(harness, write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a")}), registry)
    with pytest.raises(
        ReleaseNotFoundError,
        match=(
            r"release '20200101T000000Z-00000000' of package 'file_processing' in env 'dev' is not stored "
            r"\(.*/dev/file_processing/releases/20200101T000000Z-00000000\.json\); see --list-releases"
        ),
    ):
        do_rollback(harness, PKG, "20200101T000000Z-00000000", registry)


def test_rollback_needs_the_image_in_the_registry(harness: Harness, tmp_path: Path) -> None:
    registry = FakeRegistry()
    first = do_publish(harness, write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a", 1)}), registry)
    do_publish(harness, write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a", 2)}, digest=digest_of("2")), registry)
    registry.images.clear()  # garbage-collected by the registry
    before = harness.snapshot()
    with pytest.raises(ImageError, match=r"is not in the registry and pushing is off"):
        do_rollback(harness, PKG, str(first.release_id), registry)
    assert harness.snapshot() == before


def test_rollback_refuses_a_damaged_release(harness: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    first = do_publish(harness, write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a", 1)}), registry)
    do_publish(harness, write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a", 2)}), registry)
    key = f"dev/{PKG}/releases/{first.release_id}.tar"
    good = harness.read(key)
    harness.store().put(key, write_bundle({"fp_a": b"tampered = 1\n"}))
    with pytest.raises(
        ReleaseNotFoundError,
        match=(
            r"release '.*' is damaged: .*releases/.*\.tar has sha256 '[0-9a-f]{64}' and \d+ bytes, its metadata says"
        ),
    ):
        do_rollback(harness, PKG, str(first.release_id), registry)
    harness.store().delete(key)
    with pytest.raises(ReleaseNotFoundError, match=r"is incomplete: .*releases/.*\.tar is missing"):
        do_rollback(harness, PKG, str(first.release_id), registry)
    assert good is not None
    harness.store().put(key, good)
    assert do_rollback(harness, PKG, str(first.release_id), registry).outcome == "published"


def test_rollback_runs_the_collision_guard(harness: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    first = do_publish(
        harness, write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a"), "fp_b": dag_source("b")}), registry
    )
    do_publish(harness, write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a")}), registry)
    do_publish(harness, write_build(tmp_path, "data_pipeline", {"fp_b": dag_source("taken")}), registry)
    with pytest.raises(DagIdCollisionError, match=r"dag_id 'fp_b' is owned by package 'data_pipeline'"):
        do_rollback(harness, PKG, str(first.release_id), registry)


def test_list_releases_marks_unfinished_releases(harness: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    first = do_publish(harness, write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a")}), registry)
    meta = json.loads(harness.read(f"dev/{PKG}/metadata.json") or b"")
    meta["release"]["id"] = "20990101T000000Z-12345678"
    meta["release"]["previous"] = first.release_id
    harness.store().put(f"dev/{PKG}/releases/20990101T000000Z-12345678.json", json.dumps(meta).encode())
    # An orphan bundle (its publish failed before the .json) is not a release.
    harness.store().put(f"dev/{PKG}/releases/20990102T000000Z-12345678.tar", b"x" * 512)
    harness.store().put(f"dev/{PKG}/releases/20990103T000000Z-12345678.json", b"{not json")
    releases = list_releases(harness.store(), PackageKeys(env="dev", package=PKG))
    assert [(r.id, r.current, r.committed) for r in releases] == [
        (first.release_id, True, True),
        ("20990101T000000Z-12345678", False, False),
        ("20990103T000000Z-12345678", False, False),
    ]
    assert releases[2].problem is not None and "not valid UTF-8 JSON" in releases[2].problem
