"""Monorepo-wide: no two DAG specs anywhere share a dag_id, and every package's specs are checked.

The specs come in as data (`//packages:dag_specs`, every package's `:dag_specs`, derived from the
folders under packages/); the test also compares them with the source tree, so a spec the
derivation misses fails it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tools.bazel.dagrender import DuplicateDagIdError, check_unique_dag_ids

RUNFILES_ROOT = Path(__file__).parents[3]  # _main in runfiles (symlinks not resolved)
SOURCE_ROOT = Path(os.path.realpath(__file__)).parents[3]  # the real work tree


def _specs_in_runfiles() -> list[Path]:
    return sorted((RUNFILES_ROOT / "packages").glob("*/dags/*.yaml"))


def test_every_spec_in_the_tree_is_checked() -> None:
    in_tree = {p.relative_to(SOURCE_ROOT).as_posix() for p in (SOURCE_ROOT / "packages").glob("*/dags/*.yaml")}
    checked = {p.relative_to(RUNFILES_ROOT).as_posix() for p in _specs_in_runfiles()}
    assert in_tree, "no DAG specs found under packages/*/dags"
    assert in_tree == checked, (
        f"specs missing from //packages:dag_specs (see packages/BUILD.bazel): {sorted(in_tree - checked)}"
    )


def test_dag_ids_are_unique_across_the_monorepo() -> None:
    owners = check_unique_dag_ids((p, p.relative_to(RUNFILES_ROOT).as_posix()) for p in _specs_in_runfiles())
    assert len(owners) == len(_specs_in_runfiles())


def test_a_clash_names_both_files(tmp_path: Path) -> None:
    spec = next(iter(_specs_in_runfiles()))
    copy = tmp_path / "packages" / "other" / "dags" / spec.name
    copy.parent.mkdir(parents=True)
    copy.write_bytes(spec.read_bytes())
    shown = spec.relative_to(RUNFILES_ROOT).as_posix()
    with pytest.raises(
        DuplicateDagIdError,
        match=rf"declared by .*{shown}.* and .*other/dags/{spec.name}|declared by .*other/dags/{spec.name}.* and .*{shown}",
    ):
        check_unique_dag_ids([(spec, shown), (copy, "packages/other/dags/" + spec.name)])
