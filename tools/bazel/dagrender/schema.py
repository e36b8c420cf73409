"""JSON Schema of the DAG spec, for editors (committed as dag_spec.schema.json)."""

from __future__ import annotations

import json
from typing import Any

from tools.bazel.dagrender.spec import DagSpec

__all__ = ["dag_spec_schema", "dump_schema"]


def dag_spec_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``DagSpec``."""
    schema = DagSpec.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def dump_schema() -> str:
    """The schema as committed: sorted keys, two-space indent, trailing newline."""
    return json.dumps(dag_spec_schema(), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
