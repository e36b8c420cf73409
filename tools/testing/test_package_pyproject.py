"""One package's pyproject.toml agrees with its BUILD.bazel (see package_metadata.py).

Shared by every package's `:test_pyproject` target, which names the package in `ETL_PACKAGE` and
puts its BUILD.bazel and pyproject.toml in the runfiles.
"""

from __future__ import annotations

import os
from pathlib import Path

from tools.testing.package_metadata import problems

PACKAGE = os.environ.get("ETL_PACKAGE", "")
PACKAGE_DIR = Path(__file__).parents[2] / "packages" / PACKAGE  # in the runfiles (not resolved)


def test_pyproject_agrees_with_build() -> None:
    assert PACKAGE, "set ETL_PACKAGE to the package's folder name under packages/ (the test target's env)"
    assert (PACKAGE_DIR / "BUILD.bazel").is_file(), f"{PACKAGE_DIR}/BUILD.bazel is not in the runfiles (data)"
    found = problems(PACKAGE_DIR)
    assert not found, "\n".join(found)
