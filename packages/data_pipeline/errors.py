"""The failures of data_pipeline, one class per kind; each maps to exit code 1 in a job.

``StorageError`` and ``NotFoundError`` are etl_core's (raised by :mod:`etl_core.storage`), re-exported
here so ``except`` clauses of this package catch them; the job runner maps them to exit code 1 too.
"""

from __future__ import annotations

from etl_core.errors import NotFoundError, StorageError
from etl_core.jobs import JobError

__all__ = [
    "DataPipelineError",
    "EnrichmentError",
    "ExpressionError",
    "InputError",
    "NotFoundError",
    "SchemaError",
    "SpecError",
    "SqlSinkError",
    "StorageError",
    "TooManyRejects",
    "TransformError",
]


class DataPipelineError(JobError):
    """Base class of every data_pipeline failure."""


class SpecError(DataPipelineError):
    """A dataset spec file is missing or invalid."""


class ExpressionError(SpecError):
    """A filter or derive expression is not valid (syntax, unknown function or column)."""


class InputError(DataPipelineError):
    """The input files cannot be ingested at all (none found, unreadable, unknown format)."""


class SchemaError(InputError):
    """An input file lacks a required column."""


class TransformError(DataPipelineError):
    """A transform could not be applied to the data (e.g. a filter that is not boolean)."""


class EnrichmentError(DataPipelineError):
    """Reference data is missing, has duplicate keys or does not fit the join."""


class TooManyRejects(DataPipelineError):
    """More rows were rejected than the dataset's max_reject_ratio allows."""


class SqlSinkError(DataPipelineError):
    """Loading the partition into the SQL database failed."""
