"""Every store key the publisher reads or writes is built here, from validated names only.

Layout (docs/store-layout.md)::

    <ENV>/<pkg>/dags/<dag_id>.py
    <ENV>/<pkg>/metadata.json
    <ENV>/<pkg>/releases/<release_id>.tar      (the release's DAG files, one tar)
    <ENV>/<pkg>/releases/<release_id>.json     (the release's metadata.json)
    <ENV>/<pkg>/REMOVED

Names are screened before the pattern check so that the error says *why* a name is unsafe
(traversal, percent-encoding, look-alike characters...), then matched in full against an
ASCII-only pattern. No key is ever built from a path read from a file.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata

from publisher.errors import InvalidNameError, OutsidePrefixError

__all__ = [
    "DAG_ID_RE",
    "NAME_RE",
    "RELEASE_ID_RE",
    "PackageKeys",
    "env_prefix",
    "package_metadata_key",
    "validate_dag_id",
    "validate_name",
    "validate_release_id",
]

NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}", re.ASCII)
DAG_ID_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}", re.ASCII)
RELEASE_ID_RE = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}", re.ASCII)

_NAME_RULE = "^[a-z][a-z0-9_-]{0,62}$"
_DAG_ID_RULE = "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$"
_RELEASE_RULE = "YYYYMMDDTHHMMSSZ-<8 hex>"


def _unsafe_reason(value: str) -> str | None:
    """Why ``value`` cannot be one component of a store key, or None if nothing obvious."""
    if value == "":
        return "it is empty"
    if "\x00" in value:
        return "it contains a NUL byte"
    if unicodedata.normalize("NFKC", value) != value:
        return "it changes under unicode NFKC normalisation (a look-alike character?)"
    if not value.isascii():
        return "it contains non-ASCII characters (look-alikes are not allowed)"
    if "\\" in value:
        return "it contains a backslash"
    if value.startswith("/"):
        return "it is an absolute path"
    if "/" in value:
        return "it contains '/'"
    if "%" in value:
        return "it contains '%' (percent-encoding such as %2e%2e is not allowed)"
    if ".." in value:
        return "it contains '..'"
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        return "it contains whitespace or control characters"
    return None


def _check(kind: str, value: object, pattern: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str):
        raise InvalidNameError(f"invalid {kind} {value!r}: must be a string matching {rule}")
    reason = _unsafe_reason(value)
    if reason is None and pattern.fullmatch(value) is None:
        reason = f"it must match {rule}"
    if reason is not None:
        raise InvalidNameError(f"invalid {kind} {value!r}: {reason}")
    return value


def validate_name(kind: str, value: object) -> str:
    """Return ``value`` if it is a safe env or package name, else raise InvalidNameError."""
    return _check(kind, value, NAME_RE, _NAME_RULE)


def validate_dag_id(value: object) -> str:
    """Return ``value`` if it is a safe dag_id, else raise InvalidNameError."""
    return _check("dag_id", value, DAG_ID_RE, _DAG_ID_RULE)


def validate_release_id(value: object) -> str:
    """Return ``value`` if it is a well-formed release id, else raise InvalidNameError."""
    return _check("release id", value, RELEASE_ID_RE, _RELEASE_RULE)


def env_prefix(env: str) -> str:
    """``<ENV>/``: where the packages of one env live (read-only for the publisher)."""
    return validate_name("env", env) + "/"


def package_metadata_key(env: str, package: str) -> str:
    """``<ENV>/<pkg>/metadata.json`` of any package (used to read other packages)."""
    return f"{env_prefix(env)}{validate_name('package', package)}/metadata.json"


@dataclasses.dataclass(frozen=True)
class PackageKeys:
    """The keys of one package in one env; the only place write keys are built."""

    env: str
    package: str

    def __post_init__(self) -> None:
        validate_name("env", self.env)
        validate_name("package", self.package)

    @property
    def prefix(self) -> str:
        return f"{self.env}/{self.package}/"

    @property
    def metadata(self) -> str:
        return self.prefix + "metadata.json"

    @property
    def removed_marker(self) -> str:
        return self.prefix + "REMOVED"

    @property
    def dags_prefix(self) -> str:
        return self.prefix + "dags/"

    @property
    def releases_prefix(self) -> str:
        return self.prefix + "releases/"

    @staticmethod
    def dag_file(dag_id: str) -> str:
        """The ``file`` value of a DAG in metadata.json: ``dags/<dag_id>.py``."""
        return f"dags/{validate_dag_id(dag_id)}.py"

    def dag(self, dag_id: str) -> str:
        return self.prefix + self.dag_file(dag_id)

    @staticmethod
    def bundle_file(release_id: str) -> str:
        """``release.bundle.key`` in metadata.json: ``releases/<release_id>.tar`` (relative)."""
        return f"releases/{validate_release_id(release_id)}.tar"

    def release_bundle(self, release_id: str) -> str:
        """``<ENV>/<pkg>/releases/<release_id>.tar``: the release's DAG files."""
        return self.prefix + self.bundle_file(release_id)

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

    def check_writable(self, key: str) -> str:
        """Raise OutsidePrefixError unless ``key`` is a plain key under this package's prefix."""
        rest = key[len(self.prefix) :] if key.startswith(self.prefix) else ""
        parts = rest.split("/")
        if not rest or any(_unsafe_reason(part) is not None for part in parts):
            raise OutsidePrefixError(
                f"refusing to write {key!r}: package {self.package!r} may only write under "
                f"{self.prefix!r}"
            )
        return key
