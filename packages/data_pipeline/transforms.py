"""Row-level steps on Arrow tables: required values, de-duplication, transforms and enrichment.

Each step returns the new table plus what it set aside (rejected rows with a reason, or a count of
dropped rows), and keeps the row order of its input, so a run is deterministic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .arrow_numpy import bool_array, int64_array
from .coltypes import arrow_type, convert_text, is_text
from .errors import EnrichmentError, TransformError
from .expressions import EvalContext, compile_expression
from .readers import FILE_COL, ROW_COL, Reject
from .spec import DatasetSpec, DedupSpec, EnrichSpec, Transform

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["Rows", "StepResult", "apply_transforms", "check_required", "dedup", "enrich", "rejects_from"]

_ORDER = "__order"
_MATCHED = "__matched"


@dataclasses.dataclass
class StepResult:
    """What a step set aside: rejected rows (with reasons) and rows it dropped on purpose."""

    rejects: list[Reject] = dataclasses.field(default_factory=list)
    dropped: int = 0


class Rows:
    """The rows of a run: a table plus a selection of the rows still in, applied once at the end.

    Steps that drop rows (rejects, duplicates, filters) only narrow the selection; expressions are
    computed on the whole table, which is cheaper than copying every column after each step.
    :meth:`materialize` applies the selection one column at a time (releasing each old column as
    its filtered copy is made), so memory peaks at the table plus one column.
    """

    def __init__(self, table: pa.Table) -> None:
        self._table: pa.Table | None = table
        self._keep: pa.Array | None = None

    @property
    def table(self) -> pa.Table:
        """The whole table, including rows outside the selection."""
        assert self._table is not None
        return self._table

    @table.setter
    def table(self, value: pa.Table) -> None:
        self._table = value

    @property
    def num_rows(self) -> int:
        """Rows in the selection."""
        import pyarrow.compute as pc

        if self._keep is None:
            return self.table.num_rows
        return int(pc.sum(self._keep).as_py() or 0)

    def keep_mask(self) -> Any:
        """numpy bool array of the selection (all true when nothing was dropped)."""
        import numpy as np

        if self._keep is None:
            return np.ones(self.table.num_rows, dtype=bool)
        return np.asarray(self._keep.to_numpy(zero_copy_only=False), dtype=bool)

    def selected(self, mask: Any) -> Any:
        """``mask`` restricted to the selection (null counts as false)."""
        import pyarrow.compute as pc

        mask = pc.fill_null(mask, False)
        return mask if self._keep is None else pc.and_(mask, self._keep)

    def drop(self, mask: Any) -> None:
        """Take the rows where ``mask`` is true out of the selection."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(mask, pa.ChunkedArray):
            mask = mask.combine_chunks()
        keep = pc.invert(pc.fill_null(mask, False))
        self._keep = keep if self._keep is None else pc.and_(self._keep, keep)

    def materialize(self) -> None:
        """Apply the selection column by column (or, with nothing dropped, join each column's chunks).

        Two columns are filtered at a time (Arrow releases the GIL), so memory peaks at the table
        plus two columns.
        """
        import pyarrow as pa

        keep = self._keep
        if keep is None and all(column.num_chunks <= 1 for column in self.table.columns):
            return
        table, self._table = self.table, None
        schema = table.schema
        columns = table.columns
        del table

        def one(index: int) -> None:
            column = columns[index]
            columns[index] = column.filter(keep) if keep is not None else column.combine_chunks()

        _parallel(one, range(len(columns)))
        self._table = pa.Table.from_arrays(columns, schema=schema)
        self._keep = None

    def take_table(self) -> pa.Table:
        """Apply the selection and hand the table over (this object no longer holds it)."""
        self.materialize()
        table, self._table = self.table, None
        return table


def _parallel(function: Any, items: Any, workers: int = 2) -> None:
    """Call ``function`` on every item, ``workers`` at a time (for Arrow calls, which drop the GIL)."""
    items = list(items)
    if len(items) < 2:
        for item in items:
            function(item)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(function, items):
            pass


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def rejects_from(table: pa.Table, mask: pa.Array, reasons: pa.Array | str) -> list[Reject]:
    """:class:`Reject` records for the rows of ``table`` where ``mask`` is true."""
    import pyarrow as pa
    import pyarrow.compute as pc

    picked = table.filter(mask)
    if picked.num_rows == 0:
        return []
    if isinstance(reasons, str):
        reason_list = [reasons] * picked.num_rows
    else:
        reason_list = pc.filter(reasons, mask).to_pylist() if isinstance(reasons, pa.Array | pa.ChunkedArray) else []
    data_columns = [n for n in picked.column_names if not n.startswith("__")]
    rows = picked.select(data_columns).to_pylist()
    files = picked.column(FILE_COL).to_pylist()
    numbers = picked.column(ROW_COL).to_pylist()
    return [
        Reject(file=f, line=n, reason=reason, record={k: _json_value(v) for k, v in row.items()})
        for f, n, reason, row in zip(files, numbers, reason_list, rows, strict=True)
    ]


def check_required(rows: Rows, spec: DatasetSpec) -> StepResult:
    """Reject rows with an empty required column (one reason per row, naming every such column)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = rows.table
    required = [c.name for c in spec.columns if c.required]
    missing_any = None
    reasons = None
    for name in required:
        column = table.column(name)
        if not column.null_count:
            continue
        missing = pc.is_null(column)
        text = pc.if_else(missing, pa.scalar(f"column {name!r} is required but empty"), pa.scalar(None, pa.string()))
        reasons = text if reasons is None else pc.binary_join_element_wise(reasons, text, "; ", null_handling="skip")
        missing_any = missing if missing_any is None else pc.or_(missing_any, missing)
    if missing_any is None:
        return StepResult()
    missing_any = rows.selected(missing_any)
    rejects = rejects_from(table, missing_any, reasons)  # type: ignore[arg-type]
    rows.drop(missing_any)
    return StepResult(rejects=rejects)


def _with_order(table: pa.Table) -> pa.Table:
    import numpy as np

    return table.append_column(_ORDER, int64_array(np.arange(table.num_rows, dtype=np.int64)))


def _key_codes(column: pa.ChunkedArray) -> Any:
    """An int64 numpy array with equal values for equal keys (null keys: -1, see ``dedup``)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_integer(column.type) or pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        values = column.cast(pa.int64()) if not pa.types.is_int64(column.type) else column
        return np.asarray(values.fill_null(0).to_numpy(), dtype=np.int64)
    encoded = pc.dictionary_encode(column).combine_chunks()
    return np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)


def _order_values(column: pa.ChunkedArray, rows: Any) -> Any:
    """Sortable int64 values of ``column`` at ``rows`` (numpy indices); nulls sort lowest."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    subset = column.take(int64_array(rows))
    kind = subset.type
    if pa.types.is_integer(kind) or pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        as_int = subset.cast(pa.int64()) if not pa.types.is_int64(kind) else subset
        return np.asarray(as_int.fill_null(-(2**63)).to_numpy(), dtype=np.int64)
    ranks = pc.rank(subset, sort_keys=[("", "ascending", "at_start")], tiebreaker="min")
    return np.asarray(ranks.to_numpy(), dtype=np.int64)


def _duplicate_groups(codes: list[Any], valid: Any) -> tuple[Any, Any]:
    """Rows whose key repeats among the ``valid`` rows: (positions ascending, group id of each).

    A single key (or several whose codes combine into one int64) is counted with ``bincount``
    when its codes span at most a few times the row count (dictionary codes always do, integer ids
    nearly always); other keys take a stable sort of the codes.
    """
    import numpy as np

    rows = len(valid)
    every = bool(valid.all())
    combined = None
    span = 1
    for column_codes in codes:
        if not valid.any():
            break
        present = column_codes if every else column_codes[valid]
        low = int(present.min())
        width = int(present.max()) - low + 1
        del present
        if span * width > 4 * rows + 1024:
            combined = None
            break
        shifted = column_codes - low
        combined = shifted if combined is None else combined * width + shifted
        span *= width
    if combined is not None:
        if not every:
            combined = np.where(valid, combined, span)  # rows out of play share an extra bin, ignored
        counts = np.bincount(combined, minlength=span + 1)
        counts[span] = 0
        members = np.flatnonzero(counts[combined] > 1)
        return members, combined[members]
    candidates = np.flatnonzero(valid)  # rows with an empty key never match
    if len(candidates) < 2:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    codes = [column_codes[candidates] for column_codes in codes]
    order = np.argsort(codes[0], kind="stable") if len(codes) == 1 else np.lexsort(list(reversed(codes)))
    same = np.ones(len(candidates) - 1, dtype=bool)
    for column_codes in codes:
        ordered = column_codes[order]
        same &= ordered[1:] == ordered[:-1]
    order = candidates[order]
    if not same.any():
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    group = np.cumsum(np.concatenate(([True], ~same))) - 1  # group number of each sorted row
    in_dup = np.bincount(group)[group] > 1
    members = order[in_dup]
    groups = group[in_dup]
    by_position = np.argsort(members, kind="stable")
    return members[by_position], groups[by_position]


def dedup(rows_in: Rows, spec: DedupSpec | None) -> StepResult:
    """Keep one row per key: the first in file order, or the one with the highest ``order_by``.

    ``keep: first`` with ``order_by`` keeps the lowest instead; ties keep the earlier row; rows
    with an empty key are all kept (they cannot be matched). The kept rows stay in their original
    order. Counting-based: the rows whose key repeats are found by counting key codes (a few
    percent of the rows in a typical export), and only those are ranked.
    """
    import numpy as np
    import pyarrow.compute as pc

    if spec is None or rows_in.table.num_rows < 2:
        return StepResult()
    table = rows_in.table
    rows = table.num_rows
    codes = [_key_codes(table.column(k)) for k in spec.keys]
    valid = rows_in.keep_mask()  # rows already out of the selection take no part
    for key in spec.keys:
        column = table.column(key)
        if column.null_count:
            valid &= np.asarray(pc.is_valid(column).to_numpy(zero_copy_only=False), dtype=bool)
    members, member_groups = _duplicate_groups(codes, valid)
    del codes
    if not len(members):
        return StepResult()
    keys_for_sort: list[Any] = [members]
    if spec.order_by is not None:
        values = _order_values(table.column(spec.order_by), members)
        keys_for_sort.append(values if spec.keep == "first" else ~values)  # ~v = -v - 1: no overflow
    keys_for_sort.append(member_groups)
    ranked = np.lexsort(keys_for_sort)
    winners_first = np.concatenate(([True], member_groups[ranked][1:] != member_groups[ranked][:-1]))
    losers = members[ranked[~winners_first]]
    lost = np.zeros(rows, dtype=bool)
    lost[losers] = True
    rows_in.drop(bool_array(lost))
    return StepResult(dropped=len(losers))


def _cast(rows: Rows, mapping: Mapping[str, str]) -> StepResult:
    import pyarrow as pa
    import pyarrow.compute as pc

    rejects: list[Reject] = []
    rows.materialize()  # a cast may fail on values of rows already dropped: cast only those in
    for name, kind in mapping.items():
        table = rows.table
        if name not in table.column_names:
            raise TransformError(f"cast: unknown column {name!r} (columns: {', '.join(_visible(table))})")
        column = table.column(name)
        target = arrow_type(kind)
        if column.type == target:
            continue
        if is_text(column.type):
            values, bad = convert_text(column, kind)
            if pc.any(bad).as_py():
                texts = pc.cast(column.combine_chunks(), pa.string())
                reasons = pc.binary_join_element_wise(
                    pa.scalar(f"cast: column {name!r}: "), texts, pa.scalar(f" is not a valid {kind}"), ""
                )
                rejects += rejects_from(table, bad, reasons)
                rows.drop(bad)
            rows.table = table.set_column(table.schema.get_field_index(name), name, values)
            continue
        try:
            rows.table = table.set_column(table.schema.get_field_index(name), name, pc.cast(column, target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise TransformError(f"cast: column {name!r} ({column.type}) does not convert to {kind}: {exc}") from None
    return StepResult(rejects=rejects)


def _visible(table: pa.Table) -> list[str]:
    return [n for n in table.column_names if not n.startswith("__")]


def _broadcast(value: Any, rows: int) -> Any:
    import pyarrow as pa

    if isinstance(value, pa.Scalar):
        return pa.repeat(value, rows) if value.is_valid else pa.nulls(rows, value.type)
    return value


def _derive(rows: Rows, derive: Mapping[str, str], ctx: EvalContext) -> None:
    """Add or replace the ``derive`` columns, in order; a later one may use an earlier one.

    Expressions that do not read a column derived before them in the step are computed side by
    side (two threads; Arrow compute releases the GIL).
    """
    expressions = {name: compile_expression(text) for name, text in derive.items()}
    independent = not any(
        expression.columns() & set(list(expressions)[:index]) for index, expression in enumerate(expressions.values())
    )
    values: dict[str, Any] = {}
    if independent and len(expressions) > 1:

        def evaluate(name: str, table: pa.Table = rows.table) -> None:
            values[name] = _broadcast(expressions[name].evaluate(table, ctx), table.num_rows)

        _parallel(evaluate, list(expressions))
    for name, expression in expressions.items():
        table = rows.table
        value = values.pop(name) if name in values else _broadcast(expression.evaluate(table, ctx), table.num_rows)
        if name in table.column_names:
            rows.table = table.set_column(table.schema.get_field_index(name), name, value)
        else:
            rows.table = table.add_column(len(_visible(table)), name, value)
        del table, value


def apply_transforms(rows: Rows, transforms: list[Transform], ctx: EvalContext) -> StepResult:
    """Run rename, cast, filter and derive steps in spec order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rejects: list[Reject] = []
    dropped = 0
    for index, step in enumerate(transforms):
        where = f"transforms[{index}]"
        if step.rename is not None:
            table = rows.table
            for old in step.rename:
                if old not in table.column_names:
                    raise TransformError(
                        f"{where}.rename: unknown column {old!r} (columns: {', '.join(_visible(table))})"
                    )
            rows.table = table.rename_columns([step.rename.get(n, n) for n in table.column_names])
        elif step.cast is not None:
            rejects += _cast(rows, step.cast).rejects
        elif step.filter is not None:
            mask = _broadcast(compile_expression(step.filter).evaluate(rows.table, ctx), rows.table.num_rows)
            if not pa.types.is_boolean(mask.type):
                raise TransformError(f"{where}.filter {step.filter!r} gives {mask.type}, not true/false")
            out = rows.selected(pc.invert(pc.fill_null(mask, False)))
            removed = int(pc.sum(out).as_py() or 0)
            if removed:
                rows.drop(out)
                dropped += removed
        elif step.derive is not None:
            _derive(rows, step.derive, ctx)
    return StepResult(rejects=rejects, dropped=dropped)


def enrich(rows: Rows, spec: EnrichSpec, reference: pa.Table, *, where: str) -> StepResult:
    """Left-join ``reference`` on ``spec.key``, adding ``spec.columns``; keeps row order.

    Reference keys must be unique (a join must not multiply rows). With ``required`` the rows
    without a match are rejected.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    rows.materialize()
    table = rows.table
    for left in spec.key:
        if left not in table.column_names:
            raise EnrichmentError(
                f"enrich {spec.name!r}: data has no column {left!r} (columns: {', '.join(_visible(table))})"
            )
    needed = list(dict.fromkeys([*spec.key.values(), *spec.columns]))
    absent = [c for c in needed if c not in reference.column_names]
    if absent:
        raise EnrichmentError(
            f"enrich {spec.name!r}: reference {where} has no column {', '.join(repr(a) for a in absent)} "
            f"(its columns: {', '.join(reference.column_names)})"
        )
    ref = reference.select(needed)
    # Key types must match the data's: cast the reference side (text keys are converted strictly).
    for left, right in spec.key.items():
        want = table.column(left).type
        have = ref.column(right).type
        if have != want:
            try:
                ref = ref.set_column(ref.schema.get_field_index(right), right, pc.cast(ref.column(right), want))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise EnrichmentError(
                    f"enrich {spec.name!r}: reference key {right!r} ({have}) does not convert to {want} "
                    f"like data column {left!r}"
                ) from None
    counts = ref.group_by(list(spec.key.values())).aggregate([([], "count_all")])
    duplicated = counts.filter(pc.greater(counts.column("count_all"), 1))
    if duplicated.num_rows:
        example = duplicated.slice(0, 1).select(list(spec.key.values())).to_pylist()[0]
        raise EnrichmentError(
            f"enrich {spec.name!r}: reference {where} has {duplicated.num_rows} duplicated key(s), e.g. {example}; "
            "keys must be unique"
        )
    renamed = ref.rename_columns(
        [spec.columns.get(n, n) if n not in spec.key.values() else f"__key_{n}" for n in ref.column_names]
    )
    clashes = [c for c in spec.columns.values() if c in table.column_names]
    if clashes:
        raise EnrichmentError(f"enrich {spec.name!r}: new column(s) {clashes} already exist in the data; rename them")
    renamed = renamed.append_column(_MATCHED, pa.nulls(renamed.num_rows, pa.bool_()).fill_null(True))
    numbered = _with_order(rows.take_table())
    order = [*table.column_names]
    del table
    joined = numbered.join(
        renamed,
        keys=list(spec.key),
        right_keys=[f"__key_{n}" for n in spec.key.values()],
        join_type="left outer",
        use_threads=True,
    )
    del numbered
    joined = joined.sort_by([(_ORDER, "ascending")])
    matched = pc.fill_null(joined.column(_MATCHED), False)
    rejects: list[Reject] = []
    if spec.required:
        unmatched = pc.invert(matched)
        if pc.any(unmatched).as_py():
            keys = ", ".join(spec.key)
            rejects = rejects_from(
                joined.drop_columns([_ORDER, _MATCHED, *spec.columns.values()]),
                unmatched,
                f"enrich {spec.name!r}: no reference row for {keys}",
            )
            joined = joined.filter(matched)
    data_cols = [c for c in order if not c.startswith("__")]
    internal = [c for c in order if c.startswith("__")]
    rows.table = joined.select([*data_cols, *spec.columns.values(), *internal])
    return StepResult(rejects=rejects)
