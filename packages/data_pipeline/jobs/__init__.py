"""Job entrypoints, each run as ``python -m data_pipeline.jobs.<job>`` (``--help`` lists its flags).

- ``ingest``     raw CSV / JSON-lines files -> typed, de-duplicated Parquet partition ``dt=<run date>``
- ``transform``  a Parquet partition -> transformed / enriched partition of another dataset
"""
