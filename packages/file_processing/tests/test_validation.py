"""Data quality with great-expectations: clean and dirty data, severities, results, metrics, S3."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from file_processing.errors import SuiteError
from file_processing.jobs import validate
from file_processing.suites import load_suite
from file_processing.tables import open_table
from file_processing.tests.conftest import last_line, run_module
from file_processing.tests.datagen import dirty_orders, orders_table, write_parquet
from file_processing.validation import run_suite

ORDERS_SUITE = Path(__file__).resolve().parents[1] / "suites" / "orders.yaml"


def _outcomes(result) -> dict[str, tuple[bool, str | None]]:
    return {o.id: (o.success, o.error) for o in result.outcomes}


def test_clean_orders_pass_the_packaged_suite(tmp_path: Path) -> None:
    path = write_parquet(orders_table(2000), tmp_path / "dt=2026-11-26" / "part-0.parquet")
    with open_table(str(path)) as table:
        result = run_suite(load_suite(ORDERS_SUITE), table)
    assert result.success, [o.summary() for o in result.outcomes if not o.success]
    assert result.rows == 2000
    assert not result.warnings


def test_dirty_orders_fail_critical_checks_and_warn_on_the_rest(tmp_path: Path) -> None:
    path = write_parquet(dirty_orders(500), tmp_path / "part-0.parquet")
    with open_table(str(path)) as table:
        result = run_suite(load_suite(ORDERS_SUITE), table)
    failed = {o.id for o in result.critical_failures}
    assert failed == {
        "expect_column_values_to_not_be_null:order_id",
        "expect_column_values_to_be_unique:order_id",
        "expect_column_values_to_be_between:amount",
        "expect_column_values_to_be_in_set:currency",
    }
    by_id = {o.id: o for o in result.outcomes}
    unique = by_id["expect_column_values_to_be_unique:order_id"]
    assert unique.result["unexpected_count"] == 2  # both copies of the duplicated id
    currency = by_id["expect_column_values_to_be_in_set:currency"]
    assert currency.result["partial_unexpected_list"] == ["XXX"]
    # SUMMARY detail: sample counts for the failures, an empty sample for the clean checks.
    assert currency.result["partial_unexpected_counts"] == [{"value": "XXX", "count": 1}]
    assert by_id["expect_column_values_to_match_regex:email"].result["partial_unexpected_counts"] == [
        {"value": "not-an-email", "count": 1}
    ]
    assert by_id["expect_column_values_to_not_be_null:customer_id"].result["partial_unexpected_counts"] == []
    # One bad email in 500 is within mostly=0.99: the warning-level check passes.
    assert by_id["expect_column_values_to_match_regex:email"].success
    assert not result.success


def test_few_valued_text_is_checked_as_categories_with_the_same_results(tmp_path: Path) -> None:
    path = write_parquet(dirty_orders(500), tmp_path / "part-0.parquet")
    with open_table(str(path)) as table:
        assert table.few_values("currency") and table.few_values("status")
        assert not table.few_values("email") and not table.few_values("order_id")
        frame = table.frame(["currency", "email"], placeholders=False)
        assert str(frame["currency"].dtype) == "category"
        assert str(frame["email"].dtype) != "category"
        cats = run_suite(load_suite(ORDERS_SUITE), table)
        table.few_values = lambda name: False  # type: ignore[method-assign]  # plain strings throughout
        plain = run_suite(load_suite(ORDERS_SUITE), table)
    assert [o.to_json() for o in cats.outcomes] == [o.to_json() for o in plain.outcomes]
    assert "expect_column_values_to_be_in_set:currency" in {o.id for o in cats.critical_failures}


def test_columns_and_table_grouping_agree(tmp_path: Path) -> None:
    path = write_parquet(dirty_orders(300), tmp_path / "part-0.parquet")
    suite = load_suite(ORDERS_SUITE)
    with open_table(str(path)) as table:
        by_columns = run_suite(suite, table, grouping="columns")
        by_table = run_suite(suite, table, grouping="table", result_format="BOOLEAN_ONLY")
    assert by_columns.groups > 1 and by_table.groups == 1
    assert [o.success for o in by_columns.outcomes] == [o.success for o in by_table.outcomes]


def test_missing_column_is_an_error_of_its_expectations_only(tmp_path: Path) -> None:
    table = orders_table(100).drop_columns(["email", "amount_cents"])
    path = write_parquet(table, tmp_path / "part-0.parquet")
    with open_table(str(path)) as opened:
        result = run_suite(load_suite(ORDERS_SUITE), opened)
    outcomes = _outcomes(result)
    assert outcomes["expect_table_columns_to_match_set"][0] is False
    success, error = outcomes["expect_column_values_to_be_between:amount_cents"]
    assert success is False and error is not None and "amount_cents" in error
    assert outcomes["expect_column_values_to_not_be_null:order_id"] == (True, None)


def test_bad_expectations_fail_before_reading_data(tmp_path: Path) -> None:
    path = write_parquet(orders_table(10), tmp_path / "part-0.parquet")
    suite_file = tmp_path / "bad.yaml"
    suite_file.write_text(
        "dataset: orders\nexpectations:\n  - {type: expect_column_values_to_be_purple, kwargs: {column: a}}\n"
    )
    with (
        open_table(str(path)) as table,
        pytest.raises(SuiteError, match=r"unknown type 'expect_column_values_to_be_purple'"),
    ):
        run_suite(load_suite(suite_file), table)
    suite_file.write_text(
        "dataset: orders\nexpectations:\n  - {type: expect_column_values_to_be_between, kwargs: {colum: a}}\n"
    )
    with open_table(str(path)) as table, pytest.raises(SuiteError, match=r"invalid kwargs \{'colum': 'a'\}"):
        run_suite(load_suite(suite_file), table)


def test_csv_input_with_dates_given_as_yaml_dates(tmp_path: Path) -> None:
    csv = tmp_path / "events.csv"
    pacsv.write_csv(
        pa.table({"id": [1, 2, 3], "at": ["2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z", "2019-05-01T00:00:00Z"]}), csv
    )
    suite_file = tmp_path / "s.yaml"
    suite_file.write_text(
        "dataset: events\nexpectations:\n"
        "  - {type: expect_column_values_to_be_between, kwargs: {column: at, min_value: 2020-01-01, max_value: 2030-01-01}}\n"
    )
    with open_table(str(csv)) as table:
        result = run_suite(load_suite(suite_file), table)
    (outcome,) = result.outcomes
    assert outcome.error is None
    assert outcome.result["unexpected_count"] == 1


def test_job_writes_results_next_to_the_data_on_s3_and_fails_on_critical(s3: SimpleNamespace, tmp_path: Path) -> None:
    good = write_parquet(orders_table(400), tmp_path / "good.parquet")
    s3.put("curated/orders/dt=2026-11-26/part-0.parquet", good.read_bytes())
    prom = tmp_path / "dq.prom"
    code = validate.run(
        [
            "--dataset",
            "orders",
            "--input",
            s3.url("curated/orders/dt=2026-11-26/"),
            "--metrics-file",
            str(prom),
            "--log-level",
            "ERROR",
        ]
    )
    assert code == 0
    doc = json.loads(s3.get("curated/orders/dt=2026-11-26/_dq_orders.json"))
    assert doc["success"] is True and doc["rows"] == 400
    assert doc["statistics"] == {"evaluated": 12, "passed": 12, "failed_critical": 0, "failed_warning": 0, "errors": 0}
    text = prom.read_text()
    assert 'etl_dq_success{dataset="orders"} 1.0' in text
    assert 'etl_dq_expectations{dataset="orders",result="passed",severity="critical"} 9.0' in text

    bad = write_parquet(dirty_orders(400), tmp_path / "bad.parquet")
    s3.put("curated/orders/dt=2026-11-27/part-0.parquet", bad.read_bytes())
    result = run_module(
        "file_processing.jobs.validate",
        "--dataset",
        "orders",
        "--conf",
        json.dumps({"input": s3.url("curated/orders/dt=2026-11-27/")}),
        env=s3.env,
    )
    assert result.returncode == 1, result.stderr
    line = last_line(result.stderr)
    assert line.startswith(
        "python -m file_processing.jobs.validate: error: 4 critical expectations failed on dataset 'orders'"
    )
    assert "expect_column_values_to_be_unique:order_id (2 unexpected" in line
    assert line.endswith(f"results in {s3.url('curated/orders/dt=2026-11-27/_dq_orders.json')}")
    doc = json.loads(s3.get("curated/orders/dt=2026-11-27/_dq_orders.json"))
    assert doc["success"] is False and doc["statistics"]["failed_critical"] == 4
    html = s3.get("curated/orders/dt=2026-11-27/_dq_orders.html").decode()
    assert "<title>Data quality of orders: FAILED</title>" in html
    assert "<code>expect_column_values_to_be_unique:order_id</code>" in html
    assert (
        html.count('<span class="warn">failed</span>')
        == doc["statistics"]["failed_critical"] + doc["statistics"]["failed_warning"]
    )
    assert "<code>not-an-email</code>" in html  # a sample of the unexpected values


def test_the_html_report_escapes_values_from_the_data() -> None:
    from file_processing.report_html import render_dq_html

    doc = {
        "dataset": "o<b>",
        "source": "s3://x/<script>",
        "suite": "s",
        "success": True,
        "rows": 1,
        "statistics": {"evaluated": 1, "passed": 1, "failed_critical": 0, "failed_warning": 0, "errors": 0},
        "run": {"great_expectations_version": "1", "seconds": 0.1},
        "results": [
            {
                "id": "e",
                "type": "t",
                "kwargs": {"regex": "<img src=x>"},
                "critical": False,
                "success": False,
                "error": None,
                "result": {"unexpected_count": 1, "partial_unexpected_list": ["<script>alert(1)</script>"]},
            }
        ],
    }
    html = render_dq_html(doc)
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_empty_folder_is_a_clear_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "dt=2026-11-26").mkdir()
    (tmp_path / "dt=2026-11-26" / "_manifest.json").write_text("{}")
    code = validate.run(["--dataset", "orders", "--input", str(tmp_path / "dt=2026-11-26"), "--log-level", "ERROR"])
    assert code == 1
    assert "error: no Parquet or CSV files at" in last_line(capsys.readouterr().err)
