"""S3 helpers against a real moto server over HTTP: hashes, multipart, pagination, copy, errors."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from etl_core.s3 import (
    MIN_PART_SIZE,
    S3,
    BucketNotFound,
    HashMismatch,
    InvalidS3Url,
    MissingHash,
    NotFound,
    S3ConfigError,
    S3Unavailable,
    S3Url,
    endpoint_url_from_env,
    is_transient,
    make_client,
    parse_s3_url,
)
from tools.bazel.retrypolicy import RetryPolicy, call_with_retry
from tools.testing.servers import MotoServer, free_port, moto_server

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with pytest.MonkeyPatch.context() as mp:
        # Credentials for moto; never reach out to the EC2 metadata service or a user's ~/.aws.
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }.items():
            mp.setenv(name, value)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        mp.delenv("AWS_ENDPOINT_URL_S3", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        with moto_server() as server:
            yield server


@pytest.fixture
def s3(moto: MotoServer) -> S3:
    return S3(make_client(endpoint_url=moto.endpoint_url))


@pytest.fixture
def bucket(s3: S3) -> str:
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.client.create_bucket(Bucket=name)
    return name


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- addresses ----------------------------------------------------------------------------------


def test_parse_s3_url_and_back() -> None:
    url = parse_s3_url("s3://etl-dags/dev/pkg/dags/x.py")
    assert (url.bucket, url.key, url.name) == ("etl-dags", "dev/pkg/dags/x.py", "x.py")
    assert str(url) == "s3://etl-dags/dev/pkg/dags/x.py"
    assert parse_s3_url("s3://etl-dags") == S3Url("etl-dags", "")
    assert str(S3Url("b12", "dev/").join("pkg", "/dags/", "x.py")) == "s3://b12/dev/pkg/dags/x.py"
    assert parse_s3_url(url) is url


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("etl-dags/key", r"invalid S3 URL 'etl-dags/key': expected s3://<bucket>/<key>"),
        ("https://etl-dags/key", r"invalid S3 URL 'https://etl-dags/key': expected"),
        ("s3://Etl_Dags/key", r"bucket name 'Etl_Dags' must be 3-63 characters"),
        ("s3:///key", r"bucket name '' must be"),
        ("s3://ab/key", r"bucket name 'ab' must be"),
    ],
)
def test_bad_s3_urls_are_quoted(text: str, message: str) -> None:
    with pytest.raises(InvalidS3Url, match=message):
        parse_s3_url(text)


def test_object_operations_refuse_a_prefix(s3: S3) -> None:
    with pytest.raises(InvalidS3Url, match=r"'s3://bkt/dev/': it names a prefix, not an object key"):
        s3.get("s3://bkt/dev/")


# --- endpoint -----------------------------------------------------------------------------------


def test_endpoint_comes_from_aws_endpoint_url(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint_url)
    s3 = S3()  # no endpoint given: the environment decides
    assert s3.endpoint_url == moto.endpoint_url
    name = f"env-{uuid.uuid4().hex[:8]}"
    mark = moto.mark()
    s3.client.create_bucket(Bucket=name)
    s3.put(f"s3://{name}/hello.txt", b"hi")
    assert ("PUT", f"/{name}/hello.txt") in moto.requests_since(mark)
    assert s3.get(f"s3://{name}/hello.txt").data == b"hi"


def test_endpoint_precedence_and_validation() -> None:
    assert endpoint_url_from_env({}) is None
    assert endpoint_url_from_env({"AWS_ENDPOINT_URL": ""}) is None
    both = {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_S3": "http://s3:2"}
    assert endpoint_url_from_env(both) == "http://s3:2"
    with pytest.raises(S3ConfigError, match=r"invalid AWS_ENDPOINT_URL '127.0.0.1:5000': use an http:// or https://"):
        endpoint_url_from_env({"AWS_ENDPOINT_URL": "127.0.0.1:5000"})


# --- put / get with hashes ----------------------------------------------------------------------


def test_put_records_the_sha256_and_get_verifies_it(s3: S3, bucket: str) -> None:
    data = b"from airflow import DAG\n"
    result = s3.put(f"s3://{bucket}/dev/pkg/dags/x.py", data, metadata={"Release": "r1"})
    assert (result.sha256, result.size) == (sha(data), len(data))
    assert result.etag == hashlib.md5(data).hexdigest()  # S3's ETag of a single-part upload

    head = s3.head(f"s3://{bucket}/dev/pkg/dags/x.py")
    assert head.sha256 == sha(data)
    assert head.metadata["release"] == "r1"
    assert head.content_type == "text/x-python"

    got = s3.get(f"s3://{bucket}/dev/pkg/dags/x.py", require_hash=True, expected_sha256=sha(data))
    assert (got.data, got.sha256, got.verified) == (data, sha(data), True)
    assert s3.exists(f"s3://{bucket}/dev/pkg/dags/x.py")


def test_a_wrong_recorded_hash_is_detected(s3: S3, bucket: str) -> None:
    # Another writer replaced the bytes but kept the old hash.
    old_hash = sha(b'{"v": 1}')
    s3.client.put_object(Bucket=bucket, Key="m.json", Body=b'{"v": 2}', Metadata={"sha256": old_hash})
    with pytest.raises(HashMismatch, match=rf"sha256 mismatch for s3://{bucket}/m\.json: metadata says '{old_hash}'"):
        s3.get(f"s3://{bucket}/m.json")
    assert s3.get(f"s3://{bucket}/m.json", verify=False).data == b'{"v": 2}'


def test_objects_without_a_hash_pass_unless_one_is_required(s3: S3, bucket: str) -> None:
    s3.client.put_object(Bucket=bucket, Key="plain.txt", Body=b"plain")
    got = s3.get(f"s3://{bucket}/plain.txt")
    assert (got.data, got.verified) == (b"plain", False)
    with pytest.raises(MissingHash, match=rf"s3://{bucket}/plain\.txt has no 'sha256' metadata"):
        s3.get(f"s3://{bucket}/plain.txt", require_hash=True)
    with pytest.raises(HashMismatch, match=rf"sha256 mismatch for s3://{bucket}/plain\.txt: expected '0+'"):
        s3.get(f"s3://{bucket}/plain.txt", expected_sha256="0" * 64)


def test_download_verifies_before_the_file_appears(s3: S3, bucket: str, tmp_path: Path) -> None:
    good = os.urandom(3 * MIB + 17)
    s3.put(f"s3://{bucket}/data.bin", good)
    info = s3.download_file(f"s3://{bucket}/data.bin", tmp_path / "data.bin")
    assert (tmp_path / "data.bin").read_bytes() == good
    assert (info.size, info.sha256) == (len(good), sha(good))

    s3.client.put_object(Bucket=bucket, Key="bad.bin", Body=b"tampered", Metadata={"sha256": sha(b"original")})
    with pytest.raises(HashMismatch, match=rf"sha256 mismatch for s3://{bucket}/bad\.bin"):
        s3.download_file(f"s3://{bucket}/bad.bin", tmp_path / "bad.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]  # no partial or temp file


# --- errors -------------------------------------------------------------------------------------


def test_missing_keys_and_buckets_name_the_full_address(s3: S3, bucket: str, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=rf"^get s3://{bucket}/dev/none\.py: no such object") as info:
        s3.get(f"s3://{bucket}/dev/none.py")
    assert info.value.url == f"s3://{bucket}/dev/none.py"
    with pytest.raises(NotFound, match=rf"head s3://{bucket}/x"):
        s3.head(f"s3://{bucket}/x")
    assert not s3.exists(f"s3://{bucket}/x")
    with pytest.raises(BucketNotFound, match=r"put s3://no-such-bucket-42/k: bucket s3://no-such-bucket-42 does not"):
        s3.put("s3://no-such-bucket-42/k", b"x")
    with pytest.raises(BucketNotFound, match=r"list s3://no-such-bucket-42/dev/"):
        list(s3.list("s3://no-such-bucket-42/dev/"))
    with pytest.raises(NotFound, match=rf"download s3://{bucket}/gone"):
        s3.download_file(f"s3://{bucket}/gone", tmp_path / "gone")
    assert list(tmp_path.iterdir()) == []


def test_an_unreachable_endpoint_is_transient_and_retryable() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    s3 = S3(make_client(endpoint_url=dead, max_attempts=1, connect_timeout=2))
    with pytest.raises(S3Unavailable, match=rf"get s3://bkt/k: cannot reach S3 endpoint {dead}") as info:
        s3.get("s3://bkt/k")
    assert is_transient(info.value)

    sleeps: list[float] = []
    with pytest.raises(S3Unavailable, match=r"get s3://bkt/k: cannot reach S3 endpoint"):
        call_with_retry(
            lambda: s3.get("s3://bkt/k"), policy=RetryPolicy(retries=2), is_retryable=is_transient, sleep=sleeps.append
        )
    assert len(sleeps) == 2
    assert not is_transient(NotFound("x", url="s3://b/k"))


def test_impossible_transfer_settings_are_rejected(moto: MotoServer) -> None:
    client = make_client(endpoint_url=moto.endpoint_url)
    with pytest.raises(S3ConfigError, match=r"part_size 1048576 is below S3's minimum of 5242880 bytes"):
        S3(client, part_size=MIB)
    with pytest.raises(S3ConfigError, match=r"multipart_threshold must be >= 1 byte, got 0"):
        S3(client, multipart_threshold=0)


# --- multipart ----------------------------------------------------------------------------------


def multipart_calls(requests: list[tuple[str, str]], key: str) -> dict[str, int]:
    mine = [(m, p) for m, p in requests if p.split("?")[0].endswith("/" + key)]
    return {
        "create": sum(1 for m, p in mine if m == "POST" and "uploads" in p and "uploadId" not in p),
        "parts": sum(1 for m, p in mine if m == "PUT" and "partNumber=" in p),
        "complete": sum(1 for m, p in mine if m == "POST" and "uploadId=" in p),
        "single_put": sum(1 for m, p in mine if m == "PUT" and "?" not in p),
    }


def test_large_files_are_uploaded_in_parts(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    s3 = S3(make_client(endpoint_url=moto.endpoint_url), multipart_threshold=MIN_PART_SIZE, part_size=MIN_PART_SIZE)
    data = os.urandom(2 * MIN_PART_SIZE + 123_456)  # three parts: 5 MiB, 5 MiB, the rest
    path = tmp_path / "big.parquet"
    path.write_bytes(data)

    mark = moto.mark()
    result = s3.upload_file(path, f"s3://{bucket}/raw/big.parquet")
    calls = multipart_calls(moto.requests_since(mark), "raw/big.parquet")
    assert calls == {"create": 1, "parts": 3, "complete": 1, "single_put": 0}
    assert result.etag.endswith("-3")
    assert (result.sha256, result.size) == (sha(data), len(data))

    got = s3.get(f"s3://{bucket}/raw/big.parquet", require_hash=True)
    assert got.data == data and got.verified


def test_small_files_and_bytes_follow_the_threshold(moto: MotoServer, bucket: str, tmp_path: Path) -> None:
    s3 = S3(make_client(endpoint_url=moto.endpoint_url), multipart_threshold=6 * MIB, part_size=MIN_PART_SIZE)
    small = tmp_path / "small.csv"
    small.write_bytes(b"a,b\n1,2\n")
    mark = moto.mark()
    s3.upload_file(small, f"s3://{bucket}/small.csv")
    s3.put(f"s3://{bucket}/blob.bin", os.urandom(6 * MIB))  # bytes at the threshold go in parts too
    reqs = moto.requests_since(mark)
    assert multipart_calls(reqs, "small.csv") == {"create": 0, "parts": 0, "complete": 0, "single_put": 1}
    assert multipart_calls(reqs, "blob.bin") == {"create": 1, "parts": 2, "complete": 1, "single_put": 0}
    assert s3.head(f"s3://{bucket}/small.csv").content_type == "text/csv"


# --- listing ------------------------------------------------------------------------------------


def test_listing_pages_through_more_than_a_thousand_keys(moto: MotoServer, s3: S3, bucket: str) -> None:
    keys = [f"dev/pkg/dags/dag_{n:04d}.py" for n in range(1105)]

    def put(key: str) -> Any:
        return s3.client.put_object(Bucket=bucket, Key=key, Body=key.encode())

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, keys))
    s3.client.put_object(Bucket=bucket, Key="dev/other/x.py", Body=b"x")

    mark = moto.mark()
    listing = s3.list(f"s3://{bucket}/dev/pkg/", page_size=200)
    first = next(listing)
    assert first.url == S3Url(bucket, keys[0])
    assert first.size == len(keys[0])
    list_calls = [p for m, p in moto.requests_since(mark) if m == "GET" and "list-type=2" in p]
    assert len(list_calls) == 1  # lazy: one page fetched so far

    rest = list(listing)
    assert [o.url.key for o in [first, *rest]] == keys
    list_calls = [p for m, p in moto.requests_since(mark) if m == "GET" and "list-type=2" in p]
    assert len(list_calls) == 6  # ceil(1105 / 200)
    assert all("max-keys=200" in p for p in list_calls)

    assert sum(1 for _ in s3.list(f"s3://{bucket}/dev/")) == 1106
    assert list(s3.list(f"s3://{bucket}/nothing/")) == []


def test_list_prefixes_gives_the_folders_below(s3: S3, bucket: str) -> None:
    for key in ("dev/a/metadata.json", "dev/a/dags/x.py", "dev/b/metadata.json", "dev/top.txt", "prod/c/m.json"):
        s3.put(f"s3://{bucket}/{key}", b"{}")
    assert [str(u) for u in s3.list_prefixes(f"s3://{bucket}/dev/")] == [
        f"s3://{bucket}/dev/a/",
        f"s3://{bucket}/dev/b/",
    ]
    assert [u.key for u in s3.list_prefixes(f"s3://{bucket}")] == ["dev/", "prod/"]


def test_page_size_is_checked(s3: S3) -> None:
    with pytest.raises(S3ConfigError, match=r"page_size must be 1\.\.1000, got 5000"):
        next(s3.list("s3://bkt/x", page_size=5000))


# --- copy and delete ----------------------------------------------------------------------------


def test_copy_keeps_hash_and_content_type_and_adds_metadata(s3: S3, bucket: str) -> None:
    data = b"print('dag')\n"
    s3.put(f"s3://{bucket}/dev/pkg/dags/x.py", data, metadata={"release": "r1"})
    result = s3.copy(
        f"s3://{bucket}/dev/pkg/dags/x.py",
        f"s3://{bucket}/dev/pkg/releases/r2/dags/x.py",
        metadata={"release": "r2", "sha256": "forged"},
    )
    assert (result.sha256, result.size) == (sha(data), len(data))
    head = s3.head(f"s3://{bucket}/dev/pkg/releases/r2/dags/x.py")
    assert head.metadata == {"sha256": sha(data), "release": "r2"}
    assert head.content_type == "text/x-python"
    assert s3.get(f"s3://{bucket}/dev/pkg/releases/r2/dags/x.py", require_hash=True).data == data


def test_large_copies_go_in_parts_and_stay_verifiable(moto: MotoServer, bucket: str) -> None:
    s3 = S3(make_client(endpoint_url=moto.endpoint_url), multipart_threshold=MIN_PART_SIZE, part_size=MIN_PART_SIZE)
    data = os.urandom(MIN_PART_SIZE + 1000)
    s3.put(f"s3://{bucket}/a.bin", data)
    mark = moto.mark()
    s3.copy(f"s3://{bucket}/a.bin", f"s3://{bucket}/b.bin")
    calls = multipart_calls(moto.requests_since(mark), "b.bin")
    assert (calls["create"], calls["parts"], calls["complete"]) == (1, 2, 1)
    got = s3.get(f"s3://{bucket}/b.bin", require_hash=True)
    assert got.data == data and got.sha256 == sha(data)


def test_copy_of_a_missing_source_names_the_source(s3: S3, bucket: str) -> None:
    with pytest.raises(NotFound, match=rf"head s3://{bucket}/missing\.py: no such object"):
        s3.copy(f"s3://{bucket}/missing.py", f"s3://{bucket}/to.py")


def test_delete_removes_and_tolerates_absence(s3: S3, bucket: str) -> None:
    s3.put(f"s3://{bucket}/REMOVED", b"")
    assert s3.exists(f"s3://{bucket}/REMOVED")
    s3.delete(f"s3://{bucket}/REMOVED")
    assert not s3.exists(f"s3://{bucket}/REMOVED")
    s3.delete(f"s3://{bucket}/REMOVED")
