"""Ingestion of raw CSV / JSON lines: typing, rejects, de-duplication, idempotent partitions, S3."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_pipeline.jobs import ingest
from data_pipeline.spec import DedupSpec
from data_pipeline.tests.conftest import last_line, run_module
from data_pipeline.tests.datagen import HEADER, event_lines, order_rows, write_csv
from data_pipeline.transforms import Rows, dedup

DAY = "2026-11-26"


def _ingest(source: Path | str, out: Path | str, *extra: str, dataset: str = "orders") -> int:
    return ingest.run(
        [
            "--dataset",
            dataset,
            "--run-date",
            DAY,
            "--source",
            str(source),
            "--output",
            str(out),
            "--log-level",
            "ERROR",
            *extra,
        ]
    )


def _partition(out: Path) -> pa.Table:
    return pq.read_table(out / f"dt={DAY}" / "part-0.parquet")


def _rejects(out: Path) -> list[dict]:
    text = (out / "_rejects" / f"dt={DAY}" / "rejects.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_clean_csv_becomes_a_typed_partition_with_manifest(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "landing" / "orders-1.csv", order_rows(50))
    out = tmp_path / "curated"
    prom = tmp_path / "m.prom"
    assert _ingest(src.parent, out, "--metrics-file", str(prom)) == 0
    table = _partition(out)
    assert table.num_rows == 50
    assert table.schema.field("order_id").type == pa.int64()
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("order_date").type == pa.date32()
    assert table.column_names[-2:] == ["amount_cents", "order_date"]  # derived columns are appended
    manifest = json.loads((out / f"dt={DAY}" / "_manifest.json").read_text())
    assert manifest["rows"] == {"records": 50, "rejected": 0, "duplicates": 0, "filtered": 0, "written": 50}
    data = (out / f"dt={DAY}" / "part-0.parquet").read_bytes()
    assert manifest["data"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert _rejects(out) == []
    text = prom.read_text()
    assert 'etl_pipeline_rows{dataset="orders",stage="written"} 50.0' in text
    assert 'etl_pipeline_partition_timestamp_seconds{dataset="orders"} 1.7956512e+09' in text


def test_dirty_csv_rows_are_rejected_with_reasons(tmp_path: Path) -> None:
    rows = order_rows(100)
    rows[3] = "4,17,12.50,EUR,paid,user4@example.com,2026-11-26T01:00:00Z"  # a field short
    rows[5] = "6,seventeen,12.50,EUR,paid,user6@example.com,2026-11-26T01:00:00Z,2026-11-26T01:00:00Z"
    rows[7] = "8,17,,EUR,paid,user8@example.com,2026-11-26T01:00:00Z,2026-11-26T01:00:00Z"  # required amount empty
    rows[9] = "10,17,9.99,EUR,paid,user10@example.com,yesterday,2026-11-26T01:00:00Z"
    src = write_csv(tmp_path / "orders.csv", rows)
    out = tmp_path / "curated"
    assert _ingest(src, out) == 0
    rejects = _rejects(out)
    assert [(r["line"], r["reason"]) for r in rejects] == [  # line numbers in the file (header = 1)
        (5, "expected 8 fields, found 7"),
        (7, "column 'customer_id': 'seventeen' is not a valid int64"),
        (9, "column 'amount' is required but empty"),
        (11, "column 'created_at': 'yesterday' is not a valid timestamp"),
    ]
    by_reason = {r["reason"]: r for r in rejects}
    bad_type = by_reason["column 'customer_id': 'seventeen' is not a valid int64"]
    assert bad_type["source"] == str(src) and bad_type["record"]["customer_id"] == "seventeen"
    assert by_reason["expected 8 fields, found 7"]["record"]["_line"].startswith("4,17,12.50")
    table = _partition(out)
    assert table.num_rows == 96
    assert 6 not in table.column("order_id").to_pylist()


def test_duplicates_keep_the_latest_update_and_test_orders_are_filtered(tmp_path: Path) -> None:
    rows = order_rows(10)
    first = write_csv(tmp_path / "in" / "a.csv", rows)
    # A re-export of order 3 with a later update and another amount, plus a test order.
    write_csv(
        tmp_path / "in" / "b.csv",
        [
            "3,1,99.00, usd,shipped,user3@example.com,2026-11-26T00:00:00Z,2026-11-26T23:59:00Z",
            "11,1,1.00,EUR,test,qa@example.com,2026-11-26T00:00:00Z,2026-11-26T00:00:00Z",
        ],
    )
    out = tmp_path / "curated"
    assert _ingest(first.parent, out) == 0
    table = _partition(out).to_pylist()
    order3 = [r for r in table if r["order_id"] == 3]
    assert len(order3) == 1 and order3[0]["amount"] == 99.0 and order3[0]["currency"] == "USD"
    assert [r["order_id"] for r in table] == [1, 2, 4, 5, 6, 7, 8, 9, 10, 3]  # order kept: first file, then second
    manifest = json.loads((out / f"dt={DAY}" / "_manifest.json").read_text())
    assert manifest["rows"] == {"records": 12, "rejected": 0, "duplicates": 1, "filtered": 1, "written": 10}


def _kept_lines(table: pa.Table, spec: DedupSpec, out_before: list[bool] | None = None) -> tuple[int, list[int]]:
    rows = Rows(table)
    if out_before is not None:
        rows.drop(pa.array(out_before))
    dropped = dedup(rows, spec).dropped
    return dropped, rows.take_table().column("__line").to_pylist()


def _reference_kept(table: pa.Table, spec: DedupSpec, out: list[bool]) -> list[int]:
    """Plain Python: per key the first row, or the highest (keep=first: lowest) order_by, nulls lowest."""
    data = table.to_pydict()
    best: dict[tuple, int] = {}
    for i in range(table.num_rows):
        key = tuple(data[k][i] for k in spec.keys)
        if out[i] or None in key:
            continue
        if key not in best:
            best[key] = i
        elif spec.order_by:

            def value(j: int) -> float:
                v = data[spec.order_by][j]
                return float("-inf") if v is None else v

            if (value(i) < value(best[key])) if spec.keep == "first" else (value(i) > value(best[key])):
                best[key] = i
    losers = {i for i in range(table.num_rows) if not out[i] and None not in tuple(data[k][i] for k in spec.keys)}
    losers -= set(best.values())
    return [data["__line"][i] for i in range(table.num_rows) if not out[i] and i not in losers]


def test_dedup_edge_cases_match_a_plain_model() -> None:
    # A null order_by value sorts lowest, also with keep=last (an overflow must not turn it into the highest).
    table = pa.table({"id": [1, 1, 2, 2], "v": [None, 5, 7, None], "__line": [2, 3, 4, 5]})
    assert _kept_lines(table, DedupSpec(keys=["id"], order_by="v")) == (2, [3, 4])
    # A row already rejected (or a row with an empty key) between two duplicates does not split them.
    table = pa.table({"id": [3, 3, None, 3], "v": [1, 2, 9, 3], "__line": [2, 3, 4, 5]})
    assert _kept_lines(table, DedupSpec(keys=["id"], order_by="v"), [False, True, False, False]) == (1, [4, 5])
    # Random keys: small and huge integer ranges (bincount and sort paths), text, two keys, nulls.
    rng = np.random.default_rng(11)
    for trial in range(300):
        n = int(rng.integers(2, 120))
        columns = {
            "a": [None if rng.random() < 0.05 else int(x) for x in rng.integers(0, max(2, n // 3), n)],
            "b": [None if rng.random() < 0.05 else int(x) * 10**15 for x in rng.integers(-3, 4, n)],
            "t": [None if rng.random() < 0.05 else f"k{x}" for x in rng.integers(0, max(2, n // 4), n)],
            "v": [None if rng.random() < 0.1 else int(x) for x in rng.integers(0, 5, n)],
            "__line": list(range(n)),
        }
        table = pa.table(columns)
        keys = [["a"], ["b"], ["t"], ["a", "t"], ["b", "a"]][trial % 5]
        spec = DedupSpec(
            keys=keys,
            order_by="v" if trial % 3 else None,
            keep=["first", "last", None][trial % 3] if trial % 3 else None,
        )
        out = [bool(x) for x in rng.random(n) < 0.1]
        dropped, kept = _kept_lines(table, spec, out)
        assert kept == _reference_kept(table, spec, out), (trial, spec)
        assert dropped == n - sum(out) - len(kept)


def test_rerun_is_byte_identical_and_replaces_the_partition(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "in" / "orders.csv", order_rows(200))
    out = tmp_path / "curated"
    assert _ingest(src, out) == 0
    part = out / f"dt={DAY}"
    first = {p.name: p.read_bytes() for p in part.iterdir()}
    assert _ingest(src, out) == 0
    assert {p.name: p.read_bytes() for p in part.iterdir()} == first
    assert sorted(p.name for p in part.iterdir()) == ["_manifest.json", "part-0.parquet"]  # no temp files left
    write_csv(src, order_rows(20))  # a corrected, smaller export for the same day
    assert _ingest(src, out) == 0
    assert _partition(out).num_rows == 20


def test_empty_files_missing_columns_and_nothing_delivered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.csv").write_text("")
    write_csv(folder / "header-only.csv", [])
    out = tmp_path / "curated"
    assert _ingest(folder, out) == 0
    assert _partition(out).num_rows == 0  # an empty day is still a partition (with the schema)
    # An optional column missing from the export is filled with nulls.
    no_email = HEADER.replace(",email", "")
    rows = [",".join(r.split(",")[:5] + r.split(",")[6:]) for r in order_rows(5)]
    write_csv(folder / "no-email.csv", rows, header=no_email)
    assert _ingest(folder / "no-email.csv", out) == 0
    assert _partition(out).column("email").null_count == 5
    # A required column missing is a schema break: the run fails and leaves the partition alone.
    write_csv(folder / "no-amount.csv", ["1,2,EUR"], header="order_id,customer_id,currency")
    assert _ingest(folder / "no-amount.csv", out) == 1
    assert last_line(capsys.readouterr().err).endswith(
        f"error: {folder / 'no-amount.csv'!s} lacks required columns 'amount', 'created_at' "
        "(its columns: order_id, customer_id, currency); fix the export or the spec"
    )
    assert _partition(out).num_rows == 5
    assert _ingest(tmp_path / "nothing", out) == 1
    assert "no input at" in last_line(capsys.readouterr().err)


def test_too_many_rejects_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = order_rows(10)
    for index in range(3):
        rows[index] = (
            rows[index].replace(",EUR,", ",EUR,extra,").replace(",USD,", ",USD,extra,").replace(",GBP,", ",GBP,extra,")
        )
    src = write_csv(tmp_path / "orders.csv", rows)
    out = tmp_path / "curated"
    assert _ingest(src, out) == 1
    message = last_line(capsys.readouterr().err)
    assert "3 of 10 rows of 'orders' were rejected (30.0% > max_reject_ratio 5.0%); nothing was written" in message
    assert f"{src} line 2: expected 8 fields, found 9" in message
    assert not out.exists()
    assert _ingest(src, out, "--max-reject-ratio", "0.5") == 0
    assert _partition(out).num_rows == 7


def test_s3_source_and_output_with_gzip_and_conf(s3: SimpleNamespace, tmp_path: Path) -> None:
    body = (HEADER + "\n" + "\n".join(order_rows(30)) + "\n").encode()
    s3.put(f"landing/orders/{DAY}/orders-1.csv.gz", gzip.compress(body))
    s3.put(f"landing/orders/{DAY}/_SUCCESS", b"")
    conf = {"run_date": DAY, "source": s3.url(f"landing/orders/{DAY}/"), "output": s3.url("curated/orders")}
    result = run_module("data_pipeline.jobs.ingest", "--dataset", "orders", "--conf", json.dumps(conf), env=s3.env)
    assert result.returncode == 0, result.stderr
    assert s3.keys("curated/") == [
        f"curated/orders/_rejects/dt={DAY}/rejects.jsonl",
        f"curated/orders/dt={DAY}/_manifest.json",
        f"curated/orders/dt={DAY}/part-0.parquet",
    ]
    local = tmp_path / "p.parquet"
    local.write_bytes(s3.get(f"curated/orders/dt={DAY}/part-0.parquet"))
    assert pq.read_table(local).num_rows == 30
    # The manifest is written last: it is the commit point of the partition.
    puts = [path for method, path in s3.server.requests() if method == "PUT" and "/curated/" in path]
    assert puts[-1].endswith(f"dt={DAY}/_manifest.json")
    manifest = json.loads(s3.get(f"curated/orders/dt={DAY}/_manifest.json"))
    assert [i["url"] for i in manifest["inputs"]] == [s3.url(f"landing/orders/{DAY}/orders-1.csv.gz")]


def test_json_lines_fast_and_slow_paths(tmp_path: Path) -> None:
    lines = event_lines(40)
    src = tmp_path / "events" / "part-00.jsonl"
    src.parent.mkdir()
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "curated"
    assert _ingest(src, out, dataset="events") == 0
    table = _partition(out)
    assert table.num_rows == 36  # every 10th event is a bot
    assert set(table.column("event_type").to_pylist()) <= {"page_view", "click", "purchase"}
    # Dirty: a broken line, a wrong type, a duplicate, a missing required key.
    dirty = list(lines[:10])
    dirty.insert(2, '{"event_id": "e-x", "occurred_at": ')
    dirty[4] = dirty[4].replace('"user_id": ', '"user_id": "abc", "_": ')
    dirty.append(lines[3])
    dirty.append('{"event_id": "e-late", "event_type": "click"}')
    src.write_text("\n".join(dirty) + "\n")
    assert (
        ingest.run(
            [
                "--dataset",
                "events",
                "--run-date",
                DAY,
                "--source",
                str(src),
                "--output",
                str(out),
                "--max-reject-ratio",
                "0.5",
                "--log-level",
                "ERROR",
            ]
        )
        == 0
    )
    reasons = [(r["line"], r["reason"]) for r in _rejects(out)]
    assert reasons == [
        (3, "not valid JSON: Expecting value"),
        (5, "column 'user_id': 'abc' is not a valid int64"),
        (13, "column 'occurred_at' is required but empty"),
    ]
    ids = _partition(out).column("event_id").to_pylist()
    assert len(ids) == len(set(ids))


def test_help_and_bad_run_date() -> None:
    result = run_module("data_pipeline.jobs.ingest", "--help")
    assert result.returncode == 0 and "--run-date RUN_DATE" in result.stdout
    result = run_module("data_pipeline.jobs.ingest", "--dataset", "orders", "--conf", '{"run_date": "2026-13-01"}')
    assert result.returncode == 2
    assert "error: invalid --conf key: run_date='2026-13-01'" in last_line(result.stderr)
    result = run_module("data_pipeline.jobs.transform", "--dataset", "orders", "--run-date", DAY)
    assert result.returncode == 2
    assert last_line(result.stderr).endswith(
        "error: dataset 'orders' reads csv files; this job handles parquet (use the ingest job)"
    )
