"""S3Client against a real moto server over HTTP: every call the publisher and the sidecar make,
awkward keys, conditional writes, paging, streamed reads (bounded memory, connection reuse, 304),
error kinds, and retries with errors injected by a proxy in front of moto."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import tracemalloc
import uuid
from collections.abc import Iterator

import pytest

from tools.bazel.retrypolicy import RetryPolicy
from tools.bazel.s3http import CHUNK_BYTES, S3Client, S3ConnectionError, S3ResponseError, describe, is_transient
from tools.bazel.s3http.tests.awkward import AWKWARD_KEYS
from tools.testing.s3faults import fault_proxy
from tools.testing.servers import MotoServer, moto_server

FAST = RetryPolicy(retries=2, backoff=0.01, max_delay=0.05)


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with moto_server() as server:
        yield server


@pytest.fixture
def env(moto: MotoServer) -> dict[str, str]:
    return {**moto.env(), "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}


@pytest.fixture
def client(env: dict[str, str]) -> Iterator[S3Client]:
    """A client of a new, empty bucket (created with the client's own signed PUT)."""
    made = S3Client(f"dags-{uuid.uuid4().hex[:12]}", environ=env, retry=FAST)
    made.request("PUT", "")
    yield made
    made.close()


def _boto(moto: MotoServer) -> object:
    return moto.client()


def test_round_trip_with_awkward_keys_agrees_with_boto3(client: S3Client, moto: MotoServer) -> None:
    boto = _boto(moto)
    written = {}
    for n, key in enumerate(AWKWARD_KEYS):
        data = f"payload {n} {key}".encode()
        written[key] = (client.put(key, data, if_none_match=True, content_type="text/plain"), data)
    for key, (etag, data) in written.items():
        assert client.get(key) == (data, etag)
        head = client.head(key)
        assert (head.size, head.etag, head.metadata["sha256"]) == (len(data), etag, hashlib.sha256(data).hexdigest())
        theirs = boto.get_object(Bucket=client.bucket, Key=key)  # type: ignore[attr-defined]
        assert (theirs["Body"].read(), theirs["ETag"].strip('"')) == (data, etag)
    assert [o.key for o in client.iter_objects("dev/")] == sorted(written)
    assert client.list_prefixes("dev/pkg/") == ["dev/pkg/ünïcødé/"]
    src, dst = AWKWARD_KEYS[2], "copies/" + AWKWARD_KEYS[3]
    assert client.copy(src, dst, src_etag=written[src][0]) == written[src][0]
    assert client.head(dst).metadata["sha256"] == hashlib.sha256(written[src][1]).hexdigest()
    for key in [*written, dst]:
        client.delete(key)
    assert list(client.iter_objects("")) == []


def test_conditional_writes_and_error_kinds(client: S3Client) -> None:
    first = client.put("dev/p/a.json", b"1", if_none_match=True)
    with pytest.raises(S3ResponseError) as exists:
        client.put("dev/p/a.json", b"2", if_none_match=True)
    assert exists.value.precondition_failed and not exists.value.retryable
    with pytest.raises(S3ResponseError) as stale:
        client.put("dev/p/a.json", b"2", if_match="0" * 32)
    assert stale.value.precondition_failed
    second = client.put("dev/p/a.json", b"2", if_match=first)
    with pytest.raises(S3ResponseError) as stale_delete:
        client.delete("dev/p/a.json", if_match=first)
    assert stale_delete.value.precondition_failed
    client.delete("dev/p/a.json", if_match=second)
    with pytest.raises(S3ResponseError) as missing:
        client.get("dev/p/a.json")
    assert missing.value.missing and missing.value.code == "NoSuchKey"
    with pytest.raises(S3ResponseError) as missing_head:
        client.head("dev/p/a.json")
    assert missing_head.value.missing and missing_head.value.status == 404
    with pytest.raises(S3ResponseError, match=r"^HTTP 404 NoSuchKey: ") as missing_open:
        client.open("dev/p/a.json")
    assert missing_open.value.missing


def test_a_missing_bucket_is_named(env: dict[str, str]) -> None:
    client = S3Client("no-such-bucket-here", environ=env, retry=FAST)
    with pytest.raises(S3ResponseError) as err:
        client.list_page("dev/")
    assert err.value.no_bucket and not err.value.missing
    assert describe(err.value, bucket="no-such-bucket-here", region="us-east-1") == (
        "bucket 'no-such-bucket-here' does not exist"
    )


def test_listing_pages_with_and_without_delimiter(client: S3Client, moto: MotoServer) -> None:
    keys = [f"dev/p{n}/k {n:02d}+.py" for n in range(7)] + ["dev/p0/metadata.json", "dev/top.json"]
    for key in keys:
        client.put(key, b"x")
    client.max_keys = 3
    mark = moto.mark()
    page = client.list_page("dev/", delimiter="/")
    assert (page.prefixes, [o.key for o in page.objects]) == (["dev/p0/", "dev/p1/", "dev/p2/"], [])
    assert page.next_token
    assert client.list_prefixes("dev/") == [f"dev/p{n}/" for n in range(7)]
    listed = client.list_page("dev/p0/", delimiter="/")
    assert [(o.key, o.size) for o in listed.objects] == [("dev/p0/k 00+.py", 1), ("dev/p0/metadata.json", 1)]
    assert listed.objects[0].etag == hashlib.md5(b"x").hexdigest()  # unquoted
    assert listed.next_token is None
    assert [o.key for o in client.iter_objects("dev/")] == sorted(keys)
    first = next(iter(client.iter_objects("dev/")))  # a page at a time: stopping early stops paging
    assert first.key == "dev/p0/k 00+.py"
    lists = [p for _, p in moto.requests_since(mark)]
    assert len(lists) == 1 + 3 + 1 + 3 + 1, lists
    assert sum("continuation-token=" in p for p in lists) == 2 + 2


def test_streamed_reads_use_bounded_memory_and_reuse_the_connection(client: S3Client) -> None:
    data = os.urandom(8 * 1024 * 1024)
    etag = client.put("dev/p/releases/r.tar", data)
    client.close()
    tracemalloc.start()
    try:
        digest, size, biggest = hashlib.sha256(), 0, 0
        with client.open("dev/p/releases/r.tar") as body:  # type: ignore[union-attr]
            assert (body.status, body.length, body.etag) == (200, len(data), etag)
            for chunk in body.iter_chunks():
                digest.update(chunk)
                size += len(chunk)
                biggest = max(biggest, len(chunk))
            assert body.done
            keep_alive = not body._resp.will_close
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (size, digest.hexdigest()) == (len(data), hashlib.sha256(data).hexdigest())
    assert biggest <= CHUNK_BYTES
    assert peak < 1024 * 1024, f"peak {peak} bytes while streaming 8 MiB"
    # read to the end: the connection went back to the pool, unless the server said it closes it
    assert len(client._pool._idle) == (1 if keep_alive else 0)
    body = client.open("dev/p/releases/r.tar")
    assert body is not None and len(client._pool._idle) == 0
    assert body.read(10) == data[:10]
    body.close()  # 8 MiB unread: the connection is dropped, not reused
    assert len(client._pool._idle) == 0
    assert client.get("dev/p/releases/r.tar")[0] == data  # and the next request is fine


def test_if_none_match_gives_none_on_304(client: S3Client) -> None:
    etag = client.put("dev/p/metadata.json", b'{"a": 1}')
    client.close()
    assert client.open("dev/p/metadata.json", if_none_match=etag) is None
    assert len(client._pool._idle) <= 1  # a 304 has no body: nothing left unread on the connection
    with client.open("dev/p/metadata.json", if_none_match="0" * 32) as body:  # type: ignore[union-attr]
        assert (body.read(), body.etag) == (b'{"a": 1}', etag)


def test_retries_on_throttling_and_5xx_and_none_when_the_caller_retries(
    client: S3Client, moto: MotoServer, env: dict[str, str]
) -> None:
    client.put("dev/p/a.py", b"a")
    with fault_proxy(moto) as (endpoint, faults):
        proxied = {**env, "AWS_ENDPOINT_URL": endpoint}
        retrying = S3Client(client.bucket, environ=proxied, retry=FAST)
        faults.add("/dev/p/a.py", 503, "SlowDown", 2)
        assert retrying.get("dev/p/a.py")[0] == b"a"
        assert sum("/dev/p/a.py" in p for p in faults.seen) == 3
        faults.add("/dev/p/a.py", 500, "InternalError", 1)
        with retrying.open("dev/p/a.py") as body:  # type: ignore[union-attr]
            assert body.read() == b"a"
        assert len(retrying._pool._idle) == 1  # the proxy keeps connections alive: read whole, kept for reuse
        partial = retrying.open("dev/p/a.py")
        assert partial is not None and len(retrying._pool._idle) == 0
        partial.close()  # closed before its last byte: dropped, never reused
        assert len(retrying._pool._idle) == 0
        faults.add("/dev/p/a.py", 400, "InvalidArgument", 1)
        with pytest.raises(S3ResponseError, match=r"^HTTP 400 InvalidArgument: injected$") as bad:
            retrying.get("dev/p/a.py")
        assert not bad.value.retryable and not is_transient(bad.value)
        assert is_transient(ConnectionResetError()) and is_transient(TimeoutError())
        assert not is_transient(OSError(28, "No space left on device"))  # the disk, while streaming
        # the sidecar's way: no retries in the client, the error says whether to retry
        once = S3Client(client.bucket, environ=proxied, retry=RetryPolicy(retries=0))
        before = len(faults.seen)
        faults.add("/dev/p/a.py", 503, "SlowDown", 1)
        with pytest.raises(S3ResponseError) as throttled:
            once.open("dev/p/a.py")
        assert throttled.value.retryable and is_transient(throttled.value)
        assert len(faults.seen) - before == 1
        faults.add("/dev/p/d.py", 301, "PermanentRedirect", 1, {"x-amz-bucket-region": "eu-west-2"})
        with pytest.raises(S3ResponseError) as moved:
            once.get("dev/p/d.py")
        assert describe(moved.value, bucket="b", region="us-east-1") == (
            "bucket 'b' is in region 'eu-west-2', not 'us-east-1'; set AWS_REGION=eu-west-2"
        )
    with pytest.raises(S3ConnectionError, match=r"^ConnectionRefusedError: .*\(after 3 attempts to http://127"):
        S3Client(client.bucket, environ=proxied, retry=FAST).get("dev/p/a.py")


def test_a_client_with_env_credentials_imports_neither_botocore_nor_urllib3(
    client: S3Client, env: dict[str, str]
) -> None:
    child = textwrap.dedent(f"""
        import sys
        from tools.bazel.s3http import S3Client
        c = S3Client({client.bucket!r})
        c.put("x y.py", b"data")
        with c.open("x y.py") as body:
            assert body.read() == b"data"
        assert [o.key for o in c.iter_objects("")] == ["x y.py"]
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("botocore", "boto3", "urllib3")))
    """)
    run_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run(
        [sys.executable, "-c", child], check=False, env=run_env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
