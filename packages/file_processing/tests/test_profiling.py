"""Profiling: per-column statistics (checked against known values) and an escaped HTML report."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from file_processing.jobs import profile
from file_processing.profiling import profile_column
from file_processing.report_html import render_profile_html


def test_numeric_string_temporal_and_boolean_stats() -> None:
    numbers = profile_column("n", pa.chunked_array([[1, 2, 3, 4, None, 4]]))
    assert numbers["kind"] == "numeric" and numbers["nulls"] == 1 and numbers["distinct"] == 4
    assert (numbers["min"], numbers["max"], numbers["mean"]) == (1, 4, 2.8)
    assert numbers["quantiles"]["p50"] == 3.0
    assert numbers["top_values"][0] == {"value": 4, "count": 2}
    text = profile_column("s", pa.chunked_array([["b", "a", "", None, "b"]]))
    assert text["length"] == {"min": 0, "max": 1, "mean": 0.75}
    assert text["empty"] == 1 and (text["min"], text["max"]) == ("", "b")
    assert [t["value"] for t in text["top_values"]] == ["b", "", "a"]  # by count, ties by value
    days = [dt.datetime(2026, 1, d, tzinfo=dt.UTC) for d in (1, 2, 3, 4, 5)]
    stamps = profile_column("t", pa.chunked_array([pa.array(days, pa.timestamp("us", tz="UTC"))]))
    assert stamps["min"] == "2026-01-01T00:00:00Z" and stamps["max"] == "2026-01-05T00:00:00Z"
    assert stamps["quantiles"]["p50"] == "2026-01-03T00:00:00Z"
    dates = profile_column("d", pa.chunked_array([pa.array([dt.date(2026, 1, 1), dt.date(2026, 3, 1)])]))
    assert dates["max"] == "2026-03-01"
    flags = profile_column("b", pa.chunked_array([[True, False, True, None]]))
    assert (flags["true"], flags["false"], flags["nulls"]) == (2, 1, 1)
    empty = profile_column("e", pa.chunked_array([pa.nulls(3, pa.float64())]))
    assert empty["null_ratio"] == 1.0 and "min" not in empty


def test_html_escapes_every_value() -> None:
    hostile = "<script>alert('x')</script>"
    doc = {
        "dataset": "d&d",
        "source": "s3://b/<k>",
        "format": "csv",
        "files": 1,
        "rows": 2,
        "column_count": 1,
        "generated_at": "2026-11-26T00:00:00Z",
        "columns": [profile_column(hostile, pa.chunked_array([[hostile, "ok"]]))],
    }
    html = render_profile_html(doc)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "d&amp;d" in html and "s3://b/&lt;k&gt;" in html


def test_job_writes_json_and_html_to_s3(tmp_path: Path, s3: SimpleNamespace) -> None:
    table = pa.table(
        {
            "order_id": [1, 2, 3, 4],
            "amount": [9.5, None, 1.25, 3.0],
            "currency": ["EUR", "EUR", "USD", None],
            "note": ["<b>gift</b>", None, None, None],
        }
    )
    local = tmp_path / "orders.parquet"
    pq.write_table(table, local)
    s3.put("curated/orders/dt=2026-11-26/part-0.parquet", local.read_bytes())
    prom = tmp_path / "p.prom"
    code = profile.run(
        [
            "--input",
            s3.url("curated/orders/dt=2026-11-26/"),
            "--dataset",
            "orders",
            "--metrics-file",
            str(prom),
            "--log-level",
            "ERROR",
        ]
    )
    assert code == 0
    doc = json.loads(s3.get("curated/orders/dt=2026-11-26/_profile/profile.json"))
    assert doc["rows"] == 4 and [c["name"] for c in doc["columns"]] == ["order_id", "amount", "currency", "note"]
    amount = doc["columns"][1]
    assert (amount["nulls"], amount["min"], amount["max"]) == (1, 1.25, 9.5)
    html = s3.get("curated/orders/dt=2026-11-26/_profile/profile.html").decode()
    assert "&lt;b&gt;gift&lt;/b&gt;" in html and "<b>gift</b>" not in html
    assert 'etl_profile_null_ratio{column="note",dataset="orders"} 0.75' in prom.read_text()
    # Results, profiles and rejects live in '_' folders next to the data: never read as data.
    s3.put("curated/orders/dt=2026-11-26/_rejects/old.parquet", local.read_bytes())
    assert profile.run(["--input", s3.url("curated/orders/dt=2026-11-26/"), "--log-level", "ERROR"]) == 0
    assert json.loads(s3.get("curated/orders/dt=2026-11-26/_profile/profile.json"))["files"] == 1


def test_job_profiles_a_csv_folder(tmp_path: Path) -> None:
    folder = tmp_path / "landing"
    folder.mkdir()
    pacsv.write_csv(pa.table({"id": [1, 2], "city": ["Oslo", "Lima"]}), folder / "a.csv")
    pacsv.write_csv(pa.table({"id": [3], "city": ["Oslo"]}), folder / "b.csv")
    assert profile.run(["--input", str(folder), "--output", str(tmp_path / "out"), "--log-level", "ERROR"]) == 0
    doc = json.loads((tmp_path / "out" / "profile.json").read_text())
    assert doc["dataset"] == "landing" and doc["files"] == 2 and doc["rows"] == 3
    assert doc["columns"][1]["top_values"][0] == {"value": "Oslo", "count": 2}
