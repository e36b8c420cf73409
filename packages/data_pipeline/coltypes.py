"""Column types of dataset specs, and strict conversion of text to them with a reason per bad value.

Spec type names map to Arrow types: ``string``, ``int64``, ``int32``, ``float64``, ``bool``,
``date`` (date32) and ``timestamp`` (microseconds, UTC; text without an offset is read as UTC).
:func:`convert_text` turns a text column into one of them and reports which rows did not convert,
vectorised with Arrow compute (Python only handles the odd values Arrow cannot decide).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["FALSE_VALUES", "TRUE_VALUES", "TYPE_NAMES", "TypeName", "arrow_type", "convert_text", "is_text"]

TypeName = Literal["string", "int64", "int32", "float64", "bool", "date", "timestamp"]
TYPE_NAMES: tuple[str, ...] = ("string", "int64", "int32", "float64", "bool", "date", "timestamp")
TRUE_VALUES = ("true", "True", "TRUE", "t", "T", "1", "yes", "Yes", "YES", "y", "Y")
FALSE_VALUES = ("false", "False", "FALSE", "f", "F", "0", "no", "No", "NO", "n", "N")

_INT_RE = r"^\s*[+-]?\d{1,19}\s*$"
_FLOAT_RE = r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$|^\s*[+-]?(?i:inf|infinity|nan)\s*$"
_DATE_RE = r"^\s*\d{4}-\d{2}-\d{2}\s*$"


def arrow_type(name: str) -> pa.DataType:
    """The Arrow type of a spec type name."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "int32": pa.int32(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }
    if name not in types:
        raise ValueError(f"unknown column type {name!r}: use one of {', '.join(TYPE_NAMES)}")
    return types[name]


def is_text(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _regex_valid(text: pa.Array, pattern: str) -> pa.Array:
    import pyarrow.compute as pc

    return pc.match_substring_regex(text, pattern)


def _cast_or_python(text: pa.Array, ok: pa.Array, target: pa.DataType, parse: object) -> tuple[pa.Array, pa.Array]:
    """Cast the rows flagged ``ok``; if Arrow refuses (overflow...), decide them one by one."""
    import pyarrow as pa
    import pyarrow.compute as pc

    candidates = pc.if_else(ok, pc.utf8_trim_whitespace(text), pa.scalar(None, pa.string()))
    try:
        return pc.cast(candidates, target), ok
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values: list[object] = []
        good: list[bool] = []
        for item, flag in zip(candidates.to_pylist(), ok.to_pylist(), strict=True):
            if not flag or item is None:
                values.append(None)
                good.append(bool(flag) if item is not None else False)
                continue
            try:
                values.append(parse(item))  # type: ignore[operator]
                good.append(True)
            except (ValueError, OverflowError):
                values.append(None)
                good.append(False)
        return pa.array(values, type=target), pa.array(good, type=pa.bool_())


def _checked_int(bits: int):
    def parse(text: str) -> int:
        value = int(text)
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            raise OverflowError(text)
        return value

    return parse


def _parse_timestamp(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text.strip().replace(" ", "T", 1) if "T" not in text else text.strip())
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _timestamps(text: pa.Array, present: pa.Array) -> tuple[pa.Array, pa.Array]:
    import pyarrow as pa
    import pyarrow.compute as pc

    target = pa.timestamp("us", tz="UTC")
    trimmed = pc.utf8_trim_whitespace(text)
    try:  # every value has an offset ("...Z", "+02:00")
        return pc.cast(trimmed, target), present
    except pa.ArrowInvalid:
        pass
    try:  # no value has an offset: they are UTC
        return pc.assume_timezone(pc.cast(trimmed, pa.timestamp("us")), "UTC"), present
    except pa.ArrowInvalid:
        pass
    values: list[dt.datetime | None] = []
    good: list[bool] = []
    for item in trimmed.to_pylist():
        if item is None:
            values.append(None)
            good.append(False)
            continue
        try:
            values.append(_parse_timestamp(item))
            good.append(True)
        except ValueError:
            values.append(None)
            good.append(False)
    return pa.array(values, type=target), pa.array(good, type=pa.bool_())


def convert_text(text: pa.Array | pa.ChunkedArray, name: str) -> tuple[pa.Array, pa.Array]:
    """Convert a text column to type ``name``; returns (values, bad) where ``bad`` marks the rows
    whose text was present but is not a valid ``name`` (those rows are null in ``values``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    if not is_text(text.type):
        text = text.cast(pa.string())
    if pa.types.is_large_string(text.type):
        text = text.cast(pa.string())
    if name == "string":
        return text, pc.and_(pc.is_valid(text), pa.scalar(False))
    # Blank text is a missing value for every type but string.
    present = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(text)), 0), False)
    text = pc.if_else(present, text, pa.scalar(None, pa.string()))
    if name in {"int64", "int32"}:
        target = arrow_type(name)
        values, ok = _cast_or_python(
            text, pc.fill_null(_regex_valid(text, _INT_RE), False), target, _checked_int(64 if name == "int64" else 32)
        )
    elif name == "float64":
        values, ok = _cast_or_python(text, pc.fill_null(_regex_valid(text, _FLOAT_RE), False), pa.float64(), float)
    elif name == "bool":
        trimmed = pc.utf8_trim_whitespace(text)
        is_true = pc.is_in(trimmed, value_set=pa.array(TRUE_VALUES))
        is_false = pc.is_in(trimmed, value_set=pa.array(FALSE_VALUES))
        ok = pc.or_(is_true, is_false)
        values = pc.if_else(ok, is_true, pa.scalar(None, pa.bool_()))
    elif name == "date":
        trimmed = pc.utf8_trim_whitespace(text)
        ok = pc.fill_null(_regex_valid(text, _DATE_RE), False)
        stamps = pc.strptime(trimmed, format="%Y-%m-%d", unit="s", error_is_null=True)
        # strptime rolls 2026-02-30 over to March 2nd: keep only dates that print back the same.
        ok = pc.fill_null(pc.and_(ok, pc.equal(pc.strftime(stamps, format="%Y-%m-%d"), trimmed)), False)
        values = pc.if_else(ok, pc.cast(stamps, pa.date32()), pa.scalar(None, pa.date32()))
    elif name == "timestamp":
        values, ok = _timestamps(text, present)
    else:
        raise ValueError(f"unknown column type {name!r}: use one of {', '.join(TYPE_NAMES)}")
    bad = pc.and_(present, pc.invert(pc.fill_null(ok, False)))
    return values, bad
