"""CSV <-> Parquet conversion with pyarrow, streamed batch by batch (memory stays flat).

CSV -> Parquet infers column types from the first block (16 MiB) unless ``column_types`` pins
them; columns that are empty in that block become strings instead of Arrow's ``null`` type, so a
value further down does not break the stream. A value that does not fit its column's type stops
the conversion with the column, the value and a hint (``--column-types name=string``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from etl_core import storage

from .errors import ConversionError
from .ops import Transfer, TransferReport, plan

__all__ = [
    "CSV_SUFFIXES",
    "PARQUET_SUFFIXES",
    "TYPE_NAMES",
    "ConvertOptions",
    "convert_file",
    "convert_files",
    "detect_format",
    "parse_column_types",
]

CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
TYPE_NAMES = ("string", "int64", "int32", "float64", "float32", "bool", "date", "timestamp")
_BLOCK_SIZE = 16 * 1024 * 1024
_BATCH_ROWS = 65536


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConvertOptions:
    """How to read CSV and write Parquet / CSV."""

    delimiter: str = ","
    column_types: Mapping[str, str] = dataclasses.field(default_factory=dict)
    null_values: tuple[str, ...] = ("", "NULL", "null", "NA", "N/A", "NaN")
    compression: str = "zstd"


def detect_format(url: str) -> str:
    """``csv`` or ``parquet`` from the name's suffix; raises :class:`ConversionError`."""
    lower = url.lower()
    if lower.endswith(CSV_SUFFIXES):
        return "csv"
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    raise ConversionError(
        f"cannot tell the format of {url!r} from its name: use one of {', '.join(CSV_SUFFIXES + PARQUET_SUFFIXES)}"
    )


def parse_column_types(text: str | None) -> dict[str, str]:
    """``"id=int64,name=string"`` -> ``{"id": "int64", "name": "string"}``; raises ValueError."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, kind = part.partition("=")
        if not sep or not name.strip() or kind.strip() not in TYPE_NAMES:
            raise ValueError(f"{part.strip()!r} is not name=type with type one of {', '.join(TYPE_NAMES)}")
        out[name.strip()] = kind.strip()
    return out


def _arrow_type(name: str):
    import pyarrow as pa

    return {
        "string": pa.string(),
        "int64": pa.int64(),
        "int32": pa.int32(),
        "float64": pa.float64(),
        "float32": pa.float32(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
    }[name]


def _stem(name: str) -> str:
    lower = name.lower()
    for suffix in sorted(CSV_SUFFIXES + PARQUET_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _open_csv(path: Path, options: ConvertOptions, label: str, forced: Mapping[str, str]):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    types = {name: _arrow_type(kind) for name, kind in {**forced, **options.column_types}.items()}
    try:
        return pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=_BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(delimiter=options.delimiter),
            convert_options=pacsv.ConvertOptions(
                column_types=types, null_values=list(options.null_values), strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise ConversionError(f"{label!r} is empty (not even a header line): nothing to convert") from None
        hint = "; pin the column's type with --column-types name=string (or fix the file)"
        raise ConversionError(
            f"cannot read CSV {label!r}: {exc}{hint if 'conversion error' in str(exc) else ''}"
        ) from None


def _csv_to_parquet(src: Path, dst: Path, options: ConvertOptions, label: str) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    reader = _open_csv(src, options, label, {})
    nulls = {f.name: "string" for f in reader.schema if pa.types.is_null(f.type) and f.name not in options.column_types}
    if nulls:  # empty in the first block: read as strings rather than failing on a later value
        reader.close()
        reader = _open_csv(src, options, label, nulls)
    rows = 0
    with pq.ParquetWriter(dst, reader.schema, compression=options.compression) as writer:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowInvalid as exc:
                raise ConversionError(
                    f"cannot convert {label!r} after {rows} rows: {exc}; pin the column's type with "
                    "--column-types name=string (or fix the file)"
                ) from None
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def _parquet_to_csv(src: Path, dst: Path, options: ConvertOptions, label: str) -> int:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(src)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ConversionError(f"{label!r} is not a readable Parquet file: {exc}") from None
    for field in parquet.schema_arrow:
        if pa.types.is_nested(field.type):
            raise ConversionError(
                f"column {field.name!r} of {label!r} has nested type {field.type}: CSV cannot hold it"
            )
    rows = 0
    write_options = pacsv.WriteOptions(include_header=True, delimiter=options.delimiter)
    with pacsv.CSVWriter(dst, parquet.schema_arrow, write_options=write_options) as writer:
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
            writer.write_batch(batch)
            rows += batch.num_rows
    return rows


def convert_file(source: str, dest: str, *, options: ConvertOptions | None = None) -> int:
    """Convert one file between CSV and Parquet (formats from the names); returns the row count."""
    options = options or ConvertOptions()
    src_format, dst_format = detect_format(source), detect_format(dest)
    if src_format == dst_format:
        raise ConversionError(f"{source!r} and {dest!r} are both {src_format}: nothing to convert")
    with storage.local_input(source) as src, storage.staged_output(dest) as dst:
        if src_format == "csv":
            return _csv_to_parquet(src, dst, options, source)
        return _parquet_to_csv(src, dst, options, source)


def convert_files(
    source: str,
    dest: str | None,
    *,
    to: str,
    pattern: str | None = None,
    options: ConvertOptions | None = None,
) -> tuple[TransferReport, int]:
    """Convert every CSV (``to="parquet"``) or Parquet (``to="csv"``) file under ``source``.

    A single-file ``dest`` not ending with ``/`` is the output file; otherwise outputs keep the
    relative layout with the new suffix (``.parquet`` / ``.csv``). Returns the report and rows.
    """
    if to not in {"csv", "parquet"}:
        raise ConversionError(f"unknown target format {to!r}: use csv or parquet")
    wanted = "parquet" if to == "csv" else "csv"
    transfers = [t for t in plan(source, dest, pattern=pattern) if _safe_format(t.source.url) == wanted]
    if not transfers:
        raise ConversionError(f"no {wanted} files to convert at {source!r}")
    report = TransferReport()
    rows = 0
    suffix = ".parquet" if to == "parquet" else ".csv"
    for item in transfers:
        target = item.dest
        if _safe_format(target) != to:  # a folder destination: give the file its new suffix
            target = storage.join(storage.parent(target), _stem(storage.basename(target)) + suffix)
        rows += convert_file(item.source.url, target, options=options)
        report.done.append(Transfer(source=item.source, dest=target, rel=item.rel))
        report.bytes_in += item.source.size
        report.bytes_out += storage.stat(target).size
    return report, rows


def _safe_format(url: str) -> str | None:
    try:
        return detect_format(url)
    except ConversionError:
        return None
