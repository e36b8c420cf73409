"""A DAG store filled by the product's own writers, for tests and benchmarks of its readers.

Build outputs are laid out as the ``:dags``, ``:image`` and ``:image.digest`` targets write them
(docs/store-layout.md: ``metadata.json`` without ``env``/``release``, ``dags/<dag_id>.py``), the
image is a real, small OCI layout written by ocitool, and every publish goes through the real
publisher library, pushing the image to a real registry (Debian's docker-registry, see
``tools.testing.registry``) with ocitool. What a reader finds in the store (release bundles,
``releases/<id>.json``, conditional commits of ``metadata.json``) is exactly what production has.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tools.bazel.storecontract import build_document, canonical_json, dag_entry

__all__ = ["RUN_RESOURCES", "build_output", "publish", "rollback", "small_image", "synthetic_dag"]

RUN_RESOURCES = {"run": {"requests": {"cpu": "100m", "memory": "128Mi"}}}
"""The resources of the one task ``run`` the DAGs of test builds have."""


def small_image(out: Path, *, label: str) -> str:
    """Write a one-layer OCI layout at ``out`` (a marker file named after ``label``); return its digest.

    A different ``label`` gives a different digest, as a rebuilt package image would.
    """
    from tools.bazel.ocitool.image import ImageOptions, build_image

    out.parent.mkdir(parents=True, exist_ok=True)
    layer = out.parent / f"{out.name}.layer.tar"
    data = f"{label}\n".encode()
    with tarfile.open(layer, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("etc/etl-image-label")
        info.size, info.mtime, info.mode = len(data), 0, 0o644
        tar.addfile(info, io.BytesIO(data))
    result = build_image(out=out, layers=[layer], options=ImageOptions(labels={"etl.test/label": label}))
    layer.unlink()
    return str(result.manifest_digest)


def synthetic_dag(package: str, dag_id: str, image: str) -> bytes:
    """A small DAG file pinning ``image`` (compiles; it imports nothing, so any parser loads it fast)."""
    return (
        f'"""Synthetic DAG {dag_id} of {package} (tools/testing/dagstore.py)."""\n'
        f"DAG_ID = {dag_id!r}\nIMAGE = {image!r}\n"
    ).encode()


def build_output(
    out: Path, package: str, files: Mapping[str, bytes], *, repository: str, image_layout: Path, digest: str
) -> Path:
    """Lay out a package's build output under ``out`` (``metadata.json``, ``dags/``, ``image``,
    ``image.digest``) for the DAG files ``files`` (dag_id -> bytes); return ``out``."""
    (out / "dags").mkdir(parents=True, exist_ok=True)
    for dag_id, data in files.items():
        (out / "dags" / f"{dag_id}.py").write_bytes(data)
    metadata = build_document(
        package=package,
        repository=repository,
        digest=digest,
        revision=None,
        dags=[
            dag_entry(d, data, schedule="0 3 * * *", tasks=["run"], resources=RUN_RESOURCES)
            for d, data in files.items()
        ],
    )
    (out / "metadata.json").write_bytes(canonical_json(metadata))
    (out / "image.digest").write_text(digest)
    if (out / "image") != image_layout:
        (out / "image").symlink_to(image_layout)
    return out


def publish(root: Path, package: str, *, store_url: str, env: str, registry: Any = None) -> Any:
    """``bazel run //packages/<package>:publish`` of the build output at ``root``, as a library call.

    ``registry`` is the publisher's ImageRegistry; default: ocitool against the repository the
    build names (a local docker-registry). Returns the publisher's PublishResult.
    """
    from tools.bazel.publisher import OcitoolRegistry, load_build_output, open_store, publish_build

    build = load_build_output(root, package=package, image_digest_file=root / "image.digest")
    return publish_build(
        build, store=open_store(store_url), env=env, registry=registry or OcitoolRegistry(), image_layout=root / "image"
    )


def rollback(release_id: str, package: str, *, store_url: str, env: str, registry: Any = None) -> Any:
    """``publish -- --rollback <release_id>`` as a library call; returns the PublishResult."""
    from tools.bazel.publisher import OcitoolRegistry, open_store, rollback_release

    return rollback_release(
        release_id, store=open_store(store_url), env=env, package=package, registry=registry or OcitoolRegistry()
    )
