"""The sidecar's S3 store (on the platform's client, s3http) against real moto servers: SigV4 checked by moto's IAM auth,
paging, and error statuses injected by a small HTTP proxy in front of moto."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from sidecar.errors import ObjectNotFoundError, StoreError
from sidecar.store import S3Store, parse_store_url
from sidecar.tests.storekit import S3Kit, dag_source, local_files, moto, running_syncer
from tools.bazel.retrypolicy import RetryPolicy
from tools.bazel.s3http import S3Client
from tools.bazel.s3http.settings import configured_endpoint
from tools.testing.s3faults import fault_proxy
from tools.testing.servers import MotoServer, create_iam_users, iam_requests, moto_server

__all__ = ["moto"]

FAST = RetryPolicy(retries=2, backoff=0.01)
ALLOW_READ = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}],
}
ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


def _use_key(monkeypatch: pytest.MonkeyPatch, endpoint: str, key: tuple[str, str]) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key[1])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)


def test_moto_with_iam_auth_accepts_our_signatures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto checks SigV4 and IAM policies after its first N requests: a reader key syncs, a key
    without a policy and a wrong secret are refused with one clear line each."""
    users = {"admin": ALLOW_ALL, "reader": ALLOW_READ, "nobody": None}
    with moto_server(log_dir=tmp_path, unchecked_requests=iam_requests(users)) as server:
        keys = create_iam_users(server, users)
        kit = S3Kit(server, "dags-auth", key=keys["admin"])  # from here on, every request is checked
        files = {f"d{i:02d}": dag_source(f"d{i:02d}", "r1") for i in range(12)}
        kit.publish("alpha", files)
        kit.publish("beta", {"b1": dag_source("b1", "r1")})

        _use_key(monkeypatch, server.endpoint_url, keys["reader"])
        dags = tmp_path / "dags"
        with running_syncer(kit, dags) as syncer:
            assert syncer.run_cycle().outcomes == {"alpha": "switched", "beta": "switched"}
            assert local_files(dags, "alpha") == files
            assert syncer.run_cycle().outcomes == {"alpha": "noop", "beta": "noop"}
            store = syncer.store
            entry = store.package_entry("dev", "alpha")
            assert store.get_metadata("dev", "alpha", if_none_match=entry.metadata_etag, max_bytes=1 << 20) is None
            assert store.download("dev/alpha/dags/d01.py", tmp_path / "x.py", max_bytes=1 << 20).size > 0

        _use_key(monkeypatch, server.endpoint_url, keys["nobody"])
        store = S3Store(parse_store_url(kit.url), policy=FAST, timeout=5, max_connections=2)
        with pytest.raises(StoreError, match=r"access denied reading 's3://dags-auth/dev/' \(HTTP 403 AccessDenied"):
            store.list_packages("dev")
        _use_key(monkeypatch, server.endpoint_url, (keys["reader"][0], "wrong-secret"))
        store = S3Store(parse_store_url(kit.url), policy=FAST, timeout=5, max_connections=2)
        with pytest.raises(StoreError, match=r"access denied reading .*SignatureDoesNotMatch"):
            store.get_metadata("dev", "alpha", if_none_match=None, max_bytes=1 << 20)


def test_listing_pages_are_followed(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    kit = S3Kit(moto, "dags-pages")
    for pkg in ("p1", "p2", "p3", "p4", "p5"):
        kit.publish(pkg, {f"{pkg}_d": dag_source(f"{pkg}_d", "r1")})
    store = S3Store(parse_store_url(kit.url), policy=FAST, timeout=5, max_connections=2)
    store._client.max_keys = 2
    mark = moto.mark()
    assert store.list_packages("dev") == ["p1", "p2", "p3", "p4", "p5"]
    lists = [path for _, path in moto.requests_since(mark)]
    assert len(lists) == 3 and sum("continuation-token=" in p for p in lists) == 2
    entry = store.package_entry("dev", "p3")  # dags/ and releases/ are prefixes, metadata.json an object
    assert entry.metadata_etag and not entry.removed


def test_endpoint_and_region_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert configured_endpoint(os.environ) is None
    client = S3Client("my-dags", max_connections=1)
    assert client.url("dev/a b.py") == "https://my-dags.s3.us-east-1.amazonaws.com/dev/a%20b.py"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert S3Client("dotted.bucket", max_connections=1).endpoint == (
        "https://s3.eu-west-1.amazonaws.com/dotted.bucket/"
    )
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio:9000")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://s3-only:9000/")
    client = S3Client("my-dags", max_connections=1)
    assert (client.endpoint, client.region) == ("http://s3-only:9000/my-dags/", "eu-central-1")
    assert client.url("", {"prefix": "dev/", "list-type": "2"}) == (
        "http://s3-only:9000/my-dags/?list-type=2&prefix=dev%2F"
    )
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert configured_endpoint(os.environ) is None


def test_error_statuses_map_to_retries_and_clear_errors(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    kit = S3Kit(moto, "dags-faults")
    doc = kit.publish("alpha", {"d1": dag_source("d1", "r1")})
    with fault_proxy(moto) as (endpoint, faults):
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        retries: list[str] = []
        store = S3Store(
            parse_store_url(kit.url),
            policy=FAST,
            timeout=5,
            max_connections=2,
            on_retry=lambda what, n, delay, exc: retries.append(f"{what}: {exc}"),
        )
        faults.add("/metadata.json", 503, "SlowDown", 2)  # two throttles, then it answers
        got = store.get_metadata("dev", "alpha", if_none_match=None, max_bytes=1 << 20)
        assert got is not None and b'"package": "alpha"' in got.data
        assert retries == ["get metadata: HTTP 503 SlowDown: injected"] * 2
        retries.clear()
        faults.add("list-type=2", 500, "InternalError", 3)  # more than the 2 retries
        with pytest.raises(StoreError, match=r"cannot read 's3://dags-faults/dev/': HTTP 500 InternalError"):
            store.list_packages("dev")
        assert len(retries) == 2
        retries.clear()
        faults.add("/dags/d1.py", 403, "AccessDenied", 1)  # not retried
        with pytest.raises(StoreError, match=r"access denied reading 's3://dags-faults/dev/alpha/dags/d1.py'"):
            store.download("dev/alpha/dags/d1.py", Path("/dev/null"), max_bytes=1 << 20)
        with pytest.raises(ObjectNotFoundError, match=r"dev/alpha/dags/nope.py' does not exist"):
            store.download("dev/alpha/dags/nope.py", Path("/dev/null"), max_bytes=1 << 20)
        assert retries == []
        # the connections are still good after the errors
        with store.open_read(f"dev/alpha/releases/{doc['release']['id']}.tar", max_bytes=1 << 20) as src:
            assert len(io.BytesIO(src.read(1 << 20)).getvalue()) > 512
        assert store.list_packages("dev") == ["alpha"]
