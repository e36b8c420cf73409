"""The sidecar's failure kinds: one small class each, so callers can tell them apart."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "LocalDiskError",
    "LocalLayoutError",
    "MetadataError",
    "ObjectNotFoundError",
    "OversizedObjectError",
    "ReleaseRejectedError",
    "SidecarError",
    "StoppingError",
    "StoreError",
]


class SidecarError(Exception):
    """Base class of every failure the sidecar expects and reports in one line."""


class ConfigError(SidecarError):
    """A flag or its environment variable has a missing or invalid value."""


class StoreError(SidecarError):
    """The DAG store could not be read, after retries."""


class StoppingError(StoreError):
    """The sidecar is stopping: a store request was not sent."""


class ObjectNotFoundError(StoreError):
    """A key the sidecar needs does not exist in the DAG store."""


class OversizedObjectError(SidecarError):
    """An object in the store is larger than --max-file-bytes allows."""


class MetadataError(SidecarError):
    """A package's metadata.json is not valid JSON, breaks the schema, or is over a limit of storecontract/limits.py.

    ``reason`` is the rejection reason: ``invalid_metadata``, ``metadata_too_large`` or
    ``metadata_too_complex``.
    """

    def __init__(self, message: str, *, reason: str = "invalid_metadata") -> None:
        super().__init__(message)
        self.reason = reason


class ReleaseRejectedError(SidecarError):
    """A release failed verification and was rejected whole."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class LocalLayoutError(SidecarError):
    """The dags folder holds something at a path the sidecar manages, but did not write."""


class LocalDiskError(SidecarError):
    """Writing the dags folder failed (no space, quota, read-only...): a local problem, not the store's.

    ``errno_name`` is ``ENOSPC``, ``EDQUOT``, ``EROFS`` or another errno's name; ``path`` what was written.
    """

    def __init__(self, message: str, *, path: str, errno_name: str) -> None:
        super().__init__(message)
        self.path = path
        self.errno_name = errno_name
