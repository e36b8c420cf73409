"""Release bundles (``releases/<id>.tar``): streamed instead of one GET per file, and never trusted
beyond what metadata.json says. Against a real moto server and a folder store."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from sidecar.layout import STATE_DIR_NAME
from sidecar.stage import wants_bundle
from sidecar.tests.storekit import (
    S3Kit,
    StoreKit,
    bundle_block,
    dag_source,
    kit,
    local_files,
    metric,
    moto,
    running_syncer,
)
from tools.bazel.storecontract import write_bundle

__all__ = ["kit", "moto"]  # fixtures used below

COUNT = 20


def release(rel: str, count: int = COUNT) -> dict[str, bytes]:
    return {f"d{i:02d}": dag_source(f"d{i:02d}", rel) for i in range(count)}


def members(files: dict[str, bytes]) -> list[tuple[str, bytes]]:
    return sorted((f"dags/{dag_id}.py", data) for dag_id, data in files.items())


def dag_gets(kit: StoreKit, mark: int) -> list[str]:
    assert isinstance(kit, S3Kit)
    return [path for method, path in kit.server.requests_since(mark) if method == "GET" and "/dags/" in path]


def events(log: io.StringIO, name: str) -> list[dict[str, object]]:
    return [e for e in map(json.loads, log.getvalue().splitlines()) if e["event"] == name]


def test_rule_for_using_the_bundle() -> None:
    assert not wants_bundle(8, 8)  # few files: single GETs are cheap
    assert wants_bundle(9, 9) and wants_bundle(1000, 1000)  # a cold start
    assert wants_bundle(260, 1000) and not wants_bundle(250, 1000)  # more than a quarter
    assert not wants_bundle(20, 1000)


def test_cold_sync_streams_the_bundle_and_nothing_else(kit: StoreKit, tmp_path: Path) -> None:
    v1 = release("r1")
    doc = kit.publish("alpha", v1)
    rid = doc["release"]["id"]
    assert doc["release"]["bundle"]["key"] == f"releases/{rid}.tar"
    dags = tmp_path / "dags"
    log = io.StringIO()
    mark = kit.server.mark() if isinstance(kit, S3Kit) else 0
    with running_syncer(kit, dags, log=log) as syncer:
        assert syncer.run_cycle().outcomes == {"alpha": "switched"}
        assert local_files(dags, "alpha") == v1
        assert metric(syncer, "etl_sidecar_objects_fetched_total") == 2  # metadata.json + the bundle
        assert metric(syncer, "etl_sidecar_bundles_total", {"result": "used"}) == 1
        assert metric(syncer, "etl_sidecar_bytes_fetched_total") > doc["release"]["bundle"]["size"]
        if isinstance(kit, S3Kit):
            assert dag_gets(kit, mark) == []
            gets = [p for m, p in kit.server.requests_since(mark) if m == "GET"]
            assert f"/{kit.bucket}/dev/alpha/releases/{rid}.tar" in gets
        assert events(log, "release_switched")[0]["bundle"] == "used"
        assert not events(log, "bundle_fallback")

        # a few changed files: single GETs, the bundle is not read
        v2 = dict(v1, d03=dag_source("d03", "r2"), d07=dag_source("d07", "r2"))
        kit.publish("alpha", v2)
        mark = kit.server.mark() if isinstance(kit, S3Kit) else 0
        assert syncer.run_cycle().outcomes == {"alpha": "switched"}
        assert local_files(dags, "alpha") == v2
        assert metric(syncer, "etl_sidecar_objects_fetched_total") == 2 + 3
        assert metric(syncer, "etl_sidecar_bundles_total", {"result": "used"}) == 1
        if isinstance(kit, S3Kit):
            assert sorted(dag_gets(kit, mark)) == [
                f"/{kit.bucket}/dev/alpha/dags/d03.py",
                f"/{kit.bucket}/dev/alpha/dags/d07.py",
            ]

        # many changed files: the bundle again; unchanged files are still hard-linked
        v3 = {k: (dag_source(k, "r3") if i < 12 else v) for i, (k, v) in enumerate(sorted(v2.items()))}
        kit.publish("alpha", v3)
        assert syncer.run_cycle().outcomes == {"alpha": "switched"}
        assert local_files(dags, "alpha") == v3
        assert metric(syncer, "etl_sidecar_objects_fetched_total") == 5 + 2
        assert metric(syncer, "etl_sidecar_bundles_total", {"result": "used"}) == 2
        assert metric(syncer, "etl_sidecar_objects_reused_total") == (COUNT - 2) + (COUNT - 12)


def test_a_release_without_a_bundle_is_fetched_file_by_file_and_reported(kit: StoreKit, tmp_path: Path) -> None:
    """The publisher always writes release.bundle; a document without one (a damaged store) still
    syncs, one GET per file, and the sidecar says why it did not use a bundle."""
    v1 = release("r1")
    doc, _ = kit.release("alpha", v1)
    del doc["release"]["bundle"]
    kit.publish_tampered("alpha", v1, doc, bundle=None)
    dags = tmp_path / "dags"
    log = io.StringIO()
    with running_syncer(kit, dags, log=log) as syncer:
        assert syncer.run_cycle().outcomes == {"alpha": "switched"}
        assert local_files(dags, "alpha") == v1
        assert metric(syncer, "etl_sidecar_objects_fetched_total") == 1 + COUNT
        assert metric(syncer, "etl_sidecar_bundles_total", {"result": "used"}) == 0
        assert metric(syncer, "etl_sidecar_bundles_total", {"result": "fallback"}) == 1
    (fallback,) = events(log, "bundle_fallback")
    assert fallback["problem"] == "release.bundle is missing", fallback
    assert events(log, "release_switched")[0]["bundle"] == "fallback"


def _info(name: str, kind: bytes, *, linkname: str = "", data: bytes = b"") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, linkname, len(data), 0o644
    return info, data


def crafted_tar(good: list[tuple[str, bytes]], bad: tuple[tarfile.TarInfo, bytes], at: int) -> bytes:
    """``good`` members with ``bad`` inserted at position ``at``."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        items: list[tuple[tarfile.TarInfo, bytes]] = []
        for name, data in good:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            items.append((info, data))
        items.insert(at, bad)
        for info, data in items:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


BAD_BUNDLES = {
    "traversal": "member '../../../escaped.py' is not a file listed",
    "dotdot_inside": "member 'dags/../../escaped.py' is not a file listed",
    "absolute": "/escaped.py' is not a file listed",
    "symlink": "member 'dags/d05.py' is not a regular file",
    "hardlink": "member 'dags/d05.py' is not a regular file",
    "device": "member 'dags/d05.py' is not a regular file",
    "unlisted": "member 'dags/extra.py' is not a file listed",
    "duplicate": "member 'dags/d04.py' appears twice",
    "member_hash": "member 'dags/d05.py' has sha256 ",
    "tar_hash": "the tar has ",
    "missing": "it does not exist",
    "not_a_tar": "header at byte 0: checksum",
    "truncated": "the tar ends inside a header",
    "bad_block": "release.bundle.key '../../other/x.tar' must be 'releases/",
}


def _bad_bundle(kit: StoreKit, kind: str, files: dict[str, bytes], escape: Path) -> tuple[dict[str, Any], bytes | None]:
    """DELIBERATELY BROKEN: (metadata.json document, bundle bytes to store or None) of the next
    release of ``files``, its bundle (or ``release.bundle``) damaged as ``kind`` says."""
    doc, _ = kit.release("alpha", files)
    rid = doc["release"]["id"]
    good = members(files)
    bad_member = {
        "traversal": lambda: _info("../../../escaped.py", tarfile.REGTYPE, data=b"x = 1\n"),
        "dotdot_inside": lambda: _info("dags/../../escaped.py", tarfile.REGTYPE, data=b"x = 1\n"),
        "absolute": lambda: _info(str(escape), tarfile.REGTYPE, data=b"x = 1\n"),
        "symlink": lambda: _info("dags/d05.py", tarfile.SYMTYPE, linkname="/etc/passwd"),
        "hardlink": lambda: _info("dags/d05.py", tarfile.LNKTYPE, linkname="dags/d04.py"),
        "device": lambda: _info("dags/d05.py", tarfile.CHRTYPE),
        "unlisted": lambda: _info("dags/extra.py", tarfile.REGTYPE, data=b"x = 1\n"),
        "duplicate": lambda: _info("dags/d04.py", tarfile.REGTYPE, data=files["d04"]),
    }
    if kind in bad_member:
        if kind in ("symlink", "hardlink", "device"):
            good = [m for m in good if m[0] != "dags/d05.py"]
        tar = crafted_tar(good, bad_member[kind](), 5)
    elif kind == "member_hash":  # same size, other bytes
        tar = write_bundle(dict(files, d05=dag_source("d05", "rX")))
    else:
        tar = write_bundle(files)
    block = bundle_block(rid, tar)
    stored: bytes | None = tar
    if kind == "tar_hash":
        block["sha256"] = "0" * 64
    elif kind == "missing":
        stored = None
    elif kind == "not_a_tar":
        stored = b"\x01" * len(tar)
        block = bundle_block(rid, stored)
    elif kind == "truncated":
        stored = tar[: len(tar) // 2]
    elif kind == "bad_block":
        block["key"] = "../../other/x.tar"
    doc["release"]["bundle"] = block
    return doc, stored


@pytest.mark.parametrize("kind", sorted(BAD_BUNDLES))
def test_bad_bundle_falls_back_to_single_files(kit: StoreKit, tmp_path: Path, kind: str) -> None:
    v1 = release("r1")
    kit.publish("alpha", v1)
    dags = tmp_path / "dags"
    escape = tmp_path / "escaped.py"
    log = io.StringIO()
    with running_syncer(kit, dags, log=log) as syncer:
        syncer.run_cycle()
        assert metric(syncer, "etl_sidecar_bundles_total", {"result": "used"}) == 1  # v1, cold
        v2 = release("r2")
        doc, stored = _bad_bundle(kit, kind, v2, escape)
        kit.publish_tampered("alpha", v2, doc, bundle=stored)
        assert syncer.run_cycle().outcomes == {"alpha": "switched"}
        assert local_files(dags, "alpha") == v2
        assert metric(syncer, "etl_sidecar_bundles_total", {"result": "fallback"}) == 1
        assert metric(syncer, "etl_sidecar_bundles_total", {"result": "used"}) == 1  # not v2
        (fallback,) = events(log, "bundle_fallback")
        assert BAD_BUNDLES[kind] in str(fallback["problem"]), fallback["problem"]
        assert events(log, "release_switched")[-1]["bundle"] == "fallback"
    # nothing was written outside the staging folder, whatever the member names said
    assert not escape.exists() and not (tmp_path / "escaped.py").exists()
    assert sorted(p.name for p in dags.iterdir()) == [".airflowignore", ".sidecar", "alpha"]


def test_files_kept_from_a_bundle_that_turns_bad_are_not_fetched_again(kit: StoreKit, tmp_path: Path) -> None:
    v1 = release("r1")
    kit.publish("alpha", v1)
    dags = tmp_path / "dags"
    with running_syncer(kit, dags) as syncer:
        syncer.run_cycle()
        before = metric(syncer, "etl_sidecar_objects_fetched_total")
        v2 = release("r2")
        doc, stored = _bad_bundle(kit, "unlisted", v2, tmp_path / "x")
        kit.publish_tampered("alpha", v2, doc, bundle=stored)
        assert syncer.run_cycle().outcomes == {"alpha": "switched"}
        assert local_files(dags, "alpha") == v2
        # metadata.json + the bundle (5 good members before the bad one) + 15 single files
        assert metric(syncer, "etl_sidecar_objects_fetched_total") - before == 1 + 1 + (COUNT - 5)


def test_bad_member_and_bad_live_file_reject_the_release(kit: StoreKit, tmp_path: Path) -> None:
    v1 = release("r1")
    kit.publish("alpha", v1)
    dags = tmp_path / "dags"
    with running_syncer(kit, dags) as syncer:
        syncer.run_cycle()
        target = (dags / "alpha").readlink()
        v2 = release("r2")
        doc, stored = _bad_bundle(kit, "member_hash", v2, tmp_path / "x")
        # the live file carries the same wrong bytes as the bundle member
        kit.publish_tampered("alpha", dict(v2, d05=dag_source("d05", "rX")), doc, bundle=stored)
        assert syncer.run_cycle().outcomes == {"alpha": "rejected"}
        assert (dags / "alpha").readlink() == target
        assert local_files(dags, "alpha") == v1
        assert metric(syncer, "etl_sidecar_rejected_releases_total", {"reason": "hash_mismatch"}) == 1
        (qdir,) = (dags / STATE_DIR_NAME / "alpha" / "quarantine").iterdir()
        assert "dev/alpha/dags/d05.py" in json.loads((qdir / "REASON.json").read_text())["message"]


def test_a_bundle_file_that_does_not_compile_rejects_the_release(kit: StoreKit, tmp_path: Path) -> None:
    v1 = release("r1")
    kit.publish("alpha", v1)
    dags = tmp_path / "dags"
    with running_syncer(kit, dags) as syncer:
        syncer.run_cycle()
        kit.publish_unchecked("alpha", dict(release("r2"), d09=b"def broken(:\n"))  # the publisher compiles
        assert syncer.run_cycle().outcomes == {"alpha": "rejected"}
        assert local_files(dags, "alpha") == v1
        assert metric(syncer, "etl_sidecar_rejected_releases_total", {"reason": "syntax_error"}) == 1


def test_publisher_window_is_bridged_by_the_bundle(kit: StoreKit, tmp_path: Path) -> None:
    """Live bytes of an uncommitted publish: the committed release's bundle has the right ones."""
    v1 = release("r1", 3)
    doc = kit.publish("alpha", v1)
    kit.put("dev/alpha/dags/d01.py", dag_source("d01", "r2"))  # a publish of r2 before its commit
    dags = tmp_path / "dags"
    log = io.StringIO()
    with running_syncer(kit, dags, log=log) as syncer:
        assert syncer.run_cycle().outcomes == {"alpha": "switched"}
        assert local_files(dags, "alpha") == v1
        # metadata + 3 live files (one wrong) + the bundle for that one
        assert metric(syncer, "etl_sidecar_objects_fetched_total") == 5
        (warning,) = events(log, "live_file_mismatch")  # operators see it (and the --repair hint)
        assert warning["files"] == ["dags/d01.py"] and warning["release"] == doc["release"]["id"]
        assert "publish -- --repair" in str(warning["hint"])
