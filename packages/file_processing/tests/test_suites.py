"""Suite files: shape checks (no great-expectations import) and stable expectation ids."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from file_processing.errors import SuiteError
from file_processing.suites import SUITES_DIR, load_suite, suite_location


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return str(path)


def test_packaged_suites_load_without_great_expectations() -> None:
    for path in sorted(SUITES_DIR.glob("*.yaml")):
        suite = load_suite(path)
        assert suite.dataset == path.stem
        assert len(set(suite.ids())) == len(suite.expectations)
    assert "great_expectations" not in sys.modules


def test_ids_are_derived_numbered_and_explicit(tmp_path: Path) -> None:
    suite = load_suite(
        _write(
            tmp_path,
            """
dataset: orders
expectations:
  - {type: expect_column_values_to_not_be_null, kwargs: {column: a}}
  - {type: expect_column_values_to_not_be_null, kwargs: {column: a, mostly: 0.5}, critical: false}
  - {type: expect_column_pair_values_to_be_equal, kwargs: {column_A: a, column_B: b}}
  - {type: expect_table_row_count_to_be_between, kwargs: {min_value: 1}, id: has_rows}
""",
        )
    )
    assert suite.ids() == [
        "expect_column_values_to_not_be_null:a",
        "expect_column_values_to_not_be_null:a#2",
        "expect_column_pair_values_to_be_equal:a,b",
        "has_rows",
    ]
    assert [e.critical for e in suite.expectations] == [True, False, True, True]
    assert suite.expectations[2].columns == ("a", "b")
    assert not suite.expectations[3].reads_values


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dataset: orders\nexpectations: []\n", r"expectations: List should have at least 1 item"),
        ("dataset: Orders\nexpectations: [{type: expect_x}]\n", r"dataset: String should match pattern"),
        (
            "dataset: orders\nexpectations: [{type: not_an_expectation}]\n",
            r"expectations\[0\].type: String should match",
        ),
        (
            "dataset: orders\nexpectations: [{type: expect_x, critcal: false}]\n",
            r"expectations\[0\].critcal: Extra inputs are not permitted",
        ),
        (
            "dataset: orders\nexpectations: [{type: expect_x, id: a}, {type: expect_y, id: a}]\n",
            r"expectations\[1\].id 'a' is used twice",
        ),
        ("dataset: [\n", r"is not valid YAML"),
        ("- 1\n", r"must be a mapping with 'dataset' and 'expectations'"),
    ],
)
def test_bad_suites_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SuiteError, match=message):
        load_suite(_write(tmp_path, text))


def test_missing_suite_and_wrong_dataset(tmp_path: Path) -> None:
    with pytest.raises(SuiteError, match=r"suite '.*nope.yaml' does not exist: add it or pass --suite"):
        load_suite(tmp_path / "nope.yaml")
    path = _write(tmp_path, "dataset: orders\nexpectations: [{type: expect_x}]\n")
    with pytest.raises(SuiteError, match=r"is for dataset 'orders', not 'events'"):
        load_suite(path, dataset="events")
    with pytest.raises(SuiteError, match=r"invalid dataset name '../etc'"):
        suite_location("../etc")
