"""DAG sync sidecar: mirrors ``<DAG_BUCKET>/<ENV>/<pkg>/`` into Airflow's dags folder.

Content-verified (sha256 from each package's metadata.json), atomic per package (versioned
folders and a symlink swap), read-only against the store. Run it as ``python -m sidecar``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from sidecar.errors import (
    ConfigError,
    LocalLayoutError,
    MetadataError,
    ObjectNotFoundError,
    OversizedObjectError,
    ReleaseRejectedError,
    SidecarError,
    StoreError,
)

__all__ = [
    "ConfigError",
    "LocalLayoutError",
    "MetadataError",
    "ObjectNotFoundError",
    "OversizedObjectError",
    "ReleaseRejectedError",
    "SidecarError",
    "StoreError",
    "__version__",
]
