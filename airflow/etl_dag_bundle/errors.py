"""The DAG bundle's failure kinds: one small class each, every message one line naming the value and the fix."""

from __future__ import annotations

__all__ = ["BundleConfigError", "BundleError", "ReleaseUnavailableError"]


class BundleError(Exception):
    """Base class of every failure the DAG bundle expects and reports in one line."""


class BundleConfigError(BundleError):
    """A ``dag_bundle_config_list`` kwarg (or the version Airflow asked for) is not valid."""


class ReleaseUnavailableError(BundleError):
    """A release cannot be materialised: missing, not verifiable, or the store unreadable."""
