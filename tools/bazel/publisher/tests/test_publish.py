"""Publishing against a real moto S3 server over HTTP and a local folder store."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from tools.bazel.publisher import (
    BuildOutputError,
    DagIdCollisionError,
    DagSyntaxError,
    ImageError,
    MassDeleteError,
    MetadataError,
    PackageKeys,
    UsageError,
    list_releases,
)
from tools.bazel.publisher.build import load_build_output
from tools.bazel.publisher.publish import decommission_package
from tools.bazel.publisher.tests.helpers import (
    FakeRegistry,
    Harness,
    bundle_files,
    dag_source,
    digest_of,
    do_publish,
    write_build,
)
from tools.bazel.storecontract.limits import LimitError

PKG = "file_processing"
DAGS = ["fp_daily_profile", "fp_hourly_ingest", "fp_weekly_report"]


def v1(tmp_path: Path, names: list[str] = DAGS, **kwargs: object):
    return write_build(tmp_path, PKG, {d: dag_source(d, 1) for d in names}, **kwargs)  # type: ignore[arg-type]


def test_first_publish_writes_release_then_commits(harness: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    build = v1(tmp_path)
    mark = harness.mark()
    result = do_publish(harness, build, registry, image_tag="v1.0.0")

    assert result.outcome == "published"
    assert result.plan.added == tuple(DAGS)
    assert registry.pushes == [(build.repository, build.digest, ("v1.0.0",))]
    rid = result.release_id
    assert rid is not None and rid.endswith("-" + rid.split("-")[1]) and len(rid) == len("20261127T042000Z-3f2a9c1d")
    for dag_id, data in build.files.items():
        assert harness.read(f"dev/{PKG}/dags/{dag_id}.py") == data
    bundle = harness.read(f"dev/{PKG}/releases/{rid}.tar")
    assert bundle is not None and bundle_files(bundle) == {f"dags/{d}.py": data for d, data in build.files.items()}
    meta_bytes = harness.read(f"dev/{PKG}/metadata.json")
    assert meta_bytes is not None and meta_bytes.endswith(b"}\n")
    meta = json.loads(meta_bytes)
    assert meta["env"] == "dev"
    assert meta["release"] == {
        "id": rid,
        "previous": None,
        "published_at": meta["release"]["published_at"],
        "image_tag": "v1.0.0",
        "bundle": {"key": f"releases/{rid}.tar", "sha256": hashlib.sha256(bundle).hexdigest(), "size": len(bundle)},
    }
    assert [d["dag_id"] for d in meta["dags"]] == DAGS
    assert harness.read(f"dev/{PKG}/releases/{rid}.json") == meta_bytes
    assert (
        rid.split("-")[1]
        == hashlib.sha256(
            json.dumps(
                {k: v for k, v in meta.items() if k not in ("env", "release")}, sort_keys=True, indent=2
            ).encode()
            + b"\n"
        ).hexdigest()[:8]
    )
    assert set(harness.snapshot()) >= {f"dev/{PKG}/metadata.json"}

    if harness.kind == "s3":
        writes = harness.writes_since(mark)
        live = [("PUT", f"dev/{PKG}/dags/{d}.py") for d in DAGS]
        rel = [("PUT", f"dev/{PKG}/releases/{rid}.tar")]
        # moto logs a request after answering it, from parallel handler threads, so its log shows
        # which writes happened, not their order; the order is checked through on_event (file://
        # tests and the failure-injection tests).
        assert sorted(writes) == sorted(
            [*rel, *live, ("PUT", f"dev/{PKG}/releases/{rid}.json"), ("PUT", f"dev/{PKG}/metadata.json")]
        )
        head = harness.store().head(f"dev/{PKG}/dags/{DAGS[0]}.py")
        assert head is not None and head.sha256 == hashlib.sha256(build.files[DAGS[0]]).hexdigest()


def test_republish_unchanged_makes_zero_writes(harness: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    build = v1(tmp_path)
    do_publish(harness, build, registry)
    before = harness.snapshot()
    mark = harness.mark()

    result = do_publish(harness, v1(tmp_path), registry)

    assert result.outcome == "noop"
    assert result.writes == {"put": 0, "copy": 0, "delete": 0}
    if harness.kind == "s3":
        requests = harness.requests_since(mark)
        assert [m for m, _ in requests if m != "GET"] == []  # zero PUTs, zero DELETEs
        assert len(requests) == 1, requests  # one GET of metadata.json
    assert harness.snapshot() == before


def test_one_changed_dag_is_one_upload_plus_metadata(harness: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    first = do_publish(harness, v1(tmp_path), registry)
    changed = {d: dag_source(d, 1) for d in DAGS}
    changed["fp_hourly_ingest"] = dag_source("fp_hourly_ingest", 2)
    build = write_build(tmp_path, PKG, changed)
    events: list[tuple[str, str | None]] = []
    mark = harness.mark()

    result = do_publish(harness, build, registry, on_event=lambda e: events.append((e.kind, e.key)))
    requests = harness.requests_since(mark) if harness.kind == "s3" else []

    rid = result.release_id
    assert result.plan.changed == ("fp_hourly_ingest",)
    assert result.plan.unchanged == ("fp_daily_profile", "fp_weekly_report")
    uploads = [k or "" for kind, k in events if kind == "put"]
    # In this order: the changed DAG's live key, the bundle, the release's metadata, metadata.json.
    assert uploads == [
        f"dev/{PKG}/dags/fp_hourly_ingest.py",
        f"dev/{PKG}/releases/{rid}.tar",
        f"dev/{PKG}/releases/{rid}.json",
        f"dev/{PKG}/metadata.json",
    ]
    assert [kind for kind, _ in events if kind in ("copy", "delete")] == []
    assert result.writes == {"put": 4, "copy": 0, "delete": 0}
    bundle = harness.read(f"dev/{PKG}/releases/{rid}.tar")
    assert bundle is not None and bundle_files(bundle) == {f"dags/{d}.py": src.encode() for d, src in changed.items()}
    assert harness.read(f"dev/{PKG}/dags/fp_hourly_ingest.py") == changed["fp_hourly_ingest"].encode()
    meta = harness.metadata("dev", PKG)
    assert meta is not None and meta["release"]["previous"] == first.release_id
    if harness.kind == "s3":
        # The 4 object writes; nothing else.
        prefix = f"/{harness.bucket}/"
        writes = [(m, p[len(prefix) :]) for m, p in requests if m in ("PUT", "DELETE")]
        assert sorted(writes) == sorted([("PUT", k) for k in uploads])
        # Reads: one GET of metadata.json (the plan, and the ETag the commit's If-Match uses). No
        # listing, and no other package is read: this release introduces no dag_id.
        reads = [(m, p[len(prefix) :]) for m, p in requests if m not in ("PUT", "DELETE")]
        assert reads == [("GET", f"dev/{PKG}/metadata.json")], requests
        assert len(requests) == 5


def test_removed_dag_is_pruned_after_the_commit(harness: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    do_publish(harness, v1(tmp_path), registry)
    mark = harness.mark()
    events: list[tuple[str, str | None]] = []
    result = do_publish(harness, v1(tmp_path, DAGS[:2]), registry, on_event=lambda e: events.append((e.kind, e.key)))

    assert result.plan.removed == ("fp_weekly_report",)
    commit = events.index(("put", f"dev/{PKG}/metadata.json"))
    assert events.index(("delete", f"dev/{PKG}/dags/fp_weekly_report.py")) > commit
    assert harness.read(f"dev/{PKG}/dags/fp_weekly_report.py") is None
    meta = harness.metadata("dev", PKG)
    assert meta is not None and [d["dag_id"] for d in meta["dags"]] == DAGS[:2]
    bundle = harness.read(f"dev/{PKG}/releases/{result.release_id}.tar")
    assert bundle is not None and sorted(bundle_files(bundle)) == [f"dags/{d}.py" for d in DAGS[:2]]
    if harness.kind == "s3":
        writes = harness.writes_since(mark)
        assert ("PUT", f"dev/{PKG}/metadata.json") in writes
        assert ("DELETE", f"dev/{PKG}/dags/fp_weekly_report.py") in writes


def test_mass_delete_is_refused_unless_allowed(harness: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    names = [*DAGS, "fp_monthly"]
    do_publish(harness, v1(tmp_path, names), registry)
    before = harness.snapshot()
    mark = harness.mark()

    with pytest.raises(
        MassDeleteError,
        match=r"refusing to remove 3 of the 4 DAGs of package 'file_processing' "
        r"in env 'dev' \(fp_hourly_ingest, fp_monthly, fp_weekly_report\).*--allow-mass-delete",
    ):
        do_publish(harness, v1(tmp_path, ["fp_daily_profile"]), registry)
    assert harness.snapshot() == before
    if harness.kind == "s3":
        assert harness.writes_since(mark) == []

    half = do_publish(harness, v1(tmp_path, names[:2]), registry)  # exactly half is allowed
    assert half.plan.removed == ("fp_monthly", "fp_weekly_report")
    allowed = do_publish(harness, v1(tmp_path, ["fp_daily_profile"]), registry, allow_mass_delete=False)
    assert allowed.plan.removed == ("fp_hourly_ingest",)
    do_publish(harness, v1(tmp_path, ["zz_new"]), registry, allow_mass_delete=True)
    assert harness.read(f"dev/{PKG}/dags/fp_daily_profile.py") is None


def test_dag_id_owned_by_another_package_is_refused_before_any_write(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    do_publish(harness, write_build(tmp_path, "data_pipeline", {"shared_daily": dag_source("shared_daily")}), registry)
    before = harness.snapshot()
    mark = harness.mark()
    pushes = len(registry.pushes)

    build = write_build(tmp_path, PKG, {"fp_daily_profile": dag_source("a"), "shared_daily": dag_source("b")})
    with pytest.raises(
        DagIdCollisionError,
        match=(
            r"package 'file_processing' cannot publish in env 'dev': dag_id 'shared_daily' is owned by "
            r"package 'data_pipeline' \(.*dev/data_pipeline/metadata.json\).*globally unique"
        ),
    ):
        do_publish(harness, build, registry)

    assert harness.snapshot() == before
    assert len(registry.pushes) == pushes  # refused before the image step too
    if harness.kind == "s3":
        assert harness.writes_since(mark) == []
    # Another env is another namespace: the same dag_id is fine there.
    do_publish(harness, build, registry, env="prod")
    # A decommissioned package (REMOVED marker) no longer owns its dag ids.
    harness.store().put("dev/data_pipeline/REMOVED", b"decommissioned\n")
    assert do_publish(harness, build, registry).outcome == "published"


def test_republish_with_no_new_dag_id_reads_no_other_package(
    s3: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    do_publish(s3, write_build(tmp_path, "data_pipeline", {"dp_daily": dag_source("dp_daily")}), registry)
    do_publish(s3, write_build(tmp_path, "observability", {"obs_daily": dag_source("obs_daily")}), registry)
    first_mark = s3.mark()
    do_publish(s3, v1(tmp_path), registry)  # first publish: every id is new, the others are read
    first = s3.requests_since(first_mark)
    assert any("/dev/data_pipeline/metadata.json" in p for _, p in first), first

    changed = {d: dag_source(d, 1) for d in DAGS}
    changed["fp_daily_profile"] = dag_source("fp_daily_profile", 2)
    mark = s3.mark()
    result = do_publish(s3, write_build(tmp_path, PKG, changed), registry)  # same ids, one changed

    assert result.outcome == "published"
    requests = s3.requests_since(mark)
    others = [(m, p) for m, p in requests if "data_pipeline" in p or "observability" in p]
    assert others == [], requests
    env_listings = [p for _, p in requests if "delimiter" in p]
    assert env_listings == [], requests  # no listing of dev/ to find the other packages


def test_new_dag_id_owned_by_another_package_is_refused_on_republish(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    do_publish(harness, v1(tmp_path), registry)
    do_publish(harness, write_build(tmp_path, "data_pipeline", {"dp_daily": dag_source("dp_daily")}), registry)
    before = harness.snapshot()
    mark = harness.mark()

    build = v1(tmp_path, [*DAGS, "dp_daily"])  # our ids plus one that data_pipeline owns
    with pytest.raises(
        DagIdCollisionError,
        match=(
            r"package 'file_processing' cannot publish in env 'dev': dag_id 'dp_daily' is owned by "
            r"package 'data_pipeline' \(.*dev/data_pipeline/metadata.json\)"
        ),
    ):
        do_publish(harness, build, registry)

    assert harness.snapshot() == before
    if harness.kind == "s3":
        assert harness.writes_since(mark) == []
        assert any("/dev/data_pipeline/metadata.json" in p for _, p in harness.requests_since(mark))


def test_dry_run_prints_the_plan_and_writes_nothing(harness: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    do_publish(harness, v1(tmp_path), registry)
    before = harness.snapshot()
    pushes = len(registry.pushes)
    new = {d: dag_source(d, 1) for d in DAGS[:2]}
    new["fp_daily_profile"] = dag_source("fp_daily_profile", 2)
    new["fp_brand_new"] = dag_source("fp_brand_new")
    build = write_build(tmp_path, PKG, new, digest=digest_of("image-2"))
    mark = harness.mark()

    result = do_publish(harness, build, registry, dry_run=True)

    assert result.outcome == "dry-run"
    assert result.plan.added == ("fp_brand_new",)
    assert result.plan.changed == ("fp_daily_profile",)
    assert result.plan.removed == ("fp_weekly_report",)
    assert result.plan.unchanged == ("fp_hourly_ingest",)
    assert result.plan.digest_before == digest_of(PKG + "-image-1")
    assert result.plan.digest_after == digest_of("image-2")
    assert result.to_json()["image"]["digest_after"] == digest_of("image-2")
    assert harness.snapshot() == before
    assert len(registry.pushes) == pushes and registry.checks == []
    if harness.kind == "s3":
        assert harness.writes_since(mark) == []


def test_syntax_error_is_refused_with_file_and_line(tmp_path: Path) -> None:
    bad = "x = 1\ndef broken(:\n    pass\n"
    build = write_build(tmp_path, PKG, {"fp_daily_profile": dag_source("a"), "fp_broken": bad})
    with pytest.raises(DagSyntaxError, match=r"fp_broken\.py: line 2: .*fix the DAG spec"):
        load_build_output(build.dags_dir, package=PKG, image_digest_file=build.digest_file)


def test_syntax_error_writes_nothing(s3: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    build = write_build(tmp_path, PKG, {"fp_nul": b"x = 1\x00\n"})
    mark = s3.mark()
    with pytest.raises(DagSyntaxError, match=r"fp_nul\.py: line 1: contains null bytes \(at byte 5\)"):
        do_publish(s3, build, registry)
    assert s3.requests_since(mark) == [] and registry.pushes == []


# The header dagrender wrote before: on line 1, `coding:dag.geocoding_daily` is a PEP 263 declaration.
_OLD_GEOCODING_HEADER = (
    b"# generated from packages/geocoding/dags/geocoding_daily.yaml by "
    b"//packages/geocoding:dag.geocoding_daily; do not edit\n"
)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _OLD_GEOCODING_HEADER + b"x = 1\n",
            r"fp_a\.py: line 1: Python cannot import this file: unknown encoding: dag\.geocoding_daily; "
            r"a comment with 'coding:' or 'coding=' on line 1 or 2 declares the file's encoding \(PEP 263\)",
        ),
        (
            b"#!/usr/bin/env python3\n# coding=latin-1\nx = '\xe9'\n",
            r"fp_a\.py: line 2: declares the encoding 'iso-8859-1' \(PEP 263\), so Python would read the file "
            r"differently than UTF-8 tools do; rebuild the package with the current dagrender",
        ),
        (
            b"x = 1\ny = '\xff'\n",
            r"fp_a\.py: line 2: not valid UTF-8 at byte 11, so Python cannot import it; refusing to publish$",
        ),
    ],
    ids=["unknown-encoding", "latin-1", "not-utf-8"],
)
def test_the_syntax_check_compiles_bytes_as_python_imports_them(tmp_path: Path, data: bytes, message: str) -> None:
    # compile() of the decoded str accepts the first two (they are valid UTF-8): what the check did before.
    build = write_build(tmp_path, PKG, {"fp_a": data})
    with pytest.raises(DagSyntaxError, match=message):
        load_build_output(build.dags_dir, package=PKG, image_digest_file=build.digest_file)


def test_utf8_with_or_without_bom_and_a_utf8_declaration_pass(tmp_path: Path) -> None:
    dags = {
        "fp_bom": b"\xef\xbb\xbfx = 'caf\xc3\xa9'\n",
        "fp_declared": b"# -*- coding: utf-8 -*-\nx = 'caf\xc3\xa9'\n",
        "fp_plain": "x = 'café'\n".encode(),
    }
    build = write_build(tmp_path, PKG, dags)
    assert sorted(load_build_output(build.dags_dir, package=PKG, image_digest_file=build.digest_file).dags) == sorted(
        dags
    )


def test_image_missing_with_no_push_fails_before_store_writes(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    build = v1(tmp_path)
    mark = harness.mark()
    with pytest.raises(
        ImageError,
        match=(
            r"image 'registry.example.com/etl/file_processing@sha256:[0-9a-f]{64}' is not in the registry "
            r"and pushing is off"
        ),
    ):
        do_publish(harness, build, registry, push=False)
    assert registry.checks == [(build.repository, build.digest)]
    assert harness.snapshot() == {}
    if harness.kind == "s3":
        assert harness.writes_since(mark) == []
    registry.images.add((build.repository, build.digest))  # pushed by someone else
    assert do_publish(harness, build, registry, push=False).image.pushed is False  # type: ignore[union-attr]


def test_pushed_digest_must_match_the_dags(harness: Harness, tmp_path: Path) -> None:
    build = v1(tmp_path)
    index = build.layout / "index.json"
    index.write_text(index.read_text().replace(build.digest, digest_of("other")))
    with pytest.raises(ImageError, match=r"pushed .* as 'sha256:[0-9a-f]{64}' but the DAGs pin"):
        do_publish(harness, build, FakeRegistry())
    assert harness.snapshot() == {}


def test_repository_flag_is_the_prefix_the_dags_pin(harness: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    build = v1(tmp_path)  # rendered for registry.example.com/etl/file_processing
    do_publish(harness, build, registry, repository="registry.example.com/etl")
    assert registry.pushes[-1][0] == "registry.example.com/etl/file_processing"


def test_repository_flag_must_match_the_rendered_dags(harness: Harness, registry: FakeRegistry, tmp_path: Path) -> None:
    repository = "other.example/etl"
    with pytest.raises(
        UsageError,
        match=rf"^invalid flag: --repository/IMAGE_REPOSITORY {repository!r} \(the registry "
        r"prefix\): the DAGs pin 'registry.example.com/etl/file_processing' \(metadata.json "
        r"image.repository\), built with --//tools/bazel:image_repository=registry.example.com/etl; "
        rf"rebuild with --//tools/bazel:image_repository={repository}, or unset IMAGE_REPOSITORY$",
    ):
        do_publish(harness, v1(tmp_path), registry, repository=repository)
    assert harness.snapshot() == {}


def test_repository_flag_is_never_the_packages_repository(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    # IMAGE_REPOSITORY has one meaning, the prefix: the per-package repository is refused with the fix.
    with pytest.raises(
        UsageError,
        match=r"^invalid flag: --repository/IMAGE_REPOSITORY "
        r"'registry.example.com/etl/file_processing' is the package's repository; it means the "
        r"registry prefix: set it to 'registry.example.com/etl' \(images live at <prefix>/<package>\)$",
    ):
        do_publish(harness, v1(tmp_path), registry, repository="registry.example.com/etl/file_processing")
    assert harness.snapshot() == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"package": "data_pipeline"}, r"package 'data_pipeline' is not 'file_processing'"),
        ({"schema_version": 2}, r"schema_version 2 is not 1"),
    ],
)
def test_inconsistent_build_output_is_refused(tmp_path: Path, change: dict[str, object], message: str) -> None:
    build = v1(tmp_path, metadata_overrides=change)
    with pytest.raises(BuildOutputError, match=message):
        load_build_output(build.dags_dir, package=PKG, image_digest_file=build.digest_file)


def test_build_output_checks_hashes_and_digest_file(tmp_path: Path) -> None:
    build = v1(tmp_path)
    (build.dags_dir / "dags" / "fp_daily_profile.py").write_text("changed = True\n")
    with pytest.raises(BuildOutputError, match=r"fp_daily_profile.py: sha256 is '[0-9a-f]+' but metadata.json says"):
        load_build_output(build.dags_dir, package=PKG)
    other = v1(tmp_path)
    other.digest_file.write_text(digest_of("something else") + "\n")
    with pytest.raises(
        BuildOutputError, match=r"differs from .* \(the DAGs and the image come from different builds\)"
    ):
        load_build_output(other.dags_dir, package=PKG, image_digest_file=other.digest_file)
    extra = v1(tmp_path)
    (extra.dags_dir / "dags" / "stray.py").write_text("x = 1\n")
    with pytest.raises(BuildOutputError, match=r"files not listed in metadata.json: \['stray.py'\]"):
        load_build_output(extra.dags_dir, package=PKG)


def test_drifted_live_file_is_repaired_without_a_new_release(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    first = do_publish(harness, v1(tmp_path), registry)
    key = f"dev/{PKG}/dags/fp_hourly_ingest.py"
    harness.store().put(key, b"tampered = True\n")  # same metadata, other bytes in the live key
    harness.store().put(f"dev/{PKG}/dags/leftover_dag.py", b"x = 1\n")

    # A plain publish trusts metadata.json (it reads nothing else): nothing to do.
    assert do_publish(harness, v1(tmp_path), registry).outcome == "noop"
    assert harness.read(key) == b"tampered = True\n"

    result = do_publish(harness, v1(tmp_path), registry, repair=True)

    assert result.outcome == "repaired"
    assert result.plan.repair == ("fp_hourly_ingest",)
    assert result.plan.removed == ("leftover_dag",)
    assert harness.read(key) == dag_source("fp_hourly_ingest", 1).encode()
    assert harness.read(f"dev/{PKG}/dags/leftover_dag.py") is None
    meta = harness.metadata("dev", PKG)
    assert meta is not None and meta["release"]["id"] == first.release_id
    assert do_publish(harness, v1(tmp_path), registry, repair=True).outcome == "noop"


def test_an_unreadable_metadata_json_stops_a_publish_until_repair_replaces_it(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    first = do_publish(harness, v1(tmp_path), registry)
    damaged = b'{"schema_version": 1, "package": "file_processing", "dags": ['
    harness.store().put(f"dev/{PKG}/metadata.json", damaged)

    with pytest.raises(MetadataError, match=r"metadata\.json: not valid UTF-8 JSON .*re-run with --repair"):
        do_publish(harness, v1(tmp_path), registry)
    assert harness.read(f"dev/{PKG}/metadata.json") == damaged  # what it cannot read, it leaves alone

    assert [r.id for r in list_releases(harness.store(), PackageKeys("dev", PKG)) if not r.current] == [
        first.release_id
    ]
    result = do_publish(harness, v1(tmp_path), registry, repair=True)
    assert result.outcome == "published" and result.previous_release_id == first.release_id
    assert any("cannot be read: " in w and "not valid UTF-8 JSON" in w for w in result.warnings)
    meta = harness.metadata("dev", PKG)
    assert meta is not None and meta["release"]["id"] == result.release_id != first.release_id
    assert harness.read(f"dev/{PKG}/releases/{first.release_id}.json") is not None  # history kept


def test_decommission_then_republish_brings_the_package_back(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    first = do_publish(harness, v1(tmp_path), registry)
    store = harness.store()
    with pytest.raises(
        MassDeleteError,
        match=(
            r"refusing to decommission package 'file_processing' in env 'dev': it removes all 3 of its DAGs "
            r"from Airflow; pass --allow-mass-delete if this is intended"
        ),
    ):
        decommission_package(store=store, env="dev", package=PKG, allow_mass_delete=False)
    assert harness.read(f"dev/{PKG}/REMOVED") is None

    summary = decommission_package(store=store, env="dev", package=PKG, allow_mass_delete=True)
    assert summary["dags"] == DAGS and summary["release"] == {"id": first.release_id}
    assert harness.read(f"dev/{PKG}/REMOVED") is not None  # the sidecar removes the package's DAGs
    meta = harness.metadata("dev", PKG)
    assert meta is not None and meta["decommissioned"]["release"] == first.release_id
    assert [d["dag_id"] for d in meta["dags"]] == DAGS  # the release itself is kept

    # Its dag ids are free now: another package may take one.
    other = write_build(tmp_path / "other", "data_pipeline", {"fp_daily_profile": dag_source("fp_daily_profile")})
    do_publish(harness, other, registry)

    # The same build again is a new release (not a no-op); it must win its ids back first.
    with pytest.raises(DagIdCollisionError, match=r"dag_id 'fp_daily_profile' is owned by package 'data_pipeline'"):
        do_publish(harness, v1(tmp_path), registry)
    decommission_package(store=store, env="dev", package="data_pipeline", allow_mass_delete=True)
    result = do_publish(harness, v1(tmp_path), registry)
    assert result.outcome == "published" and result.previous_release_id == first.release_id
    assert harness.read(f"dev/{PKG}/REMOVED") is None
    meta = harness.metadata("dev", PKG)
    assert meta is not None and "decommissioned" not in meta


@pytest.mark.parametrize("umask", [0o077, 0o000])
def test_file_store_modes_do_not_depend_on_the_umask(tmp_path: Path, umask: int) -> None:
    from tools.bazel.publisher._filestore import FileStore

    store = FileStore(tmp_path / "store")
    previous = os.umask(umask)
    try:
        store.put("dev/file_processing/dags/fp_a.py", b"x = 1\n")
        store.put("dev/file_processing/metadata.json", b"{}\n", if_none_match=True)
    finally:
        os.umask(previous)
    modes = {
        str(path.relative_to(tmp_path)): stat.S_IMODE(path.stat().st_mode)
        for path in sorted((tmp_path / "store").rglob("*"))
    }
    assert modes == {
        "store/dev": 0o755,
        "store/dev/file_processing": 0o755,
        "store/dev/file_processing/dags": 0o755,
        "store/dev/file_processing/dags/fp_a.py": 0o644,
        "store/dev/file_processing/metadata.json": 0o644,
    }


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"fp_huge": dag_source("fp_huge") + "#" * (5 * 1024 * 1024)},
            r"lists a DAG file of \d+ bytes, more than the 5242880 allowed \(storecontract/limits.py DAG_FILE_MAX_BYTES\)",
        ),
        (
            {f"fp_{i:04d}": dag_source(f"fp_{i:04d}") for i in range(2001)},
            r"lists 2001 DAGs, more than the 2000 a release may have",
        ),
    ],
)
def test_a_release_over_the_store_limits_is_refused_before_any_write(
    harness: Harness, registry: FakeRegistry, tmp_path: Path, files: dict[str, str], message: str
) -> None:
    """What the sidecar would refuse to read (storecontract.limits) is never written."""
    before = harness.snapshot()
    with pytest.raises(LimitError, match=message):
        do_publish(harness, write_build(tmp_path, PKG, files), registry, dry_run=True)
    with pytest.raises(LimitError, match=r"metadata.json' lists"):
        do_publish(harness, write_build(tmp_path, PKG, files), registry)
    assert harness.snapshot() == before
    assert registry.pushes == []
