"""Small value parsers: durations, Kubernetes quantities, label values, Python literals."""

from __future__ import annotations

import ast
from decimal import Decimal

import pytest

from tools.bazel.dagrender.durations import parse_duration
from tools.bazel.dagrender.names import is_label_value, label_value
from tools.bazel.dagrender.pyliteral import py_literal
from tools.bazel.dagrender.quantities import parse_quantity


@pytest.mark.parametrize(
    ("text", "seconds"), [("45s", 45), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400), ("1d2h3m4s", 93784)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "30 m", "m30", "1m1h", "PT30M", "", "-5m", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a duration; write units in the order d, h, m, s"):
        parse_duration(text)


def test_zero_duration() -> None:
    with pytest.raises(ValueError, match=r"'0s' is zero; a duration must be positive"):
        parse_duration("0s")


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("500m", "cpu", Decimal("0.5")),
        ("2", "cpu", Decimal(2)),
        ("0.25", "cpu", Decimal("0.25")),
        ("512Mi", "memory", Decimal(512 * 2**20)),
        ("1G", "memory", Decimal(10**9)),
        ("1e3", "memory", Decimal(1000)),
        ("1E", "memory", Decimal(10**18)),
    ],
)
def test_quantities(text: str, kind: str, value: Decimal) -> None:
    assert parse_quantity(text, kind=kind) == value


@pytest.mark.parametrize("text", ["two", "1.5.2", "-1", "1 Gi", "1gi", "Gi", "1e"])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(ValueError, match=r"is not a Kubernetes quantity"):
        parse_quantity(text, kind="memory")


def test_zero_quantity() -> None:
    with pytest.raises(ValueError, match=r"'0' is zero; a cpu quantity must be positive"):
        parse_quantity("0", kind="cpu")


def test_label_values() -> None:
    assert label_value("file_processing_daily") == "file_processing_daily"
    long = "x" * 70
    stand_in = label_value(long)
    assert is_label_value(stand_in) and len(stand_in) <= 63
    assert stand_in != label_value("x" * 71), "different values must not collide"
    assert is_label_value(label_value("_leading.underscore"))
    assert is_label_value(label_value("..."))


@pytest.mark.parametrize(
    "value",
    [
        "plain",
        'it\'s "quoted"',
        "back\\slash\nnew line\ttab\x00nul",
        "ünïcödé ✓ \u2028",
        "{{ dag_run.conf.get('date', ds) }}",
        None,
        True,
        0,
        -1.5,
        ["a", 1, None],
        {"k": {"nested": [1, 2]}, "x": False},
    ],
)
def test_py_literal_round_trips(value: object) -> None:
    assert ast.literal_eval(py_literal(value)) == value


def test_py_literal_rejects_other_types() -> None:
    with pytest.raises(TypeError, match=r"cannot write"):
        py_literal({1, 2})
