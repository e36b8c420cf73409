"""The two-thread Parquet writer gives the exact bytes of pyarrow's own writer."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipeline.output import write_parquet
from data_pipeline.parquet_split import _split_point, write_table_split

OPTIONS = {
    "compression": "snappy",
    "use_dictionary": True,
    "write_statistics": True,
    "row_group_size": 1024 * 1024,
    "version": "2.6",
}


def _table(rows: int) -> pa.Table:
    stamps = [dt.datetime(2026, 11, 26, tzinfo=dt.UTC) + dt.timedelta(seconds=i * 7) for i in range(rows)]
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "flag": pa.array([None if i % 11 == 0 else i % 3 == 0 for i in range(rows)], pa.bool_()),
            "amount": pa.array([i * 0.25 for i in range(rows)], pa.float64()),
            "status": pa.array([None if i % 13 == 0 else ["new", "paid", "shipped"][i % 3] for i in range(rows)]),
            "email": pa.array([f"user{i % 997}@example.com" for i in range(rows)]),
            "small": pa.array([i % 100 for i in range(rows)], pa.int32()),
            "at": pa.array(stamps, pa.timestamp("us", tz="UTC")),
            "day": pa.array([dt.date(2026, 1, 1) + dt.timedelta(days=i % 40) for i in range(rows)], pa.date32()),
        }
    )


@pytest.mark.parametrize(
    ("rows", "options"),
    [
        (50_000, OPTIONS),
        (3, OPTIONS),
        (20_000, {**OPTIONS, "compression": "zstd", "use_dictionary": ["status", "day"]}),
        (20_000, {**OPTIONS, "write_statistics": False, "compression": "none"}),
    ],
)
def test_split_write_is_byte_identical_to_pyarrow(tmp_path: Path, rows: int, options: dict) -> None:
    table = _table(rows)
    pq.write_table(table, tmp_path / "plain.parquet", **options)
    write_table_split(table, tmp_path / "split.parquet", **options)
    assert (tmp_path / "split.parquet").read_bytes() == (tmp_path / "plain.parquet").read_bytes()
    assert pq.read_table(tmp_path / "split.parquet").equals(table)
    assert list(tmp_path.iterdir()) and not list(tmp_path.glob("*.columns"))  # helper file removed


def test_layouts_it_does_not_join_are_written_the_plain_way(tmp_path: Path) -> None:
    table = _table(30_000)
    for name, options in {
        "groups": {**OPTIONS, "row_group_size": 7_000},  # several row groups
        "index": {**OPTIONS, "write_page_index": True},
        "one": {**OPTIONS},
    }.items():
        data = table.select(["id"]) if name == "one" else table
        pq.write_table(data, tmp_path / f"{name}-plain.parquet", **options)
        write_table_split(data, tmp_path / f"{name}-split.parquet", **options)
        assert (tmp_path / f"{name}-split.parquet").read_bytes() == (tmp_path / f"{name}-plain.parquet").read_bytes()


def test_split_point_balances_the_work() -> None:
    table = _table(1000)
    cut = _split_point(table)
    assert 0 < cut < table.num_columns
    costs = [c.nbytes + 8 * len(c) for c in table.columns]
    assert abs(sum(costs[:cut]) - sum(costs[cut:])) <= max(costs)


def test_unique_key_column_is_written_without_dictionary(tmp_path: Path) -> None:
    table = _table(50_000)
    write_parquet(table, tmp_path / "keyed.parquet", unique_columns=["id"])
    write_parquet(table, tmp_path / "all.parquet")
    keyed = pq.ParquetFile(tmp_path / "keyed.parquet").metadata.row_group(0)
    every = pq.ParquetFile(tmp_path / "all.parquet").metadata.row_group(0)
    assert keyed.column(0).dictionary_page_offset is None
    assert every.column(0).dictionary_page_offset is not None
    assert keyed.column(3).dictionary_page_offset is not None  # other columns keep their dictionary
    assert pq.read_table(tmp_path / "keyed.parquet").equals(table)
    assert keyed.column(0).total_compressed_size < every.column(0).total_compressed_size
