"""etl_core: shared runtime helpers for the platform's ETL packages and services.

Modules, one purpose each:

- :mod:`etl_core.config`  settings from env vars (pydantic-settings) with matching flags
- :mod:`etl_core.logs`    JSON-lines logging with key/value context and secret redaction
- :mod:`etl_core.metrics` prometheus-client helpers: ``/metrics`` server, textfile, Pushgateway
- :mod:`etl_core.s3`      boto3 helpers: paginated list, hashed get/put, multipart, copy
- :mod:`etl_core.jobs`    the job runner: flags, ``--conf``, env vars, logs, metrics, exit codes
- :mod:`etl_core.storage` local-or-S3 files: list, stat, read, atomic publish, copy
- :mod:`etl_core.memory`  keep a job's RSS low: Arrow allocator switch, glibc trim (needs pyarrow)

Each module is its own Bazel target (``//packages/etl_core:<module>``); depend on the ones you
import. The names below are re-exported lazily, so ``import etl_core`` imports nothing else until a
name is used (and then only needs that name's module in the target's deps).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "EtlCoreError": "etl_core.errors",
    "ConfigError": "etl_core.config",
    "PlatformSettings": "etl_core.config",
    "Settings": "etl_core.config",
    "configure_logging": ("etl_core.logs", "configure"),
    "get_logger": "etl_core.logs",
    "log_context": "etl_core.logs",
    "S3": "etl_core.s3",
    "S3Error": "etl_core.s3",
    "S3Url": "etl_core.s3",
    "parse_s3_url": "etl_core.s3",
}

__all__ = [
    "S3",
    "ConfigError",
    "EtlCoreError",
    "PlatformSettings",
    "S3Error",
    "S3Url",
    "Settings",
    "__version__",
    "configure_logging",
    "get_logger",
    "log_context",
    "parse_s3_url",
]

if TYPE_CHECKING:
    from etl_core.config import ConfigError, PlatformSettings, Settings
    from etl_core.errors import EtlCoreError
    from etl_core.logs import configure as configure_logging
    from etl_core.logs import get_logger, log_context
    from etl_core.s3 import S3, S3Error, S3Url, parse_s3_url


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'etl_core' has no attribute {name!r}")
    module_name, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
