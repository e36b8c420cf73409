"""Push an OCI image layout to a registry: missing blobs, then the manifest by digest, then tags.

Each blob is checked with HEAD first and uploaded only when the registry lacks it, several at a
time. The manifest is PUT by its digest before any tag, so a tag never points at a manifest
whose blobs are not there yet.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tools.bazel.ocitool.errors import ImageInputError, RegistryError, UsageError
from tools.bazel.ocitool.image import DOCKER_MANIFEST_TYPES, INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE
from tools.bazel.ocitool.registry import (
    Credentials,
    RegistryClient,
    docker_credentials,
    parse_repository,
)

__all__ = ["PushResult", "human_bytes", "push_layout", "validate_tag"]

_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover


def validate_tag(tag: str) -> str:
    if not _TAG_RE.match(tag):
        raise UsageError(f"invalid flag: --tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}")
    return tag


@dataclasses.dataclass(frozen=True)
class PushResult:
    """What a push did."""

    repository: str
    manifest_digest: str
    tags: tuple[str, ...]
    blobs_uploaded: int
    blobs_skipped: int
    bytes_uploaded: int
    bytes_skipped: int
    seconds: float

    @property
    def reference(self) -> str:
        """``registry/path@sha256:...``: the address to pin."""
        return f"{self.repository}@{self.manifest_digest}"

    def summary(self) -> str:
        tags = ", ".join(self.tags) if self.tags else "none"
        return (
            f"pushed {self.reference}: uploaded {self.blobs_uploaded} blobs ({human_bytes(self.bytes_uploaded)}), "
            f"skipped {self.blobs_skipped} already there ({human_bytes(self.bytes_skipped)}), "
            f"tags: {tags}, {self.seconds:.2f}s"
        )


@dataclasses.dataclass(frozen=True)
class _Blob:
    digest: str
    size: int
    path: Path


@dataclasses.dataclass(frozen=True)
class _Manifest:
    digest: str
    media_type: str
    data: bytes


def _blob_path(layout: Path, digest: str) -> Path:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hexpart):
        raise ImageInputError(f"OCI layout {str(layout)!r}: unsupported digest {digest!r}")
    return layout / "blobs" / algo / hexpart


def _read_plan(layout: Path) -> tuple[list[_Manifest], list[_Blob]]:
    """Manifests in push order (children before their index) and the distinct blobs they need."""
    try:
        index = json.loads((layout / "index.json").read_bytes())
    except FileNotFoundError:
        raise ImageInputError(f"{str(layout)!r} is not an OCI image layout (no index.json)") from None
    except json.JSONDecodeError as exc:
        raise ImageInputError(f"{str(layout)!r}: index.json is not valid JSON: {exc}") from None
    tops = index.get("manifests") or []
    if len(tops) != 1:
        raise ImageInputError(f"OCI layout {str(layout)!r} holds {len(tops)} manifests: push needs exactly one")
    manifests: list[_Manifest] = []
    blobs: dict[str, _Blob] = {}

    def add_blob(desc: dict[str, Any]) -> None:
        path = _blob_path(layout, desc["digest"])
        if not path.is_file():
            raise ImageInputError(f"OCI layout {str(layout)!r} lacks blob {desc['digest']!r}")
        size = path.stat().st_size
        if "size" in desc and desc["size"] != size:
            raise ImageInputError(
                f"OCI layout {str(layout)!r}: blob {desc['digest']!r} has {size} bytes, descriptor says {desc['size']}"
            )
        blobs.setdefault(desc["digest"], _Blob(desc["digest"], size, path))

    def visit(desc: dict[str, Any]) -> None:
        path = _blob_path(layout, desc["digest"])
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ImageInputError(f"OCI layout {str(layout)!r} lacks manifest blob {desc['digest']!r}") from None
        doc = json.loads(data)
        media_type = doc.get("mediaType") or desc.get("mediaType") or MANIFEST_MEDIA_TYPE
        if media_type in (INDEX_MEDIA_TYPE, DOCKER_MANIFEST_TYPES[1]):
            for child in doc.get("manifests", []):
                visit(child)
        else:
            add_blob(doc["config"])
            for layer in doc.get("layers", []):
                add_blob(layer)
        manifests.append(_Manifest(desc["digest"], media_type, data))

    visit(tops[0])
    return manifests, list(blobs.values())


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def push_layout(
    layout: Path,
    repository: str,
    tags: Sequence[str] = (),
    *,
    jobs: int = 4,
    credentials: Credentials | None = None,
    timeout: float = 60.0,
    retries: int = 4,
    chunk_size: int | None = None,
    log: Callable[[str], None] = _stderr,
) -> PushResult:
    """Push the single image in OCI layout ``layout`` to ``repository`` (``host[:port]/path``)."""
    started = time.monotonic()
    layout = Path(layout)
    repo = parse_repository(repository)
    tags = tuple(validate_tag(t) for t in tags)
    manifests, blobs = _read_plan(layout)
    creds = credentials if credentials is not None else docker_credentials(repo.registry)
    client = RegistryClient(repo, credentials=creds, timeout=timeout, retries=retries)
    total = len(blobs)
    log(f"ocitool push: {repo}: {total} blobs ({human_bytes(sum(b.size for b in blobs))}) to check")
    lock = threading.Lock()
    counters = {
        "uploaded": 0,
        "skipped": 0,
        "bytes_uploaded": 0,
        "bytes_skipped": 0,
        "done": 0,
    }

    def push_blob(blob: _Blob) -> None:
        if client.blob_exists(blob.digest):
            kind = "skipped"
        else:
            client.upload_blob(blob.digest, blob.path, blob.size, chunk_size=chunk_size)
            kind = "uploaded"
        with lock:
            counters[kind] += 1
            counters["bytes_" + kind] += blob.size
            counters["done"] += 1
            verb = "uploaded" if kind == "uploaded" else "exists  "
            log(f"ocitool push: {verb} {blob.digest[:19]} {human_bytes(blob.size)} [{counters['done']}/{total}]")

    try:
        client.ping()
        # biggest first, so the long uploads start early
        ordered = sorted(blobs, key=lambda b: (-b.size, b.digest))
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            for future in [pool.submit(push_blob, b) for b in ordered]:
                future.result()
        for manifest in manifests:
            reported = client.put_manifest(manifest.digest, manifest.data, manifest.media_type)
            if reported and reported != manifest.digest:
                raise RegistryError(
                    f"registry {repo.registry!r} stored manifest {manifest.digest!r} of repository {repo.name!r} "
                    f"as {reported!r}: it rewrote the manifest; push to an OCI-compliant registry"
                )
        top = manifests[-1]
        log(f"ocitool push: manifest {top.digest}")
        for tag in tags:
            client.put_manifest(tag, top.data, top.media_type)
            log(f"ocitool push: tagged {repo}:{tag}")
    finally:
        client.close()
    result = PushResult(
        repository=str(repo),
        manifest_digest=top.digest,
        tags=tags,
        blobs_uploaded=counters["uploaded"],
        blobs_skipped=counters["skipped"],
        bytes_uploaded=counters["bytes_uploaded"],
        bytes_skipped=counters["bytes_skipped"],
        seconds=time.monotonic() - started,
    )
    log("ocitool push: " + result.summary())
    return result
