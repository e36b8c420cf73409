"""The DAG store contract: one importable home for what the renderer, the publisher, the sidecar
and the IAM generator must agree on (docs/store-layout.md is the prose; this is the code).

- :mod:`storecontract.names`     env, package, dag_id and release id rules (full match)
- :mod:`storecontract.keys`      every key of the layout, built from checked names
- :mod:`storecontract.metadata`  ``metadata.json``: schema version, model, validation, release ids
- :mod:`storecontract.bundle`    the release bundle: deterministic tar, member checks
- :mod:`storecontract.storeurl`  ``DAG_BUCKET`` parsing
- :mod:`storecontract.limits`    size and shape limits of what a package may store

Standard library only, so every program (and the sidecar's small image) can take it.
"""

from __future__ import annotations

from tools.bazel.storecontract.bundle import check_member, read_bundle, write_bundle
from tools.bazel.storecontract.errors import BundleError, ContractError, InvalidNameError, MetadataError, StoreUrlError
from tools.bazel.storecontract.keys import (
    DAGS_DIR,
    METADATA_NAME,
    RELEASES_DIR,
    REMOVED_NAME,
    PackageKeys,
    bundle_file,
    dag_file,
    env_prefix,
    package_metadata_key,
)
from tools.bazel.storecontract.metadata import (
    DIGEST_RE,
    PUBLISH_KEYS,
    SCHEMA_VERSION,
    SHA256_RE,
    BundleRef,
    DagEntry,
    Image,
    Metadata,
    Release,
    build_document,
    build_part,
    canonical_json,
    dag_entry,
    make_release_id,
    parse_metadata,
    release_time,
    validate_document,
    with_release,
)
from tools.bazel.storecontract.names import (
    DAG_ID_PATTERN,
    DAG_ID_RE,
    NAME_PATTERN,
    NAME_RE,
    RELEASE_ID_PATTERN,
    RELEASE_ID_RE,
    unsafe_reason,
    validate_dag_id,
    validate_env,
    validate_name,
    validate_package,
    validate_release_id,
)
from tools.bazel.storecontract.storeurl import StoreUrl, parse_dag_bucket

__all__ = [
    "DAGS_DIR",
    "DAG_ID_PATTERN",
    "DAG_ID_RE",
    "DIGEST_RE",
    "METADATA_NAME",
    "NAME_PATTERN",
    "NAME_RE",
    "PUBLISH_KEYS",
    "RELEASES_DIR",
    "RELEASE_ID_PATTERN",
    "RELEASE_ID_RE",
    "REMOVED_NAME",
    "SCHEMA_VERSION",
    "SHA256_RE",
    "BundleError",
    "BundleRef",
    "ContractError",
    "DagEntry",
    "Image",
    "InvalidNameError",
    "Metadata",
    "MetadataError",
    "PackageKeys",
    "Release",
    "StoreUrl",
    "StoreUrlError",
    "build_document",
    "build_part",
    "bundle_file",
    "canonical_json",
    "check_member",
    "dag_entry",
    "dag_file",
    "env_prefix",
    "make_release_id",
    "package_metadata_key",
    "parse_dag_bucket",
    "parse_metadata",
    "read_bundle",
    "release_time",
    "unsafe_reason",
    "validate_dag_id",
    "validate_document",
    "validate_env",
    "validate_name",
    "validate_package",
    "validate_release_id",
    "with_release",
    "write_bundle",
]
