"""Dataset freshness on local folders and S3 (moto server): partitions, markers, objects."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from observability.errors import ChecksError
from observability.freshness import CHECKS_DIR, load_config
from observability.jobs import freshness
from observability.tests.conftest import last_line

NOW = "2026-11-26T06:00:00Z"


def _partition(root: Path, day: str, *, marker: bool = True) -> None:
    folder = root / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part-0.parquet").write_bytes(b"PAR1")
    if marker:
        (folder / "_manifest.json").write_text("{}")


def _checks(tmp_path: Path, text: str) -> str:
    path = tmp_path / "freshness.yaml"
    path.write_text(text)
    return str(path)


def test_partitions_objects_and_markers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    orders = tmp_path / "orders"
    _partition(orders, "2026-11-24")
    _partition(orders, "2026-11-25", marker=False)  # still being written: does not count
    (orders / "not-a-partition").mkdir()
    events = tmp_path / "events"
    _partition(events, "2026-11-25")
    landing = tmp_path / "landing"
    landing.mkdir()
    old = landing / "orders-1.csv"
    old.write_text("x")
    stamp = dt.datetime(2026, 11, 25, 1, 0, tzinfo=dt.UTC).timestamp()
    os.utime(old, (stamp, stamp))
    checks = _checks(
        tmp_path,
        f"""
datasets:
  - {{name: orders, location: {orders}, kind: partition, marker: _manifest.json, max_age: 24h}}
  - {{name: events, location: {events}, kind: partition, marker: _manifest.json, max_age: 30h}}
  - {{name: landing, location: {landing}, kind: object, pattern: "*.csv", max_age: 26h}}
  - {{name: gone, location: {tmp_path / "gone"}, max_age: 1h}}
""",
    )
    prom = tmp_path / "f.prom"
    assert freshness.run(["--checks", checks, "--now", NOW, "--metrics-file", str(prom), "--log-level", "ERROR"]) == 1
    line = last_line(capsys.readouterr().err)
    assert line == (
        "python -m observability.jobs.freshness: error: freshness breached for 3 of 4 dataset(s): "
        "orders (dt=2026-11-24, age 1d6h > max 1d); "
        f"landing ({old}, age 1d5h > max 1d2h); gone (nothing at {tmp_path / 'gone'})"
    )
    text = prom.read_text()
    assert 'etl_freshness_ok{dataset="events"} 1.0' in text
    assert 'etl_freshness_age_seconds{dataset="events"} 21600.0' in text  # 6h after the end of 2026-11-25
    assert 'etl_freshness_ok{dataset="orders"} 0.0' in text
    assert "etl_freshness_breached_datasets 3.0" in text
    # Only the fresh one: success.
    assert freshness.run(["--checks", checks, "--now", NOW, "--datasets", "events", "--log-level", "ERROR"]) == 0
    assert freshness.run(["--checks", checks, "--datasets", "nope", "--log-level", "ERROR"]) == 2


def test_s3_partitions(s3: SimpleNamespace, capsys: pytest.CaptureFixture[str]) -> None:
    s3.put("curated/orders/dt=2026-11-25/part-0.parquet", b"PAR1")
    s3.put("curated/orders/dt=2026-11-25/_manifest.json", b"{}")
    s3.put("curated/orders/dt=2026-11-26/part-0.parquet", b"PAR1")  # no manifest yet
    checks = f"""
datasets:
  - {{name: orders, location: "{s3.url("curated/orders/")}", marker: _manifest.json, max_age: 8h}}
  - {{name: empty, location: "{s3.url("curated/empty/")}", max_age: 8h}}
"""
    path = Path(s3.server.log_path).parent / "checks.yaml"
    path.write_text(checks)
    assert freshness.run(["--checks", str(path), "--now", NOW, "--datasets", "orders", "--log-level", "ERROR"]) == 0
    assert freshness.run(["--checks", str(path), "--now", "2026-11-26T09:00:00Z", "--log-level", "ERROR"]) == 1
    line = last_line(capsys.readouterr().err)
    assert "orders (dt=2026-11-25, age 9h > max 8h)" in line
    assert f"empty (no dt=YYYY-MM-DD partition under {s3.url('curated/empty/')})" in line


def test_unreadable_bucket_is_a_breach(s3: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checks = _checks(
        tmp_path, "datasets:\n  - {name: orders, location: 's3://no-such-bucket-xyz/orders/', max_age: 1h}\n"
    )
    assert freshness.run(["--checks", checks, "--now", NOW, "--log-level", "ERROR"]) == 1
    assert "orders (cannot list s3://no-such-bucket-xyz/orders/: " in last_line(capsys.readouterr().err)


def test_config_errors_and_packaged_checks(tmp_path: Path) -> None:
    assert [d.name for d in load_config(CHECKS_DIR / "freshness.yaml").datasets] == [
        "landing_orders",
        "orders",
        "orders_enriched",
        "events",
    ]
    with pytest.raises(ChecksError, match=r"datasets\[0\].max_age: .*'soon' is not a duration"):
        load_config(_checks(tmp_path, "datasets:\n  - {name: a, location: /x, max_age: soon}\n"))
    with pytest.raises(ChecksError, match=r"datasets: .*dataset 'a' is listed twice"):
        load_config(
            _checks(
                tmp_path,
                "datasets:\n  - {name: a, location: /x, max_age: 1h}\n  - {name: a, location: /y, max_age: 1h}\n",
            )
        )
    with pytest.raises(ChecksError, match=r"checks file '.*nope.yaml' does not exist"):
        load_config(tmp_path / "nope.yaml")
