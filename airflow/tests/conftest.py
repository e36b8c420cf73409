"""Fixtures of the control-plane tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import demo


@pytest.fixture()
def build_dir() -> Path:
    """The packages' build outputs (the runfiles tree under Bazel, else bazel-bin); skips without them."""
    found = demo.find_build_dir()
    if found is None:
        pytest.skip("no build outputs of the packages (run ./bazelw build //airflow:demo)")
    return found
