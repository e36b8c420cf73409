"""One exception class per failure kind of the local control plane."""

from __future__ import annotations

__all__ = ["AirflowApiError", "AirflowStartError", "ControlPlaneError"]


class ControlPlaneError(RuntimeError):
    """Base class: every expected failure of the control plane."""


class AirflowStartError(ControlPlaneError):
    """An Airflow process failed to start, or the API did not become healthy in time."""


class AirflowApiError(ControlPlaneError):
    """A REST call answered an unexpected status."""
