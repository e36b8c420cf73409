"""Strict text-to-type conversion and the filter / derive expression language."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from data_pipeline.coltypes import convert_text
from data_pipeline.errors import ExpressionError
from data_pipeline.expressions import EvalContext, compile_expression


@pytest.mark.parametrize(
    ("kind", "texts", "values", "bad"),
    [
        (
            "int64",
            ["1", " 2 ", "x", None, "", "99999999999999999999", "-5"],
            [1, 2, None, None, None, None, -5],
            [False, False, True, False, False, True, False],
        ),
        ("int32", ["2147483647", "2147483648"], [2147483647, None], [False, True]),
        ("float64", ["1e3", ".5", "1,5", "nan"], [1000.0, 0.5, None, None], [False, False, True, False]),
        ("bool", ["yes", "N", "maybe", "1"], [True, False, None, True], [False, False, True, False]),
        ("date", ["2026-01-31", "2026-02-30", "20260101"], [dt.date(2026, 1, 31), None, None], [False, True, True]),
        ("string", ["a", "", None], ["a", "", None], [False, False, False]),
    ],
)
def test_convert_text(kind: str, texts: list, values: list, bad: list) -> None:
    converted, flags = convert_text(pa.array(texts, pa.string()), kind)
    result = converted.to_pylist()
    if kind == "float64":
        assert result[3] != result[3]  # NaN is a valid float
        result[3] = None
    assert result == values
    assert flags.to_pylist() == bad


def test_timestamps_with_and_without_offsets() -> None:
    texts = ["2026-01-01T10:00:00Z", "2026-01-01 12:00:00", "2026-01-01T10:00:00+02:00", "soon"]
    values, bad = convert_text(pa.array(texts), "timestamp")
    utc = dt.UTC
    assert values.to_pylist()[:3] == [
        dt.datetime(2026, 1, 1, 10, tzinfo=utc),
        dt.datetime(2026, 1, 1, 12, tzinfo=utc),
        dt.datetime(2026, 1, 1, 8, tzinfo=utc),
    ]
    assert bad.to_pylist() == [False, False, False, True]


TABLE = pa.table(
    {
        "amount": [10.0, 2.5, None, 40.0],
        "currency": [" eur", "USD", "GBP", None],
        "status": ["paid", "test", "new", "paid"],
        "created_at": pa.array(
            [dt.datetime(2026, 11, 26, h, tzinfo=dt.UTC) for h in (1, 5, 9, 23)], pa.timestamp("us", tz="UTC")
        ),
    }
)
CTX = EvalContext(run_date=dt.date(2026, 11, 26))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("round(amount * 100)", [1000.0, 250.0, None, 4000.0]),
        ("upper(trim(currency))", ["EUR", "USD", "GBP", None]),
        ("coalesce(status, '') != 'test'", [True, False, True, True]),
        ("status in ('paid', 'new') and amount > 5", [True, False, None, True]),
        ("amount / 4", [2.5, 0.625, None, 10.0]),
        ("'big' if amount >= 10 else 'small'", ["big", "small", None, "big"]),
        ("hour(created_at) < 6", [True, True, False, False]),
        ("created_at >= timestamp('2026-11-26T09:00:00Z')", [False, False, True, True]),
        ("date(created_at) == run_date()", [True, True, True, True]),
        ("concat(status, '-', currency)", ["paid- eur", "test-USD", "new-GBP", None]),
        ("is_null(amount) or amount < 3", [False, True, True, False]),
    ],
)
def test_expressions(text: str, expected: list) -> None:
    result = compile_expression(text).evaluate(TABLE, CTX)
    assert result.to_pylist() == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('id')", r"unknown function \"__import__\('os'\)\.system\""),
        ("__import__('os')", r"unknown function '__import__'"),
        ("amount.real", r"Attribute is not allowed"),
        ("amount ** 2", r"Pow is not allowed"),
        ("round(amount, digits)", r"argument 2 of round\(\) must be a literal"),
        ("status in statuses", r"'in' needs a literal list"),
        ("lower()", r"lower\(\) takes 1 arguments, got 0"),
        ("amount >", r"is not a valid expression"),
    ],
)
def test_unsafe_or_bad_expressions_are_rejected(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        compile_expression(text)


def test_unknown_column_names_the_columns() -> None:
    with pytest.raises(
        ExpressionError, match=r"unknown column 'price' \(columns: amount, currency, status, created_at\)"
    ):
        compile_expression("price * 2").evaluate(TABLE, CTX)
