"""The @pypi repository rule end to end: a nested Bazel fetches a one-wheel lock with real uv.

A correct lock gives a py_library per distribution; a lock whose hash is wrong fails the fetch
with a message that names the distribution.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

# The real workspace: this test file is a symlink into it (runfiles -> execroot -> source tree).
WORKSPACE = Path(os.path.realpath(__file__)).parents[4]

GOOD_LOCK = """six==1.17.0 \\
    --hash=sha256:4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274 \\
    --hash=sha256:ff70335d468e7eb6ec65b95b99d3a2836546063f63acc5171de367e834932a81
"""


def _workspace(tmp: Path, lock: str) -> Path:
    ws = tmp / "ws"
    ws.mkdir()
    (ws / "MODULE.bazel").write_text(
        'bazel_dep(name = "etl_platform")\n'
        f'local_path_override(module_name = "etl_platform", path = "{WORKSPACE}")\n'
        'bazel_dep(name = "rules_python", version = "0.22.1")\n'
        'pypi = use_extension("@etl_platform//tools/bazel:extensions.bzl", "pypi")\n'
        'pypi.install(name = "pypi_test", lock = "//:lock.txt", requirements = "//:requirements.in")\n'
        'use_repo(pypi, "pypi_test")\n'
    )
    (ws / "BUILD.bazel").write_text("")
    (ws / "lock.txt").write_text(lock)
    (ws / "requirements.in").write_text("six\n")
    (ws / ".bazelrc").write_text("common --noenable_workspace\ncommon --lockfile_mode=off\n")
    return ws


def _bazel(tmp: Path, ws: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/opt/etl-tools/bin",
        "HOME": str(tmp),
        "UV_CACHE_DIR": str(tmp / "uv-cache"),
    }
    return subprocess.run(
        ["bazel", f"--output_user_root={tmp / 'out'}", "--max_idle_secs=5", *args],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nested")


def test_good_lock_gives_one_library_per_distribution(tmp: Path) -> None:
    (tmp / "good").mkdir()
    ws = _workspace(tmp / "good", GOOD_LOCK)
    done = _bazel(tmp / "good", ws, "build", "@pypi_test//:six")
    assert done.returncode == 0, done.stderr[-3000:]
    out = _bazel(tmp / "good", ws, "query", "labels(srcs, @pypi_test//:six)")
    assert "site-packages/six.py" in out.stdout
    _bazel(tmp / "good", ws, "shutdown")


def test_wrong_hash_fails_naming_the_distribution(tmp: Path) -> None:
    (tmp / "bad").mkdir()
    bad = GOOD_LOCK.replace("4721f391", "0000f391").replace("ff703354", "00003354")
    ws = _workspace(tmp / "bad", bad)
    done = _bazel(tmp / "bad", ws, "build", "@pypi_test//:six")
    _bazel(tmp / "bad", ws, "shutdown")
    assert done.returncode != 0
    assert "@pypi_test: installing" in done.stderr
    assert "six==1.17.0" in done.stderr, done.stderr[-3000:]
    assert "hash" in done.stderr.lower()
