"""docs/rules.md is generated from the Starlark sources; this fails when it has drifted."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).parents[4]  # the workspace root inside runfiles (symlinks not resolved)
sys.path.insert(0, str(ROOT / "tools/bazel/private"))
import docgen  # noqa: E402


def test_rules_reference_is_up_to_date() -> None:
    committed = (ROOT / "docs/rules.md").read_text()
    assert docgen.generate(ROOT) == committed, "docs/rules.md is stale: run `./bazelw run //tools/bazel/private:docgen`"


def test_every_public_rule_is_documented() -> None:
    text = docgen.generate(ROOT)
    for name in ("etl_package", "airflow_dag", "oci_image", "oci_push", "py_image_layers", "py_pytest_test"):
        assert f"## `{name}`" in text
