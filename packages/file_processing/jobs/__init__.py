"""Job entrypoints, each run as 'python -m file_processing.jobs.<job>' ('--help' lists its flags).

- 'list_files'   list files under a local folder or S3 prefix (JSON)
- 'copy_files'   copy files between local paths and S3, keeping their layout
- 'move_files'   copy, check, then delete the sources
- 'checksum'     write or verify a 'sha256sum' manifest
- 'compress'     gzip files (deterministic bytes)
- 'decompress'   gunzip files
- 'convert'      CSV <-> Parquet
- 'validate'     run a dataset's expectation suite (great-expectations), fail on critical failures
- 'profile'      per-column statistics as JSON plus an HTML report
"""
