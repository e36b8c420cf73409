"""Sync behaviour against a real moto S3 server over HTTP and against a file:// store."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from sidecar.layout import IGNORE_LINES, STATE_DIR_NAME
from sidecar.tests.storekit import (
    S3Kit,
    StoreKit,
    dag_source,
    kit,
    local_files,
    metric,
    moto,
    running_syncer,
)
from tools.bazel.storecontract import canonical_json

__all__ = ["kit", "moto"]  # fixtures used below


def files_for(release: str, *dag_ids: str, pad: int = 0) -> dict[str, bytes]:
    return {dag_id: dag_source(dag_id, release, pad=pad) for dag_id in dag_ids}


def test_initial_sync_mirrors_every_package(kit: StoreKit, tmp_path: Path) -> None:
    a = kit.publish("alpha", files_for("r1", "alpha_one", "alpha_two", "alpha_three"))
    kit.publish("beta", files_for("r1", "beta_one", "beta_two"))
    dags = tmp_path / "dags"
    with running_syncer(kit, dags) as syncer:
        result = syncer.run_cycle()
        assert result.status == "success"
        assert result.outcomes == {"alpha": "switched", "beta": "switched"}
        assert local_files(dags, "alpha") == files_for("r1", "alpha_one", "alpha_two", "alpha_three")
        assert local_files(dags, "beta") == files_for("r1", "beta_one", "beta_two")
        assert (dags / "alpha").is_symlink()
        assert os.readlink(dags / "alpha").startswith(f"{STATE_DIR_NAME}/alpha/releases/")
        # only <dag_id>.py is visible to Airflow in the package folder (plus the hidden manifest)
        assert sorted(p.name for p in (dags / "alpha").iterdir()) == [
            ".release.json",
            "alpha_one.py",
            "alpha_three.py",
            "alpha_two.py",
        ]
        manifest = json.loads((dags / "alpha" / ".release.json").read_text())
        assert manifest["release"]["id"] == a["release"]["id"]
        assert manifest["files"] == {d["file"].removeprefix("dags/"): d["sha256"] for d in a["dags"]}
        assert (dags / ".airflowignore").read_text().splitlines() == list(IGNORE_LINES)
        assert metric(syncer, "etl_sidecar_objects_fetched_total") == 2 + 5
        assert metric(syncer, "etl_sidecar_packages") == 2
        assert metric(syncer, "etl_sidecar_syncs_total", {"status": "success"}) == 1
        assert syncer.health.healthy and syncer.health.ready


def test_noop_cycle_downloads_nothing(kit: StoreKit, tmp_path: Path) -> None:
    kit.publish("alpha", files_for("r1", "a1", "a2"))
    kit.publish("beta", files_for("r1", "b1"))
    with running_syncer(kit, tmp_path / "dags") as syncer:
        assert syncer.run_cycle().status == "success"
        fetched = metric(syncer, "etl_sidecar_objects_fetched_total")
        mark = kit.server.mark() if isinstance(kit, S3Kit) else 0
        result = syncer.run_cycle()
        assert result.status == "noop"
        assert result.outcomes == {"alpha": "noop", "beta": "noop"}
        assert metric(syncer, "etl_sidecar_objects_fetched_total") == fetched
        if isinstance(kit, S3Kit):
            requests = kit.server.requests_since(mark)
            # one listing of <env>/ plus one listing per package, no GET of any object
            assert [m for m, _ in requests] == ["GET"] * 3
            assert all("list-type=2" in path for _, path in requests), requests


def test_same_size_edit_is_picked_up_and_only_it_is_fetched(kit: StoreKit, tmp_path: Path) -> None:
    v1 = files_for("r1", "d1", "d2", "d3")
    kit.publish("alpha", v1)
    dags = tmp_path / "dags"
    with running_syncer(kit, dags) as syncer:
        syncer.run_cycle()
        old_d1 = os.stat(dags / "alpha" / "d1.py")
        v2 = dict(v1, d2=dag_source("d2", "r2"))  # same length as r1: same size, new content
        assert len(v2["d2"]) == len(v1["d2"]) and v2["d2"] != v1["d2"]
        kit.publish("alpha", v2)
        before = metric(syncer, "etl_sidecar_objects_fetched_total")
        assert syncer.run_cycle().outcomes == {"alpha": "switched"}
        assert local_files(dags, "alpha") == v2
        # metadata.json + the one changed file; the other two are hard links to the old release
        assert metric(syncer, "etl_sidecar_objects_fetched_total") - before == 2
        assert metric(syncer, "etl_sidecar_objects_reused_total") == 2
        assert os.stat(dags / "alpha" / "d1.py").st_ino == old_d1.st_ino


def test_removed_dag_disappears(kit: StoreKit, tmp_path: Path) -> None:
    kit.publish("alpha", files_for("r1", "keep", "drop"))
    dags = tmp_path / "dags"
    with running_syncer(kit, dags) as syncer:
        syncer.run_cycle()
        assert (dags / "alpha" / "drop.py").exists()
        kit.publish("alpha", files_for("r1", "keep"))
        assert syncer.run_cycle().outcomes == {"alpha": "switched"}
        assert sorted(local_files(dags, "alpha")) == ["keep"]


def test_metadata_change_without_file_change_does_not_switch(kit: StoreKit, tmp_path: Path) -> None:
    files = files_for("r1", "d1")
    kit.publish("alpha", files)
    dags = tmp_path / "dags"
    with running_syncer(kit, dags) as syncer:
        syncer.run_cycle()
        target = os.readlink(dags / "alpha")
        kit.publish("alpha", files, schedule="@hourly")  # a new release: the metadata changes, the files do not
        assert syncer.run_cycle().outcomes == {"alpha": "noop"}
        assert os.readlink(dags / "alpha") == target
        assert metric(syncer, "etl_sidecar_release_switches_total") == 1


def _bad_release(kit: StoreKit, reason: str) -> None:
    """A release the sidecar must reject: tampered stores (publish_tampered, raw writes) where the
    publisher would have refused, a real publish where it would not (a file over the sidecar's
    --max-file-bytes)."""
    good = files_for("r2", "d1", "d2")
    if reason == "hash_mismatch":
        doc, tar = kit.release("alpha", good)
        doc["dags"][1]["sha256"] = "0" * 64
        kit.publish_tampered("alpha", good, doc, bundle=tar)
    elif reason == "syntax_error":  # the publisher compiles every file
        kit.publish_unchecked("alpha", dict(good, d2=b"# release: r2\ndef broken(:\n"))
    elif reason == "oversized":
        big = dict(good, d2=dag_source("d2", "r2", pad=5000))
        kit.publish("alpha", big)
    elif reason == "size_mismatch":
        doc, tar = kit.release("alpha", good)
        doc["dags"][0]["size"] += 1
        kit.publish_tampered("alpha", good, doc, bundle=tar)
    elif reason == "missing_file":
        doc, _ = kit.release("alpha", dict(good, d3=b"x"))
        kit.publish_tampered("alpha", good, doc, bundle=None)
    elif reason == "invalid_metadata":
        kit.put("dev/alpha/metadata.json", b'{"schema_version": 1, "package": "alpha", "dags": [')
    elif reason == "empty_release":  # the contract (and so the publisher) refuses an empty dags list
        doc, _ = kit.release("alpha", good)
        doc["dags"] = []
        kit.put("dev/alpha/metadata.json", canonical_json(doc))
    else:
        raise AssertionError(reason)


@pytest.mark.parametrize(
    "reason",
    [
        "hash_mismatch",
        "syntax_error",
        "oversized",
        "size_mismatch",
        "missing_file",
        "invalid_metadata",
        "empty_release",
    ],
)
def test_bad_release_is_rejected_whole_and_quarantined(kit: StoreKit, tmp_path: Path, reason: str) -> None:
    v1 = files_for("r1", "d1", "d2")
    kit.publish("alpha", v1)
    dags = tmp_path / "dags"
    log = io.StringIO()
    with running_syncer(kit, dags, "--max-file-bytes", "4096", log=log) as syncer:
        syncer.run_cycle()
        target = os.readlink(dags / "alpha")
        _bad_release(kit, reason)
        result = syncer.run_cycle()
        assert result.outcomes == {"alpha": "rejected"}
        assert result.status == "noop"  # a bad release is not a store failure: health stays good
        assert syncer.health.healthy
        assert os.readlink(dags / "alpha") == target
        assert local_files(dags, "alpha") == v1
        assert metric(syncer, "etl_sidecar_rejected_releases_total", {"reason": reason}) == 1
        quarantined = list((dags / STATE_DIR_NAME / "alpha" / "quarantine").iterdir())
        assert len(quarantined) == 1
        report = json.loads((quarantined[0] / "REASON.json").read_text())
        assert report["reason"] == reason
        assert "alpha" in report["message"]
        events = [json.loads(line) for line in log.getvalue().splitlines()]
        rejected = [e for e in events if e["event"] == "release_rejected"]
        assert rejected and rejected[0]["reason"] == reason
        # the same bad metadata is not fetched again every cycle
        fetched = metric(syncer, "etl_sidecar_objects_fetched_total")
        assert syncer.run_cycle().outcomes == {"alpha": "noop"}
        assert metric(syncer, "etl_sidecar_objects_fetched_total") == fetched
        # a fixed release goes through (--repair: it also replaces a metadata.json it cannot read)
        v3 = files_for("r3", "d1", "d2")
        kit.publish("alpha", v3, repair=True)
        assert syncer.run_cycle().outcomes == {"alpha": "switched"}
        assert local_files(dags, "alpha") == v3


def test_rejection_messages_name_the_file(kit: StoreKit, tmp_path: Path) -> None:
    kit.publish("alpha", files_for("r1", "d1"))
    dags = tmp_path / "dags"
    with running_syncer(kit, dags) as syncer:
        syncer.run_cycle()
        # sha256 tampered and release.bundle removed: the live file is the only copy
        doc, _ = kit.release("alpha", files_for("r2", "d1"))
        doc["dags"][0]["sha256"] = "f" * 64
        del doc["release"]["bundle"]
        kit.publish_tampered("alpha", files_for("r2", "d1"), doc, bundle=None)
        syncer.run_cycle()
        (qdir,) = (dags / STATE_DIR_NAME / "alpha" / "quarantine").iterdir()
        message = json.loads((qdir / "REASON.json").read_text())["message"]
        assert message.startswith(repr(f"{kit.url}/dev/alpha/dags/d1.py"))
        assert "f" * 64 in message and "republish" in message
        # the staged bytes are kept for inspection
        assert (qdir / "d1.py").read_bytes() == dag_source("d1", "r2")


def test_quarantine_is_bounded(kit: StoreKit, tmp_path: Path) -> None:
    kit.publish("alpha", files_for("r1", "d1"))
    dags = tmp_path / "dags"
    with running_syncer(kit, dags, "--quarantine-keep", "2") as syncer:
        syncer.run_cycle()
        for i in range(4):
            kit.publish_unchecked("alpha", {"d1": f"def bad{i}(:\n".encode()})
            assert syncer.run_cycle().outcomes == {"alpha": "rejected"}
        assert len(list((dags / STATE_DIR_NAME / "alpha" / "quarantine").iterdir())) == 2


def test_allow_list_limits_packages(kit: StoreKit, tmp_path: Path) -> None:
    for pkg in ("alpha", "beta", "gamma"):
        kit.publish(pkg, files_for("r1", f"{pkg}_d"))
    dags = tmp_path / "dags"
    log = io.StringIO()
    with running_syncer(kit, dags, "--packages", "alpha,gamma,delta", log=log) as syncer:
        assert syncer.run_cycle().outcomes == {"alpha": "switched", "gamma": "switched"}
        assert sorted(p.name for p in dags.iterdir() if not p.name.startswith(".")) == ["alpha", "gamma"]
    assert '"event":"package_not_in_store","package":"delta"' in log.getvalue()


def test_removed_marker_deletes_package_but_a_vanished_prefix_does_not(kit: StoreKit, tmp_path: Path) -> None:
    for pkg in ("alpha", "beta", "gamma"):
        kit.publish(pkg, files_for("r1", f"{pkg}_d"))
    dags = tmp_path / "dags"
    with running_syncer(kit, dags, "--grace-period", "0") as syncer:
        syncer.run_cycle()
        kit.decommission("beta")
        kit.delete_package("gamma")  # prefix gone, no marker: keep
        result = syncer.run_cycle()
        assert result.outcomes == {"alpha": "noop", "beta": "removed"}
        assert not (dags / "beta").exists()
        assert local_files(dags, "gamma") == files_for("r1", "gamma_d")
        assert metric(syncer, "etl_sidecar_packages_removed_total") == 1
        assert metric(syncer, "etl_sidecar_packages") == 2
        # with grace 0 the retired folder is gone after the cycle
        assert list((dags / STATE_DIR_NAME / "beta" / "releases").iterdir()) == []
        # the marker stays: nothing more to do; a republish brings the package back
        assert syncer.run_cycle().outcomes["beta"] == "noop"
        kit.delete("dev/beta/REMOVED")
        kit.publish("beta", files_for("r2", "beta_d"))
        assert syncer.run_cycle().outcomes["beta"] == "switched"
        assert local_files(dags, "beta") == files_for("r2", "beta_d")


def test_empty_store_never_wipes(kit: StoreKit, tmp_path: Path) -> None:
    kit.publish("alpha", files_for("r1", "d1"))
    dags = tmp_path / "dags"
    log = io.StringIO()
    with running_syncer(kit, dags, log=log) as syncer:
        syncer.run_cycle()
        kit.delete_package("alpha")
        result = syncer.run_cycle()
        assert result.outcomes == {}
        assert local_files(dags, "alpha") == files_for("r1", "d1")
    assert "store_lists_no_packages" in log.getvalue()


def test_metadata_missing_keeps_local(kit: StoreKit, tmp_path: Path) -> None:
    kit.publish("alpha", files_for("r1", "d1"))
    dags = tmp_path / "dags"
    with running_syncer(kit, dags) as syncer:
        syncer.run_cycle()
        kit.delete("dev/alpha/metadata.json")
        assert syncer.run_cycle().outcomes == {"alpha": "noop"}
        assert local_files(dags, "alpha") == files_for("r1", "d1")


def test_old_releases_are_removed_after_the_grace_period(kit: StoreKit, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    kit.publish("alpha", files_for("r1", "d1"))
    with running_syncer(kit, dags, "--grace-period", "3600") as syncer:
        syncer.run_cycle()
        first = dags / os.readlink(dags / "alpha")
        kit.publish("alpha", files_for("r2", "d1"))
        syncer.run_cycle()
        assert first.is_dir()  # a reader that resolved the old link may still use it
        removed = syncer.dags_dir.gc(grace_period=3600, now=first.stat().st_mtime + 3601)
        assert removed == [first]
        assert (dags / "alpha" / "d1.py").read_bytes() == dag_source("d1", "r2")


def test_restart_reuses_local_release_and_detects_tampering(kit: StoreKit, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    kit.publish("alpha", files_for("r1", "d1", "d2"))
    with running_syncer(kit, dags) as syncer:
        syncer.run_cycle()
    target = os.readlink(dags / "alpha")
    with running_syncer(kit, dags) as syncer:  # a new process: nothing in memory
        assert syncer.run_cycle().outcomes == {"alpha": "noop"}
        assert os.readlink(dags / "alpha") == target
        assert metric(syncer, "etl_sidecar_objects_fetched_total") == 1  # metadata.json only
    real = dags / target / "d1.py"
    real.unlink()
    real.write_bytes(b"# tampered\n")
    log = io.StringIO()
    with running_syncer(kit, dags, log=log) as syncer:
        assert syncer.run_cycle().outcomes == {"alpha": "switched"}
        assert local_files(dags, "alpha") == files_for("r1", "d1", "d2")
        assert metric(syncer, "etl_sidecar_objects_fetched_total") == 3  # nothing reused from a bad release
    assert "local_release_invalid" in log.getvalue()


def test_leftover_staging_from_a_dead_process_is_cleaned(kit: StoreKit, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    leftover = dags / STATE_DIR_NAME / "alpha" / "staging" / "deadbeef"
    leftover.mkdir(parents=True)
    (leftover / "half.py").write_bytes(b"# half")
    kit.publish("alpha", files_for("r1", "d1"))
    with running_syncer(kit, dags) as syncer:
        assert not leftover.exists()
        syncer.run_cycle()
        assert local_files(dags, "alpha") == files_for("r1", "d1")


def test_real_folder_in_the_way_is_an_error_and_left_alone(kit: StoreKit, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    (dags / "alpha").mkdir(parents=True)
    (dags / "alpha" / "mine.py").write_text("# someone else's\n")
    kit.publish("alpha", files_for("r1", "d1"))
    kit.publish("beta", files_for("r1", "b1"))
    with running_syncer(kit, dags, "--failure-threshold", "1") as syncer:
        result = syncer.run_cycle()
        assert result.status == "error"
        assert result.outcomes == {"alpha": "error", "beta": "switched"}
        assert "is not the sidecar's symlink; move it out of DAGS_DIR" in result.errors[0]
        assert (dags / "alpha" / "mine.py").read_text() == "# someone else's\n"
        assert not syncer.health.healthy


def test_second_sidecar_on_the_same_dags_dir_waits_for_the_lock(kit: StoreKit, tmp_path: Path) -> None:
    from sidecar.layout import DagsDir

    dags = tmp_path / "dags"
    with running_syncer(kit, dags):
        other = DagsDir(dags)
        assert other.try_lock() is False
    assert other.try_lock() is True
    other.unlock()


def test_airflow_sees_exactly_the_dag_files(kit: StoreKit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow-home"))  # importing airflow may write config
    # the walker Airflow 3.3's dag-processor uses (airflow.utils.file.find_dag_file_paths)
    from airflow._shared.module_loading.file_discovery import find_path_from_directory

    kit.publish("alpha", files_for("r1", "a1", "a2"))
    kit.publish("beta", files_for("r1", "b1"))
    dags = tmp_path / "dags"
    with running_syncer(kit, dags, "--grace-period", "3600") as syncer:
        syncer.run_cycle()
        kit.publish("alpha", files_for("r2", "a1", "a3"))
        syncer.run_cycle()  # a retired release stays under .sidecar/ for the grace period
    expected = sorted(str(dags / p) for p in ("alpha/a1.py", "alpha/a3.py", "beta/b1.py"))
    for syntax in ("glob", "regexp"):
        found = sorted(p for p in find_path_from_directory(dags, ".airflowignore", syntax) if p.endswith(".py"))
        assert found == expected, syntax
    # without the ignore file Airflow would walk into .sidecar/ and meet every release twice
    (dags / ".airflowignore").unlink()
    with pytest.raises(RuntimeError, match="Detected recursive loop"):
        list(find_path_from_directory(dags, ".airflowignore", "glob"))


def test_a_dag_id_owned_by_an_installed_package_is_refused_until_the_owner_lets_it_go(
    kit: StoreKit, tmp_path: Path
) -> None:
    """Issue #16: the first owner keeps a dag_id; the other release is quarantined, then retried."""
    kit.publish("beta", files_for("r1", "shared_daily", "beta_own"))
    dags = tmp_path / "dags"
    log = io.StringIO()
    with running_syncer(kit, dags, log=log) as syncer:
        assert syncer.run_cycle().outcomes == {"beta": "switched"}
        # The publisher refuses a dag_id another package owns; two publishes that race (each
        # checked before the other committed, test_dag_id_race) leave this store.
        kit.publish_unchecked("alpha", files_for("r1", "alpha_own", "shared_daily"))
        assert syncer.run_cycle().outcomes == {"alpha": "rejected", "beta": "noop"}
        assert not (dags / "alpha").exists()  # none of the loser's files is installed
        assert local_files(dags, "beta") == files_for("r1", "shared_daily", "beta_own")
        record = json.loads((dags / STATE_DIR_NAME / "alpha" / "REJECTED.json").read_text())
        assert record["reason"] == "dag_id_conflict" and record["conflict"] == {"shared_daily": "beta"}
        assert "'shared_daily' (owned by package 'beta')" in record["message"]
        assert syncer.health.snapshot()["rejected"]["alpha"]["reason"] == "dag_id_conflict"
        assert metric(syncer, "etl_sidecar_rejected_releases_total", {"reason": "dag_id_conflict"}) == 1
        assert metric(syncer, "etl_sidecar_dag_id_conflicts_total") == 1
        assert metric(syncer, "etl_sidecar_rejected_packages", {"reason": "dag_id_conflict"}) == 1
        assert syncer.run_cycle().outcomes == {"alpha": "noop", "beta": "noop"}  # not retried while owned
        # the owner drops the id: at the next cycle alpha's same metadata.json is installed, unpublished
        kit.publish("beta", files_for("r2", "beta_own"))
        assert syncer.run_cycle().outcomes == {"alpha": "noop", "beta": "switched"}
        assert syncer.run_cycle().outcomes == {"alpha": "switched", "beta": "noop"}
        assert local_files(dags, "alpha") == files_for("r1", "alpha_own", "shared_daily")
        assert not (dags / STATE_DIR_NAME / "alpha" / "REJECTED.json").exists()
        assert syncer.health.snapshot()["rejected"] == {}
    assert [e for e in map(json.loads, log.getvalue().splitlines()) if e["event"] == "dag_id_released"]


def test_a_rejection_is_remembered_by_the_next_process(kit: StoreKit, tmp_path: Path) -> None:
    """A restart (an OOM kill) does not fetch a rejected metadata.json again."""
    kit.publish("alpha", files_for("r1", "alpha_one"))
    kit.put("dev/alpha/metadata.json", b'{"schema_version": 1, "dags": [[[[')  # a hand-made metadata.json
    dags = tmp_path / "dags"
    with running_syncer(kit, dags) as syncer:
        assert syncer.run_cycle().outcomes == {"alpha": "rejected"}
    log = io.StringIO()
    with running_syncer(kit, dags, log=log) as syncer:
        assert syncer.run_cycle().outcomes == {"alpha": "noop"}
        assert metric(syncer, "etl_sidecar_objects_fetched_total") == 0
        assert syncer.health.snapshot()["rejected"]["alpha"]["reason"] == "invalid_metadata"
    (event,) = [e for e in map(json.loads, log.getvalue().splitlines()) if e["event"] == "rejection_remembered"]
    assert event["package"] == "alpha"
