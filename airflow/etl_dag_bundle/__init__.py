"""A versioned Airflow DAG bundle per package, served from the DAG store (docs/airflow/dag-bundles.md).

``etl_dag_bundle.bundle.PackageDagBundle`` is the class ``dag_bundle_config_list`` names; it is
imported on first use here, so writing the configuration does not import Airflow.
"""

from __future__ import annotations

from typing import Any

from etl_dag_bundle.config import CLASSPATH, bundle_config_json, bundle_config_list
from etl_dag_bundle.errors import BundleConfigError, BundleError, ReleaseUnavailableError

__all__ = [
    "CLASSPATH",
    "BundleConfigError",
    "BundleError",
    "PackageDagBundle",
    "ReleaseUnavailableError",
    "bundle_config_json",
    "bundle_config_list",
]


def __getattr__(name: str) -> Any:
    if name == "PackageDagBundle":
        from etl_dag_bundle.bundle import PackageDagBundle

        return PackageDagBundle
    raise AttributeError(f"module 'etl_dag_bundle' has no attribute {name!r}")
