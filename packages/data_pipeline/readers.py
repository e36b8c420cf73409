"""Read raw CSV, JSON-lines or Parquet files into typed Arrow tables, keeping the bad rows aside.

Clean files take the fast path: pyarrow parses them with the spec's column types, in parallel,
without a per-row Python step. When a value does not fit its column's type, only that column is
read again as text and converted row by row with a reason for each bad value
(:func:`data_pipeline.coltypes.convert_text`); the rest of the file keeps its fast typed read.
Rows with the wrong number of fields, lines that are not JSON and values of the wrong type become
:class:`Reject` records; a file without a required column stops the run (:class:`SchemaError`).

Every table returned carries two internal columns, ``__file`` (index of the input file) and
``__line`` (the row's line number in that file, the header being line 1), so later steps can still
name a rejected row. (A quoted CSV value spanning lines shifts the numbers of the rows after it.)
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .arrow_numpy import int64_array
from .coltypes import FALSE_VALUES, TRUE_VALUES, arrow_type, convert_text, is_text
from .errors import InputError, SchemaError
from .spec import ColumnSpec, DatasetSpec

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["FILE_COL", "ROW_COL", "ReadResult", "Reject", "line_numbers", "read_file"]

FILE_COL = "__file"
ROW_COL = "__line"
_BLOCK_SIZE = 1024 * 1024  # bigger blocks only raise the peak memory of parallel parsing
_CSV_COLUMN_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error")


@dataclasses.dataclass(frozen=True, order=True)
class Reject:
    """A row that did not make it into the dataset, and why."""

    file: int
    line: int  # line number in its file (1-based; 0 when the CSV parser could not tell)
    reason: str
    record: dict[str, Any] = dataclasses.field(compare=False)


@dataclasses.dataclass
class ReadResult:
    table: pa.Table
    rejects: list[Reject]
    records: int  # records seen in the file, good and bad


def line_numbers(rows: int, *, first_line: int, skipped: list[int] | None = None) -> pa.Array:
    """Line numbers of ``rows`` consecutive records starting at ``first_line``, stepping over the
    (sorted) line numbers in ``skipped`` (malformed CSV lines the parser dropped)."""
    import numpy as np

    lines = np.arange(first_line, first_line + rows, dtype=np.int64)
    if skipped:
        bad = np.asarray(sorted(skipped), dtype=np.int64)
        # Records before the i-th skipped line: bad[i] - first_line - i. Each skipped line at or
        # before a record pushes that record one line further down.
        before = bad - first_line - np.arange(len(bad), dtype=np.int64)
        lines += np.searchsorted(before, np.arange(rows, dtype=np.int64), side="right")
    return int64_array(lines)


def _file_index(rows: int, file_index: int) -> pa.Array:
    import pyarrow as pa

    return pa.repeat(pa.scalar(file_index, pa.int32()), rows)


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")


def _csv_header(path: Path, spec: DatasetSpec) -> list[str] | None:
    """The header's field names, or None for an empty file."""
    options = spec.source.csv
    with _open_text(path) as handle:
        reader = csv.reader(handle, delimiter=options.delimiter, quotechar=options.quote_char)
        try:
            return [name.strip().lstrip("\ufeff") for name in next(reader)]
        except StopIteration:
            return None


def _empty(spec: DatasetSpec) -> pa.Table:
    import pyarrow as pa

    fields = [pa.field(c.name, arrow_type(c.type)) for c in spec.columns]
    fields += [pa.field(FILE_COL, pa.int32()), pa.field(ROW_COL, pa.int64())]
    return pa.schema(fields).empty_table()


def _check_columns(available: list[str], spec: DatasetSpec, label: str) -> None:
    present = set(available)
    missing = [c.input_name for c in spec.columns if c.required and c.input_name not in present]
    if missing:
        raise SchemaError(
            f"{label} lacks required column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
            f"(its columns: {', '.join(available) or 'none'}); fix the export or the spec"
        )


def _finish(
    columns: dict[str, Any],
    spec: DatasetSpec,
    rows: int,
    file_index: int,
    raw: dict[str, Any],
    lines: pa.Array,
) -> tuple[pa.Table, list[Reject]]:
    """Typed table in spec order: convert text columns, fill absent ones, add file and line.

    ``raw`` holds every column as read (a rejected row's record shows those values).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    bad_rows: dict[int, list[str]] = {}
    bad_any = None
    arrays = []
    for column in spec.columns:
        target = arrow_type(column.type)
        value = columns.get(column.name)
        if value is None:
            arrays.append(pa.nulls(rows, target))
            continue
        if isinstance(value, pa.ChunkedArray) and value.type == target:
            arrays.append(value)
            continue
        if is_text(value.type) and column.type != "string":
            converted, bad = convert_text(value, column.type)
            bad_any = bad if bad_any is None else pc.or_(bad_any, bad)
            for index in pc.indices_nonzero(bad).to_pylist():
                text = value[index].as_py()
                bad_rows.setdefault(index, []).append(f"column {column.name!r}: {text!r} is not a valid {column.type}")
            arrays.append(converted)
            continue
        try:
            arrays.append(pc.cast(value, target))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InputError(
                f"column {column.name!r} has type {value.type}, which does not convert to {column.type}: {exc}"
            ) from None
    names = [c.name for c in spec.columns] + [FILE_COL, ROW_COL]
    table = pa.Table.from_arrays([*arrays, _file_index(rows, file_index), lines], names=names)
    rejects = []
    if bad_rows and bad_any is not None:
        for index in sorted(bad_rows):
            record = {name: _json_value(array[index].as_py()) for name, array in raw.items()}
            rejects.append(
                Reject(
                    file=file_index, line=int(lines[index].as_py()), reason="; ".join(bad_rows[index]), record=record
                )
            )
        table = table.filter(pc.invert(bad_any))
    return table, rejects


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


# --- CSV -----------------------------------------------------------------------------------------


def _read_csv(path: Path, spec: DatasetSpec, file_index: int, label: str) -> ReadResult:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    options = spec.source.csv
    spec_types = {c.name: c.type for c in spec.columns}
    if options.header:
        header = _csv_header(path, spec)
        if header is None:
            return ReadResult(table=_empty(spec), rejects=[], records=0)
        names = header
        read_options = pacsv.ReadOptions(block_size=_BLOCK_SIZE, use_threads=True)
    else:
        names = [c.input_name for c in spec.columns]
        read_options = pacsv.ReadOptions(block_size=_BLOCK_SIZE, use_threads=True, column_names=names)
    _check_columns(names, spec, label)
    wanted = [c for c in spec.columns if c.input_name in set(names)]
    by_input = {c.input_name: c.name for c in wanted}
    # How each column is parsed; a conversion error moves the column one step down this ladder:
    # its type (timestamps: with a zone offset) -> timestamps without offset (UTC) -> text, which
    # is then converted value by value with a reason for each bad one.
    modes = {c.name: "typed" for c in wanted}
    invalid_seen = False
    while True:
        invalid: list[Reject] = []

        def on_invalid(row: Any, invalid: list[Reject] = invalid) -> str:
            invalid.append(
                Reject(
                    file=file_index,
                    line=int(row.number or 0),
                    reason=f"expected {row.expected_columns} fields, found {row.actual_columns}",
                    record={"_line": row.text},
                )
            )
            return "skip"

        types = {c.input_name: _read_type(c, modes[c.name]) for c in wanted}
        if invalid_seen and read_options.use_threads:
            # Parallel parsing cannot tell the line of a malformed row: parse this (rare,
            # dirty) file sequentially so every reject names its line.
            read_options = pacsv.ReadOptions(
                block_size=_BLOCK_SIZE, use_threads=False, column_names=read_options.column_names or None
            )
        try:
            table = pacsv.read_csv(
                path,
                read_options=read_options,
                parse_options=pacsv.ParseOptions(
                    delimiter=options.delimiter, quote_char=options.quote_char, invalid_row_handler=on_invalid
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types=types,
                    include_columns=[c.input_name for c in wanted],
                    null_values=list(options.null_values),
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                    true_values=list(TRUE_VALUES),
                    false_values=list(FALSE_VALUES),
                ),
            )
            if invalid and not all(r.line for r in invalid) and read_options.use_threads:
                invalid_seen = True
                continue
            break
        except pa.ArrowInvalid as exc:
            message = str(exc)
            if "Empty CSV file" in message:
                return ReadResult(table=_empty(spec), rejects=[], records=0)
            match = _CSV_COLUMN_ERROR.search(message)
            column = None
            if match and int(match.group(1)) < len(names):
                column = by_input.get(names[int(match.group(1))])
            if column is not None and modes[column] != "text":
                modes[column] = _next_mode(spec_types[column], modes[column])
                continue
            if any(mode != "text" for mode in modes.values()):
                modes = dict.fromkeys(modes, "text")
                continue
            raise InputError(f"cannot parse CSV {label}: {message.splitlines()[0]}") from None
    for name, mode in modes.items():
        if mode == "naive":
            source = next(c.input_name for c in wanted if c.name == name)
            index = table.schema.get_field_index(source)
            table = table.set_column(index, source, pc.assume_timezone(table.column(source), "UTC"))
    columns = {c.name: table.column(c.input_name) for c in wanted}
    skipped = [r.line for r in invalid if r.line]
    lines = line_numbers(
        table.num_rows, first_line=2 if options.header else 1, skipped=skipped if len(skipped) == len(invalid) else None
    )
    result, rejects = _finish(columns, spec, table.num_rows, file_index, columns, lines)
    return ReadResult(table=result, rejects=sorted(invalid + rejects), records=table.num_rows + len(invalid))


def _read_type(column: ColumnSpec, mode: str) -> pa.DataType:
    import pyarrow as pa

    if mode == "text":
        return pa.string()
    if mode == "naive":
        return pa.timestamp("us")
    return arrow_type(column.type)


def _next_mode(kind: str, mode: str) -> str:
    if kind == "timestamp" and mode == "typed":
        return "naive"
    return "text"


# --- JSON lines ----------------------------------------------------------------------------------


def _read_jsonl(path: Path, spec: DatasetSpec, file_index: int, label: str) -> ReadResult:
    import pyarrow as pa
    import pyarrow.json as pajson

    if path.stat().st_size == 0:
        return ReadResult(table=_empty(spec), rejects=[], records=0)
    schema = pa.schema(
        [pa.field(c.input_name, pa.string() if c.type == "timestamp" else arrow_type(c.type)) for c in spec.columns]
    )
    try:
        table = pajson.read_json(
            path,
            read_options=pajson.ReadOptions(use_threads=True, block_size=_BLOCK_SIZE),
            parse_options=pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return _read_jsonl_slow(path, spec, file_index, label)
    if table.num_rows == 0:
        return ReadResult(table=_empty(spec), rejects=[], records=0)
    present = [c for c in spec.columns if table.column(c.input_name).null_count < table.num_rows]
    _check_columns([c.input_name for c in present] + _keys_seen_if_all_null(path, spec, present), spec, label)
    columns = {c.name: table.column(c.input_name) for c in spec.columns}
    lines = line_numbers(table.num_rows, first_line=1)
    result, rejects = _finish(columns, spec, table.num_rows, file_index, columns, lines)
    return ReadResult(table=result, rejects=rejects, records=table.num_rows)


def _keys_seen_if_all_null(path: Path, spec: DatasetSpec, present: list[ColumnSpec]) -> list[str]:
    """Required columns that are null in every row: were they there at all (with null values)?"""
    required_absent = {c.input_name for c in spec.columns if c.required and c not in present}
    if not required_absent:
        return []
    seen: set[str] = set()
    with _open_text(path) as handle:
        for line in handle:
            if line.strip():
                try:
                    doc = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(doc, dict):
                    seen.update(k for k in required_absent if k in doc)
            if seen == required_absent:
                break
    return sorted(seen)


def _text_value(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _read_jsonl_slow(path: Path, spec: DatasetSpec, file_index: int, label: str) -> ReadResult:
    """Line by line: bad JSON becomes a reject, every value goes through the text conversion."""
    import pyarrow as pa

    rejects: list[Reject] = []
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    keys: set[str] = set()
    count = 0
    with _open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            count += 1
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                rejects.append(
                    Reject(
                        file=file_index,
                        line=number,
                        reason=f"not valid JSON: {exc.msg}",
                        record={"_line": line.rstrip("\n")[:10000]},
                    )
                )
                continue
            if not isinstance(doc, dict):
                rejects.append(
                    Reject(
                        file=file_index,
                        line=number,
                        reason="not a JSON object",
                        record={"_line": line.rstrip("\n")[:10000]},
                    )
                )
                continue
            keys.update(doc)
            records.append(doc)
            numbers.append(number)
    if records:
        _check_columns(sorted(keys), spec, label)
    raw = {c.name: pa.array([_text_value(r.get(c.input_name)) for r in records], pa.string()) for c in spec.columns}
    table, typed_rejects = _finish(dict(raw), spec, len(records), file_index, raw, pa.array(numbers, pa.int64()))
    return ReadResult(table=table, rejects=sorted(rejects + typed_rejects), records=count)


# --- Parquet -------------------------------------------------------------------------------------


def _read_parquet(path: Path, spec: DatasetSpec, file_index: int, label: str) -> ReadResult:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"{label} is not a readable Parquet file: {exc}") from None
    names = parquet.schema_arrow.names
    _check_columns(names, spec, label)
    wanted = [c for c in spec.columns if c.input_name in set(names)]
    table = parquet.read(columns=[c.input_name for c in wanted])
    columns = {c.name: table.column(c.input_name) for c in wanted}
    lines = line_numbers(table.num_rows, first_line=1)  # Parquet has no lines: the row number
    result, rejects = _finish(columns, spec, table.num_rows, file_index, columns, lines)
    return ReadResult(table=result, rejects=rejects, records=table.num_rows)


def read_file(path: Path, spec: DatasetSpec, file_index: int, label: str) -> ReadResult:
    """Read one input file in the spec's format; ``label`` (its URL) is used in messages."""
    fmt = spec.source.format
    if fmt == "csv":
        return _read_csv(path, spec, file_index, label)
    if fmt == "jsonl":
        return _read_jsonl(path, spec, file_index, label)
    return _read_parquet(path, spec, file_index, label)
