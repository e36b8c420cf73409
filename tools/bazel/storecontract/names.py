"""Names that become parts of store keys: env, package, dag_id, release id.

One rule each, matched in full (``re.fullmatch``: ``re.match`` with ``$`` would let a trailing
newline through). Before the pattern, a name is screened so that the error says *why* it is
unsafe (traversal, percent-encoding, look-alike characters...). The ``*_PATTERN`` strings carry
``^...$`` so that they can also go into a JSON Schema (ECMA regexes) unchanged.
"""

from __future__ import annotations

import re
import unicodedata

from tools.bazel.storecontract.errors import InvalidNameError

__all__ = [
    "DAG_ID_PATTERN",
    "DAG_ID_RE",
    "NAME_PATTERN",
    "NAME_RE",
    "RELEASE_ID_PATTERN",
    "RELEASE_ID_RE",
    "unsafe_reason",
    "validate_dag_id",
    "validate_env",
    "validate_name",
    "validate_package",
    "validate_release_id",
]

# env and package: also a Kubernetes label value and, with '_' as '-', a DNS label (the package's
# ServiceAccount), hence alphanumeric at both ends and at most 63 characters.
NAME_PATTERN = r"^[a-z]([a-z0-9_-]{0,61}[a-z0-9])?$"
# Airflow's own dag_id rule minus characters unsafe in keys, and never '..'.
DAG_ID_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9_][A-Za-z0-9_.-]{0,249}$"
# YYYYMMDDTHHMMSSZ-<first 8 hex of the build metadata's sha256>: sorts by time.
RELEASE_ID_PATTERN = r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$"

NAME_RE = re.compile(NAME_PATTERN, re.ASCII)
DAG_ID_RE = re.compile(DAG_ID_PATTERN, re.ASCII)
RELEASE_ID_RE = re.compile(RELEASE_ID_PATTERN, re.ASCII)

_NAME_RULE = "1-63 of a-z, 0-9, '_', '-', starting with a letter, ending with a letter or digit"
_DAG_ID_RULE = "1-250 of A-Z, a-z, 0-9, '_', '.', '-', not starting with '.' or '-'"
_RELEASE_RULE = "YYYYMMDDTHHMMSSZ-<8 lowercase hex>"


def unsafe_reason(value: str) -> str | None:
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
        raise InvalidNameError(f"invalid {kind} {value!r}: must be a string of {rule}")
    reason = unsafe_reason(value)
    if reason is None and pattern.fullmatch(value) is None:
        reason = f"it must be {rule}"
    if reason is not None:
        raise InvalidNameError(f"invalid {kind} {value!r}: {reason}", problem=reason)
    return value


def validate_name(kind: str, value: object) -> str:
    """Return ``value`` if it is a valid env or package name (``kind`` names it in the error)."""
    return _check(kind, value, NAME_RE, _NAME_RULE)


def validate_env(value: object) -> str:
    return validate_name("env", value)


def validate_package(value: object) -> str:
    return validate_name("package", value)


def validate_dag_id(value: object) -> str:
    """Return ``value`` if it is a valid dag_id, else raise InvalidNameError."""
    return _check("dag_id", value, DAG_ID_RE, _DAG_ID_RULE)


def validate_release_id(value: object) -> str:
    """Return ``value`` if it is a well-formed release id, else raise InvalidNameError."""
    return _check("release id", value, RELEASE_ID_RE, _RELEASE_RULE)
