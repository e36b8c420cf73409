"""DAG_BUCKET: one rule for the publisher and the sidecar."""

from __future__ import annotations

import pytest

from tools.bazel.storecontract import StoreUrl, StoreUrlError, parse_dag_bucket


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        ("s3://dags-bucket", StoreUrl(scheme="s3", bucket="dags-bucket")),
        ("s3://dags.example.com/", StoreUrl(scheme="s3", bucket="dags.example.com")),
        ("file:///srv/store", StoreUrl(scheme="file", path="/srv/store")),
        ("file:///srv/store/", StoreUrl(scheme="file", path="/srv/store")),
        ("file://localhost/srv/a%20b", StoreUrl(scheme="file", path="/srv/a b")),
        ("file:///srv/./store", StoreUrl(scheme="file", path="/srv/store")),
    ],
)
def test_good_values(url: str, parsed: StoreUrl) -> None:
    assert parse_dag_bucket(url) == parsed


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "s3://b/root",
            r"^'s3://b/root': give the bucket only \(s3://<bucket>\): keys start with <ENV>/ at the bucket's root$",
        ),
        ("s3://dags/dev/", r"give the bucket only"),
        ("s3://Bad_Bucket", r"^'s3://Bad_Bucket': 'Bad_Bucket' is not a valid S3 bucket name$"),
        ("s3://a..b", r"is not a valid S3 bucket name"),
        ("s3://dags\n", r"^'s3://dags\\n': contains control characters \(a newline or a tab\?\)$"),
        ("s3://dags?x=1", r"without '\?' or '#'"),
        ("file://relative/dir", r"a local store must be an absolute path, file:///<dir>$"),
        ("file:///srv/../etc", r"'\.\.' and NUL are not allowed$"),
        ("file:///srv/%00x", r"'\.\.' and NUL are not allowed$"),
        ("/srv/store", r"must be s3://<bucket> or file:///<absolute dir>$"),
        ("gs://bucket", r"must be s3://<bucket> or file:///<absolute dir>$"),
    ],
)
def test_bad_values_are_refused_naming_the_value(url: str, message: str) -> None:
    with pytest.raises(StoreUrlError, match=message):
        parse_dag_bucket(url)


def test_addresses() -> None:
    assert parse_dag_bucket("s3://dags").address("dev/x/metadata.json") == "s3://dags/dev/x/metadata.json"
    assert parse_dag_bucket("file:///srv/s").address("dev/x/metadata.json") == "file:///srv/s/dev/x/metadata.json"
    assert str(parse_dag_bucket("s3://dags/")) == "s3://dags"
