"""One etl_core target imports with nothing but its own deps (run once per target, ETL_CORE_MODULE).

Bazel gives this test the runfiles of that target alone, so a module that imports a sibling or a
distribution its target does not list fails here with the missing name.
"""

from __future__ import annotations

import importlib
import os
import sys

import pytest

SIBLINGS = {"config", "errors", "jobs", "logs", "memory", "metrics", "s3", "storage"}


def test_the_module_imports_with_its_target_deps_only() -> None:
    module = os.environ["ETL_CORE_MODULE"]
    assert module in SIBLINGS, f"ETL_CORE_MODULE={module!r}: not an etl_core module"
    try:
        importlib.import_module(f"etl_core.{module}")
    except ImportError as exc:
        pytest.fail(
            f"etl_core.{module} cannot be imported with its target's deps alone ({exc}); add the target "
            f"that provides it to the deps of //packages/etl_core:{module}"
        )
    others = sorted(m.split(".")[1] for m in sys.modules if m.startswith("etl_core.") and m.count(".") == 1)
    assert set(others) <= SIBLINGS


def test_the_retry_module_is_gone() -> None:
    with pytest.raises(ImportError):
        importlib.import_module("etl_core.retry")
