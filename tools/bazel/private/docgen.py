"""Generate docs/rules.md from the Starlark sources: rule and attribute docs, macro docstrings.

    ./bazelw run //tools/bazel/private:docgen          # rewrite docs/rules.md
    (the test //tools/bazel/private:test_docgen fails when docs/rules.md has drifted)

Starlark is close enough to Python's grammar for `ast` to read these files: the public names come
from defs.bzl (`x = _x` re-exports of `load()`ed symbols), their definitions from private/*.bzl.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

HEADER = """# Rules reference

Generated from the Starlark sources by `./bazelw run //tools/bazel/private:docgen`; do not edit.
Load everything from `//tools/bazel:defs.bzl`.
"""


def _public_names(defs: Path) -> dict[str, tuple[str, str]]:
    """public name -> (private .bzl file, symbol) from defs.bzl's load() + re-exports."""
    tree = ast.parse(defs.read_text())
    loaded: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Call)
            and getattr(node.value.func, "id", "") == "load"
        ):
            path = node.value.args[0].value  # type: ignore[attr-defined]
            for kw in node.value.keywords:
                loaded[kw.arg or ""] = (path.split(":", 1)[1], kw.value.value)  # type: ignore[attr-defined]
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in loaded:
            out[node.targets[0].id] = loaded[node.value.id]  # type: ignore[attr-defined]
    return out


def _const(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _const(node.left) + _const(node.right)
    return ""


def _kw(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _attr_rows(attrs: ast.AST | None) -> list[str]:
    if not isinstance(attrs, ast.Dict):
        return []
    rows = []
    for key, value in zip(attrs.keys, attrs.values, strict=True):
        name = _const(key) if key is not None else ""
        if not name or name.startswith("_") or not isinstance(value, ast.Call):
            continue
        kind = getattr(value.func, "attr", "?")
        mandatory = isinstance(_kw(value, "mandatory"), ast.Constant) and _kw(value, "mandatory").value is True  # type: ignore[union-attr]
        doc = " ".join(_const(_kw(value, "doc") or ast.Constant("")).split())
        rows.append(f"| `{name}` | {kind}{' (required)' if mandatory else ''} | {doc.replace('|', '/')} |")
    return rows


def _section(name: str, module: Path, symbol: str) -> str:
    tree = ast.parse(module.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == symbol:
            doc = ast.get_docstring(node) or ""
            return f"## `{name}` (macro)\n\n```\n{doc}\n```\n"
        if (
            isinstance(node, ast.Assign)
            and getattr(node.targets[0], "id", "") == symbol
            and isinstance(node.value, ast.Call)
        ):
            call = node.value
            kind = getattr(call.func, "id", "")
            doc = _const(_kw(call, "doc") or ast.Constant(""))
            text = f"## `{name}` ({kind})\n\n{doc.strip()}\n"
            rows = _attr_rows(_kw(call, "attrs"))
            if rows:
                text += "\n| attribute | type | meaning |\n|---|---|---|\n" + "\n".join(rows) + "\n"
            return text
    raise SystemExit(f"docgen: {symbol!r} not found in {module}")


def generate(root: Path) -> str:
    names = _public_names(root / "tools/bazel/defs.bzl")
    parts = [HEADER]
    for public in sorted(names, key=lambda n: (not n[0].islower(), n)):
        path, symbol = names[public]
        if not public[0].islower():
            continue  # providers
        parts.append(_section(public, root / "tools/bazel/private" / path, symbol))
    return "\n".join(parts)


def main() -> int:
    root = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY") or Path(__file__).resolve().parents[3])
    text = generate(root)
    out = root / "docs/rules.md"
    out.write_text(text)
    print(f"docgen: wrote {out} ({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
