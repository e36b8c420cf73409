"""Python source literals for values from a spec: deterministic and round-trip safe."""

from __future__ import annotations

import ast
import json
import math
from typing import Any

__all__ = ["py_literal"]


def _string(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    try:
        if ast.literal_eval(text) == value:
            return text
    except (SyntaxError, ValueError):
        pass
    return repr(value)


def py_literal(value: Any) -> str:
    """Return Python source that evaluates to ``value`` (str, int, float, bool, None, list, dict)."""
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, float) and not math.isfinite(value):
        # repr() gives `nan`/`inf`: names, not literals; the DAG file would fail at import.
        raise ValueError(f"cannot write {value!r} as a Python literal: not a finite number")
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(py_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(key)}: {py_literal(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} ({type(value).__name__}) as a Python literal")
