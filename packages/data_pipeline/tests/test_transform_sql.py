"""The transform job (Parquet -> enriched partition), reference data, and the SQL sink (SQLite)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from data_pipeline.jobs import ingest, transform
from data_pipeline.spec import load_spec
from data_pipeline.tests.conftest import last_line
from data_pipeline.tests.datagen import order_rows, write_csv

DAY = "2026-11-26"


@pytest.fixture
def curated_orders(tmp_path: Path) -> Path:
    src = write_csv(tmp_path / "landing" / "orders.csv", order_rows(60))
    out = tmp_path / "curated" / "orders"
    assert (
        ingest.run(
            [
                "--dataset",
                "orders",
                "--run-date",
                DAY,
                "--source",
                str(src),
                "--output",
                str(out),
                "--log-level",
                "ERROR",
            ]
        )
        == 0
    )
    return out / f"dt={DAY}"


def _customers(path: Path, ids: range, *, extra: list[tuple[int, str, str]] = ()) -> Path:
    rows = [(i, "gold" if i % 3 == 0 else "silver", "NO" if i % 2 else "PE") for i in ids] + list(extra)
    table = pa.table(
        {
            "customer_id": [r[0] for r in rows],
            "segment": [r[1] for r in rows],
            "country": [r[2] for r in rows],
            "internal_note": ["x"] * len(rows),
        }
    )
    if path.suffix == ".csv":
        pacsv.write_csv(table, path)
    else:
        pq.write_table(table, path)
    return path


def _run_transform(partition: Path, out: Path, reference: Path, *extra: str) -> int:
    return transform.run(
        [
            "--dataset",
            "orders_enriched",
            "--run-date",
            DAY,
            "--source",
            str(partition),
            "--output",
            str(out),
            "--references",
            f"customers={reference}",
            "--log-level",
            "ERROR",
            *extra,
        ]
    )


def test_enrichment_adds_reference_columns_in_row_order(curated_orders: Path, tmp_path: Path) -> None:
    reference = _customers(tmp_path / "customers.csv", range(1, 900))
    out = tmp_path / "enriched"
    assert _run_transform(curated_orders, out, reference) == 0
    table = pq.read_table(out / f"dt={DAY}" / "part-0.parquet")
    orders = pq.read_table(curated_orders / "part-0.parquet")
    assert table.column("order_id").to_pylist() == orders.column("order_id").to_pylist()
    assert table.column_names == [
        "order_id",
        "customer_id",
        "amount",
        "currency",
        "order_status",
        "created_at",
        "order_date",
        "customer_segment",
        "customer_country",
        "amount_eur",
    ]
    first = table.slice(0, 1).to_pylist()[0]
    cid = first["customer_id"]
    assert first["customer_segment"] == ("gold" if cid % 3 == 0 else "silver")
    assert first["customer_country"] == ("NO" if cid % 2 else "PE")
    assert first["amount_eur"] == (first["amount"] if first["currency"] == "EUR" else None)


def test_missing_references_and_duplicate_keys(
    curated_orders: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "enriched"
    # Customers 1..99 only: most orders find no customer; the columns stay empty (not required).
    few = _customers(tmp_path / "few.parquet", range(1, 100))
    assert _run_transform(curated_orders, out, few) == 0
    table = pq.read_table(out / f"dt={DAY}" / "part-0.parquet")
    assert table.num_rows == 60 and table.column("customer_segment").null_count > 0
    dup = _customers(tmp_path / "dup.parquet", range(1, 900), extra=[(7, "bronze", "NO")])
    assert _run_transform(curated_orders, out, dup) == 1
    assert last_line(capsys.readouterr().err).endswith(
        f"error: enrich 'customers': reference {dup} has 1 duplicated key(s), e.g. {{'customer_id': 7}}; keys must be unique"
    )
    assert _run_transform(curated_orders, out, tmp_path / "none.csv") == 1
    assert f"reference 'customers' not found at '{tmp_path / 'none.csv'}'" in last_line(capsys.readouterr().err)


def test_required_enrichment_rejects_unmatched_rows(curated_orders: Path, tmp_path: Path) -> None:
    spec_text = (Path(__file__).resolve().parents[1] / "datasets" / "orders_enriched.yaml").read_text()
    spec_file = tmp_path / "orders_enriched.yaml"
    spec_file.write_text(
        spec_text.replace(
            "columns: {segment: customer_segment, country: customer_country}",
            "columns: {segment: customer_segment, country: customer_country}\n    required: true",
        ).replace("max_reject_ratio: 0.01", "max_reject_ratio: 1.0")
    )
    assert load_spec(spec_file).enrich[0].required
    reference = _customers(tmp_path / "some.csv", range(1, 450))
    out = tmp_path / "enriched"
    assert _run_transform(curated_orders, out, reference, "--spec", str(spec_file)) == 0
    kept = pq.read_table(out / f"dt={DAY}" / "part-0.parquet")
    rejects = [json.loads(line) for line in (out / "_rejects" / f"dt={DAY}" / "rejects.jsonl").read_text().splitlines()]
    assert kept.num_rows + len(rejects) == 60 and rejects
    assert all(r["reason"] == "enrich 'customers': no reference row for customer_id" for r in rejects)
    assert all(r["record"]["customer_id"] >= 450 for r in rejects)


def test_sql_sink_replaces_the_days_rows(tmp_path: Path) -> None:
    db = tmp_path / "reporting.db"
    src = write_csv(tmp_path / "in" / "orders.csv", order_rows(25))
    args = [
        "--dataset",
        "orders",
        "--run-date",
        DAY,
        "--source",
        str(src),
        "--output",
        str(tmp_path / "out"),
        "--sql-url",
        f"sqlite:///{db}",
        "--log-level",
        "ERROR",
    ]
    assert ingest.run(args) == 0
    assert ingest.run(args) == 0  # idempotent: the re-run replaces, it does not append
    other_day = [a if a != DAY else "2026-11-27" for a in args]
    assert ingest.run(other_day) == 0
    with sqlite3.connect(db) as conn:
        counts = dict(conn.execute("SELECT dt, COUNT(*) FROM orders GROUP BY dt").fetchall())
        row = conn.execute(
            "SELECT order_id, amount, currency FROM orders WHERE dt = ? ORDER BY order_id", (DAY,)
        ).fetchone()
    assert counts == {DAY: 25, "2026-11-27": 25}
    assert row[0] == 1 and isinstance(row[1], float)
    write_csv(src, order_rows(5))
    assert ingest.run(args) == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM orders WHERE dt = ?", (DAY,)).fetchone()[0] == 5


def test_sql_sink_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_csv(tmp_path / "in" / "orders.csv", order_rows(3))
    base = [
        "--dataset",
        "orders",
        "--run-date",
        DAY,
        "--source",
        str(src),
        "--output",
        str(tmp_path / "out"),
        "--log-level",
        "ERROR",
    ]
    assert ingest.run([*base, "--sql-url", "nosuchdb://user:secret@host/db"]) == 1
    message = last_line(capsys.readouterr().err)
    assert "invalid --sql-url 'nosuchdb://user:***@host/db'" in message and "secret" not in message
    assert ingest.run([*base, "--sql-url", f"sqlite:///{tmp_path}/db.sqlite", "--sql-table", "bad-name"]) == 1
    assert "invalid SQL table name 'bad-name'" in last_line(capsys.readouterr().err)
