"""The failures of the S3 client, one class per kind; every one is an ``S3Error``."""

from __future__ import annotations

__all__ = ["S3ConfigError", "S3ConnectionError", "S3CredentialsError", "S3Error", "S3ResponseError", "describe"]

MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestTimeout",
        "RequestTimeTooSkewed",
        "InternalError",
        "ServiceUnavailable",
        "RequestLimitExceeded",
        "TooManyRequestsException",
    }
)
BAD_CREDENTIALS_CODES = frozenset({"SignatureDoesNotMatch", "InvalidAccessKeyId", "ExpiredToken", "InvalidToken"})


class S3Error(Exception):
    """Any failure of the S3 client."""


class S3ConfigError(S3Error, ValueError):
    """The environment names an unusable endpoint, or the AWS config cannot be read."""


class S3CredentialsError(S3Error):
    """No AWS credentials were found, or the credential chain failed (the message says which)."""


class S3ConnectionError(S3Error, OSError):
    """The endpoint could not be reached (after the client's retries; the message counts them)."""


class S3ResponseError(S3Error):
    """S3 answered with an error (``HTTP 503 SlowDown: <message>``); ``code`` is the XML ``<Code>``,
    else the HTTP status as text."""

    def __init__(self, status: int, code: str, message: str, *, region: str | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}" if message else f"HTTP {status} {code}")
        self.status = status
        self.code = code
        self.message = message
        self.region = region
        """The bucket's region when S3 said it (a redirect's ``x-amz-bucket-region`` or ``<Region>``)."""

    @property
    def missing(self) -> bool:
        """The key (not the bucket) does not exist."""
        return self.code in MISSING_CODES or (self.status == 404 and self.code != "NoSuchBucket")

    @property
    def no_bucket(self) -> bool:
        return self.code == "NoSuchBucket"

    @property
    def precondition_failed(self) -> bool:
        """An If-Match / If-None-Match / copy-source condition did not hold."""
        return self.code in PRECONDITION_CODES or self.status in (409, 412)

    @property
    def access_denied(self) -> bool:
        return self.code in ("AccessDenied", "403") or (self.status == 403 and self.code not in BAD_CREDENTIALS_CODES)

    @property
    def bad_credentials(self) -> bool:
        """The credentials were refused (wrong secret, unknown key id, expired token)."""
        return self.code in BAD_CREDENTIALS_CODES

    @property
    def retryable(self) -> bool:
        """Throttling or a server-side failure: the same request may succeed later."""
        return self.status in RETRYABLE_STATUSES or self.code in RETRYABLE_CODES

    def wrong_region(self, region: str) -> str | None:
        """The bucket's region when this error says the request went to another one than ``region``.

        ``""`` when it was a redirect that did not name the region; None when it is not about regions.
        """
        if self.status in (301, 307) or self.code in ("PermanentRedirect", "AuthorizationHeaderMalformed"):
            if self.region and self.region != region:
                return self.region
            if self.status in (301, 307):
                return ""
        return None


def describe(exc: BaseException, *, bucket: str, region: str) -> str:
    """What went wrong, in words that say what to do, for ``<action> 's3://bucket/key': <this>``."""
    if isinstance(exc, S3ResponseError):
        other = exc.wrong_region(region)
        if other:
            return f"bucket {bucket!r} is in region {other!r}, not {region!r}; set AWS_REGION={other}"
        if other == "":
            return (
                f"bucket {bucket!r} is not in region {region!r} (HTTP {exc.status} redirect); "
                "set AWS_REGION to the bucket's region"
            )
        if exc.no_bucket:
            return f"bucket {bucket!r} does not exist"
        if exc.bad_credentials:
            return f"{exc.code}: {exc.message} (check the AWS credentials in use)"
        if exc.access_denied:
            return "access denied (check the IAM policy for this prefix)"
        if exc.precondition_failed:
            return f"precondition failed ({exc.message or exc.code})"
        return f"{exc.code}: {exc.message or f'HTTP {exc.status}'}"
    return str(exc)
