"""The package image a DAG runs: ``<repository>/<package>@sha256:<digest>``."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from tools.bazel.dagrender.errors import InputFileError
from tools.bazel.dagrender.names import PACKAGE_RE, REPOSITORY_RE, is_label_value

__all__ = ["ImageRef", "read_digest_file", "read_entrypoints"]

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImageRef:
    """A package image pinned by digest."""

    repository_prefix: str
    package: str
    digest: str

    def __post_init__(self) -> None:
        if not re.fullmatch(PACKAGE_RE, self.package) or not is_label_value(self.package):
            raise InputFileError(
                f"invalid package name {self.package!r}: use lowercase letters, digits, '_' and '-', "
                "starting with a letter and ending with a letter or digit, at most 63 characters"
            )
        if not re.fullmatch(REPOSITORY_RE, self.repository_prefix):
            raise InputFileError(
                f"invalid repository {self.repository_prefix!r}: write a registry host with an optional "
                "port and lowercase path, e.g. 'registry.example.com/etl' or '127.0.0.1:5000/etl'"
            )
        if not _DIGEST.fullmatch(self.digest):
            raise InputFileError(f"invalid image digest {self.digest!r}: expected 'sha256:' and 64 hex digits")

    @property
    def repository(self) -> str:
        """The full image repository, ``<prefix>/<package>``."""
        return f"{self.repository_prefix}/{self.package}"

    @property
    def reference(self) -> str:
        """The pinned reference, ``<prefix>/<package>@sha256:...``."""
        return f"{self.repository}@{self.digest}"

    @property
    def short_digest(self) -> str:
        """The first 12 hex digits of the digest, a valid Kubernetes label value."""
        return self.digest.removeprefix("sha256:")[:12]


def read_digest_file(path: Path) -> str:
    """Read an image ``.digest`` file (``sha256:<64 hex>``, optional trailing newline)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read digest file {str(path)!r}: {exc}") from None
    if not _DIGEST.fullmatch(text):
        raise InputFileError(
            f"digest file {str(path)!r} holds {text[:80]!r}; expected 'sha256:' followed by 64 lowercase hex digits"
        )
    return text


def read_entrypoints(path: Path) -> frozenset[str]:
    """Read the list of job modules of a package: one dotted module per line, '#' comments allowed."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read entrypoints file {str(path)!r}: {exc}") from None
    modules: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if not _MODULE.fullmatch(line):
            raise InputFileError(f"entrypoints file {str(path)!r} line {number}: {line!r} is not a dotted module name")
        modules.add(line)
    return frozenset(modules)
