"""The local platform's data: realistic inputs for every DAG, and where each DAG's outputs land.

``seed()`` writes one day of inputs into the S3 API (moto) — the shop's orders export (two CSV
files, with re-exported orders, test orders and a few broken rows, as such exports come), the web
front-end's hourly gzip'd JSON-lines events (bots included), and the customer reference table —
so that every published DAG runs end to end on them. ``outputs()`` says where each DAG writes, for
the demo's summary and the end-to-end test. Generation is deterministic (a seeded RNG).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import io
import json
import random
from typing import Any

__all__ = ["BUCKETS", "Seeded", "export_conf", "outputs", "seed"]

LANDING, CURATED, ARCHIVE, EXPORTS, REFERENCE = (
    "etl-landing",
    "etl-curated",
    "etl-archive",
    "etl-exports",
    "etl-reference",
)
BUCKETS = (LANDING, CURATED, ARCHIVE, EXPORTS, REFERENCE)

ORDERS = 20_000  # distinct orders of the day
REEXPORTED = 400  # orders exported twice (a later update): de-duplicated by updated_at
TEST_ORDERS = 50  # status "test": filtered out
BROKEN_ROWS = 12  # not a number / missing id: rejected (well below max_reject_ratio 0.05)
CUSTOMERS = 5_000
EVENTS_PER_HOUR = 1_500
EVENT_HOURS = 6
EVENT_TYPES = ("page_view", "click", "add_to_cart", "purchase", "search")


@dataclasses.dataclass(frozen=True)
class Seeded:
    """What ``seed`` wrote: the run date and the row counts the DAGs should end with."""

    run_date: dt.date
    objects: tuple[str, ...]  # s3:// URLs
    orders_expected: int  # curated orders rows: distinct ids, no test orders, no broken rows
    events_expected: int  # curated events rows: distinct ids, bots removed
    customers: int

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "run_date": self.run_date.isoformat()}


def outputs(run_date: dt.date) -> dict[str, list[str]]:
    """Per DAG: the S3 objects and prefixes (or Pushgateway groups) its run writes for ``run_date``."""
    day = run_date.isoformat()
    orders, enriched, events = (f"s3://{CURATED}/{name}" for name in ("orders", "orders_enriched", "events"))

    def partition(base: str) -> list[str]:
        return [
            f"{base}/dt={day}/part-0.parquet",
            f"{base}/dt={day}/_manifest.json",
            f"{base}/_rejects/dt={day}/rejects.jsonl",
        ]

    return {
        "data_pipeline_orders_daily": partition(orders) + partition(enriched),
        "data_pipeline_events_daily": partition(events),
        "file_processing_landing_archive": [f"s3://{ARCHIVE}/orders/{day}/"],
        "file_processing_orders_quality": [
            f"{orders}/dt={day}/_dq_orders.json",
            f"{orders}/dt={day}/_dq_orders.html",
            f"{orders}/dt={day}/_profile/",
        ],
        "file_processing_partner_export": [f"s3://{EXPORTS}/demo/orders-{day}/"],
        "observability_platform_checks": [
            f"pushgateway: job=observability_{job}" for job in ("freshness", "airflow_health", "sidecar_health")
        ],
    }


def export_conf(run_date: dt.date) -> dict[str, str]:
    """The partner export is manual-only: the demo asks for the day's curated orders as CSV."""
    day = run_date.isoformat()
    return {"source": f"s3://{CURATED}/orders/dt={day}/", "dest": f"s3://{EXPORTS}/demo/orders-{day}/"}


def _stamp(day: dt.date, seconds: int) -> str:
    moment = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def orders_csv(day: dt.date, rng: random.Random) -> tuple[list[bytes], int]:
    """Two CSV files of the day's export and the number of rows the curated partition should hold."""
    header = "order_id,customer_id,amount,currency,status,email,created_at,updated_at"
    rows: list[str] = []
    statuses = ("new", "paid", "paid", "paid", "shipped", "shipped", "cancelled")
    first_id = 1_000_000 + (day.toordinal() % 1000) * 100_000
    created: dict[int, int] = {}
    for n in range(ORDERS):
        order_id = first_id + n
        at = rng.randrange(86_400 - 7_200)
        created[order_id] = at
        amount = round(min(rng.lognormvariate(3.6, 0.9), 99_999.0), 2)
        currency = rng.choice(("EUR", "EUR", "EUR", "USD", "GBP"))
        currency = f" {currency.lower()}" if n % 97 == 0 else currency  # sloppy exports: trimmed, upper-cased
        email = f"customer{rng.randrange(10**6)}@example.{rng.choice(('com', 'de', 'co.uk'))}"
        status = "test" if n < TEST_ORDERS else rng.choice(statuses)
        rows.append(
            f"{order_id},{rng.randrange(1, CUSTOMERS + 1)},{amount},{currency},{status},{email},"
            f"{_stamp(day, at)},{_stamp(day, at + rng.randrange(60, 600))}"
        )
    reexports = []
    for order_id in rng.sample(sorted(created)[TEST_ORDERS:], REEXPORTED):
        at = created[order_id]
        reexports.append(
            f"{order_id},{rng.randrange(1, CUSTOMERS + 1)},{round(rng.uniform(5, 500), 2)},EUR,"
            f"shipped,updated{order_id}@example.com,{_stamp(day, at)},{_stamp(day, at + 7_000)}"
        )
    broken = [
        f"{first_id + ORDERS + n},{'x' if n % 2 else ''},not-a-number,EUR,paid,broken@example.com,"
        f"{_stamp(day, 3600)},{_stamp(day, 3700)}"
        for n in range(BROKEN_ROWS)
    ]
    half = len(rows) // 2
    morning = rows[:half] + broken
    evening = rows[half:] + reexports
    files = [("\n".join([header, *part]) + "\n").encode() for part in (morning, evening)]
    return files, ORDERS - TEST_ORDERS


def events_jsonl(day: dt.date, rng: random.Random) -> tuple[list[bytes], int]:
    """One gzip'd JSON-lines file per hour; the curated count excludes bots and repeated ids."""
    files: list[bytes] = []
    expected = 0
    for hour in range(EVENT_HOURS):
        lines = []
        for n in range(EVENTS_PER_HOUR):
            bot = rng.random() < 0.08
            event = {
                "event_id": f"{day:%Y%m%d}-{hour:02d}-{n:05d}",
                "user_id": rng.randrange(1, 40_000),
                "event_type": rng.choice(EVENT_TYPES).upper() if n % 50 == 0 else rng.choice(EVENT_TYPES),
                "occurred_at": _stamp(day, hour * 3600 + rng.randrange(3600)),
                "page": rng.choice(("/", "/search", "/cart", f"/item/{rng.randrange(1, 3000)}")),
                "value": round(rng.uniform(0, 120), 2) if rng.random() < 0.3 else None,
                "is_bot": bot,
            }
            lines.append(json.dumps(event, separators=(",", ":")))
            expected += 0 if bot else 1
        if hour == 0:  # the shipper re-sends the first events of the day after a restart
            lines += lines[:25]
        files.append(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    return files, expected


def customers_parquet(rng: random.Random) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "customer_id": pa.array(range(1, CUSTOMERS + 1), pa.int64()),
            "segment": pa.array(
                [rng.choice(("consumer", "consumer", "small_business", "enterprise")) for _ in range(CUSTOMERS)]
            ),
            "country": pa.array([rng.choice(("DE", "FR", "NL", "GB", "US", "ES", "IT")) for _ in range(CUSTOMERS)]),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def seed(s3: Any, run_date: dt.date) -> Seeded:
    """Create the buckets and write the day's inputs through the S3 client ``s3`` (boto3)."""
    rng = random.Random(run_date.toordinal())
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket)
    day = run_date.isoformat()
    written: list[str] = []

    def put(bucket: str, key: str, body: bytes, content_type: str) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        written.append(f"s3://{bucket}/{key}")

    orders, orders_expected = orders_csv(run_date, rng)
    for n, body in enumerate(orders, start=1):
        put(LANDING, f"orders/{day}/orders-{day}-{n}.csv", body, "text/csv")
    events, events_expected = events_jsonl(run_date, rng)
    for hour, body in enumerate(events):
        put(LANDING, f"events/{day}/events-{day}T{hour:02d}.jsonl.gz", body, "application/gzip")
    put(REFERENCE, "customers/customers.parquet", customers_parquet(rng), "application/vnd.apache.parquet")
    return Seeded(
        run_date=run_date,
        objects=tuple(written),
        orders_expected=orders_expected,
        events_expected=events_expected,
        customers=CUSTOMERS,
    )
