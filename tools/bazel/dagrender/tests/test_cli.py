"""The command line as the Bazel actions run it: a child process, exit codes, one-line errors."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import (
    DIGEST_FILE,
    ENTRYPOINTS,
    PACKAGE,
    REFERENCE_SPEC,
    REPOSITORY,
    TARGET,
)

MAIN = Path(__file__).parent.parent / "__main__.py"


def _run(*args: str, script: bool = False) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    cmd = [sys.executable, str(MAIN)] if script else [sys.executable, "-m", "tools.bazel.dagrender"]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, check=False, timeout=120)


def _render_args(spec: Path, out: Path) -> list[str]:
    return [
        "render",
        "--spec",
        str(spec),
        "--package",
        PACKAGE,
        "--repository",
        REPOSITORY,
        "--digest-file",
        str(DIGEST_FILE),
        "--target",
        TARGET,
        "--entrypoints",
        str(ENTRYPOINTS),
        "--out",
        str(out),
    ]


def test_render_as_script_like_py_binary(tmp_path: Path) -> None:
    out = tmp_path / "out" / "file_processing_daily_profile.py"
    proc = _run(*_render_args(REFERENCE_SPEC, out), script=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "" and proc.stderr == ""
    assert out.read_text().splitlines()[2:4] == [f"# spec: {REFERENCE_SPEC}", f"# target: {TARGET}"]
    assert [p.name for p in out.parent.iterdir()] == [out.name], "no temp files left behind"


def test_bad_spec_exits_1_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    # The corpus of bad specs and their pinned lines is tools/testing/hostile (run in-process there).
    spec = tmp_path / "bad_cron.yaml"
    spec.write_text(
        REFERENCE_SPEC.read_text()
        .replace('"0 3 * * *"', '"0 25 * * *"')
        .replace("dag_id: file_processing_daily_profile", "dag_id: bad_cron")
    )
    out = tmp_path / "bad_cron.py"
    proc = _run(*_render_args(spec, out))
    assert proc.returncode == 1
    assert proc.stderr == (
        f"ERROR: {spec}: schedule: '0 25 * * *' is not a valid cron expression: hour '25' is outside 0-23\n"
    )
    assert not out.exists()


def test_usage_error_exits_2(tmp_path: Path) -> None:
    proc = _run("render", "--spec", str(REFERENCE_SPEC))
    assert proc.returncode == 2
    assert (
        "the following arguments are required: --package, --repository, --digest-file, --target, --out" in proc.stderr
    )


def test_bad_digest_file_exits_1(tmp_path: Path) -> None:
    digest = tmp_path / "image.digest"
    digest.write_text("latest\n")
    args = _render_args(REFERENCE_SPEC, tmp_path / "x.py")
    args[args.index("--digest-file") + 1] = str(digest)
    proc = _run(*args)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"ERROR: digest file '{digest}' holds 'latest'; expected 'sha256:'")


def test_bad_repository_exits_1(tmp_path: Path) -> None:
    args = _render_args(REFERENCE_SPEC, tmp_path / "x.py")
    args[args.index("--repository") + 1] = "Registry.example.com/ETL"
    proc = _run(*args)
    assert proc.returncode == 1
    assert proc.stderr.startswith("ERROR: invalid repository 'Registry.example.com/ETL': write a registry host")


def test_bad_entrypoints_file_exits_1(tmp_path: Path) -> None:
    listing = tmp_path / "entrypoints.txt"
    listing.write_text("file_processing.jobs.profile\nfile_processing/jobs/report.py\n")
    args = _render_args(REFERENCE_SPEC, tmp_path / "x.py")
    args[args.index("--entrypoints") + 1] = str(listing)
    proc = _run(*args)
    assert proc.returncode == 1
    assert proc.stderr == (
        f"ERROR: entrypoints file '{listing}' line 2: 'file_processing/jobs/report.py' is not a dotted module name\n"
    )


@pytest.mark.parametrize("umask", [0o077, 0o000])
def test_written_files_are_0644_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    from tools.bazel.dagrender.cli import main

    out = tmp_path / "file_processing_daily_profile.py"
    schema = tmp_path / "schema.json"
    previous = os.umask(umask)
    try:
        assert main(_render_args(REFERENCE_SPEC, out)) == 0
        assert main(["schema", "--out", str(schema)]) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert stat.S_IMODE(schema.stat().st_mode) == 0o644
