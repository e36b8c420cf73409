"""Realistic test data: orders as the shop exports them, clean or with the usual dirt."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CURRENCIES = ["EUR", "USD", "GBP"]
STATUSES = ["new", "paid", "shipped", "cancelled"]


def orders_table(rows: int, *, seed: int = 1, start_id: int = 1) -> pa.Table:
    """Curated orders (the shape data_pipeline writes): typed columns, UTC timestamps."""
    rng = random.Random(seed)
    base = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)
    created = [base + dt.timedelta(seconds=rng.randrange(86400)) for _ in range(rows)]
    amount = [round(rng.gammavariate(2.0, 40.0), 2) for _ in range(rows)]
    return pa.table(
        {
            "order_id": pa.array(range(start_id, start_id + rows), pa.int64()),
            "customer_id": pa.array([rng.randrange(1, 5000) for _ in range(rows)], pa.int64()),
            "amount": pa.array(amount, pa.float64()),
            "currency": pa.array([rng.choice(CURRENCIES) for _ in range(rows)]),
            "status": pa.array([rng.choice(STATUSES) for _ in range(rows)]),
            "email": pa.array([f"user{rng.randrange(100000)}@example.com" for _ in range(rows)]),
            "created_at": pa.array(created, pa.timestamp("us", tz="UTC")),
            "updated_at": pa.array(
                [c + dt.timedelta(minutes=rng.randrange(120)) for c in created], pa.timestamp("us", tz="UTC")
            ),
            "amount_cents": pa.array([round(a * 100) for a in amount], pa.float64()),
            "order_date": pa.array([c.date() for c in created], pa.date32()),
        }
    )


def write_parquet(table: pa.Table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path


def dirty_orders(rows: int) -> pa.Table:
    """Orders with a duplicated id, a null id, a negative amount, an unknown currency and bad emails."""
    table = orders_table(rows, seed=3)
    ids = table.column("order_id").to_pylist()
    ids[1] = ids[0]  # duplicate
    ids[2] = None  # missing id
    amounts = table.column("amount").to_pylist()
    amounts[3] = -5.0
    currencies = table.column("currency").to_pylist()
    currencies[4] = "XXX"
    emails = table.column("email").to_pylist()
    emails[5] = "not-an-email"
    table = table.set_column(0, "order_id", pa.array(ids, pa.int64()))
    table = table.set_column(2, "amount", pa.array(amounts, pa.float64()))
    table = table.set_column(3, "currency", pa.array(currencies))
    return table.set_column(5, "email", pa.array(emails))
