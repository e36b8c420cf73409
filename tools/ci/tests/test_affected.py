"""affected.py against a real git repository and a real (nested) Bazel query.

The workspace is a small copy of the monorepo's shape: etl_core, two packages that depend on it,
one that does not, READMEs and tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import affected

DEFS = """
def etl_package(name, lib):
    native.genrule(name = "image", srcs = [lib], outs = ["image.txt"], cmd = "cat $(SRCS) > $@")
    native.genrule(name = "dags", srcs = native.glob(["dags/*.yaml"]) + [":image"], outs = ["dags.txt"], cmd = "cat $(SRCS) > $@")
"""


def _lib(name: str, deps: list[str]) -> str:
    return f'filegroup(name = "{name}_lib", srcs = glob(["*.py"]) + {deps!r})\n'


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _git(ws: Path, *args: str) -> str:
    env = dict(
        os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t"
    )
    return subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True, text=True, env=env).stdout


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mono")
    _write(root, "MODULE.bazel", 'module(name = "mono")\n')
    _write(root, ".bazelrc", "common --noenable_workspace\ncommon --lockfile_mode=off\n")
    _write(root, "BUILD.bazel", "")
    _write(root, "README.md", "# mono\n")
    _write(root, "defs.bzl", DEFS)
    _write(
        root,
        "packages/etl_core/BUILD.bazel",
        _lib("etl_core", []).replace("filegroup(", 'filegroup(visibility = ["//visibility:public"], '),
    )
    _write(root, "packages/etl_core/s3.py", "x = 1\n")
    _write(root, "packages/etl_core/README.md", "core\n")
    for pkg, deps in (
        ("alpha", ["//packages/etl_core:etl_core_lib"]),
        ("beta", ["//packages/etl_core:etl_core_lib"]),
        ("gamma", []),
    ):
        _write(
            root,
            f"packages/{pkg}/BUILD.bazel",
            'load("//:defs.bzl", "etl_package")\n'
            + _lib(pkg, deps)
            + f'etl_package(name = "{pkg}", lib = ":{pkg}_lib")\n'
            f'filegroup(name = "tests", srcs = glob(["tests/*.py"]))\n',
        )
        _write(root, f"packages/{pkg}/job.py", "y = 2\n")
        _write(root, f"packages/{pkg}/dags/{pkg}_daily.yaml", f"dag_id: {pkg}_daily\n")
        _write(root, f"packages/{pkg}/tests/test_job.py", "def test(): pass\n")
        _write(root, f"packages/{pkg}/README.md", f"{pkg}\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "base")
    return root


@pytest.fixture
def change(ws: Path):
    """Edit files, commit them on top of main, yield; then reset to main."""
    base = _git(ws, "rev-parse", "HEAD").strip()

    def _change(*paths: str) -> str:
        for rel in paths:
            with open(ws / rel, "a") as fh:
                fh.write("# changed\n")
        _git(ws, "commit", "-qam", "change")
        return base

    yield _change
    _git(ws, "reset", "-q", "--hard", base)


def _affected(ws: Path, base: str) -> list[str]:
    old = os.getcwd()
    try:
        return affected.affected(ws, base, bazel=os.environ.get("BAZEL", "bazel"))
    finally:
        os.chdir(old)


def test_one_package_code_selects_only_it(ws: Path, change) -> None:
    assert _affected(ws, change("packages/alpha/job.py")) == ["alpha"]


def test_etl_core_selects_its_dependents(ws: Path, change) -> None:
    assert _affected(ws, change("packages/etl_core/s3.py")) == ["alpha", "beta"]


def test_readme_selects_none(ws: Path, change) -> None:
    assert _affected(ws, change("README.md", "packages/alpha/README.md", "packages/etl_core/README.md")) == []


def test_a_dag_spec_selects_its_package(ws: Path, change) -> None:
    assert _affected(ws, change("packages/gamma/dags/gamma_daily.yaml")) == ["gamma"]


def test_tests_only_change_selects_none(ws: Path, change) -> None:
    assert _affected(ws, change("packages/beta/tests/test_job.py")) == []


def test_lock_change_selects_every_package(ws: Path, change) -> None:
    (ws / "requirements_lock.txt").write_text("six==1\n")
    _git(ws, "add", "requirements_lock.txt")
    assert _affected(ws, change("requirements_lock.txt")) == ["alpha", "beta", "gamma"]


def test_json_output_is_one_list(
    ws: Path, change, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    base = change("packages/alpha/job.py", "packages/beta/job.py")
    monkeypatch.setenv("BUILD_WORKSPACE_DIRECTORY", str(ws))
    assert affected.main(["--base", base, "--json", "--bazel", os.environ.get("BAZEL", "bazel")]) == 0
    assert capsys.readouterr().out == '["alpha", "beta"]\n'


def test_publish_builds_for_the_image_repository_prefix() -> None:
    assert affected.publish_command("alpha", ["--dry-run"], {"IMAGE_REPOSITORY": "registry.example.com/etl"}) == [
        "bazel",
        "run",
        "--//tools/bazel:image_repository=registry.example.com/etl",
        "//packages/alpha:publish",
        "--",
        "--dry-run",
    ]
    assert affected.publish_command("alpha", [], {}) == ["bazel", "run", "//packages/alpha:publish", "--"]


def test_shutdown(ws: Path) -> None:
    subprocess.run(["bazel", "shutdown"], cwd=ws, check=False, capture_output=True)
    assert affected.packages(ws) == ["alpha", "beta", "gamma"]
