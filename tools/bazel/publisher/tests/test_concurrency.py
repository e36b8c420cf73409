"""Two publishes of one package cannot interleave silently; failures leave the last release intact."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tools.bazel.publisher import ConcurrentPublishError, PublishError, StoreError
from tools.bazel.publisher.events import Event
from tools.bazel.publisher.tests.helpers import (
    BuildPaths,
    FakeRegistry,
    Harness,
    bundle_files,
    dag_source,
    do_publish,
    on_kind,
    write_build,
)

PKG = "file_processing"


def build(tmp_path: Path, version: int, names: tuple[str, ...] = ("fp_a", "fp_b")) -> BuildPaths:
    return write_build(tmp_path, PKG, {d: dag_source(d, version) for d in names})


def assert_consistent(harness: Harness) -> dict:
    """metadata.json, the live files and the current release's files all agree."""
    meta = harness.metadata("dev", PKG)
    assert meta is not None
    rid = meta["release"]["id"]
    live = {k: v for k, v in harness.snapshot().items() if k.startswith(f"dev/{PKG}/dags/")}
    assert sorted(live) == sorted(f"dev/{PKG}/{d['file']}" for d in meta["dags"])
    bundle = harness.read(f"dev/{PKG}/releases/{rid}.tar")
    assert bundle is not None and meta["release"]["bundle"] == {
        "key": f"releases/{rid}.tar",
        "sha256": hashlib.sha256(bundle).hexdigest(),
        "size": len(bundle),
    }
    members = bundle_files(bundle)
    assert sorted(members) == sorted(entry["file"] for entry in meta["dags"])
    for entry in meta["dags"]:
        data = live[f"dev/{PKG}/{entry['file']}"]
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert members[entry["file"]] == data
    assert harness.read(f"dev/{PKG}/releases/{rid}.json") == harness.read(f"dev/{PKG}/metadata.json")
    return meta


def test_a_publish_that_commits_while_another_writes_wins_and_the_loser_follows_it(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    do_publish(harness, build(tmp_path, 1), registry)
    done = []

    def run_b(_: Event) -> None:  # A has written its first live file; B publishes completely
        done.append(do_publish(harness, build(tmp_path, 3), registry))

    with pytest.raises(ConcurrentPublishError) as info:
        do_publish(harness, build(tmp_path, 2), registry, on_event=on_kind("put", run_b, key_suffix=".py"), jobs=1)

    b = done[0]
    assert str(info.value) == (
        f"{harness.url}/dev/{PKG}/metadata.json was changed by another writer during this publish (conditional "
        f"write rejected); retry the publish; nothing was committed by this publish: metadata.json points to "
        f"release {b.release_id}; live files restored: fp_a, fp_b"
    )
    meta = assert_consistent(harness)  # B's release, and every live file is B's again
    assert meta["release"]["id"] == b.release_id
    for dag_id in ("fp_a", "fp_b"):
        assert harness.read(f"dev/{PKG}/dags/{dag_id}.py") == dag_source(dag_id, 3).encode()


def test_a_publish_that_planned_before_another_committed_loses_the_commit(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    do_publish(harness, build(tmp_path, 1), registry)
    results = []

    def run_b(_: Event) -> None:  # A has read the store and planned; B publishes completely
        results.append(do_publish(harness, build(tmp_path, 3), registry))

    with pytest.raises(
        ConcurrentPublishError,
        match=(
            r"metadata.json was changed by another writer during this publish \(conditional write rejected\); "
            r"retry the publish; nothing was committed by this publish"
        ),
    ):
        do_publish(harness, build(tmp_path, 2), registry, on_event=on_kind("plan", run_b))

    meta = assert_consistent(harness)
    assert meta["release"]["id"] == results[0].release_id
    assert harness.read(f"dev/{PKG}/dags/fp_a.py") == dag_source("fp_a", 3).encode()


def test_a_foreign_metadata_write_wins_and_live_files_are_restored(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    first = do_publish(harness, build(tmp_path, 1), registry)
    foreign = json.loads(harness.read(f"dev/{PKG}/metadata.json") or b"")
    foreign["note"] = "written by another tool"
    foreign_bytes = json.dumps(foreign, sort_keys=True, indent=2).encode() + b"\n"

    def foreign_write(_: Event) -> None:  # just before A's commit point
        harness.store().put(f"dev/{PKG}/metadata.json", foreign_bytes)

    new_id: list[str] = []
    before_commit = on_kind("put", foreign_write, key_suffix=".json")  # releases/<id>.json: the last write before it

    def sink(event: Event) -> None:
        if event.kind == "put" and "/releases/" in (event.key or ""):
            new_id.append((event.key or "").split("/")[3].rsplit(".", 1)[0])
        before_commit(event)

    with pytest.raises(
        ConcurrentPublishError,
        match=(
            r"metadata.json was changed by another writer during this publish \(conditional write rejected\); "
            r"retry the publish; nothing was committed by this publish: metadata.json points to release "
            + str(first.release_id)
            + r"; live files restored: fp_a, fp_b"
        ),
    ):
        do_publish(harness, build(tmp_path, 2), registry, on_event=sink)

    assert harness.read(f"dev/{PKG}/metadata.json") == foreign_bytes  # the other writer's commit stands
    for dag_id in ("fp_a", "fp_b"):  # A's live writes were put back to the committed release's bytes
        assert harness.read(f"dev/{PKG}/dags/{dag_id}.py") == dag_source(dag_id, 1).encode()
    assert not [k for k in harness.snapshot() if f"/releases/{new_id[0]}" in k]  # unfinished release removed


def race(harness: Harness, registry: FakeRegistry, builds: list[BuildPaths]) -> list[object]:
    """Start one publish per build on its own thread at the same moment; return results or errors."""
    barrier = threading.Barrier(len(builds))
    outcomes: list[object] = [None] * len(builds)

    def racer(i: int) -> None:
        barrier.wait()
        try:
            outcomes[i] = do_publish(harness, builds[i], registry)
        except PublishError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(len(builds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return outcomes


def test_two_racing_publishes_one_wins_and_the_store_stays_consistent(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    do_publish(harness, build(tmp_path, 1, ("fp_a", "fp_b", "fp_c")), registry)
    for round_ in range(3):
        builds = [
            build(tmp_path, 10 * round_ + 2, ("fp_a", "fp_b", "fp_c")),
            build(tmp_path, 10 * round_ + 3, ("fp_a", "fp_b", "fp_c")),
        ]
        outcomes = race(harness, registry, builds)
        errors = [o for o in outcomes if isinstance(o, Exception)]
        wins = [o for o in outcomes if not isinstance(o, Exception)]
        assert wins, f"round {round_}: neither publish succeeded: {errors}"
        for err in errors:
            assert isinstance(err, ConcurrentPublishError), repr(err)
            assert "retry" in str(err)
        meta = assert_consistent(harness)
        winner_versions = {json.loads((b.dags_dir / "metadata.json").read_text())["dags"][0]["sha256"] for b in builds}
        assert meta["dags"][0]["sha256"] in winner_versions


def test_a_failed_live_write_restores_the_previous_release(registry: FakeRegistry, tmp_path: Path) -> None:
    """A real failure half-way through step 5 (a directory where a live file must go)."""
    root = tmp_path / "store"
    harness = Harness(kind="file", url=root.as_uri(), root=root)
    first = do_publish(harness, build(tmp_path, 1), registry)
    (root / "dev" / PKG / "dags" / "zz_new.py").mkdir()  # blocks the rename of the new live file
    (root / "dev" / PKG / "dags" / "zz_new.py" / ".keep").write_text("")
    before = harness.snapshot()

    with pytest.raises(
        StoreError,
        match=(
            r"writing 'file://.*/dags/zz_new.py': .*Is a directory.*; nothing was committed by this publish: "
            r"metadata.json points to release " + str(first.release_id) + r"; live files restored: fp_a"
        ),
    ):
        do_publish(
            harness,
            write_build(
                tmp_path,
                PKG,
                {"fp_a": dag_source("fp_a", 2), "fp_b": dag_source("fp_b", 1), "zz_new": dag_source("zz_new")},
            ),
            registry,
        )

    assert harness.snapshot() == before  # every byte as it was, the unfinished release removed


RUNNER = (
    "import sys\n"
    "from tools.bazel.publisher.cli import main\n"
    "from tools.bazel.publisher.tests.helpers import FakeRegistry\n"
    "sys.exit(main(sys.argv[1:], registry=FakeRegistry()))\n"
)


def test_two_racing_processes_one_wins_and_the_store_stays_consistent(
    harness: Harness, registry: FakeRegistry, tmp_path: Path
) -> None:
    do_publish(harness, build(tmp_path, 1), registry)
    env = {
        **os.environ,
        "DAG_BUCKET": harness.url,
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[4]), *sys.path]),
    }
    for round_ in range(2):
        builds = [build(tmp_path, 10 * round_ + 2), build(tmp_path, 10 * round_ + 3)]
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    RUNNER,
                    "--package",
                    PKG,
                    "--dags-dir",
                    str(b.dags_dir),
                    "--image-layout",
                    str(b.layout),
                    "--image-digest-file",
                    str(b.digest_file),
                    "--output",
                    "json",
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for b in builds
        ]
        results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
        assert any(code == 0 for code, _, _ in results), results
        for code, out, err in results:
            if code != 0:
                assert code == 1
                assert json.loads(out)["ok"] is False
                last = err.strip().splitlines()[-1]
                assert last.startswith("publish: error: ") and "retry" in last, err
        assert_consistent(harness)
