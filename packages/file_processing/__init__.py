"""file_processing: file operations, data quality and profiling jobs for the ETL platform.

Jobs run as ``python -m file_processing.jobs.<job>`` (see :mod:`file_processing.jobs`). The
modules below are also usable as a library; importing this package imports none of them, and
great-expectations is imported only by :mod:`file_processing.validation` when a suite runs.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
