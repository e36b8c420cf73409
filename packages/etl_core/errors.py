"""The root of every exception etl_core raises, so callers can catch the library's failures at once."""

from __future__ import annotations

__all__ = ["EtlCoreError"]


class EtlCoreError(Exception):
    """Base class of all etl_core errors; each module defines one subclass per failure kind."""
