"""CSV <-> Parquet conversion, local and S3, with dirty CSV input."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from file_processing.convert import ConvertOptions, convert_file, parse_column_types
from file_processing.errors import ConversionError
from file_processing.jobs import convert
from file_processing.tests.conftest import last_line


def test_csv_to_parquet_to_csv_roundtrip_via_s3(tmp_path: Path, s3: SimpleNamespace) -> None:
    src = tmp_path / "orders.csv"
    src.write_text("order_id,amount,currency,note\n1,9.5,EUR,\n2,,USD,gift\n3,1.25,NULL,\n")
    assert convert.run(["--source", str(src), "--dest", s3.url("pq/orders.parquet"), "--log-level", "ERROR"]) == 0
    local = tmp_path / "back.parquet"
    local.write_bytes(s3.get("pq/orders.parquet"))
    table = pq.read_table(local)
    assert table.schema.field("order_id").type == pa.int64()
    assert table.column("amount").to_pylist() == [9.5, None, 1.25]
    assert table.column("currency").to_pylist() == ["EUR", "USD", None]
    # 'note' is empty in the first rows (Arrow would call it null-typed): it stays a string column.
    assert table.schema.field("note").type == pa.string()
    out = tmp_path / "export"
    assert (
        convert.run(["--source", s3.url("pq/"), "--dest", str(out) + "/", "--to", "csv", "--log-level", "ERROR"]) == 0
    )
    assert (out / "orders.csv").read_text().splitlines()[0] == '"order_id","amount","currency","note"'


def test_bad_value_stops_with_a_hint_and_types_can_be_pinned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "dirty.csv"
    src.write_text("id,qty\n1,5\n2,five\n")
    dest = tmp_path / "dirty.parquet"
    args = ["--source", str(src), "--dest", str(dest), "--column-types", "qty=int64", "--log-level", "ERROR"]
    assert convert.run(args) == 1
    message = last_line(capsys.readouterr().err)
    assert "CSV conversion error to int64: invalid value 'five'" in message
    assert message.endswith("pin the column's type with --column-types name=string (or fix the file)")
    assert not dest.exists()  # nothing half-written
    rows = convert_file(str(src), str(dest), options=ConvertOptions(column_types={"qty": "string"}))
    assert rows == 2 and pq.read_table(dest).column("qty").to_pylist() == ["5", "five"]


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ConversionError, match=r"'.*empty.csv' is empty \(not even a header line\)"):
        convert_file(str(empty), str(tmp_path / "e.parquet"))
    header = tmp_path / "header.csv"
    header.write_text("id,name\n")
    assert convert_file(str(header), str(tmp_path / "h.parquet")) == 0
    assert pq.read_table(tmp_path / "h.parquet").column_names == ["id", "name"]


def test_column_types_flag_is_validated() -> None:
    assert parse_column_types("id=int64, day=date") == {"id": "int64", "day": "date"}
    with pytest.raises(ValueError, match=r"'id:int' is not name=type"):
        parse_column_types("id:int")
    with pytest.raises(ConversionError, match=r"cannot tell the format of '.*x.json'"):
        convert_file("/tmp/x.json", "/tmp/x.parquet")
