"""The failures of observability, one class per kind; each maps to exit code 1 in a job."""

from __future__ import annotations

from ._jobs import JobError

__all__ = [
    "AirflowApiError",
    "Breach",
    "ChecksError",
    "MetricsScrapeError",
    "NotFoundError",
    "ObservabilityError",
    "StorageError",
]


class ObservabilityError(JobError):
    """Base class of every observability failure."""


class StorageError(ObservabilityError):
    """A file or object could not be listed, read or written."""


class NotFoundError(StorageError):
    """Nothing exists at the given location."""


class ChecksError(ObservabilityError):
    """A checks file (e.g. freshness.yaml) is missing or invalid."""


class AirflowApiError(ObservabilityError):
    """The Airflow REST API could not be reached or answered with an error."""


class MetricsScrapeError(ObservabilityError):
    """A /metrics endpoint could not be scraped or parsed."""


class Breach(ObservabilityError):
    """At least one check breached its limit; the message summarises every breach."""
