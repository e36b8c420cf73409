"""observability: platform checks for the ETL platform, run as batch jobs.

- ``python -m observability.jobs.freshness``       datasets' newest partition / object vs allowed age
- ``python -m observability.jobs.airflow_health``  Airflow's health, recent failed runs, import errors
- ``python -m observability.jobs.sidecar_health``  the DAG sync sidecar's last successful sync

Each exports its results as metrics (textfile or Pushgateway) and exits 1 with a one-line
summary of what breached.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__"]
