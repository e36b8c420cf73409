"""Exception classes: one per kind of expected failure. The CLI prints the message and exits.

A broken store contract (a bad name, a malformed metadata.json or bundle) raises the contract's own
errors (``storecontract.ContractError``: ``InvalidNameError``, ``MetadataError``...), re-exported
here; ``EXPECTED`` is what the CLI reports as one line.
"""

from __future__ import annotations

from tools.bazel.storecontract import BundleError, ContractError, InvalidNameError, MetadataError

__all__ = [
    "EXPECTED",
    "BuildOutputError",
    "BundleError",
    "ConcurrentPublishError",
    "ContractError",
    "DagIdCollisionError",
    "DagSyntaxError",
    "ImageError",
    "InvalidNameError",
    "MassDeleteError",
    "MetadataError",
    "OutsidePrefixError",
    "PreconditionFailedError",
    "PublishError",
    "ReleaseNotFoundError",
    "SmokeError",
    "StoreError",
    "UsageError",
]


class PublishError(Exception):
    """An expected publish failure: the CLI prints the message on one line and exits 1."""

    exit_code = 1


class UsageError(PublishError):
    """A flag or environment variable has a bad or missing value (exit 2)."""

    exit_code = 2


class OutsidePrefixError(PublishError):
    """A write was about to leave the package's own ``<ENV>/<pkg>/`` prefix."""


class BuildOutputError(PublishError):
    """The build output (metadata.json, dags/, image digest) is missing or inconsistent."""


class DagSyntaxError(PublishError):
    """A DAG file does not compile."""


class DagIdCollisionError(PublishError):
    """A dag_id of this package is already owned by another package in the same env."""


class MassDeleteError(PublishError):
    """The release would remove more than half of the package's DAGs."""


class ImageError(PublishError):
    """The image could not be pushed, or is not in the registry."""


class StoreError(PublishError):
    """A request to the DAG store failed."""


class PreconditionFailedError(StoreError):
    """A conditional write (If-Match / If-None-Match) was rejected by the store."""


class ConcurrentPublishError(PublishError):
    """Another publish of the same package changed the store first; retry."""


class ReleaseNotFoundError(PublishError):
    """The release asked for with --rollback is not stored."""


class SmokeError(PublishError):
    """The smoke run through the Airflow REST API failed or timed out."""


EXPECTED = (PublishError, ContractError)
"""Every expected failure: printed as one line, exit code ``exit_code`` (1 for contract errors)."""
