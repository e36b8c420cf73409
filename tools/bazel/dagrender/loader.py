"""Read a spec file into a ``DagSpec``; every failure becomes a ``SpecError`` naming the field."""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any

import pydantic
import yaml  # type: ignore[import-untyped,unused-ignore]

from tools.bazel.dagrender.errors import SpecError
from tools.bazel.dagrender.spec import ENV_FROM_SHAPE, ENV_VALUE_SHAPE, UNION_TAGS, DagSpec

__all__ = ["field_path", "load_spec", "read_spec_data"]


class _StrictLoader(yaml.SafeLoader):  # type: ignore[misc,unused-ignore]
    """SafeLoader that rejects duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (line {mark.line + 1}); keep only one", mark
            )
        seen[key] = key_node
    mapping: dict[Any, Any] = loader.construct_mapping(node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_spec_data(path: Path, display: str) -> Any:
    """Parse the YAML document at ``path``; ``display`` is the path used in error messages."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(display, "<file>", f"cannot read the spec: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SpecError(display, "<file>", "the spec is not UTF-8 text") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "<yaml>"
        raise SpecError(display, where, f"invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(display, "<yaml>", f"invalid YAML: {exc}") from None


_PLAIN_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


def field_path(loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic location into a readable path: ('tasks', 0, 'env', 'X') -> tasks[0].env.X.

    A mapping key that is not a plain name (it may be the bad value itself, e.g. an env name with
    a newline) is quoted, ``env['MODE\\n']``, so the error stays one line.
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not _PLAIN_PART.fullmatch(part):
            out += f"[{part!r}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def _members(annotation: Any, tag: str | None = None) -> tuple[list[tuple[str | None, Any]], bool]:
    """The (union tag, class) pairs an annotation may hold, and whether they are a mapping's values.

    Looks through Optional, Annotated (reading pydantic ``Tag``s), unions, list and dict.
    """
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *metadata = typing.get_args(annotation)
        tags = [item.tag for item in metadata if isinstance(item, pydantic.Tag)]
        return _members(base, tags[0] if tags else tag)
    if origin in (typing.Union, types.UnionType):
        pairs: list[tuple[str | None, Any]] = []
        mapping = False
        for arg in typing.get_args(annotation):
            found, is_mapping = _members(arg, tag)
            pairs += found
            mapping = mapping or is_mapping
        return pairs, mapping
    if origin is list:
        return _members(typing.get_args(annotation)[0], tag)
    if origin is dict:
        return _members(typing.get_args(annotation)[1], tag)[0], True
    return [(tag, annotation)], False


def _model_at(loc: tuple[int | str, ...]) -> type[pydantic.BaseModel] | None:
    """The model class whose field set applies at ``loc`` (used to list allowed fields).

    ``loc`` is pydantic's raw location: list indexes, mapping keys and union tags included.
    """
    members: list[tuple[str | None, Any]] = [(None, DagSpec)]
    expect_key = False
    for part in loc:
        if isinstance(part, int):
            continue
        if part in UNION_TAGS:
            members = [member for member in members if member[0] == part]
            continue
        if expect_key:  # the key of a mapping such as env: not a field
            expect_key = False
            continue
        model = _single_model(members)
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        members, expect_key = _members(field.annotation)
    return _single_model(members)


def _single_model(members: list[tuple[str | None, Any]]) -> type[pydantic.BaseModel] | None:
    models = {cls for _, cls in members if isinstance(cls, type) and issubclass(cls, pydantic.BaseModel)}
    return models.pop() if len(models) == 1 else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _message(error: Any) -> str:
    kind = error["type"]
    loc = error["loc"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown field {loc[-1]!r}{hint} (allowed: {', '.join(allowed)})"
    if kind == "missing":
        return "required field is missing"
    if kind in (ENV_VALUE_SHAPE, ENV_FROM_SHAPE):
        if isinstance(value, dict) and "secret" in value and "config_map" in value:
            return f"names both secret {value['secret']!r} and config_map {value['config_map']!r}; keep one"
        return f"{error['msg']}, got {_short(value)}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("ge", ctx.get("le"))
        op = ">=" if kind == "greater_than_equal" else "<="
        return f"must be {op} {bound}, got {_short(value)}"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} item(s)"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"{_short(value)} is longer than {ctx.get('max_length')} characters"
    if kind == "literal_error":
        return f"{_short(value)} is not one of {ctx.get('expected')}"
    if kind == "string_type":
        return f"must be a string, got {_short(value)} ({type(value).__name__}); quote the value in YAML"
    if kind in ("int_type", "bool_type", "list_type", "dict_type", "model_type", "date_type", "datetime_type"):
        wanted = {
            "int_type": "an integer",
            "bool_type": "true or false",
            "list_type": "a list",
            "dict_type": "a mapping",
            "model_type": "a mapping",
            "date_type": "a date such as 2026-01-01",
            "datetime_type": "a date such as 2026-01-01",
        }[kind]
        return f"must be {wanted}, got {_short(value)} ({type(value).__name__})"
    return f"{error['msg']} (got {_short(value)})"


def load_spec(path: Path, display: str | None = None) -> DagSpec:
    """Load and field-validate one spec file; raise ``SpecError`` on the first problem."""
    shown = display if display is not None else str(path)
    data = read_spec_data(path, shown)
    if not isinstance(data, dict):
        raise SpecError(shown, "<root>", f"the spec must be a YAML mapping, got {type(data).__name__}")
    try:
        return DagSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = _dedupe(exc.errors())
        first = errors[0]
        raise SpecError(shown, field_path(_clean_loc(first["loc"])), _message(first), more=len(errors) - 1) from None


def _clean_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    # Pydantic names the member of a failed union in the location: 'function-after[...]' for a
    # plain union, the member's tag (spec.UNION_TAGS) for a tagged one.
    return tuple(part for part in loc if isinstance(part, int) or ("[" not in part and part not in UNION_TAGS))


def _dedupe(errors: list[Any]) -> list[Any]:
    """Collapse the per-member errors of a failed union into one error per field."""
    out: list[Any] = []
    seen: dict[tuple[int | str, ...], int] = {}
    for error in errors:
        loc = _clean_loc(error["loc"])
        if loc in seen:
            # Prefer our own value errors over the generic type errors of other union members.
            if error["type"] == "value_error" and out[seen[loc]]["type"] != "value_error":
                out[seen[loc]] = error
            continue
        seen[loc] = len(out)
        out.append(error)
    return out
