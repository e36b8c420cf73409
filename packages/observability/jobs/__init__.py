"""Job entrypoints, each run as ``python -m observability.jobs.<job>`` (``--help`` lists its flags).

- ``freshness``       newest partition / object of each dataset vs its allowed age
- ``airflow_health``  Airflow REST API: component health, failed DAG runs, DAG import errors
- ``sidecar_health``  the DAG sync sidecar's last successful sync, from its /metrics
"""
