"""Test support: build outputs written to disk, a fake image registry, store harnesses."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import tarfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tools.bazel.publisher.build import load_build_output
from tools.bazel.publisher.events import Event, EventSink, ignore_events
from tools.bazel.publisher.image import ImageRegistry
from tools.bazel.publisher.publish import (
    PublishOptions,
    PublishResult,
    publish_build,
    rollback_release,
)
from tools.bazel.publisher.store import Store, open_store
from tools.bazel.storecontract import SCHEMA_VERSION, dag_entry

RUN_RESOURCES = {"run": {"requests": {"cpu": "100m", "memory": "128Mi"}}}

WRITE_METHODS = {"PUT", "POST", "DELETE", "PATCH"}


def digest_of(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def dag_source(dag_id: str, version: int = 1, *, digest: str = "sha256:" + "0" * 64) -> str:
    """A small DAG-like Python file (compiles; never imported)."""
    return (
        f"# Generated for {dag_id}; do not edit.\n"
        f"DAG_ID = {dag_id!r}\n"
        f"VERSION = {version}\n"
        f"IMAGE = 'registry.example.com/etl/pkg@{digest}'\n"
        "def build():\n"
        "    return {'dag_id': DAG_ID, 'version': VERSION}\n"
    )


@dataclasses.dataclass(frozen=True)
class BuildPaths:
    package: str
    dags_dir: Path
    layout: Path
    digest_file: Path
    digest: str
    repository: str
    files: dict[str, bytes]


def write_build(
    root: Path,
    package: str,
    dags: Mapping[str, str | bytes],
    *,
    digest: str | None = None,
    repository: str | None = None,
    metadata_overrides: Mapping[str, Any] | None = None,
) -> BuildPaths:
    """Write what the :dags, :image and :image.digest targets produce for ``package``."""
    out = root / f"build-{uuid.uuid4().hex[:8]}"
    (out / "dags" / "dags").mkdir(parents=True)
    digest = digest or digest_of(package + "-image-1")
    repository = repository or f"registry.example.com/etl/{package}"
    files: dict[str, bytes] = {}
    entries = []
    for dag_id in sorted(dags):
        data = dags[dag_id]
        data = data.encode() if isinstance(data, str) else data
        files[dag_id] = data
        (out / "dags" / "dags" / f"{dag_id}.py").write_bytes(data)
        entries.append(dag_entry(dag_id, data, schedule="0 3 * * *", tasks=["run"], resources=RUN_RESOURCES))
    # assembled here, not by storecontract.build_document: tests also write documents it refuses
    metadata: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "package": package,
        "image": {"repository": repository, "digest": digest, "reference": f"{repository}@{digest}"},
        "revision": None,
        "dags": entries,
    }
    metadata.update(metadata_overrides or {})
    (out / "dags" / "metadata.json").write_text(json.dumps(metadata, sort_keys=True, indent=2) + "\n")
    layout = out / "image"
    layout.mkdir()
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}\n')
    (layout / "index.json").write_text(
        json.dumps(
            {
                "schemaVersion": 2,
                "manifests": [{"digest": digest, "size": 1, "mediaType": "application/vnd.oci.image.manifest.v1+json"}],
            }
        )
    )
    digest_file = out / "image.digest"
    digest_file.write_text(digest + "\n")
    return BuildPaths(
        package=package,
        dags_dir=out / "dags",
        layout=layout,
        digest_file=digest_file,
        digest=digest,
        repository=repository,
        files=files,
    )


def bundle_files(data: bytes) -> dict[str, bytes]:
    """Members of a release bundle (name -> bytes), checking the deterministic header fields."""
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for info in tar:
            assert info.isreg(), info.name
            assert (info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname) == (0, 0o644, 0, 0, "", ""), info
            extracted = tar.extractfile(info)
            assert extracted is not None
            out[info.name] = extracted.read()
    assert list(out) == sorted(out), "members must be sorted by name"
    return out


class FakeRegistry:
    """Stands in for the registry in the image step only: remembers what was pushed."""

    def __init__(self) -> None:
        self.images: set[tuple[str, str]] = set()
        self.pushes: list[tuple[str, str, tuple[str, ...]]] = []
        self.checks: list[tuple[str, str]] = []

    def push(self, layout: Path, repository: str, tags: Any) -> str | None:
        digest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
        self.images.add((repository, digest))
        self.pushes.append((repository, digest, tuple(tags)))
        return str(digest)

    def exists(self, repository: str, digest: str) -> bool:
        self.checks.append((repository, digest))
        return (repository, digest) in self.images


@dataclasses.dataclass
class Harness:
    """One empty DAG store (an S3 bucket on the shared moto server, or a local folder)."""

    kind: str
    url: str
    moto: Any = None
    bucket: str | None = None
    root: Path | None = None

    def store(self) -> Store:
        return open_store(self.url)

    def mark(self) -> int:
        return self.moto.mark() if self.moto is not None else 0

    def requests_since(self, mark: int) -> list[tuple[str, str]]:
        """(method, path) of requests to this bucket since ``mark`` (S3 only)."""
        assert self.moto is not None, "request logs exist for the S3 store only"
        prefix = f"/{self.bucket}"
        return [
            (m, p)
            for m, p in self.moto.requests_since(mark)
            if p == prefix or p.startswith((prefix + "/", prefix + "?"))
        ]

    def writes_since(self, mark: int) -> list[tuple[str, str]]:
        """(method, key) of write requests since ``mark`` (S3 only)."""
        prefix = f"/{self.bucket}/"
        return [(m, p[len(prefix) :]) for m, p in self.requests_since(mark) if m in WRITE_METHODS]

    def snapshot(self) -> dict[str, bytes]:
        """Every object in the store, key -> bytes (and, for a folder, every directory)."""
        if self.kind == "file":
            assert self.root is not None
            out: dict[str, bytes] = {}
            if self.root.exists():
                for path in sorted(self.root.rglob("*")):
                    rel = path.relative_to(self.root).as_posix()
                    out[rel] = path.read_bytes() if path.is_file() else b"<dir>"
            return out
        store = self.store()
        result = {}
        for info in store.iter_objects(""):
            obj = store.get(info.key)
            assert obj is not None
            result[info.key] = obj.data
        return result

    def read(self, key: str) -> bytes | None:
        obj = self.store().get(key)
        return obj.data if obj else None

    def metadata(self, env: str, package: str) -> dict[str, Any] | None:
        data = self.read(f"{env}/{package}/metadata.json")
        return json.loads(data) if data is not None else None


def do_publish(
    harness: Harness,
    build: BuildPaths,
    registry: ImageRegistry,
    *,
    env: str = "dev",
    on_event: EventSink = ignore_events,
    **options: Any,
) -> PublishResult:
    loaded = load_build_output(build.dags_dir, package=build.package, image_digest_file=build.digest_file)
    return publish_build(
        loaded,
        store=harness.store(),
        env=env,
        registry=registry,
        image_layout=build.layout,
        options=PublishOptions(**options),
        on_event=on_event,
    )


def do_rollback(
    harness: Harness, package: str, release_id: str, registry: ImageRegistry, *, env: str = "dev", **options: Any
) -> PublishResult:
    return rollback_release(
        release_id,
        store=harness.store(),
        env=env,
        package=package,
        registry=registry,
        options=PublishOptions(**options),
    )


def on_kind(kind: str, action: Callable[[Event], None], *, key_suffix: str | None = None) -> EventSink:
    """An EventSink calling ``action`` once, on the first event of ``kind`` (and key suffix)."""
    fired = False

    def sink(event: Event) -> None:
        nonlocal fired
        if fired or event.kind != kind:
            return
        if key_suffix is not None and not (event.key or "").endswith(key_suffix):
            return
        fired = True
        action(event)

    return sink
