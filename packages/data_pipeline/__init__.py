"""data_pipeline: ingestion of raw CSV / JSON-lines files into typed, de-duplicated, date-partitioned
Parquet, with declarative transforms, reference-data enrichment and an optional SQL sink.

Jobs run as ``python -m data_pipeline.jobs.<job>`` (see :mod:`data_pipeline.jobs`). Datasets are
declared in ``data_pipeline/datasets/<dataset>.yaml`` (see :mod:`data_pipeline.spec`). Importing
this package imports neither pyarrow nor boto3; the jobs import pandas never.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
