"""The store readers against a real moto server and a folder: conditional GETs, limits, errors."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

from sidecar.errors import ObjectNotFoundError, OversizedObjectError, StoppingError, StoreError
from sidecar.store import S3Store, Store, open_store, parse_store_url
from sidecar.tests.storekit import S3Kit, StoreKit, dag_source, kit, moto
from tools.bazel.retrypolicy import RetryPolicy, call_with_retry
from tools.testing.servers import free_port

__all__ = ["kit", "moto"]

FAST = RetryPolicy(retries=2, backoff=0.01)


def open_kit_store(kit: StoreKit) -> Store:
    return open_store(parse_store_url(kit.url), policy=FAST, timeout=5, max_connections=4)


def test_listing_entry_and_conditional_get(kit: StoreKit) -> None:
    doc = kit.publish("alpha", {"d1": dag_source("d1", "r1")})
    kit.publish("beta", {"b1": dag_source("b1", "r1")})
    kit.decommission("beta")
    store = open_kit_store(kit)
    assert store.list_packages("dev") == ["alpha", "beta"]
    assert store.list_packages("prod") == []
    alpha = store.package_entry("dev", "alpha")
    assert alpha.metadata_etag and not alpha.removed
    assert store.package_entry("dev", "beta").removed
    assert store.package_entry("dev", "nothing").metadata_etag is None
    got = store.get_metadata("dev", "alpha", if_none_match=None, max_bytes=1 << 20)
    assert got is not None and got.etag == alpha.metadata_etag
    assert b'"schema_version": 1' in got.data
    mark = kit.server.mark() if isinstance(kit, S3Kit) else 0
    assert store.get_metadata("dev", "alpha", if_none_match=got.etag, max_bytes=1 << 20) is None
    if isinstance(kit, S3Kit):
        assert kit.server.requests_since(mark) == [("GET", "/" + kit.bucket + "/dev/alpha/metadata.json")]
    with pytest.raises(
        OversizedObjectError, match=r"/dev/alpha/metadata.json' is .*more than the 10 .*allowed for metadata.json"
    ):
        store.get_metadata("dev", "alpha", if_none_match=None, max_bytes=10)
    assert doc["package"] == "alpha"


def test_download_streams_hashes_and_limits(kit: StoreKit, tmp_path: Path) -> None:
    data = dag_source("d1", "r1", pad=3000)
    kit.publish("alpha", {"d1": data})
    store = open_kit_store(kit)
    got = store.download("dev/alpha/dags/d1.py", tmp_path / "d1.py", max_bytes=1 << 20)
    assert (got.size, got.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (tmp_path / "d1.py").read_bytes() == data
    with pytest.raises(OversizedObjectError, match=r"dev/alpha/dags/d1.py' .*larger than --max-file-bytes=100"):
        store.download("dev/alpha/dags/d1.py", tmp_path / "d1b.py", max_bytes=100)
    with pytest.raises(ObjectNotFoundError, match=r"dev/alpha/dags/nope.py' does not exist"):
        store.download("dev/alpha/dags/nope.py", tmp_path / "nope.py", max_bytes=100)


def test_missing_bucket_and_unreachable_endpoint(kit: StoreKit, monkeypatch: pytest.MonkeyPatch) -> None:
    if not isinstance(kit, S3Kit):
        store = open_store(parse_store_url("file:///nonexistent/store"), policy=FAST)
        with pytest.raises(StoreError, match=r"store folder '/nonexistent/store' does not exist"):
            store.list_packages("dev")
        return
    store = open_store(parse_store_url("s3://no-such-bucket"), policy=FAST)
    with pytest.raises(
        StoreError, match=r"bucket 'no-such-bucket' does not exist \(reading 's3://no-such-bucket/dev/'\)"
    ):
        store.list_packages("dev")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    retries: list[int] = []
    store = S3Store(
        parse_store_url(kit.url),
        policy=FAST,
        timeout=2,
        max_connections=2,
        on_retry=lambda what, n, delay, exc: retries.append(n),
    )
    with pytest.raises(StoreError, match=r"cannot reach the store reading 's3://.*/dev/'.*check AWS_ENDPOINT_URL"):
        store.list_packages("dev")
    assert retries == [1, 2]


def test_retry_policy() -> None:
    calls: list[int] = []
    slept: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("reset")
        return "ok"

    policy = RetryPolicy(retries=3, backoff=1.0, max_delay=1.5)
    assert call_with_retry(flaky, policy=policy, is_retryable=lambda e: True, sleep=slept.append) == "ok"
    assert len(calls) == 3 and 0.5 <= slept[0] <= 1.0 and 0.75 <= slept[1] <= 1.5
    with pytest.raises(ValueError, match="permanent"):
        call_with_retry(
            lambda: (_ for _ in ()).throw(ValueError("permanent")),
            policy=policy,
            is_retryable=lambda e: not isinstance(e, ValueError),
            sleep=slept.append,
        )
    assert len(slept) == 2


def test_stop_event_ends_a_retry_wait_and_stops_new_requests(kit: StoreKit) -> None:
    stop = threading.Event()
    calls: list[int] = []

    def refused() -> str:
        calls.append(1)
        threading.Timer(0.1, stop.set).start()  # while the first 10-20 s backoff runs
        raise ConnectionRefusedError("refused")

    policy = RetryPolicy(retries=4, backoff=20.0, max_delay=20.0)
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError, match="refused"):
        call_with_retry(refused, policy=policy, is_retryable=lambda e: True, stop=stop)
    assert len(calls) == 1
    assert time.monotonic() - started < 10, "the backoff was sat out (at least 10 s)"

    if isinstance(kit, S3Kit):
        mark = kit.server.mark()
    store = open_store(parse_store_url(kit.url), policy=FAST, timeout=5, max_connections=2, stop=stop)
    with pytest.raises(StoppingError, match=r"^stopping: not reading '.*/dev/alpha/metadata.json' \(get metadata\)$"):
        store.get_metadata("dev", "alpha", if_none_match=None, max_bytes=1 << 20)
    if isinstance(kit, S3Kit):
        assert kit.server.requests_since(mark) == []
