"""The image step with the real ocitool client against a real docker-registry on loopback."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.bazel.publisher import ImageError, OcitoolRegistry
from tools.bazel.publisher.events import Event
from tools.bazel.publisher.tests.helpers import (
    Harness,
    dag_source,
    do_publish,
    on_kind,
    write_build,
)
from tools.testing.registry import registry_binary, registry_server


@pytest.fixture(autouse=True)
def _registry_installed() -> None:
    # The toolchain root installs it; a missing one is a broken root, not a reason to skip.
    if registry_binary() is None:
        pytest.fail(
            "docker-registry is not installed (Debian package docker-registry; tools/toolchain/)", pytrace=False
        )


PKG = "file_processing"


def _blob(layout: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    path = layout / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def make_layout(layout: Path, label: str) -> str:
    """A tiny valid single-image OCI layout; returns its manifest digest."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        body = f"hello from {label}\n".encode()
        info = tarfile.TarInfo("etc/label")
        info.size, info.mtime = len(body), 0
        tar.addfile(info, io.BytesIO(body))
    layer = _blob(layout, gzip.compress(raw.getvalue(), mtime=0))
    layer["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    config = _blob(
        layout,
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]},
                "config": {},
            },
            sort_keys=True,
        ).encode(),
    )
    config["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = _blob(
        layout,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config,
                "layers": [layer],
            },
            sort_keys=True,
        ).encode(),
    )
    manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [manifest]}))
    return str(manifest["digest"])


@pytest.fixture(scope="module")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    with registry_server(work_dir=tmp_path_factory.mktemp("registry")) as server:
        yield server


def real_build(tmp_path: Path, server: object, label: str, version: int = 1):
    repository = server.repository(f"etl/{PKG}")  # type: ignore[attr-defined]
    probe = tmp_path / f"probe-{label}"
    digest = make_layout(probe, label)
    build = write_build(
        tmp_path, PKG, {"fp_a": dag_source("fp_a", version, digest=digest)}, digest=digest, repository=repository
    )
    # replace the placeholder layout with the real one
    for item in build.layout.iterdir():
        item.unlink()
    make_layout(build.layout, label)
    return build


def test_push_happens_before_any_dag_write_and_no_push_verifies(oci_registry: object, tmp_path: Path) -> None:
    root = tmp_path / "store"
    harness = Harness(kind="file", url=root.as_uri(), root=root)
    registry = OcitoolRegistry()
    build = real_build(tmp_path, oci_registry, "one")
    seen_at_first_write: list[bool] = []

    def check(_: Event) -> None:  # the first store write: the image must be in the registry by then
        seen_at_first_write.append(registry.exists(build.repository, build.digest))

    result = do_publish(harness, build, registry, image_tag="v1", on_event=on_kind("put", check))

    assert result.image is not None and result.image.pushed and result.image.tags == ("v1",)
    assert seen_at_first_write == [True]
    methods = [(m, p) for m, p, s in oci_registry.requests() if m == "PUT" and "/manifests/" in p]  # type: ignore[attr-defined]
    assert methods[0][1].endswith(f"/manifests/{build.digest}") and methods[-1][1].endswith("/manifests/v1")

    # --no-push: verified by digest, nothing pushed
    again = real_build(tmp_path, oci_registry, "one", version=2)
    mark = oci_registry.mark()  # type: ignore[attr-defined]
    assert do_publish(harness, again, registry, push=False).image.pushed is False  # type: ignore[union-attr]
    assert not [r for r in oci_registry.requests_since(mark) if r[0] in ("PUT", "POST", "PATCH")]  # type: ignore[attr-defined]

    # an image that was never pushed fails the publish, and the store keeps the last release
    missing = real_build(tmp_path, oci_registry, "never-pushed")
    before = harness.snapshot()
    with pytest.raises(
        ImageError,
        match=r"127\.0\.0\.1:\d+/etl/file_processing@sha256:[0-9a-f]{64}' is not in the "
        r"registry and pushing is off",
    ):
        do_publish(harness, missing, registry, push=False)
    assert harness.snapshot() == before
