"""One run of a dataset: read -> type -> required -> de-duplicate -> enrich -> transform -> write.

:func:`run` is what the ``ingest`` and ``transform`` jobs call. Inputs are listed in name order
and read one by one (S3 objects are downloaded to a temp folder first), every step keeps row order,
and the partition for the run date is replaced atomically at the end. Nothing is written when the
share of rejected rows exceeds the dataset's ``max_reject_ratio``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import hashlib
import json
import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from etl_core import storage

from . import __version__
from .errors import EnrichmentError, InputError, NotFoundError, TooManyRejects
from .expressions import EvalContext
from .output import PartitionPaths, write_partition
from .readers import FILE_COL, ROW_COL, Reject, read_file
from .spec import DatasetSpec
from .transforms import Rows, apply_transforms, check_required, dedup, enrich

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["RunReport", "find_inputs", "load_reference", "run"]


@dataclasses.dataclass
class RunReport:
    """What a run read, set aside and wrote."""

    dataset: str
    run_date: str
    inputs: list[storage.FileInfo]
    records: int = 0
    rejected: int = 0
    duplicates: int = 0
    filtered: int = 0
    written: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    reject_reasons: Counter[str] = dataclasses.field(default_factory=Counter)
    paths: PartitionPaths | None = None
    sql_rows: int | None = None
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "run_date": self.run_date,
            "inputs": len(self.inputs),
            "records": self.records,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "filtered": self.filtered,
            "written": self.written,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "data": self.paths.data if self.paths else None,
            "sql_rows": self.sql_rows,
        }


def find_inputs(spec: DatasetSpec, source: str) -> list[storage.FileInfo]:
    """The data files at ``source`` (one file, or those under it matching the format's patterns)."""
    try:
        files = storage.list_files(source)
    except NotFoundError:
        raise InputError(
            f"no input at {source!r}: nothing was delivered for this run (check the source and run date)"
        ) from None
    if len(files) == 1 and files[0].url.rstrip("/") == source.rstrip("/").removeprefix("file://"):
        return files
    patterns = spec.source.patterns()
    picked = [f for f in files if not f.name.startswith("_") and any(fnmatch.fnmatchcase(f.name, p) for p in patterns)]
    if not picked:
        raise InputError(
            f"no {spec.source.format} files under {source!r} (looked for {', '.join(patterns)}; found "
            f"{len(files)} other file(s))"
        )
    return picked


def load_reference(location: str, *, name: str) -> pa.Table:
    """A reference table from a CSV or Parquet file (types inferred for CSV)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    lower = location.lower()
    try:
        with storage.local_input(location) as path:
            if lower.endswith((".parquet", ".pq")):
                return pq.read_table(path)
            if lower.endswith((".csv", ".csv.gz")):
                return pacsv.read_csv(path)
    except NotFoundError:
        raise EnrichmentError(
            f"reference {name!r} not found at {location!r}: publish it or pass --references"
        ) from None
    except pa.ArrowInvalid as exc:
        raise EnrichmentError(f"reference {name!r} at {location!r} is unreadable: {exc}") from None
    raise EnrichmentError(f"reference {name!r} at {location!r}: use a .csv or .parquet file")


def _concat(tables: list[pa.Table]) -> pa.Table:
    import pyarrow as pa

    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def _reason_kind(reason: str) -> str:
    if reason.startswith(("expected ", "not valid JSON", "not a JSON object")):
        return "malformed"
    if "is required but empty" in reason:
        return "required"
    if reason.startswith("cast:"):
        return "cast"
    if reason.startswith("enrich"):
        return "enrich"
    return "type"


def _spec_digest(spec: DatasetSpec) -> str:
    return hashlib.sha256(json.dumps(spec.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def run(
    spec: DatasetSpec,
    *,
    source: str,
    output: str,
    run_date: dt.date,
    references: Mapping[str, str] | None = None,
    max_reject_ratio: float | None = None,
    compression: str = "snappy",
    sql_url: str | None = None,
    sql_table: str | None = None,
    log: Any = None,
) -> RunReport:
    """Ingest ``source`` into ``output``'s partition for ``run_date`` (see the module docstring)."""
    import pyarrow as pa

    started = time.monotonic()
    day = run_date.isoformat()
    inputs = find_inputs(spec, source)
    report = RunReport(dataset=spec.dataset, run_date=day, inputs=inputs)
    report.bytes_in = sum(f.size for f in inputs)
    tables: list[pa.Table] = []
    rejects: list[Reject] = []
    for index, info in enumerate(inputs):
        with storage.local_input(info.url) as path:
            result = read_file(path, spec, index, info.url)
        tables.append(result.table)
        rejects += result.rejects
        report.records += result.records
        if log is not None:
            log.info("input.read", url=info.url, records=result.records, rejected=len(result.rejects), bytes=info.size)
        del result  # the table lives on in `tables` only, so later steps can release its columns
    rows = Rows(_concat(tables))
    del tables

    rejects += check_required(rows, spec).rejects
    report.duplicates = dedup(rows, spec.dedup).dropped
    for item in spec.enrich:  # before the transforms, so they can use the reference columns
        where = (references or {}).get(item.name) or item.source
        reference = load_reference(where, name=item.name)
        rejects += enrich(rows, item, reference, where=where).rejects
        del reference
    step = apply_transforms(rows, spec.transforms, EvalContext(run_date=run_date))
    rejects, report.filtered = rejects + step.rejects, step.dropped

    report.rejected = len(rejects)
    report.reject_reasons = Counter(_reason_kind(r.reason) for r in rejects)
    limit = spec.max_reject_ratio if max_reject_ratio is None else max_reject_ratio
    if report.records and report.rejected / report.records > limit:
        examples = "; ".join(f"{inputs[r.file].url} line {r.line}: {r.reason}" for r in sorted(rejects)[:3])
        raise TooManyRejects(
            f"{report.rejected} of {report.records} rows of {spec.dataset!r} were rejected "
            f"({report.rejected / report.records:.1%} > max_reject_ratio {limit:.1%}); nothing was written. "
            f"First: {examples}"
        )

    # Every reject is known: the file and line columns are not written, so they are not filtered.
    rows.table = rows.table.drop_columns([c for c in (FILE_COL, ROW_COL) if c in rows.table.column_names])
    data = rows.take_table()
    manifest = {
        "dataset": spec.dataset,
        "run_date": day,
        "generator": f"data_pipeline {__version__} pyarrow {pa.__version__}",
        "spec_sha256": _spec_digest(spec),
        "inputs": [{"url": f.url, "size": f.size, "etag": f.etag} for f in inputs],
        "rows": {
            "records": report.records,
            "rejected": report.rejected,
            "duplicates": report.duplicates,
            "filtered": report.filtered,
            "written": data.num_rows,
        },
    }
    paths, written = write_partition(
        data,
        output=output,
        run_date=day,
        rejects=rejects,
        sources=[f.url for f in inputs],
        manifest=manifest,
        compression=compression,
        # After de-duplication on one key column, its values are unique (null keys aside).
        unique_columns=spec.dedup.keys if spec.dedup and len(spec.dedup.keys) == 1 else (),
    )
    report.paths = paths
    report.written = data.num_rows
    report.bytes_out = int(written["data"]["size"])
    if sql_url:
        from .sql_sink import load_partition

        report.sql_rows = load_partition(data, url=sql_url, table_name=sql_table or spec.dataset, run_date=run_date)
    report.seconds = time.monotonic() - started
    return report
