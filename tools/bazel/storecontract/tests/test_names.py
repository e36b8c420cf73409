"""Names: screened first (the error says why), then matched in full against one rule each."""

from __future__ import annotations

import pytest

from tools.bazel.storecontract import (
    DAG_ID_RE,
    NAME_RE,
    RELEASE_ID_RE,
    InvalidNameError,
    validate_dag_id,
    validate_name,
    validate_package,
    validate_release_id,
)

BAD_NAMES = [
    ("..", r"it contains '\.\.'"),
    ("../prod", r"it contains '/'"),
    ("prod/..", r"it contains '/'"),
    ("%2e%2e", r"percent-encoding such as %2e%2e"),
    ("a%2fb", r"percent-encoding"),
    ("/etc", r"it is an absolute path"),
    ("a\\b", r"it contains a backslash"),
    ("a\x00b", r"it contains a NUL byte"),
    ("d\u0435v", r"non-ASCII characters"),  # Cyrillic 'е' that looks like 'e'
    ("\ufb01le_processing", r"NFKC normalisation"),  # the 'ﬁ' ligature
    ("ｄｅｖ", r"NFKC normalisation"),  # fullwidth letters
    ("", r"it is empty"),
    ("Prod", r"it must be 1-63 of a-z, 0-9, '_', '-', starting with a letter, ending with a letter or digit$"),
    ("dev\n", r"whitespace or control characters"),
    ("a" * 64, r"it must be 1-63"),
    ("-dev", r"it must be 1-63"),
    ("dev-", r"ending with a letter or digit$"),
    ("file_processing_", r"ending with a letter or digit$"),
    ("1dev", r"starting with a letter"),
]


@pytest.mark.parametrize(("value", "why"), BAD_NAMES)
def test_bad_env_and_package_names_are_rejected(value: str, why: str) -> None:
    with pytest.raises(InvalidNameError, match=r"^invalid env .*" + why):
        validate_name("env", value)
    with pytest.raises(InvalidNameError, match=r"^invalid package "):
        validate_package(value)


@pytest.mark.parametrize("value", ["dev", "prod-eu", "a", "file_processing", "a" * 63, "a1", "x-y_z9"])
def test_good_names_pass(value: str) -> None:
    assert validate_name("package", value) == value


def test_a_non_string_name_is_refused() -> None:
    with pytest.raises(InvalidNameError, match=r"^invalid package None: must be a string of 1-63 of a-z"):
        validate_package(None)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("../../prod/other/dags/x", r"'/'"),
        ("..", r"'\.\.'"),
        ("a..b", r"'\.\.'"),
        (".hidden", r"it must be 1-250 of A-Z, a-z, 0-9, '_', '\.', '-', not starting with '\.' or '-'$"),
        ("-x", r"not starting with '\.' or '-'$"),
        ("x%2e%2e", r"percent"),
        ("daily\u2024run", r"NFKC"),  # one-dot leader looks like '.'
        ("dаily", r"non-ASCII"),  # Cyrillic 'а'
        ("a" * 251, r"it must be 1-250"),
        ("C:\\x", r"backslash"),
        ("a b", r"whitespace"),
    ],
)
def test_bad_dag_ids_are_rejected(value: str, why: str) -> None:
    with pytest.raises(InvalidNameError, match=r"^invalid dag_id .*" + why):
        validate_dag_id(value)


def test_dag_ids_follow_the_documented_rule() -> None:
    assert validate_dag_id("File.Processing-daily_2") == "File.Processing-daily_2"
    assert validate_dag_id("_x" + "y" * 248) == "_x" + "y" * 248
    assert validate_dag_id("a.b.c") == "a.b.c"


def test_the_dag_id_pattern_itself_refuses_two_dots() -> None:
    # The pattern string also goes into the DAG spec's JSON Schema, so it must carry the '..' rule.
    assert DAG_ID_RE.fullmatch("a..b") is None
    assert DAG_ID_RE.fullmatch("a.b") is not None


def test_release_ids() -> None:
    assert validate_release_id("20261127T042000Z-3f2a9c1d") == "20261127T042000Z-3f2a9c1d"
    for bad in [
        "../20261127T042000Z-3f2a9c1d",
        "20261127T042000Z-3F2A9C1D",
        "latest",
        "r1",
        "20261127T042000Z-3f2a9c1d/..",
    ]:
        with pytest.raises(InvalidNameError, match=r"^invalid release id"):
            validate_release_id(bad)


def test_a_trailing_newline_is_refused_in_every_name() -> None:
    # Patterns are matched with fullmatch (never re.match with '$', which allows a final "\n"), and
    # the screen refuses whitespace first; either way the name is refused.
    with pytest.raises(InvalidNameError, match=r"^invalid env 'dev\\n': it contains whitespace or control characters$"):
        validate_name("env", "dev\n")
    with pytest.raises(InvalidNameError, match=r"^invalid package 'file_processing\\n': it contains whitespace"):
        validate_package("file_processing\n")
    with pytest.raises(InvalidNameError, match=r"^invalid dag_id 'daily\\n': it contains whitespace"):
        validate_dag_id("daily\n")
    with pytest.raises(InvalidNameError, match=r"^invalid release id '20261127T042000Z-3f2a9c1d\\n': it contains"):
        validate_release_id("20261127T042000Z-3f2a9c1d\n")
    for pattern in (NAME_RE, DAG_ID_RE, RELEASE_ID_RE):
        assert pattern.fullmatch("20261127T042000Z-3f2a9c1d\n") is None
        assert pattern.fullmatch("dev\n") is None
