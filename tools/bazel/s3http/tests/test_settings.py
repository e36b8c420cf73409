"""Endpoint, addressing and region from the AWS environment variables (no server needed)."""

from __future__ import annotations

import pytest

from tools.bazel.s3http import S3Client, S3ConfigError, S3CredentialsError
from tools.bazel.s3http.settings import resolve_endpoint

CREDS = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}


def test_aws_endpoints_are_virtual_hosted_except_for_dotted_buckets() -> None:
    assert resolve_endpoint("my-dags", "us-east-1", {}).url == "https://my-dags.s3.us-east-1.amazonaws.com/"
    assert resolve_endpoint("dotted.bucket", "eu-west-1", {}).url == "https://s3.eu-west-1.amazonaws.com/dotted.bucket/"


def test_configured_endpoints_are_path_style_and_s3_specific_wins() -> None:
    env = {"AWS_ENDPOINT_URL": "http://minio:9000", "AWS_ENDPOINT_URL_S3": "http://s3-only:9000/base/"}
    endpoint = resolve_endpoint("my-dags", "eu-central-1", env)
    assert (endpoint.url, endpoint.host, endpoint.port) == ("http://s3-only:9000/base/my-dags/", "s3-only", 9000)
    assert (
        resolve_endpoint("my-dags", "r", {"AWS_ENDPOINT_URL": "http://minio:9000"}).url == "http://minio:9000/my-dags/"
    )
    ignored = {**env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert resolve_endpoint("my-dags", "eu-central-1", ignored).url == "https://my-dags.s3.eu-central-1.amazonaws.com/"


@pytest.mark.parametrize("value", ["s3-only:9000", "ftp://host/", "http://"])
def test_an_endpoint_that_is_not_http_is_refused_with_the_value(value: str) -> None:
    with pytest.raises(S3ConfigError, match=rf"^invalid AWS_ENDPOINT_URL {value!r}: must be an http:// or https://"):
        resolve_endpoint("b", "r", {"AWS_ENDPOINT_URL": value})


def test_an_endpoint_with_control_characters_is_refused() -> None:
    """urlsplit deletes tabs and newlines without a word: a pasted value is refused, not rewritten."""
    with pytest.raises(S3ConfigError, match=r"^invalid AWS_ENDPOINT_URL 'http://minio:9000\\n': contains control"):
        resolve_endpoint("b", "r", {"AWS_ENDPOINT_URL": "http://minio:9000\n"})


def test_region_order_and_what_is_said_without_botocore() -> None:
    keys = {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    env = {**keys, "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-central-1"}
    assert S3Client("b", environ=env).region == "eu-central-1"
    assert S3Client("b", environ={**keys, "AWS_DEFAULT_REGION": "eu-west-1"}).region == "eu-west-1"
    # this test target does not depend on botocore: the fallbacks say what to set instead
    with pytest.raises(S3ConfigError, match=r"^no AWS region: set AWS_REGION \(botocore, which would read it"):
        S3Client("b", environ=keys)
    no_keys = S3Client("b", environ={"AWS_REGION": "us-east-1"})
    with pytest.raises(S3CredentialsError, match=r"^no AWS credentials found .*; botocore, for profiles and roles"):
        no_keys.get("k")


def test_urls_are_aws_encoded_with_a_sorted_query() -> None:
    client = S3Client("my-dags", environ={**CREDS, "AWS_ENDPOINT_URL_S3": "http://s3-only:9000/"})
    assert client.url("dev/a b+ü.py") == "http://s3-only:9000/my-dags/dev/a%20b%2B%C3%BC.py"
    assert (
        client.url("", {"prefix": "dev/", "list-type": "2"}) == "http://s3-only:9000/my-dags/?list-type=2&prefix=dev%2F"
    )
