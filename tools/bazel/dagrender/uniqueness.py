"""Monorepo-wide check that no two spec files declare the same dag_id."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePath

from tools.bazel.dagrender.errors import DuplicateDagIdError
from tools.bazel.dagrender.loader import read_spec_data

__all__ = ["check_unique_dag_ids", "declared_dag_id"]


def declared_dag_id(path: Path, display: str) -> str:
    """The dag_id a spec declares, or its file stem when it declares none (it must match anyway)."""
    data = read_spec_data(path, display)
    declared = data.get("dag_id") if isinstance(data, dict) else None
    if isinstance(declared, str):
        return declared
    return PurePath(display).name.removesuffix(".yaml").removesuffix(".yml")


def check_unique_dag_ids(paths: Iterable[tuple[Path, str]]) -> dict[str, str]:
    """Map dag_id -> spec path; raise ``DuplicateDagIdError`` naming both files of the first clash.

    ``paths`` yields (file to read, path to show). Every clash is listed in the message, one per
    dag_id, in sorted order.
    """
    owners: dict[str, list[str]] = {}
    for path, display in paths:
        owners.setdefault(declared_dag_id(path, display), []).append(display)
    clashes = sorted((dag_id, files) for dag_id, files in owners.items() if len(files) > 1)
    if clashes:
        parts = [f"dag_id {dag_id!r} is declared by {' and '.join(sorted(files))}" for dag_id, files in clashes]
        raise DuplicateDagIdError("; ".join(parts) + "; dag_ids must be unique across the monorepo, rename one")
    return {dag_id: files[0] for dag_id, files in sorted(owners.items())}
