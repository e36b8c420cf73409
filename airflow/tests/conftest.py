"""Fixtures of the control-plane tests."""

from __future__ import annotations

from pathlib import Path

import demo
import pytest


@pytest.fixture()
def build_dir() -> Path:
    """The packages' build outputs (the runfiles tree under Bazel, else bazel-bin); fails without them."""
    found = demo.find_build_dir()
    if found is None:
        pytest.fail(
            "no build outputs of the packages: run the test with `./bazelw test`, or `./bazelw build "
            "//airflow:demo` first",
            pytrace=False,
        )
    return found
