"""PackageDagBundle against a real moto S3 server; every release is written by the real publisher
(images built by ocitool and pushed to Debian's docker-registry). Request counts come from moto's log.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="airflow-home-"))  # before Airflow is imported
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

import boto3
from etl_dag_bundle import ReleaseUnavailableError, bundle_config_json
from etl_dag_bundle.errors import BundleConfigError

from tools.testing import dagstore
from tools.testing.registry import registry_server
from tools.testing.servers import MotoServer, moto_server

ENV = "dev"
PKG = "orders"


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with moto_server(log_dir=tmp_path_factory.mktemp("moto")) as server:
        os.environ.update(server.env())
        yield server


@pytest.fixture(scope="module")
def registry_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with registry_server(work_dir=tmp_path_factory.mktemp("registry")) as server:
        yield server.host


class Store:
    """One bucket on the module's moto server, published to by the real publisher."""

    def __init__(self, moto: MotoServer, registry_host: str, work: Path) -> None:
        self.moto = moto
        self.bucket = f"dags-{uuid.uuid4().hex[:10]}"
        self.url = f"s3://{self.bucket}"
        self.registry_host = registry_host
        self.work = work
        boto3.client("s3").create_bucket(Bucket=self.bucket)

    def publish(self, label: str, dags: dict[str, str]) -> tuple[str, dict[str, bytes]]:
        """Publish ``dags`` (dag_id -> marker) with a new image; (release id, dag file name -> bytes)."""
        out = self.work / f"build-{label}"
        digest = dagstore.small_image(out / "image", label=label)
        repository = f"{self.registry_host}/etl/{PKG}"
        files = {
            d: dagstore.synthetic_dag(PKG, d, f"{repository}@{digest}") + f"# {m}\n".encode() for d, m in dags.items()
        }
        dagstore.build_output(out, PKG, files, repository=repository, image_layout=out / "image", digest=digest)
        result = dagstore.publish(out, PKG, store_url=self.url, env=ENV)
        assert result.outcome == "published", result
        return str(result.release_id), {f"{d}.py": data for d, data in files.items()}

    def mark(self) -> int:
        return self.moto.mark()

    def requests_since(self, mark: int) -> list[tuple[str, str]]:
        prefix = f"/{self.bucket}"
        return [(m, p) for m, p in self.moto.requests_since(mark) if p.startswith((prefix + "/", prefix + "?"))]


@pytest.fixture()
def store(moto: MotoServer, registry_host: str, tmp_path: Path) -> Store:
    return Store(moto, registry_host, tmp_path / "builds")


@pytest.fixture()
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "dag_bundles"
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(path))
    return path


def bundle(store: Store, version: str | None = None, **kwargs: object):
    from etl_dag_bundle.bundle import PackageDagBundle

    return PackageDagBundle(name=PKG, dag_bucket=store.url, env=ENV, version=version, **kwargs)


def files_at(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.glob("*.py"))}


def test_first_refresh_takes_the_release_whole_and_a_noop_refresh_is_one_request(store: Store, storage: Path) -> None:
    first, files = store.publish("v1", {"orders_daily": "a", "orders_hourly": "b", "orders_weekly": "c"})
    tracking = bundle(store)
    mark = store.mark()
    tracking.initialize()
    assert files_at(tracking.path) == files
    assert tracking.get_current_version().version == first
    keys = [p.split("?")[0].split(f"/{store.bucket}/", 1)[1] for _, p in store.requests_since(mark)]
    assert keys == [f"{ENV}/{PKG}/metadata.json", f"{ENV}/{PKG}/releases/{first}.tar"]

    mark = store.mark()
    tracking.refresh()
    assert store.requests_since(mark) == [("GET", f"/{store.bucket}/{ENV}/{PKG}/metadata.json")]
    assert tracking.get_current_version().version == first

    # a new process (a restarted dag-processor): one conditional GET too, after re-hashing the files
    mark = store.mark()
    bundle(store).refresh()
    assert len(store.requests_since(mark)) == 1


def test_a_publish_switches_the_tracking_path_and_old_versions_come_from_their_bundle(
    store: Store, storage: Path
) -> None:
    first, old_files = store.publish("v1", {"orders_daily": "a", "orders_hourly": "b"})
    tracking = bundle(store)
    tracking.initialize()
    old_dir = tracking.path.resolve()
    second, new_files = store.publish("v2", {"orders_daily": "a2", "orders_hourly": "b"})
    assert second != first and new_files != old_files
    tracking.refresh()
    assert tracking.get_current_version().version == second
    assert files_at(tracking.path) == new_files
    assert files_at(old_dir) == old_files  # readers of the old folder keep it for the grace period
    version = tracking.get_current_version()
    assert version.data["image"].endswith("@" + new_files["orders_daily.py"].decode().split("@")[1].split("'")[0])

    pinned = bundle(store, version=first)
    mark = store.mark()
    pinned.initialize()
    assert pinned.path == storage / PKG / "versions" / first
    assert files_at(pinned.path) == old_files
    keys = sorted(p.split(f"/{store.bucket}/", 1)[1] for _, p in store.requests_since(mark))
    assert keys == [f"{ENV}/{PKG}/releases/{first}.json", f"{ENV}/{PKG}/releases/{first}.tar"]

    mark = store.mark()
    again = bundle(store, version=first)  # a second task of the same run: already on disk
    again.initialize()
    assert files_at(again.path) == old_files and store.requests_since(mark) == []

    mark = store.mark()
    current = bundle(store, version=second)  # the current release: linked from the tracking folder
    current.initialize()
    assert files_at(current.path) == new_files and store.requests_since(mark) == []
    assert (current.path / "orders_hourly.py").stat().st_ino == (tracking.path / "orders_hourly.py").stat().st_ino


def test_a_rollback_is_a_new_version_with_the_old_files(store: Store, storage: Path) -> None:
    first, old_files = store.publish("v1", {"orders_daily": "a"})
    store.publish("v2", {"orders_daily": "a2"})
    tracking = bundle(store)
    tracking.initialize()
    rolled = dagstore.rollback(first, PKG, store_url=store.url, env=ENV)
    tracking.refresh()
    version = tracking.get_current_version()
    assert version.version == rolled.release_id != first
    assert version.data["rollback_of"] == first
    assert files_at(tracking.path) == old_files


def test_a_tampered_bundle_is_refused_and_nothing_is_left_half_written(store: Store, storage: Path) -> None:
    first, _ = store.publish("v1", {"orders_daily": "a", "orders_hourly": "b"})
    store.publish("v2", {"orders_daily": "a2", "orders_hourly": "b2"})
    key = f"{ENV}/{PKG}/releases/{first}.tar"
    s3 = boto3.client("s3")
    data = bytearray(s3.get_object(Bucket=store.bucket, Key=key)["Body"].read())
    at = data.index(b"# a\n")
    data[at + 2 : at + 3] = b"X"  # same size, other bytes: the member's sha256 no longer matches
    s3.put_object(Bucket=store.bucket, Key=key, Body=bytes(data))
    pinned = bundle(store, version=first)
    with pytest.raises(
        ReleaseUnavailableError,
        match=rf"release '{first}' of package 'orders' cannot be verified: "
        rf"'s3://{store.bucket}/{key}': member 'dags/orders_daily.py' has sha256 [0-9a-f]{{64}}, "
        r"metadata.json says [0-9a-f]{64}; republish or roll back the package",
    ):
        pinned.initialize()
    assert not pinned.path.exists()
    assert [p.name for p in (storage / PKG / "staging").iterdir()] == []


def test_a_version_that_was_never_published_fails_in_one_line(store: Store, storage: Path) -> None:
    store.publish("v1", {"orders_daily": "a"})
    missing = "20990101T000000Z-deadbeef"
    with pytest.raises(
        ReleaseUnavailableError,
        match=rf"'s3://{store.bucket}/{ENV}/{PKG}/releases/{missing}.json' "
        rf"does not exist: release '{missing}' was never published for package 'orders'",
    ):
        bundle(store, version=missing).initialize()


def test_an_unpublished_package_says_how_to_publish_it(store: Store, storage: Path) -> None:
    with pytest.raises(
        ReleaseUnavailableError,
        match=rf"'s3://{store.bucket}/{ENV}/{PKG}/metadata.json' does not "
        rf"exist; publish the package \(bazel run //packages/{PKG}:publish\)",
    ):
        bundle(store).initialize()


def test_bad_configuration_is_one_line_naming_the_value(store: Store, storage: Path) -> None:
    from etl_dag_bundle.bundle import PackageDagBundle

    with pytest.raises(BundleConfigError, match=r"dag bundle 'orders': invalid flag: dag_bucket='gs://x'"):
        PackageDagBundle(name=PKG, dag_bucket="gs://x", env=ENV)
    with pytest.raises(BundleConfigError, match=r"invalid dag bundle 'orders': env 'Prod'"):
        PackageDagBundle(name=PKG, dag_bucket=store.url, env="Prod")
    with pytest.raises(BundleConfigError, match=r"version '../x' is not a release id"):
        PackageDagBundle(name=PKG, dag_bucket=store.url, env=ENV, version="../x")
    with pytest.raises(BundleConfigError, match=r"is pinned to version .* never refreshed"):
        bundle(store, version="20990101T000000Z-deadbeef").refresh()


def test_airflows_bundle_manager_reads_the_configuration(
    store: Store, storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, files = store.publish("v1", {"orders_daily": "a"})
    monkeypatch.setenv(
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
        bundle_config_json(dag_bucket=store.url, env=ENV, packages=[PKG]),
    )
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    manager = DagBundlesManager()
    assert list(manager.get_all_bundle_names()) == [PKG]
    # what the task runner does with a run's bundle_version
    pinned = manager.get_bundle(name=PKG, version=first)
    assert pinned.supports_versioning
    pinned.initialize()
    assert files_at(pinned.path) == files


def test_a_decommissioned_package_is_an_empty_version_and_a_new_publish_brings_it_back(
    store: Store, storage: Path
) -> None:
    from tools.bazel.publisher import open_store
    from tools.bazel.publisher.publish import decommission_package

    first, files = store.publish("v1", {"orders_daily": "a"})
    tracking = bundle(store)
    tracking.initialize()
    decommission_package(store=open_store(store.url), env=ENV, package=PKG, allow_mass_delete=True)
    tracking.refresh()
    assert tracking.get_current_version().version == f"{first}.removed"
    assert files_at(tracking.path) == {}  # Airflow deactivates the package's DAGs
    pinned = bundle(store, version=first)  # runs started before keep their release
    pinned.initialize()
    assert files_at(pinned.path) == files
    second, new_files = store.publish("v2", {"orders_daily": "b"})
    tracking.refresh()
    assert tracking.get_current_version().version == second and files_at(tracking.path) == new_files
