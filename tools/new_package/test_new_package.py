"""`//:new_package` into a copy of the monorepo's inputs: refused names, the files it writes, and
that what it writes passes what the monorepo checks (the spec renders and passes the package-DAG
checks, pyproject.toml agrees with BUILD.bazel, the example job and the scaffolded tests run, the
infra files are regenerated, nothing else changes).

The scaffolded package is built, published and run in the demo by the acceptance in
docs/adding-a-package.md; this test checks its files without a nested Bazel.
"""

from __future__ import annotations

import hashlib
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.iam import generate
from tools.bazel import dagrender
from tools.new_package import new_package
from tools.testing.package_metadata import problems

RUNFILES = Path(__file__).parents[2]  # _main in runfiles (symlinks not resolved)
PACKAGES = (RUNFILES / "packages" / "etl_packages.txt").read_text().split()


def _free_name() -> str:
    """A name the scaffolder accepts next to the real packages (zz_example may be one of them)."""
    for candidate in ("zz_example", *(f"zz_probe{n}" for n in range(100))):
        try:
            new_package.check_name(candidate, [*PACKAGES, new_package.LIBRARY])
        except new_package.InvalidName:
            continue
        return candidate
    raise AssertionError("no free package name for the test")


NAME = _free_name()
ACCOUNT = NAME.replace("_", "-")


def _tree(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under ``root``."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _monorepo(root: Path) -> Path:
    """The inputs the scaffolder reads and the generators rewrite, as in the work tree."""
    (root / "packages" / "etl_core").mkdir(parents=True)
    for pkg in PACKAGES:
        build = root / "packages" / pkg / "BUILD.bazel"
        build.parent.mkdir(parents=True)
        build.write_text(f'etl_package(\n    name = "{pkg}",\n    lib = ":{pkg}_lib",\n)\n')
    (root / "infra" / "iam").mkdir(parents=True)
    for doc in (RUNFILES / "infra" / "iam").glob("*.json"):
        (root / "infra" / "iam" / doc.name).write_bytes(doc.read_bytes())
    rbac = root / "infra" / "airflow_control_plane" / "rbac.yaml"
    rbac.parent.mkdir(parents=True)
    rbac.write_bytes((RUNFILES / "infra" / "airflow_control_plane" / "rbac.yaml").read_bytes())
    admission = root / "infra" / "airflow_control_plane" / "admission.yaml"
    admission.write_bytes((RUNFILES / "infra" / "airflow_control_plane" / "admission.yaml").read_bytes())
    return root


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str], str]]:
    """(root, tree before, stdout) after `new_package <NAME>` into a fresh copy of the inputs."""
    root = _monorepo(tmp_path_factory.mktemp("monorepo"))
    before = _tree(root)
    out = subprocess.run(
        [sys.executable, new_package.__file__, NAME, "--root", str(root)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": ":".join(sys.path)},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    sys.path.insert(0, str(root / "packages"))  # import the new package as its image does
    try:
        yield root, before, out.stdout
    finally:
        sys.path.remove(str(root / "packages"))


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("Sales", "a package name is a lowercase identifier"),
        ("9lives", "a package name is a lowercase identifier"),
        ("sales-reports", "a package name is a lowercase identifier"),
        ("sales__reports", "a package name is a lowercase identifier"),
        ("sales_", "a package name is a lowercase identifier"),
        ("s" * 51, "at most 50 characters"),
        ("etl_core", "that is the shared library every package depends on"),
        ("observability", "packages/observability/ already exists"),
        ("lambda", "a Python keyword cannot be imported"),
        ("json", "named like a module Python or the platform already imports"),
        ("airflow", "named like a module Python or the platform already imports"),
        (
            "data",
            "its dag_ids (data_...) and those of package 'data_pipeline' (data_pipeline_...) would share a prefix",
        ),
        ("observability_extra", "and those of package 'observability' (observability_...) would share a prefix"),
    ],
)
def test_a_bad_name_is_refused_with_one_line_and_nothing_written(
    name: str, rule: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _monorepo(tmp_path)
    if name == "observability":
        assert "observability" in PACKAGES  # the existing-package case needs a real package
    before = _tree(root)
    assert new_package.main([name, "--root", str(root)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"new_package: error: {name!r}: "), captured.err
    assert rule in lines[0]
    assert captured.out == ""
    assert _tree(root) == before


def test_a_tree_that_is_not_the_monorepo_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        new_package.main([NAME, "--root", str(tmp_path)])
    assert exit_.value.code == 2
    expected = f"new_package: error: invalid flag: --root={str(tmp_path)!r}: not the monorepo's work tree"
    assert expected in capsys.readouterr().err


def test_it_writes_the_package_and_only_the_generated_infra_files(scaffolded: tuple[Path, dict[str, str], str]) -> None:
    root, before, stdout = scaffolded
    after = _tree(root)
    created = sorted(set(after) - set(before))
    assert created == sorted(
        [
            f"packages/{NAME}/BUILD.bazel",
            f"packages/{NAME}/README.md",
            f"packages/{NAME}/__init__.py",
            f"packages/{NAME}/dags/{NAME}_example.yaml",
            f"packages/{NAME}/jobs/__init__.py",
            f"packages/{NAME}/jobs/example.py",
            f"packages/{NAME}/pyproject.toml",
            f"packages/{NAME}/tests/test_example.py",
            f"infra/iam/publisher-{NAME}.json",
        ]
    )
    changed = sorted(p for p in before if before[p] != after.get(p))
    assert changed == ["infra/airflow_control_plane/admission.yaml", "infra/airflow_control_plane/rbac.yaml"]
    for path in created:
        assert f"  {path}\n" in stdout
    assert f"./bazelw test //packages/{NAME}/..." in stdout and "./bazelw run //:demo -- --once" in stdout
    assert NAME in generate.packages(root)  # the generators see the new BUILD.bazel as an ETL package
    rbac = (root / "infra" / "airflow_control_plane" / "rbac.yaml").read_text()
    assert f"  name: {ACCOUNT}\n  namespace: etl-jobs\n" in rbac
    admission = (root / "infra" / "airflow_control_plane" / "admission.yaml").read_text()
    assert f"  {ACCOUNT}: registry.example.com/etl/{NAME}\n" in admission


def test_the_spec_renders_and_passes_the_package_dag_checks(scaffolded: tuple[Path, dict[str, str], str]) -> None:
    root, _, _ = scaffolded
    package_dir = root / "packages" / NAME
    (spec_path,) = sorted((package_dir / "dags").glob("*.yaml"))
    shown = f"packages/{NAME}/dags/{spec_path.name}"
    jobs = {f"{NAME}.jobs.{p.stem}" for p in (package_dir / "jobs").glob("*.py") if not p.stem.startswith("_")}
    spec = dagrender.load_spec(spec_path, shown)
    resolved = dagrender.resolve(spec, spec_path=shown, package=NAME, entrypoints=jobs)
    # what tools/testing/test_package_dags.py asserts of every package's specs
    assert spec.dag_id == spec_path.stem and spec.dag_id.startswith(NAME + "_")
    for task in resolved.tasks:
        assert callable(importlib.import_module(task.job).run)
        assert task.resources["limits"]["memory"]
        assert task.retries >= 0 and task.execution_timeout
        assert task.service_account == ACCOUNT
    image = dagrender.ImageRef(repository_prefix="localhost:5000/etl", package=NAME, digest="sha256:" + "a" * 64)
    source = dagrender.render_dag(resolved, image=image, spec_path=shown, target=f"//packages/{NAME}:dags")
    compile(source, f"{spec.dag_id}.py", "exec")
    assert f"localhost:5000/etl/{NAME}@sha256:{'a' * 64}" in source
    # and no dag_id clash with any package's specs
    specs = [(p, p.relative_to(RUNFILES).as_posix()) for p in sorted((RUNFILES / "packages").glob("*/dags/*.yaml"))]
    dagrender.check_unique_dag_ids([*specs, (spec_path, shown)])


def test_pyproject_agrees_with_build_and_the_check_can_fail(
    scaffolded: tuple[Path, dict[str, str], str], tmp_path: Path
) -> None:
    root, _, _ = scaffolded
    assert problems(root / "packages" / NAME) == []
    broken = tmp_path / NAME
    broken.mkdir()
    (broken / "BUILD.bazel").write_bytes((root / "packages" / NAME / "BUILD.bazel").read_bytes())
    text = (root / "packages" / NAME / "pyproject.toml").read_text()
    (broken / "pyproject.toml").write_text(text.replace('    "pydantic>=2.7",\n', "", 1))
    found = problems(broken)
    assert any(
        "BUILD.bazel depends on 'pydantic', which pyproject.toml's [project] dependencies does not list" in p
        for p in found
    ), found


def test_the_example_job_and_the_scaffolded_tests_run(scaffolded: tuple[Path, dict[str, str], str]) -> None:
    root, _, _ = scaffolded
    example = importlib.import_module(f"{NAME}.jobs.example")
    assert example.run(["--run-date", "2026-01-01"]) == 0
    tests = root / "packages" / NAME / "tests" / "test_example.py"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
        env={"PYTHONPATH": ":".join([str(root / "packages"), *sys.path])},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "4 passed" in run.stdout


def test_a_second_scaffold_of_the_same_name_is_refused(
    scaffolded: tuple[Path, dict[str, str], str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, _, _ = scaffolded
    assert new_package.main([NAME, "--root", str(root)]) == 2
    assert f"new_package: error: {NAME!r}: packages/{NAME}/ already exists" in capsys.readouterr().err
