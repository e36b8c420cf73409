"""The root of every exception etl_core raises, so callers can catch the library's failures at once."""

from __future__ import annotations

__all__ = ["EtlCoreError", "NotFoundError", "StorageError"]


class EtlCoreError(Exception):
    """Base class of all etl_core errors; each module defines one subclass per failure kind."""


class StorageError(EtlCoreError):
    """A file or object could not be listed, read or written (:mod:`etl_core.storage`)."""


class NotFoundError(StorageError):
    """Nothing exists at the given location (:mod:`etl_core.storage`)."""
