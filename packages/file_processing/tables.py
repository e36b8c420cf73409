"""Read a dataset (Parquet or CSV files, local or S3) column by column into pandas, on demand.

The data-quality job asks for a few columns at a time, so its memory follows the widest group of
columns an expectation reads, not the whole table. Parquet files are read column-wise straight
from disk; a CSV is parsed once into Arrow and columns are converted to pandas as asked. Columns
are given the dtypes pandas-based checks handle fastest: 64-bit ints and floats, timestamps
and dates as ``datetime64[ns]``, and Parquet text columns with few distinct values (stored
dictionary-encoded) as categoricals read straight from their dictionary pages.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl_core import storage

from .errors import DataError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = ["FORMATS", "Table", "discover", "open_table"]

FORMATS = ("parquet", "csv")
_SUFFIXES = {"parquet": (".parquet", ".pq", ".parq"), "csv": (".csv", ".csv.gz", ".tsv", ".tsv.gz")}


def _format_of(url: str) -> str | None:
    lower = url.lower()
    for name, suffixes in _SUFFIXES.items():
        if lower.endswith(suffixes):
            return name
    return None


def discover(location: str, fmt: str | None = None) -> tuple[str, list[storage.FileInfo]]:
    """The format and data files of a dataset location (one file, or a folder / prefix of them).

    Files or folders whose name starts with ``_`` or ``.`` (manifests, results, profiles, rejects,
    temp files) are not data.
    """
    root = location.removeprefix("file://").rstrip("/")
    files = [
        f
        for f in storage.list_files(location)
        if not any(part.startswith(("_", ".")) for part in f.url[len(root) :].split("/") if part)
        or f.url.rstrip("/") == root
    ]
    if fmt is None:
        found = {_format_of(f.url) for f in files} - {None}
        if len(found) > 1:
            raise DataError(f"{location!r} mixes {' and '.join(sorted(str(x) for x in found))} files: pass --format")
        fmt = found.pop() if found else None
    if fmt is None:
        raise NotFoundError(
            f"no Parquet or CSV files at {location!r} (looked for {', '.join(sum(_SUFFIXES.values(), ()))})"
        )
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}: use parquet or csv")
    data = [f for f in files if _format_of(f.url) == fmt] if len(files) > 1 else files
    if not data:
        raise NotFoundError(f"no {fmt} files at {location!r}")
    return fmt, data


def _placeholder(rows: int) -> Any:
    import numpy as np

    # A read-only view with stride 0: the frame knows the column and the row count, the column
    # takes no memory. Only expectations that look at the table's shape ever see it.
    return np.broadcast_to(np.array(np.nan), (rows,))


@dataclasses.dataclass
class Table:
    """A dataset opened for column-wise reads."""

    fmt: str
    paths: list[Path]
    schema: pa.Schema
    rows: int
    _csv: pa.Table | None = None

    @property
    def columns(self) -> list[str]:
        return list(self.schema.names)

    def column_bytes(self, name: str) -> int:
        """Approximate in-memory size of a column (Parquet: uncompressed size from the footers)."""
        import pyarrow.parquet as pq

        if self._csv is not None:
            return int(self._csv.column(name).nbytes) if name in self._csv.column_names else 0
        total = 0
        for path in self.paths:
            meta = pq.ParquetFile(path).metadata
            for group in range(meta.num_row_groups):
                row_group = meta.row_group(group)
                for index in range(row_group.num_columns):
                    chunk = row_group.column(index)
                    if chunk.path_in_schema.split(".")[0] == name:
                        total += chunk.total_uncompressed_size
        return total

    def few_values(self, name: str) -> bool:
        """A Parquet text column stored dictionary-encoded with few distinct values.

        Its column chunks take at most two bytes a row before compression (bit-packed dictionary
        codes: up to some 65,000 distinct values); a column of mostly distinct strings is larger.
        """
        import pyarrow as pa

        if self._csv is not None or name not in self.schema.names:
            return False
        kind = self.schema.field(name).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            return False
        return self.column_bytes(name) <= 2 * max(self.rows, 1)

    def arrow(self, columns: Sequence[str], *, dictionary: Sequence[str] = ()) -> pa.Table:
        """The given columns (those that exist) as one Arrow table.

        Parquet columns named in ``dictionary`` are read as dictionary arrays, straight from the
        file's dictionary pages (no string is materialised per row).
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        wanted = [c for c in self.columns if c in set(columns)]
        if self._csv is not None:
            return self._csv.select(wanted)
        encoded = [c for c in wanted if c in set(dictionary)] or None
        # One column group at a time, single-threaded, without pre-buffering whole column chunks:
        # slower by a few milliseconds, but the read adds little on top of the data itself.
        parts = [
            pq.read_table(path, columns=wanted, use_threads=False, pre_buffer=False, read_dictionary=encoded)
            for path in self.paths
        ]
        return parts[0] if len(parts) == 1 else pa.concat_tables(parts)

    def frame(self, columns: Sequence[str], *, placeholders: bool = True) -> pd.DataFrame:
        """A DataFrame with real values for ``columns`` and (by default) stand-ins for the rest.

        The stand-ins keep every column name and the row count, so expectations about the
        table's shape give the same answer on any frame.
        """
        import pandas as pd

        wanted = set(columns)
        data: dict[str, Any] = {}
        if wanted:
            # Text columns with few distinct values become pandas categoricals: membership tests,
            # regexes (per category) and the row filters great-expectations applies are far
            # cheaper on their integer codes, and the values seen by the checks are the same.
            categorical = [name for name in sorted(wanted) if self.few_values(name)]
            table = _normalise(self.arrow(sorted(wanted), dictionary=categorical), keep=categorical)
            for name in table.column_names:
                data[name] = table.column(name).to_pandas(coerce_temporal_nanoseconds=True, date_as_object=False)
            del table
        if not placeholders:
            return pd.DataFrame(data, copy=False)
        ordered = {name: data[name] if name in data else _placeholder(self.rows) for name in self.columns}
        return pd.DataFrame(ordered, copy=False)


def _normalise(table: pa.Table, keep: Sequence[str] = ()) -> pa.Table:
    """Arrow types that become pandas' fast dtypes: int64, float64, plain strings, timestamps
    (and, for the columns in ``keep``, dictionaries of strings: pandas categoricals)."""
    import pyarrow as pa

    fields = []
    changed = False
    for field in table.schema:
        kind = field.type
        target = kind
        if pa.types.is_dictionary(kind) and field.name in keep and pa.types.is_string(kind.value_type):
            pass
        elif pa.types.is_dictionary(kind):
            target = kind.value_type
        if pa.types.is_integer(target) and target != pa.int64() and not pa.types.is_uint64(target):
            target = pa.int64()
        elif pa.types.is_floating(target) and target != pa.float64():
            target = pa.float64()
        elif pa.types.is_large_string(target):
            target = pa.string()
        changed = changed or target != kind
        fields.append(pa.field(field.name, target, field.nullable))
    return table.cast(pa.schema(fields)) if changed else table


@contextlib.contextmanager
def open_table(location: str, fmt: str | None = None) -> Iterator[Table]:
    """Open the dataset at ``location`` (downloading S3 objects to a temp folder first)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fmt, files = discover(location, fmt)
    with contextlib.ExitStack() as stack:
        paths = [stack.enter_context(storage.local_input(info.url)) for info in files]
        try:
            if fmt == "parquet":
                metas = [pq.ParquetFile(path) for path in paths]
                schema = metas[0].schema_arrow
                for path, meta in zip(paths[1:], metas[1:], strict=True):
                    if not meta.schema_arrow.equals(schema):
                        raise DataError(f"{path.name!r} has another schema than {paths[0].name!r}: {meta.schema_arrow}")
                rows = sum(meta.metadata.num_rows for meta in metas)
                yield Table(fmt=fmt, paths=paths, schema=schema, rows=rows)
                return
            csv = _read_csv(paths, location)
            yield Table(fmt=fmt, paths=paths, schema=csv.schema, rows=csv.num_rows, _csv=csv)
        except pa.ArrowInvalid as exc:
            raise DataError(f"cannot read {fmt} data at {location!r}: {exc}") from None


def _read_csv(paths: list[Path], location: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    tables = []
    for path in paths:
        try:
            tables.append(pacsv.read_csv(path))
        except pa.ArrowInvalid as exc:
            if "Empty CSV file" in str(exc):
                continue
            raise
    if not tables:
        raise DataError(f"every CSV file at {location!r} is empty: nothing to read")
    return pa.concat_tables(tables, promote_options="permissive")
