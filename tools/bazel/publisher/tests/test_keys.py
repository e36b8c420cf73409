"""Key construction: names are screened, then matched in full; writes stay in the prefix."""

from __future__ import annotations

import pytest

from publisher.errors import InvalidNameError, OutsidePrefixError
from publisher.keys import (
    DAG_ID_RE,
    NAME_RE,
    RELEASE_ID_RE,
    PackageKeys,
    validate_dag_id,
    validate_name,
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
    ("Prod", r"must match \^\[a-z\]"),
    ("dev\n", r"whitespace or control characters"),
    ("a" * 64, r"must match"),
    ("-dev", r"must match"),
]


@pytest.mark.parametrize(("value", "why"), BAD_NAMES)
def test_bad_env_and_package_names_are_rejected(value: str, why: str) -> None:
    with pytest.raises(InvalidNameError, match=r"invalid env .*" + why):
        validate_name("env", value)
    with pytest.raises(InvalidNameError, match=r"invalid (env|package)"):
        PackageKeys(env="dev", package=value)


@pytest.mark.parametrize("value", ["dev", "prod-eu", "a", "file_processing", "a" * 63])
def test_good_names_pass(value: str) -> None:
    assert validate_name("package", value) == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("../../prod/other/dags/x", r"'/'"),
        ("..", r"'\.\.'"),
        ("a..b", r"'\.\.'"),
        (".hidden", r"must match"),
        ("x%2e%2e", r"percent"),
        ("daily\u2024run", r"NFKC"),  # one-dot leader looks like '.'
        ("dаily", r"non-ASCII"),  # Cyrillic 'а'
        ("a" * 251, r"must match"),
        ("C:\\x", r"backslash"),
    ],
)
def test_bad_dag_ids_are_rejected(value: str, why: str) -> None:
    with pytest.raises(InvalidNameError, match=r"invalid dag_id .*" + why):
        validate_dag_id(value)


def test_dag_ids_follow_the_documented_rule() -> None:
    assert validate_dag_id("File.Processing-daily_2") == "File.Processing-daily_2"
    assert validate_dag_id("_x" + "y" * 248) == "_x" + "y" * 248


def test_release_ids() -> None:
    assert validate_release_id("20261127T042000Z-3f2a9c1d") == "20261127T042000Z-3f2a9c1d"
    for bad in ["../20261127T042000Z-3f2a9c1d", "20261127T042000Z-3F2A9C1D", "latest", "20261127T042000Z-3f2a9c1d/.."]:
        with pytest.raises(InvalidNameError, match="invalid release id"):
            validate_release_id(bad)


def test_keys_are_built_under_the_prefix() -> None:
    keys = PackageKeys(env="dev", package="file_processing")
    assert keys.metadata == "dev/file_processing/metadata.json"
    assert keys.dag("x.y") == "dev/file_processing/dags/x.y.py"
    assert keys.release_bundle("20261127T042000Z-3f2a9c1d") == (
        "dev/file_processing/releases/20261127T042000Z-3f2a9c1d.tar"
    )
    assert keys.release_metadata("20261127T042000Z-3f2a9c1d") == (
        "dev/file_processing/releases/20261127T042000Z-3f2a9c1d.json"
    )
    assert PackageKeys.bundle_file("20261127T042000Z-3f2a9c1d") == "releases/20261127T042000Z-3f2a9c1d.tar"
    assert keys.release_id_of_metadata_key(
        "dev/file_processing/releases/20261127T042000Z-3f2a9c1d.json") == "20261127T042000Z-3f2a9c1d"
    assert keys.release_id_of_metadata_key("dev/file_processing/releases/20261127T042000Z-3f2a9c1d.tar") is None
    assert keys.release_id_of_metadata_key("dev/file_processing/releases/x/../y.json") is None
    assert keys.dag_id_of_live_key("dev/file_processing/dags/x.py") == "x"
    assert keys.dag_id_of_live_key("dev/file_processing/dags/sub/x.py") is None
    assert keys.dag_id_of_live_key("dev/file_processing/dags/README") is None


@pytest.mark.parametrize(
    "key",
    [
        "dev/data_pipeline/metadata.json",
        "dev/file_processing",
        "dev/file_processing/",
        "dev/file_processing/../data_pipeline/metadata.json",
        "dev/file_processing/dags/%2e%2e/x.py",
        "dev/file_processing//x",
        "prod/file_processing/metadata.json",
        "dev/file_processing_other/metadata.json",
    ],
)
def test_writes_outside_the_prefix_are_refused(key: str) -> None:
    keys = PackageKeys(env="dev", package="file_processing")
    with pytest.raises(OutsidePrefixError, match=r"may only write under 'dev/file_processing/'"):
        keys.check_writable(key)


def test_a_trailing_newline_is_refused_in_every_name() -> None:
    # Patterns are matched with fullmatch (never re.match with '$', which allows a final "\n"), and
    # the screen refuses whitespace first; either way the name is refused.
    with pytest.raises(InvalidNameError, match=r"^invalid env 'dev\\n': it contains whitespace or control characters$"):
        validate_name("env", "dev\n")
    with pytest.raises(InvalidNameError, match=r"^invalid package 'file_processing\\n': it contains whitespace"):
        validate_name("package", "file_processing\n")
    with pytest.raises(InvalidNameError, match=r"^invalid dag_id 'daily\\n': it contains whitespace"):
        validate_dag_id("daily\n")
    with pytest.raises(InvalidNameError, match=r"^invalid release id '20261127T042000Z-3f2a9c1d\\n': it contains"):
        validate_release_id("20261127T042000Z-3f2a9c1d\n")
    for pattern in (NAME_RE, DAG_ID_RE, RELEASE_ID_RE):
        assert pattern.fullmatch("20261127T042000Z-3f2a9c1d\n") is None
