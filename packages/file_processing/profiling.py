"""Per-column statistics of a dataset, computed with Arrow one column at a time.

For every column: its type, nulls, distinct values, and by kind: min / max / mean / standard
deviation / quantiles (numbers and times), string lengths, true / false counts, and the most
frequent values. The result is plain JSON (see :func:`profile_table`), rendered to HTML by
:mod:`file_processing.report_html`.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from etl_core.memory import release

from .tables import Table

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["QUANTILES", "column_kind", "profile_column", "profile_table"]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)


def column_kind(kind: pa.DataType) -> str:
    """``numeric``, ``temporal``, ``string``, ``boolean`` or ``other``."""
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "numeric"
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind):
        return "temporal"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "string"
    if pa.types.is_boolean(kind):
        return "boolean"
    return "other"


def _plain(value: Any) -> Any:
    """A JSON value for an Arrow scalar's Python value (times as ISO strings, NaN as None)."""
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            return value.isoformat().replace("+00:00", "Z")
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _top_values(array: pa.ChunkedArray, top_n: int) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.compute as pc

    counts = pc.value_counts(array)
    if len(counts) == 0:
        return []
    table = pa.table({"value": counts.field("values"), "count": counts.field("counts")})
    table = table.filter(pc.is_valid(table["value"]))
    try:  # most frequent first; ties in value order, so the report is stable
        order = pc.sort_indices(table, sort_keys=[("count", "descending"), ("value", "ascending")])
    except pa.ArrowNotImplementedError:
        order = pc.sort_indices(table, sort_keys=[("count", "descending")])
    head = table.take(order[:top_n])
    return [
        {"value": _plain(v), "count": int(c)}
        for v, c in zip(head["value"].to_pylist(), head["count"].to_pylist(), strict=True)
    ]


def _quantiles(values: pa.ChunkedArray) -> dict[str, Any]:
    import pyarrow.compute as pc

    result = pc.quantile(values, q=list(QUANTILES), interpolation="linear")
    return {f"p{round(q * 100)}": _plain(v) for q, v in zip(QUANTILES, result.to_pylist(), strict=True)}


def _temporal_stats(array: pa.ChunkedArray) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    minmax = pc.min_max(array)
    stats: dict[str, Any] = {"min": _plain(minmax["min"].as_py()), "max": _plain(minmax["max"].as_py())}
    if pa.types.is_timestamp(kind):
        ints, back = array.cast(pa.int64()), kind
    elif pa.types.is_date32(kind):
        ints, back = array.cast(pa.int32()).cast(pa.int64()), None
    else:  # time of day, date64: min and max are enough
        return stats
    # "nearest" picks real values, so each quantile converts back to a time exactly.
    picked = pc.quantile(ints, q=list(QUANTILES), interpolation="nearest").cast(pa.int64())
    values = picked.cast(back) if back is not None else picked.cast(pa.int32()).cast(pa.date32())
    stats["quantiles"] = {f"p{round(q * 100)}": _plain(v) for q, v in zip(QUANTILES, values.to_pylist(), strict=True)}
    return stats


def profile_column(name: str, array: pa.ChunkedArray, *, top_n: int = 10) -> dict[str, Any]:
    """Statistics of one column (see the module docstring)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    rows = len(array)
    nulls = array.null_count
    kind = column_kind(array.type)
    out: dict[str, Any] = {
        "name": name,
        "type": str(array.type),
        "kind": kind,
        "count": rows,
        "nulls": nulls,
        "null_ratio": (nulls / rows) if rows else 0.0,
    }
    valid = rows - nulls
    if kind != "other":
        distinct = pc.count_distinct(array, mode="only_valid").as_py()
        out["distinct"] = distinct
        out["distinct_ratio"] = (distinct / valid) if valid else 0.0
    if valid == 0 or kind == "other":
        return out
    if kind == "numeric":
        values = array.cast(pa.float64()) if not pa.types.is_floating(array.type) else array
        finite = values.filter(pc.is_finite(values))
        minmax = pc.min_max(array)
        out.update(
            min=_plain(minmax["min"].as_py()),
            max=_plain(minmax["max"].as_py()),
            mean=_plain(pc.mean(finite).as_py()) if len(finite) else None,
            stddev=_plain(pc.stddev(finite, ddof=1).as_py()) if len(finite) > 1 else None,
            zeros=int(pc.sum(pc.equal(values, 0.0)).as_py() or 0),
            negatives=int(pc.sum(pc.less(values, 0.0)).as_py() or 0),
            quantiles=_quantiles(finite) if len(finite) else {},
        )
        if pa.types.is_floating(array.type):
            out["nan"] = int(pc.sum(pc.is_nan(values)).as_py() or 0)
    elif kind == "temporal":
        out.update(_temporal_stats(array))
    elif kind == "string":
        lengths = pc.utf8_length(array)
        minmax = pc.min_max(array)
        out.update(
            min=minmax["min"].as_py(),
            max=minmax["max"].as_py(),
            length={
                "min": pc.min(lengths).as_py(),
                "max": pc.max(lengths).as_py(),
                "mean": _plain(pc.mean(lengths).as_py()),
            },
            empty=int(pc.sum(pc.equal(array, "")).as_py() or 0),
        )
    elif kind == "boolean":
        trues = int(pc.sum(array.cast(pa.int64())).as_py() or 0)
        out.update(true=trues, false=valid - trues)
    out["top_values"] = _top_values(array, top_n)
    return out


def profile_table(
    table: Table, *, dataset: str, source: str, top_n: int = 10, columns: Sequence[str] | None = None
) -> dict[str, Any]:
    """The profile document of a dataset: its shape and one entry per column, in schema order."""
    names = [c for c in table.columns if columns is None or c in set(columns)]
    profiles = []
    for name in names:
        column = table.arrow([name]).column(0)
        profiles.append(profile_column(name, column, top_n=top_n))
        del column
        release()
    return {
        "dataset": dataset,
        "source": source,
        "format": table.fmt,
        "files": len(table.paths),
        "rows": table.rows,
        "column_count": len(table.columns),
        "columns": profiles,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
