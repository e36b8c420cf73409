"""The failures of file_processing, one class per kind; each maps to exit code 1 in a job.

``StorageError`` and ``NotFoundError`` are etl_core's (raised by :mod:`etl_core.storage`), re-exported
here so ``except`` clauses of this package catch them; the job runner maps them to exit code 1 too.
"""

from __future__ import annotations

from etl_core.errors import NotFoundError, StorageError
from etl_core.jobs import JobError

__all__ = [
    "ChecksumMismatch",
    "ConversionError",
    "DataError",
    "FileProcessingError",
    "NotFoundError",
    "ProfileError",
    "StorageError",
    "SuiteError",
    "TargetExists",
    "ValidationFailed",
]


class FileProcessingError(JobError):
    """Base class of every file_processing failure."""


class TargetExists(FileProcessingError, StorageError):
    """The destination exists and the job was told not to overwrite it."""


class ChecksumMismatch(FileProcessingError):
    """Files do not have the checksums their manifest records."""


class ConversionError(FileProcessingError):
    """A file could not be converted (bad CSV, bad gzip stream, unsupported format)."""


class DataError(FileProcessingError):
    """A dataset could not be read (unreadable, mixed or unsupported files)."""


class SuiteError(FileProcessingError):
    """An expectation suite file is missing or invalid."""


class ValidationFailed(FileProcessingError):
    """At least one critical expectation failed."""


class ProfileError(FileProcessingError):
    """A dataset could not be profiled (unreadable or unsupported format)."""
