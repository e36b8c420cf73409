"""Monorepo-wide dag_id uniqueness: a clash names both spec files."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import GOOD_SPECS

from tools.bazel.dagrender import DuplicateDagIdError, check_unique_dag_ids
from tools.bazel.dagrender.cli import main

SPEC = "dag_id: {dag_id}\nschedule: '@daily'\nstart_date: 2026-01-01\nowner: x\ntasks: []\n"


def _spec(root: Path, package: str, dag_id: str, *, file_stem: str | None = None) -> Path:
    path = root / "packages" / package / "dags" / f"{file_stem or dag_id}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SPEC.format(dag_id=dag_id))
    return path


def test_distinct_ids_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = [str(p) for p in GOOD_SPECS] + [str(_spec(tmp_path, "data_pipeline", "data_pipeline_ingest"))]
    listing = tmp_path / "dag_ids.tsv"
    assert main(["check-unique", *paths, f"--out={listing}"]) == 0
    assert "OK: 4 dag_ids in 4 spec files are unique" in capsys.readouterr().out
    assert listing.read_text().splitlines()[0] == f"data_pipeline_ingest\t{paths[-1]}"


def test_duplicate_across_packages_names_both_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first = _spec(tmp_path, "file_processing", "daily_report")
    second = _spec(tmp_path, "observability", "daily_report")
    assert main(["check-unique", str(first), str(second), *map(str, GOOD_SPECS)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"ERROR: dag_id 'daily_report' is declared by {first} and {second};")


def test_declared_id_counts_even_when_file_name_differs(tmp_path: Path) -> None:
    first = _spec(tmp_path, "file_processing", "shared")
    second = _spec(tmp_path, "data_pipeline", "shared", file_stem="not_shared")
    with pytest.raises(
        DuplicateDagIdError,
        match=r"dag_id 'shared' is declared by .*data_pipeline/dags/not_shared.yaml and .*file_processing/dags/shared.yaml",
    ):
        check_unique_dag_ids([(first, str(first)), (second, str(second))])


def test_every_clash_is_reported(tmp_path: Path) -> None:
    paths = [_spec(tmp_path, pkg, dag_id) for pkg in ("a", "b") for dag_id in ("x", "y")]
    with pytest.raises(DuplicateDagIdError, match=r"dag_id 'x' is declared by .*; dag_id 'y' is declared by"):
        check_unique_dag_ids([(p, str(p)) for p in paths])
