"""s3http: the platform's S3 client, standard library only (botocore only for its credential chain).

    from tools.bazel.s3http import S3Client

    client = S3Client("acme-dags")                  # endpoint, region, credentials: see s3http.settings
    etag = client.put("dev/pkg/metadata.json", b"{}", if_none_match=True)
    with client.open("dev/pkg/releases/r.tar") as body:   # streamed, never whole in memory
        for chunk in body.iter_chunks():
            ...

See README.md: who uses it, and why it is not boto3.
"""

from __future__ import annotations

from tools.bazel.s3http.client import (
    CHUNK_BYTES,
    DEFAULT_RETRY,
    HeadResult,
    ListedObject,
    ListPage,
    ObjectStream,
    S3Client,
    is_transient,
)
from tools.bazel.s3http.errors import (
    S3ConfigError,
    S3ConnectionError,
    S3CredentialsError,
    S3Error,
    S3ResponseError,
    describe,
)
from tools.bazel.s3http.sigv4 import Credentials, canonical_query, sign

__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_RETRY",
    "Credentials",
    "HeadResult",
    "ListPage",
    "ListedObject",
    "ObjectStream",
    "S3Client",
    "S3ConfigError",
    "S3ConnectionError",
    "S3CredentialsError",
    "S3Error",
    "S3ResponseError",
    "canonical_query",
    "describe",
    "is_transient",
    "sign",
]
