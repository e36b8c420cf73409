"""The contract's exceptions: one per kind of broken rule, all ``ValueError``s.

Each takes one message (so ``type(exc)(f"{exc}; more")`` works) and keeps, where it helps a caller
add its own advice, the place and the bare problem as attributes.
"""

from __future__ import annotations

__all__ = ["BundleError", "ContractError", "InvalidNameError", "MetadataError", "StoreUrlError"]


class ContractError(ValueError):
    """A value breaks the DAG store contract (docs/store-layout.md)."""

    def __init__(self, message: str, *, where: str | None = None, problem: str | None = None) -> None:
        super().__init__(message)
        self.where = where
        self.problem = problem if problem is not None else message


class InvalidNameError(ContractError):
    """An env, package, dag_id or release id is not safe to use in a store key."""


class MetadataError(ContractError):
    """A metadata.json does not follow the schema."""


class BundleError(ContractError):
    """A release bundle is not a tar of exactly the release's DAG files."""


class StoreUrlError(ContractError):
    """A ``DAG_BUCKET`` value is not ``s3://<bucket>`` or ``file:///<dir>``."""
