"""The committed JSON Schema matches the model, and describes the specs we accept."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from helpers import GOOD_SPECS

from tools.bazel.dagrender.cli import main
from tools.bazel.dagrender.schema import dump_schema

COMMITTED = Path(__file__).parent.parent / "dag_spec.schema.json"


def test_committed_schema_is_current() -> None:
    assert COMMITTED.read_text() == dump_schema(), (
        "dag_spec.schema.json is stale: run "
        "`python -m tools.bazel.dagrender schema --out tools/bazel/dagrender/dag_spec.schema.json`"
    )


def test_schema_command_writes_the_same_text(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    assert main(["schema", f"--out={out}"]) == 0
    assert out.read_text() == COMMITTED.read_text()


def _as_json(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_json(v) for v in value]
    return value


@pytest.mark.parametrize("spec", GOOD_SPECS, ids=lambda p: p.stem)
def test_good_specs_validate_against_schema(spec: Path) -> None:
    schema = json.loads(COMMITTED.read_text())
    data = _as_json(yaml.safe_load(spec.read_text()))
    # YAML numbers for cpu quantities are accepted by the model; editors get a hint to quote them.
    for task in data["tasks"]:
        for block in (task.get("resources") or {}).values():
            for key, value in block.items():
                block[key] = str(value)
    jsonschema.Draft202012Validator(schema).validate(data)


def test_schema_rejects_unknown_fields() -> None:
    schema = json.loads(COMMITTED.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = list(
        validator.iter_errors(
            {
                "dag_id": "x",
                "schedule": None,
                "start_date": "2026-01-01",
                "owner": "o",
                "tasks": [{"task_id": "a", "job": "m.a", "retry": 1}],
            }
        )
    )
    assert any("'retry' was unexpected" in error.message for error in errors)
