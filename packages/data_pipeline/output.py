"""Write a run's partition: data, rejects and the manifest, each published atomically.

Layout under the output folder / prefix::

    dt=YYYY-MM-DD/part-0.parquet          the typed, de-duplicated rows
    dt=YYYY-MM-DD/_manifest.json          written last: inputs, counts, schema, sha256 of the data
    _rejects/dt=YYYY-MM-DD/rejects.jsonl  one JSON object per rejected row (source, line, reason, record)

A re-run for the same date replaces the partition: each file is written to a temp file in its
folder and renamed over the old one (locally), or PUT whole (S3), and the manifest goes last, so a
reader that starts from the manifest never mixes two runs. The Parquet bytes depend only on the
rows and the schema (no timestamps, no writer-specific metadata), so the same inputs and run date
give byte-identical files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl_core import storage

from .readers import Reject

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["PartitionPaths", "partition_paths", "rejects_lines", "write_parquet", "write_partition"]

DATA_FILE = "part-0.parquet"
MANIFEST_FILE = "_manifest.json"
REJECTS_FILE = "rejects.jsonl"


@dataclasses.dataclass(frozen=True)
class PartitionPaths:
    data: str
    manifest: str
    rejects: str


def partition_paths(output: str, run_date: str) -> PartitionPaths:
    part = storage.join(output, f"dt={run_date}")
    return PartitionPaths(
        data=storage.join(part, DATA_FILE),
        manifest=storage.join(part, MANIFEST_FILE),
        rejects=storage.join(output, "_rejects", f"dt={run_date}", REJECTS_FILE),
    )


def write_parquet(
    table: pa.Table, path: Path, *, compression: str = "snappy", unique_columns: Sequence[str] = ()
) -> None:
    """Deterministic Parquet: fixed options, no pandas metadata, statistics for readers.

    The column chunks are encoded on two threads (:mod:`data_pipeline.parquet_split`); the bytes
    are those of a plain ``pyarrow.parquet.write_table`` with the same options.
    ``unique_columns`` (a single de-duplication key) hold no repeated values, so they are written
    without dictionary encoding: the writer would fill a dictionary page, give up and fall back to
    plain encoding anyway, so this only saves that work and the wasted page (a smaller file).
    """
    from .parquet_split import write_table_split

    write_table_split(
        table.replace_schema_metadata(None),
        path,
        compression=compression,
        use_dictionary=[n for n in table.column_names if n not in set(unique_columns)] if unique_columns else True,
        write_statistics=True,
        row_group_size=1024 * 1024,
        version="2.6",
    )


def rejects_lines(rejects: Sequence[Reject], sources: Sequence[str]) -> bytes:
    """Rejects as JSON lines, ordered by file and row (stable across runs)."""
    lines = [
        json.dumps(
            {"source": sources[r.file], "line": r.line, "reason": r.reason, "record": r.record},
            sort_keys=True,
            ensure_ascii=False,
            default=str,
        )
        for r in sorted(rejects)
    ]
    return ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_partition(
    table: pa.Table,
    *,
    output: str,
    run_date: str,
    rejects: Sequence[Reject],
    sources: Sequence[str],
    manifest: dict[str, Any],
    compression: str = "snappy",
    unique_columns: Sequence[str] = (),
) -> tuple[PartitionPaths, dict[str, Any]]:
    """Publish data, rejects, then the manifest; returns the paths and the manifest written."""
    paths = partition_paths(output, run_date)
    with storage.staged_output(paths.data) as local:
        write_parquet(table, local, compression=compression, unique_columns=unique_columns)
        data_sha = _sha256(local)
        data_size = local.stat().st_size
    reject_bytes = rejects_lines(rejects, sources)
    storage.write_bytes(paths.rejects, reject_bytes, content_type="application/x-ndjson")
    doc = dict(manifest)
    doc["data"] = {"file": DATA_FILE, "rows": table.num_rows, "size": data_size, "sha256": data_sha}
    doc["rejects"] = {"url": paths.rejects, "rows": len(rejects), "sha256": hashlib.sha256(reject_bytes).hexdigest()}
    doc["schema"] = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    storage.write_bytes(
        paths.manifest, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(), content_type="application/json"
    )
    return paths, doc
