"""SigV4 against AWS's published examples and against botocore's signer (awkward keys, session tokens)."""

from __future__ import annotations

import hashlib

import pytest

from tools.bazel.s3http.sigv4 import Credentials, canonical_query, quote_key, sign
from tools.bazel.s3http.tests.awkward import AWKWARD_KEYS

EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "payload", "signature"),
    [
        # "Example: GET Object" in the S3 SigV4 header-auth documentation
        (
            "GET",
            "/test.txt",
            {},
            {"Range": "bytes=0-9"},
            b"",
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ),
        # "Example: PUT Object" (a `$` in the key, a Date header, a storage class)
        (
            "PUT",
            "/test%24file.text",
            {},
            {"Date": "Fri, 24 May 2013 00:00:00 GMT", "x-amz-storage-class": "REDUCED_REDUNDANCY"},
            b"Welcome to Amazon S3.",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        ),
        # "Example: GET Bucket Lifecycle" (a query parameter without a value)
        ("GET", "/", {"lifecycle": ""}, {}, b"", "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        # "Example: Get Bucket (List Objects)"
        (
            "GET",
            "/",
            {"max-keys": "2", "prefix": "J"},
            {},
            b"",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ],
)
def test_sign_matches_the_aws_documentation_examples(
    method: str, path: str, query: dict[str, str], headers: dict[str, str], payload: bytes, signature: str
) -> None:
    signed = sign(
        method=method,
        path=path,
        query=canonical_query(query),
        headers={"Host": "examplebucket.s3.amazonaws.com", **headers},
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        credentials=EXAMPLE,
        region="us-east-1",
        amz_date="20130524T000000Z",
    )
    assert signed["Authorization"].endswith(f", Signature={signature}")
    assert signed["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders="
    )


def test_sign_agrees_with_botocore_on_awkward_keys_and_session_tokens() -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    creds = Credentials("AKIDEXAMPLE", "secret/with+chars", "token/+=")
    for key in AWKWARD_KEYS:
        path = "/bucket/" + quote_key(key)
        query = {"prefix": key, "list-type": "2", "continuation-token": "a+b/c=="}
        url = f"http://127.0.0.1:9000{path}?{canonical_query(query)}"
        request = AWSRequest(method="PUT", url=url, headers={"If-None-Match": "*", "Content-Type": "text/x-python"})
        request.context["payload_signing_enabled"] = True
        request.data = b"body"
        S3SigV4Auth(BotoCredentials(*creds), "s3", "eu-west-1").add_auth(request)
        ours = sign(
            method="PUT",
            path=path,
            query=canonical_query(query),
            headers={"Host": "127.0.0.1:9000", "If-None-Match": "*", "Content-Type": "text/x-python"},
            payload_sha256=hashlib.sha256(b"body").hexdigest(),
            credentials=creds,
            region="eu-west-1",
            amz_date=request.headers["X-Amz-Date"],
        )
        assert ours["x-amz-security-token"] == "token/+="
        assert ours["Authorization"] == request.headers["Authorization"], key
