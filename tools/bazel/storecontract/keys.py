"""Every store key, built from validated names only (docs/store-layout.md)::

    <ENV>/<pkg>/dags/<dag_id>.py                 live DAG files of the current release
    <ENV>/<pkg>/metadata.json                    the commit point
    <ENV>/<pkg>/releases/<release_id>.tar        the release's bundle (all its DAG files)
    <ENV>/<pkg>/releases/<release_id>.json       the release's metadata.json
    <ENV>/<pkg>/REMOVED                          the package was decommissioned

Keys are relative to the store's root (the bucket, or the ``file://`` folder). No key is ever
built from a path read from a file: paths in metadata.json (``dags[*].file``,
``release.bundle.key``) are checked to equal the key built from the names.
"""

from __future__ import annotations

import dataclasses

from tools.bazel.storecontract.errors import InvalidNameError
from tools.bazel.storecontract.names import (
    RELEASE_ID_RE,
    unsafe_reason,
    validate_dag_id,
    validate_env,
    validate_package,
    validate_release_id,
)

__all__ = [
    "DAGS_DIR",
    "METADATA_NAME",
    "RELEASES_DIR",
    "REMOVED_NAME",
    "PackageKeys",
    "bundle_file",
    "dag_file",
    "env_prefix",
    "package_metadata_key",
]

METADATA_NAME = "metadata.json"
REMOVED_NAME = "REMOVED"
DAGS_DIR = "dags/"
RELEASES_DIR = "releases/"


def dag_file(dag_id: str) -> str:
    """``dags/<dag_id>.py``: a DAG's ``file`` in metadata.json and its bundle member name."""
    return f"{DAGS_DIR}{validate_dag_id(dag_id)}.py"


def bundle_file(release_id: str) -> str:
    """``releases/<release_id>.tar``: ``release.bundle.key`` in metadata.json (relative to the package)."""
    return f"{RELEASES_DIR}{validate_release_id(release_id)}.tar"


def env_prefix(env: str) -> str:
    """``<ENV>/``: where the packages of one env live."""
    return validate_env(env) + "/"


def package_metadata_key(env: str, package: str) -> str:
    """``<ENV>/<pkg>/metadata.json`` of any package."""
    return f"{env_prefix(env)}{validate_package(package)}/{METADATA_NAME}"


@dataclasses.dataclass(frozen=True)
class PackageKeys:
    """The keys of one package in one env.

    ``PackageKeys.pattern("${ENV}", "*")`` skips the name checks, for documents that describe keys
    with placeholders or wildcards (IAM policies); its keys must never be read or written.
    """

    env: str
    package: str
    checked: bool = dataclasses.field(default=True, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.checked:
            validate_env(self.env)
            validate_package(self.package)

    @classmethod
    def pattern(cls, env: str, package: str) -> PackageKeys:
        """Keys with ``env``/``package`` taken as they are (placeholders, wildcards)."""
        return cls(env, package, checked=False)

    @property
    def env_prefix(self) -> str:
        """``<ENV>/``: where this package and its peers live."""
        return f"{self.env}/"

    @property
    def prefix(self) -> str:
        return f"{self.env_prefix}{self.package}/"

    @property
    def metadata(self) -> str:
        return self.prefix + METADATA_NAME

    @property
    def removed_marker(self) -> str:
        return self.prefix + REMOVED_NAME

    @property
    def dags_prefix(self) -> str:
        return self.prefix + DAGS_DIR

    @property
    def releases_prefix(self) -> str:
        return self.prefix + RELEASES_DIR

    def dag(self, dag_id: str) -> str:
        """``<ENV>/<pkg>/dags/<dag_id>.py``: the live DAG file."""
        return self.prefix + dag_file(dag_id)

    def release_bundle(self, release_id: str) -> str:
        """``<ENV>/<pkg>/releases/<release_id>.tar``: the release's DAG files."""
        return self.prefix + bundle_file(release_id)

    def release_metadata(self, release_id: str) -> str:
        """``<ENV>/<pkg>/releases/<release_id>.json``: the release's metadata.json."""
        return f"{self.releases_prefix}{validate_release_id(release_id)}.json"

    def release_id_of_metadata_key(self, key: str) -> str | None:
        """The release id of a ``<prefix>releases/<release_id>.json`` key, or None."""
        if not key.startswith(self.releases_prefix) or not key.endswith(".json"):
            return None
        candidate = key[len(self.releases_prefix) : -len(".json")]
        return candidate if RELEASE_ID_RE.fullmatch(candidate) else None

    def dag_id_of_live_key(self, key: str) -> str | None:
        """The dag_id of a ``<prefix>dags/<dag_id>.py`` key, or None for anything else."""
        if not key.startswith(self.dags_prefix) or not key.endswith(".py"):
            return None
        candidate = key[len(self.dags_prefix) : -len(".py")]
        try:
            return validate_dag_id(candidate)
        except InvalidNameError:
            return None

    def owns(self, key: str) -> bool:
        """True if ``key`` is a plain key under this package's prefix (every part a safe name)."""
        rest = key[len(self.prefix) :] if key.startswith(self.prefix) else ""
        return bool(rest) and all(unsafe_reason(part) is None for part in rest.split("/"))
