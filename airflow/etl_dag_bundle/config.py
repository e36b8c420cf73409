"""``[dag_processor] dag_bundle_config_list`` for the packages of one env: one bundle per package."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from etl_dag_bundle.local import check_name

__all__ = ["CLASSPATH", "bundle_config_json", "bundle_config_list"]

CLASSPATH = "etl_dag_bundle.bundle.PackageDagBundle"


def bundle_config_list(
    *, dag_bucket: str, env: str, packages: Iterable[str], kwargs: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One entry per package, named after it, so each package versions on its own release ids."""
    check_name("env", env)
    entries = []
    for package in sorted(set(packages)):
        check_name("package", package)
        entries.append(
            {
                "name": package,
                "classpath": CLASSPATH,
                "kwargs": {"dag_bucket": dag_bucket, "env": env, **(kwargs or {})},
            }
        )
    return entries


def bundle_config_json(
    *, dag_bucket: str, env: str, packages: Iterable[str], kwargs: Mapping[str, Any] | None = None
) -> str:
    """``bundle_config_list`` as the JSON ``AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST`` takes."""
    return json.dumps(
        bundle_config_list(dag_bucket=dag_bucket, env=env, packages=packages, kwargs=kwargs), sort_keys=True
    )
