"""Keys: built from checked names only, under the package's prefix."""

from __future__ import annotations

import pytest

from tools.bazel.storecontract import (
    InvalidNameError,
    PackageKeys,
    bundle_file,
    dag_file,
    env_prefix,
    package_metadata_key,
)

RELEASE = "20261127T042000Z-3f2a9c1d"


def test_keys_are_built_under_the_prefix() -> None:
    keys = PackageKeys(env="dev", package="file_processing")
    assert keys.prefix == "dev/file_processing/"
    assert keys.metadata == "dev/file_processing/metadata.json"
    assert keys.removed_marker == "dev/file_processing/REMOVED"
    assert keys.dag("x.y") == "dev/file_processing/dags/x.y.py"
    assert keys.release_bundle(RELEASE) == f"dev/file_processing/releases/{RELEASE}.tar"
    assert keys.release_metadata(RELEASE) == f"dev/file_processing/releases/{RELEASE}.json"
    assert bundle_file(RELEASE) == f"releases/{RELEASE}.tar"
    assert dag_file("x") == "dags/x.py"
    assert env_prefix("dev") == "dev/"
    assert package_metadata_key("dev", "data_pipeline") == "dev/data_pipeline/metadata.json"


def test_keys_parsed_back_are_checked() -> None:
    keys = PackageKeys(env="dev", package="file_processing")
    assert keys.release_id_of_metadata_key(f"dev/file_processing/releases/{RELEASE}.json") == RELEASE
    assert keys.release_id_of_metadata_key(f"dev/file_processing/releases/{RELEASE}.tar") is None
    assert keys.release_id_of_metadata_key("dev/file_processing/releases/x/../y.json") is None
    assert keys.release_id_of_metadata_key("dev/file_processing/releases/r1.json") is None
    assert keys.dag_id_of_live_key("dev/file_processing/dags/x.py") == "x"
    assert keys.dag_id_of_live_key("dev/file_processing/dags/sub/x.py") is None
    assert keys.dag_id_of_live_key("dev/file_processing/dags/README") is None


@pytest.mark.parametrize(("env", "package"), [("..", "x"), ("dev", "../prod"), ("dev", "x/"), ("dev\n", "x")])
def test_bad_names_build_no_keys(env: str, package: str) -> None:
    with pytest.raises(InvalidNameError, match=r"^invalid (env|package) "):
        PackageKeys(env=env, package=package)
    with pytest.raises(InvalidNameError):
        package_metadata_key(env, package)


@pytest.mark.parametrize("release_id", ["..", "r1", f"{RELEASE}/../x"])
def test_bad_release_ids_build_no_keys(release_id: str) -> None:
    keys = PackageKeys(env="dev", package="file_processing")
    with pytest.raises(InvalidNameError, match=r"^invalid release id "):
        keys.release_bundle(release_id)
    with pytest.raises(InvalidNameError, match=r"^invalid release id "):
        keys.release_metadata(release_id)


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
def test_keys_outside_the_prefix_are_not_owned(key: str) -> None:
    assert not PackageKeys(env="dev", package="file_processing").owns(key)


def test_own_keys_are_owned() -> None:
    keys = PackageKeys(env="dev", package="file_processing")
    for key in (keys.metadata, keys.dag("x"), keys.release_bundle(RELEASE), keys.removed_marker):
        assert keys.owns(key)


def test_patterns_take_placeholders_as_they_are() -> None:
    keys = PackageKeys.pattern("${ENV}", "*")
    assert keys.prefix == "${ENV}/*/"
    assert keys.env_prefix == "${ENV}/"
    assert keys.metadata == "${ENV}/*/metadata.json"
