"""Deterministic layers: same inputs give the same bytes, whatever the paths, clocks and owners."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from ocitool_testlib import run_cli, write_tree

from tools.bazel.ocitool.errors import LayerInputError, UsageError
from tools.bazel.ocitool.layer import LayerContents, load_manifest, write_layer
from tools.bazel.ocitool.pyc import compile_pyc

APP = {
    "pkg/__init__.py": "",
    "pkg/jobs/hello.py": "print('hello')\n",
    "pkg/run.sh": "#!/bin/sh\necho run\n",
}


def _manifest(src: Path, out: Path) -> Path:
    entries = [
        {"path_in_image": "/app/pkg/__init__.py", "src": str(src / "pkg/__init__.py")},
        {
            "path_in_image": "/app/pkg/jobs/hello.py",
            "src": str(src / "pkg/jobs/hello.py"),
        },
        {"path_in_image": "/app/bin/run", "src": str(src / "pkg/run.sh")},
        {"path_in_image": "/app/VERSION", "content": "1.0\n"},
        {"path_in_image": "/app/cache", "type": "dir"},
        {"path_in_image": "/app/current", "type": "symlink", "target": "pkg"},
    ]
    out.write_text(json.dumps(entries))
    return out


def _build(tmp: Path) -> tuple[str, str, bytes]:
    src = write_tree(tmp / "src", APP, executable=("pkg/run.sh",))
    contents = load_manifest(_manifest(src, tmp / "files.json"))
    result = write_layer(contents, tmp / "layer.tar.gz")
    return result.digest, result.diff_id, (tmp / "layer.tar.gz").read_bytes()


def test_same_inputs_in_different_dirs_give_identical_bytes(tmp_path: Path) -> None:
    first = _build(tmp_path / "one")
    # different absolute paths, different file mtimes
    time.sleep(0.01)
    second = _build(tmp_path / "two" / "deeper")
    os.utime(tmp_path / "two" / "deeper" / "src" / "pkg" / "__init__.py", (1, 1))
    third = _build(tmp_path / "two" / "deeper")
    assert first == second == third
    assert first[0] == "sha256:" + hashlib.sha256(first[2]).hexdigest()


def test_tar_entries_are_normalised(tmp_path: Path) -> None:
    _build(tmp_path)
    with tarfile.open(tmp_path / "layer.tar.gz") as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == [
        "app",
        "app/VERSION",
        "app/bin",
        "app/bin/run",
        "app/cache",
        "app/current",
        "app/pkg",
        "app/pkg/__init__.py",
        "app/pkg/jobs",
        "app/pkg/jobs/hello.py",
    ]
    by_name = {m.name: m for m in members}
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
    assert all(m.uname == "" and m.gname == "" for m in members)
    assert by_name["app/bin/run"].mode == 0o755
    assert by_name["app/pkg/jobs/hello.py"].mode == 0o644
    assert by_name["app/bin"].isdir() and by_name["app/bin"].mode == 0o755  # implicit parent
    assert by_name["app/current"].issym() and by_name["app/current"].linkname == "pkg"


def test_gzip_header_has_no_name_and_no_mtime(tmp_path: Path) -> None:
    data = _build(tmp_path)[2]
    assert data[:4] == b"\x1f\x8b\x08\x00"  # deflate, no FNAME/FCOMMENT/FEXTRA flags
    assert data[4:8] == b"\x00\x00\x00\x00"  # MTIME
    assert data[9] == 255  # OS unknown


def test_source_date_epoch_sets_mtime(tmp_path: Path) -> None:
    contents = LayerContents()
    contents.add_bytes("/a", b"x")
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ.update(env)
    try:
        write_layer(contents, tmp_path / "l.tar.gz")
    finally:
        if old is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old
    with tarfile.open(tmp_path / "l.tar.gz") as tar:
        assert {m.mtime for m in tar.getmembers()} == {1700000000}


def test_long_and_unicode_names_survive_gnu_tar(tmp_path: Path) -> None:
    long_name = "/opt/site-packages/" + "/".join(["a_rather_long_directory_name"] * 6) + "/module.py"
    contents = LayerContents()
    contents.add_bytes(long_name, b"x = 1\n")
    contents.add_bytes("/app/données.txt", b"caf\xc3\xa9\n")
    contents.add_symlink("/app/link", "../" + "t" * 150)
    write_layer(contents, tmp_path / "l.tar.gz")
    listed = subprocess.run(
        ["tar", "-tzf", str(tmp_path / "l.tar.gz")],
        capture_output=True,
        text=True,
        check=True,
    )
    names = listed.stdout.splitlines()
    assert long_name.lstrip("/") in names
    assert "app/données.txt" in names
    with tarfile.open(tmp_path / "l.tar.gz") as tar:
        assert tar.getmember("app/link").linkname == "../" + "t" * 150


def test_tree_mode_follows_symlinks_like_a_runfiles_tree(tmp_path: Path) -> None:
    real = write_tree(tmp_path / "real", {"lib/mod.py": "A = 1\n", "lib/sub/data.txt": "d", "tool": "#!/bin/sh\n"},
                      executable=("tool",))  # fmt: skip
    runfiles = tmp_path / "runfiles"
    (runfiles / "_main").mkdir(parents=True)
    (runfiles / "_main" / "mod.py").symlink_to(real / "lib/mod.py")
    (runfiles / "_main" / "sub").symlink_to(real / "lib/sub")
    (runfiles / "_main" / "tool").symlink_to(real / "tool")
    (runfiles / "_main" / "__pycache__").mkdir()
    (runfiles / "_main" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"stale")
    contents = LayerContents()
    contents.add_tree(runfiles, "/opt/app", excludes=["__pycache__"])
    write_layer(contents, tmp_path / "l.tar.gz")
    with tarfile.open(tmp_path / "l.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["opt/app/_main/mod.py"].isreg()
        assert tar.extractfile("opt/app/_main/mod.py").read() == b"A = 1\n"  # type: ignore[union-attr]
        assert members["opt/app/_main/sub"].isdir()
        assert members["opt/app/_main/sub/data.txt"].isreg()
        assert members["opt/app/_main/tool"].mode == 0o755
    assert not any("__pycache__" in name for name in members)


def test_symlink_loop_in_tree_is_reported(tmp_path: Path) -> None:
    (tmp_path / "t" / "a").mkdir(parents=True)
    (tmp_path / "t" / "a" / "back").symlink_to(tmp_path / "t")
    with pytest.raises(LayerInputError, match=r"symlink loop at '.*back'"):
        LayerContents().add_tree(tmp_path / "t", "/x")


def test_conflicting_paths_are_rejected(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.txt": "one", "b.txt": "two", "c.txt": "one"})
    contents = LayerContents()
    contents.add_file("/app/x", tmp_path / "a.txt")
    contents.add_file("/app/x", tmp_path / "c.txt")  # same content: fine
    with pytest.raises(LayerInputError, match=r"image path '/app/x' is given twice"):
        contents.add_file("/app/x", tmp_path / "b.txt")
    contents.add_bytes("/app/file", b"f")
    contents.add_bytes("/app/file/inner", b"g")
    with pytest.raises(
        LayerInputError,
        match=r"image path '/app/file' is a file .* needs it to be a directory",
    ):
        contents.entries()


def test_manifest_errors_name_the_entry(tmp_path: Path) -> None:
    bad = tmp_path / "files.json"
    bad.write_text(json.dumps([{"path_in_image": "/app/x", "src": str(tmp_path / "missing.py")}]))
    with pytest.raises(LayerInputError, match=r"source file '.*missing.py' for '/app/x' does not exist"):
        load_manifest(bad)
    bad.write_text(json.dumps([{"path_in_image": "/app/../etc/passwd", "content": "x"}]))
    with pytest.raises(LayerInputError, match=r"image path '/app/../etc/passwd' must not contain '..'"):
        load_manifest(bad)
    bad.write_text(json.dumps([{"path_in_image": "/a", "type": "fifo"}]))
    with pytest.raises(LayerInputError, match=r"type 'fifo' must be one of"):
        load_manifest(bad)


def test_pyc_files_are_unchecked_hash_and_deterministic(tmp_path: Path) -> None:
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    tag = sys.implementation.cache_tag
    digests = []
    for run in ("a", "b"):
        src = write_tree(
            tmp_path / run,
            {
                "m.py": "X = {'a', 'b', 'c', 'd'}\nprint('x' in X)\n",
                "bad.py": "def (:\n",
            },
        )
        contents = LayerContents()
        contents.add_tree(src, "/app")
        result = compile_pyc(contents, python_version=version)
        assert result.compiled == 1 and result.failed == ["/app/bad.py"]
        pyc = contents.get(f"/app/__pycache__/m.{tag}.pyc")
        assert pyc is not None
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == 0b01  # hash-based, check_source off (PEP 552 unchecked-hash)
        digests.append(write_layer(contents, tmp_path / f"{run}.tar.gz").digest)
    assert digests[0] == digests[1]


def test_pyc_needs_the_image_python_version(tmp_path: Path) -> None:
    contents = LayerContents()
    contents.add_bytes("/app/m.py", b"x = 1\n")
    with pytest.raises(UsageError, match=r"--compile-pyc needs Python '2.7'"):
        compile_pyc(contents, python_version="2.7")


def test_cli_layer_writes_descriptor_and_site_packages_tree(tmp_path: Path) -> None:
    site = write_tree(
        tmp_path / "site",
        {
            "dep/__init__.py": "",
            "dep-1.0.dist-info/METADATA": "Name: dep\nVersion: 1.0\n",
        },
    )
    proc = run_cli(
        "layer",
        "--out", str(tmp_path / "deps.tar.gz"),
        "--tree", f"{site}=/opt/etl/site-packages",
        "--descriptor-out", str(tmp_path / "deps.json"),
        "--diff-id-out", str(tmp_path / "deps.diff_id"),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    desc = json.loads((tmp_path / "deps.json").read_text())
    assert desc["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    assert desc["digest"] == "sha256:" + hashlib.sha256((tmp_path / "deps.tar.gz").read_bytes()).hexdigest()
    assert (tmp_path / "deps.diff_id").read_text() == desc["diff_id"]
    assert desc["diff_id"] in proc.stdout
    with tarfile.open(tmp_path / "deps.tar.gz") as tar:
        assert "opt/etl/site-packages/dep-1.0.dist-info/METADATA" in tar.getnames()


def test_cli_usage_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    proc = run_cli("layer", "--out", str(tmp_path / "x.tar.gz"))
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "ocitool layer: error: required flag: --manifest FILE or --tree DIR=PREFIX (at least one)"
    )
    proc = run_cli("layer", "--out", str(tmp_path / "x.tar.gz"), "--tree", "nodir")
    assert proc.returncode == 2 and "--tree 'nodir' must look like DIR=/prefix/in/image" in proc.stderr
    missing = tmp_path / "nope.json"
    proc = run_cli("layer", "--out", str(tmp_path / "x.tar.gz"), "--manifest", str(missing))
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"ocitool layer: error: layer manifest {str(missing)!r} does not exist"
