"""Raw orders as the shop database exports them (CSV / JSON lines), clean or dirty."""

from __future__ import annotations

import json
import random
from pathlib import Path

HEADER = "order_id,customer_id,amount,currency,status,email,created_at,updated_at"


def order_rows(count: int, *, start: int = 1, seed: int = 5) -> list[str]:
    rng = random.Random(seed)
    rows = []
    for order_id in range(start, start + count):
        hour, minute = rng.randrange(24), rng.randrange(60)
        rows.append(
            f"{order_id},{rng.randrange(1, 900)},{rng.randrange(100, 90000) / 100},"
            f"{rng.choice(['EUR', 'USD', 'GBP'])},{rng.choice(['new', 'paid', 'shipped'])},"
            f"user{order_id}@example.com,2026-11-26T{hour:02d}:{minute:02d}:00Z,2026-11-26T{hour:02d}:{minute:02d}:30Z"
        )
    return rows


def write_csv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(r + "\n" for r in rows))
    return path


def event_lines(count: int, *, seed: int = 9) -> list[str]:
    rng = random.Random(seed)
    out = []
    for index in range(count):
        out.append(
            json.dumps(
                {
                    "event_id": f"e-{index:05d}",
                    "user_id": rng.randrange(1, 500),
                    "event_type": rng.choice(["PAGE_VIEW", "click", "purchase"]),
                    "occurred_at": f"2026-11-26T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z",
                    "page": rng.choice(["/", "/cart", "/item/7"]),
                    "value": round(rng.random() * 50, 2),
                    "is_bot": index % 10 == 0,
                }
            )
        )
    return out
