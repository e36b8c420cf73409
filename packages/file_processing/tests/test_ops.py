"""File operations on local folders and a real S3 API (moto server): list, copy, move, checksum, gzip."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from file_processing import ops
from file_processing.errors import (
    ChecksumMismatch,
    ConversionError,
    NotFoundError,
    TargetExists,
)
from file_processing.jobs import (
    checksum,
    compress,
    copy_files,
    decompress,
    list_files,
    move_files,
)
from file_processing.tests.conftest import last_line


def _landing(root: Path) -> dict[str, bytes]:
    files = {
        "2026-11-26/orders-1.csv": b"order_id,amount\n1,9.5\n2,3.0\n",
        "2026-11-26/orders-2.csv": b"order_id,amount\n3,1.25\n",
        "2026-11-26/sub/refunds.csv": b"order_id,refund\n2,3.0\n",
        "2026-11-26/README.txt": b"exported by shop-db\n",
        "2026-11-26/.orders-3.csv.tmp": b"partial",  # a writer's temp file: never listed
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return {k: v for k, v in files.items() if "/." not in k}


def test_list_local_with_pattern_and_depth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _landing(tmp_path)
    day = tmp_path / "2026-11-26"
    assert [f.name for f in ops.list_source(str(day), pattern="*.csv")] == [
        "orders-1.csv",
        "orders-2.csv",
        "refunds.csv",
    ]
    assert [f.name for f in ops.list_source(str(day), pattern="*.csv", recursive=False)] == [
        "orders-1.csv",
        "orders-2.csv",
    ]
    assert list_files.run(["--source", str(day), "--pattern", "*.txt", "--log-level", "ERROR"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [(item["url"], item["size"]) for item in listing] == [(str(day / "README.txt"), 20)]
    with pytest.raises(NotFoundError, match=r"no such file or directory: '.*/missing'"):
        ops.list_source(str(tmp_path / "missing"))


def test_copy_local_to_s3_and_back_keeps_layout_and_skips_unchanged(tmp_path: Path, s3: SimpleNamespace) -> None:
    files = _landing(tmp_path)
    dest = s3.url("landing/")
    assert (
        copy_files.run(["--source", str(tmp_path), "--dest", dest, "--pattern", "*.csv", "--log-level", "ERROR"]) == 0
    )
    csvs = sorted(k for k in files if k.endswith(".csv"))
    assert s3.keys("landing/") == [f"landing/{k}" for k in csvs]
    for rel in csvs:
        assert s3.get(f"landing/{rel}") == files[rel]
    # A re-run finds identical objects and copies nothing (no PUT reaches the server).
    mark = s3.server.mark()
    report = ops.transfer_files(ops.plan(str(tmp_path), dest, pattern="*.csv"))
    assert len(report.skipped) == 3 and not report.done
    assert not [r for r in s3.server.requests_since(mark) if r[0] == "PUT"]
    # S3 -> S3 is a server-side copy; S3 -> local downloads.
    ops.transfer_files(ops.plan(s3.url("landing/2026-11-26/"), s3.url("backup/")))
    assert s3.get("backup/sub/refunds.csv") == files["2026-11-26/sub/refunds.csv"]
    out = tmp_path / "restored"
    ops.transfer_files(ops.plan(s3.url("backup/"), str(out) + "/"))
    assert (out / "orders-1.csv").read_bytes() == files["2026-11-26/orders-1.csv"]
    assert (out / "sub" / "refunds.csv").exists()


def test_copy_single_file_into_folder_and_if_exists(tmp_path: Path) -> None:
    _landing(tmp_path)
    src = tmp_path / "2026-11-26" / "orders-1.csv"
    target_dir = tmp_path / "out"
    target_dir.mkdir()
    ops.transfer_files(ops.plan(str(src), str(target_dir)))
    assert (target_dir / "orders-1.csv").read_bytes() == src.read_bytes()
    (target_dir / "orders-1.csv").write_bytes(b"changed")
    with pytest.raises(
        TargetExists, match=r"destination '.*/out/orders-1.csv' exists: pass --if-exists overwrite or skip"
    ):
        ops.transfer_files(ops.plan(str(src), str(target_dir)), if_exists="fail")
    report = ops.transfer_files(ops.plan(str(src), str(target_dir)), if_exists="skip")
    assert len(report.skipped) == 1 and (target_dir / "orders-1.csv").read_bytes() == b"changed"
    ops.transfer_files(ops.plan(str(src), str(target_dir)))
    assert (target_dir / "orders-1.csv").read_bytes() == src.read_bytes()


def test_move_deletes_sources_only_after_the_copy(tmp_path: Path, s3: SimpleNamespace) -> None:
    files = _landing(tmp_path)
    day = tmp_path / "2026-11-26"
    prom = tmp_path / "move.prom"
    code = move_files.run(
        [
            "--source",
            str(day),
            "--dest",
            s3.url("archive/"),
            "--pattern",
            "orders-*.csv",
            "--metrics-file",
            str(prom),
            "--log-level",
            "ERROR",
        ]
    )
    assert code == 0
    assert s3.get("archive/orders-2.csv") == files["2026-11-26/orders-2.csv"]
    assert not (day / "orders-1.csv").exists() and (day / "README.txt").exists()
    assert 'etl_file_ops_files{op="move",result="done"} 2.0' in prom.read_text()
    # Moving again finds nothing to move: a clear failure, not a silent success.
    code = move_files.run(
        ["--source", str(day), "--dest", s3.url("archive/"), "--pattern", "orders-*.csv", "--log-level", "ERROR"]
    )
    assert code == 0  # the folder still exists, just no matching files: nothing to do
    assert prom.exists()


def test_checksum_manifest_and_verify(tmp_path: Path, s3: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    files = _landing(tmp_path)
    day = tmp_path / "2026-11-26"
    manifest = s3.url("manifests/SHA256SUMS")
    assert (
        checksum.run(["--source", str(day), "--pattern", "*.csv", "--manifest", manifest, "--log-level", "ERROR"]) == 0
    )
    text = s3.get("manifests/SHA256SUMS").decode()
    expected = {
        rel.removeprefix("2026-11-26/"): hashlib.sha256(data).hexdigest()
        for rel, data in files.items()
        if rel.endswith(".csv")
    }
    assert ops.parse_manifest(text, where="m") == expected
    assert text.splitlines()[0] == f"{expected['orders-1.csv']}  orders-1.csv"
    assert checksum.run(["--source", str(day), "--pattern", "*.csv", "--verify", manifest, "--log-level", "ERROR"]) == 0
    (day / "orders-2.csv").write_bytes(b"tampered")
    (day / "sub" / "refunds.csv").unlink()
    assert checksum.run(["--source", str(day), "--verify", manifest, "--log-level", "ERROR"]) == 1
    assert last_line(capsys.readouterr().err).endswith(
        f"error: {str(day)!r} does not match {manifest!r}: 1 differ (orders-2.csv); 1 missing (sub/refunds.csv)"
    )
    with pytest.raises(ChecksumMismatch, match=r"m:2: not a '<hex digest>  <name>' line: 'garbage'"):
        ops.parse_manifest("a" * 64 + "  x\ngarbage\n", where="m")


def test_gzip_roundtrip_is_deterministic_and_corrupt_input_fails(
    tmp_path: Path, s3: SimpleNamespace, capsys: pytest.CaptureFixture[str]
) -> None:
    files = _landing(tmp_path)
    day = tmp_path / "2026-11-26"
    args = ["--source", str(day), "--pattern", "*.csv", "--dest", s3.url("gz/"), "--log-level", "ERROR"]
    assert compress.run(args) == 0
    first = s3.get("gz/orders-1.csv.gz")
    assert gzip.decompress(first) == files["2026-11-26/orders-1.csv"]
    assert compress.run(args) == 0  # same input, same bytes: the re-run overwrote with identical content
    assert s3.get("gz/orders-1.csv.gz") == first
    out = tmp_path / "unzipped"
    assert decompress.run(["--source", s3.url("gz/"), "--dest", str(out) + "/", "--log-level", "ERROR"]) == 0
    assert (out / "sub" / "refunds.csv").read_bytes() == files["2026-11-26/sub/refunds.csv"]
    # In place, removing the sources.
    local = tmp_path / "inplace.csv"
    local.write_bytes(b"a,b\n1,2\n" * 100)
    ops.compress_files(str(local), delete_source=True)
    assert not local.exists() and (tmp_path / "inplace.csv.gz").exists()
    payload = gzip.compress(bytes(range(256)) * 200)
    s3.put("bad/broken.csv.gz", payload[: len(payload) // 2])  # cut off mid-stream
    assert (
        decompress.run(["--source", s3.url("bad/"), "--dest", str(tmp_path / "b") + "/", "--log-level", "ERROR"]) == 1
    )
    assert f"error: {s3.url('bad/broken.csv.gz')!r} is not a valid gzip file" in last_line(capsys.readouterr().err)
    with pytest.raises(ConversionError, match="is not a valid gzip file"):
        ops.decompress_files(s3.url("bad/broken.csv.gz"), str(tmp_path / "c.csv"))
