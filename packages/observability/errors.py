"""The failures of observability, one class per kind; each maps to exit code 1 in a job.

``StorageError`` and ``NotFoundError`` are etl_core's (raised by :mod:`etl_core.storage`), re-exported
here so ``except`` clauses of this package catch them; the job runner maps them to exit code 1 too.
"""

from __future__ import annotations

from etl_core.errors import NotFoundError, StorageError
from etl_core.jobs import JobError

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


class ChecksError(ObservabilityError):
    """A checks file (e.g. freshness.yaml) is missing or invalid."""


class AirflowApiError(ObservabilityError):
    """The Airflow REST API could not be reached or answered with an error."""


class MetricsScrapeError(ObservabilityError):
    """A /metrics endpoint could not be scraped or parsed."""


class Breach(ObservabilityError):
    """At least one check breached its limit; the message summarises every breach."""
