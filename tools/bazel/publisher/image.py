"""The image step: the package image must be in the registry, by digest, before any DAG
that pins it is published. Talks to the registry through ``ImageRegistry`` so the store side
can be tested on its own; ``OcitoolRegistry`` is the real one (tools/bazel/ocitool)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from tools.bazel.publisher.errors import ImageError, UsageError

__all__ = ["ImageOutcome", "ImageRegistry", "OcitoolRegistry", "ensure_image", "validate_repository", "validate_tag"]

_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)
_REPO_RE = re.compile(
    r"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*",
    re.ASCII,
)


class ImageRegistry(Protocol):
    """The two registry operations the publisher needs."""

    def push(self, layout: Path, repository: str, tags: Sequence[str]) -> str | None:
        """Push the OCI layout to ``repository`` (and ``tags``); return the pushed digest if known."""
        ...

    def exists(self, repository: str, digest: str) -> bool:
        """Whether the manifest ``repository@digest`` is in the registry."""
        ...


class OcitoolRegistry:
    """ImageRegistry backed by ``ocitool.push.push_layout`` and ``ocitool.registry.manifest_exists``."""

    def push(self, layout: Path, repository: str, tags: Sequence[str]) -> str | None:
        from tools.bazel.ocitool.push import push_layout

        result = push_layout(layout, repository, list(tags))
        digest = getattr(result, "manifest_digest", None) or getattr(result, "digest", None)
        return str(digest) if digest else None

    def exists(self, repository: str, digest: str) -> bool:
        from tools.bazel.ocitool.registry import manifest_exists

        return bool(manifest_exists(repository, digest))


@dataclasses.dataclass(frozen=True)
class ImageOutcome:
    """What the image step did."""

    repository: str
    digest: str
    pushed: bool
    tags: tuple[str, ...]

    @property
    def reference(self) -> str:
        return f"{self.repository}@{self.digest}"


def validate_tag(tag: str) -> str:
    if not _TAG_RE.fullmatch(tag):
        raise UsageError(f"invalid flag: --tag/IMAGE_TAG {tag!r}: must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")
    return tag


def validate_repository(repository: str) -> str:
    if not _REPO_RE.fullmatch(repository):
        raise UsageError(
            f"invalid flag: --repository/IMAGE_REPOSITORY {repository!r}: expected a registry "
            "prefix [host[:port]/]path, e.g. registry.example.com/etl"
        )
    return repository


def ensure_image(
    registry: ImageRegistry,
    *,
    repository: str,
    digest: str,
    layout: Path | None,
    tags: Sequence[str],
    push: bool,
) -> ImageOutcome:
    """Push the image (``push``) or verify it is there; raise ImageError otherwise."""
    reference = f"{repository}@{digest}"
    if not push:
        try:
            present = registry.exists(repository, digest)
        except ImageError:
            raise
        except Exception as exc:  # the registry client's own errors: report them on one line
            raise ImageError(f"cannot check image {reference!r} in the registry: {exc}") from exc
        if not present:
            raise ImageError(
                f"image {reference!r} is not in the registry and pushing is off (--no-push or "
                "rollback); push it first (bazel run //packages/<pkg>:push) or drop --no-push"
            )
        return ImageOutcome(repository=repository, digest=digest, pushed=False, tags=())
    if layout is None or not (layout / "index.json").is_file():
        raise ImageError(
            f"image layout {str(layout)!r} has no index.json; pass the package's :image output "
            "as --image-layout, or use --no-push"
        )
    try:
        pushed = registry.push(layout, repository, list(tags))
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"pushing {str(layout)!r} to {repository!r} failed: {exc}") from exc
    if pushed is None:  # the client did not say what it pushed: check the digest is there
        try:
            present = registry.exists(repository, digest)
        except Exception as exc:
            raise ImageError(f"cannot check image {reference!r} after pushing it: {exc}") from exc
        if not present:
            raise ImageError(f"pushed {str(layout)!r} but {reference!r} is not in the registry")
    elif pushed != digest:
        raise ImageError(
            f"pushed {repository!r} as {pushed!r} but the DAGs pin {digest!r}; rebuild so the "
            ":image and :dags outputs agree"
        )
    return ImageOutcome(repository=repository, digest=digest, pushed=True, tags=tuple(tags))
