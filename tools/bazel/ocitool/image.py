"""Assemble an OCI image layout directory from a base and layer blobs.

Output (``--out DIR``): ``oci-layout``, ``index.json`` (one manifest) and ``blobs/sha256/*`` (the
layers, the config and the manifest). The config is fixed at the epoch (or SOURCE_DATE_EPOCH),
os linux, arch amd64, with ``rootfs.diff_ids`` and one history entry per layer; JSON is written
with sorted keys and no whitespace, so the same inputs give the same bytes and digests.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.bazel.ocitool._tario import GzipWriter
from tools.bazel.ocitool.errors import ImageInputError
from tools.bazel.ocitool.layer import DEFAULT_GZIP_LEVEL, LAYER_MEDIA_TYPE, default_mtime
from tools.bazel.ocitool.scan import LayerScan, scan_layer

__all__ = [
    "CONFIG_MEDIA_TYPE",
    "INDEX_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "ImageOptions",
    "ImageResult",
    "build_image",
    "canonical_json",
    "read_layout",
]

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the bytes that get hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def rfc3339(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True)
class ImageOptions:
    """What goes into the image config. ``None`` keeps the base's value."""

    entrypoint: Sequence[str] | None = None
    cmd: Sequence[str] | None = None
    env: Sequence[tuple[str, str]] = ()
    user: str | None = None
    workdir: str | None = None
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    created: int | None = None  # seconds since the epoch; default SOURCE_DATE_EPOCH or 0
    os: str = "linux"
    architecture: str = "amd64"


@dataclasses.dataclass(frozen=True)
class LayerOut:
    """A layer as it ended up in the image."""

    digest: str
    size: int
    diff_id: str
    from_base: bool
    scan: LayerScan | None  # None when not scanned
    media_type: str = LAYER_MEDIA_TYPE


@dataclasses.dataclass(frozen=True)
class ImageResult:
    """Digests of what ``build_image`` wrote."""

    layout: Path
    manifest_digest: str
    manifest_size: int
    config_digest: str
    layers: list[LayerOut]

    @property
    def total_layer_bytes(self) -> int:
        return sum(layer.size for layer in self.layers)


@dataclasses.dataclass
class Layout:
    """A single-image OCI layout read from disk."""

    root: Path
    manifest: dict[str, Any]
    config: dict[str, Any]

    def blob(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        return self.root / "blobs" / algo / hexpart


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise ImageInputError(f"{what} {str(path)!r} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ImageInputError(f"{what} {str(path)!r} is not valid JSON: {exc}") from None


def read_layout(root: str | os.PathLike[str], *, os_name: str = "linux", arch: str = "amd64") -> Layout:
    """Read an OCI layout with one image (or an index holding one for ``os_name/arch``)."""
    root = Path(root)
    if not (root / "oci-layout").is_file():
        raise ImageInputError(f"{str(root)!r} is not an OCI image layout (no oci-layout file)")
    index = _read_json(root / "index.json", "OCI index")
    descriptors = index.get("manifests") or []
    if len(descriptors) != 1:
        raise ImageInputError(
            f"OCI layout {str(root)!r} holds {len(descriptors)} manifests in index.json: expected exactly one"
        )
    desc = descriptors[0]
    layout = Layout(root=root, manifest={}, config={})
    manifest = _read_json(layout.blob(desc["digest"]), "manifest blob")
    if manifest.get("mediaType") in (INDEX_MEDIA_TYPE, DOCKER_MANIFEST_TYPES[1]) or "manifests" in manifest:
        chosen = [
            m
            for m in manifest.get("manifests", [])
            if m.get("platform", {}).get("os") == os_name and m.get("platform", {}).get("architecture") == arch
        ]
        if not chosen:
            raise ImageInputError(f"OCI layout {str(root)!r} has no image for {os_name}/{arch}")
        manifest = _read_json(layout.blob(chosen[0]["digest"]), "manifest blob")
    layout.manifest = manifest
    layout.config = _read_json(layout.blob(manifest["config"]["digest"]), "config blob")
    return layout


def _parse_env(env: Sequence[str]) -> list[tuple[str, str]]:
    out = []
    for item in env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ImageInputError(f"env entry {item!r} must look like KEY=VALUE")
        out.append((key, value))
    return out


def _merge_env(base: Sequence[str], extra: Sequence[tuple[str, str]]) -> list[str]:
    merged: dict[str, str] = dict(_parse_env(base))
    for key, value in extra:
        merged[key] = value
    if "PATH" not in merged:
        merged = {"PATH": DEFAULT_PATH.split("=", 1)[1], **merged}
    return [f"{k}={v}" for k, v in merged.items()]


def _write_blob(blobs: Path, data: bytes) -> tuple[str, int]:
    hexdigest = hashlib.sha256(data).hexdigest()
    (blobs / hexdigest).write_bytes(data)
    return "sha256:" + hexdigest, len(data)


def _gzip_file(src: Path, dst: Path, level: int) -> tuple[str, int]:
    with open(src, "rb") as inp, open(dst, "wb") as out:
        gz = GzipWriter(out, level=level)
        while chunk := inp.read(1 << 20):
            gz.write(chunk)
        gz.close()
    return gz.out.digest, gz.out.size


def _prepare_out(out: Path) -> Path:
    if out.exists():
        if not out.is_dir():
            raise ImageInputError(f"--out {str(out)!r} exists and is not a directory")
        for child in out.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
    blobs = out / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    return blobs


def build_image(
    *,
    out: str | os.PathLike[str],
    layers: Sequence[str | os.PathLike[str]],
    base: str | os.PathLike[str] | None = None,
    options: ImageOptions | None = None,
    level: int = DEFAULT_GZIP_LEVEL,
) -> ImageResult:
    """Write an OCI layout for ``base`` (a layer blob or an OCI layout dir) plus ``layers``."""
    options = options or ImageOptions()
    out_path = Path(out)
    blobs = _prepare_out(out_path)
    created = rfc3339(default_mtime() if options.created is None else options.created)

    base_config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    result_layers: list[LayerOut] = []
    layer_inputs: list[tuple[Path, bool]] = []

    if base is not None:
        base_path = Path(base)
        if base_path.is_dir():
            layout = read_layout(base_path, os_name=options.os, arch=options.architecture)
            base_config = dict(layout.config.get("config") or {})
            diff_ids = list(layout.config.get("rootfs", {}).get("diff_ids", []))
            base_layers = layout.manifest.get("layers", [])
            if len(diff_ids) != len(base_layers):
                raise ImageInputError(
                    f"base layout {str(base_path)!r}: {len(base_layers)} layers but {len(diff_ids)} diff_ids"
                )
            history = [dict(h) for h in layout.config.get("history", [])]
            for desc, diff_id in zip(base_layers, diff_ids, strict=True):
                blob = layout.blob(desc["digest"])
                if not blob.is_file():
                    raise ImageInputError(f"base layout {str(base_path)!r} lacks blob {desc['digest']!r}")
                scan = scan_layer(blob)
                if scan.blob_digest != desc["digest"] or scan.diff_id != diff_id:
                    raise ImageInputError(
                        f"base layout {str(base_path)!r}: blob {desc['digest']!r} does not match its digest or diff_id"
                    )
                shutil.copyfile(blob, blobs / desc["digest"].split(":", 1)[1])
                result_layers.append(
                    LayerOut(
                        digest=desc["digest"],
                        size=desc["size"],
                        diff_id=diff_id,
                        from_base=True,
                        scan=scan,
                        media_type=desc.get("mediaType", LAYER_MEDIA_TYPE),
                    )
                )
        else:
            layer_inputs.append((base_path, True))
    layer_inputs.extend((Path(p), False) for p in layers)

    for path, from_base in layer_inputs:
        scan = scan_layer(path)
        if scan.compressed:
            digest, size = scan.blob_digest, scan.blob_size
            shutil.copyfile(path, blobs / digest.split(":", 1)[1])
        else:
            tmp = blobs / ("tmp-" + path.name)
            digest, size = _gzip_file(path, tmp, level)
            os.replace(tmp, blobs / digest.split(":", 1)[1])
        result_layers.append(
            LayerOut(
                digest=digest,
                size=size,
                diff_id=scan.diff_id,
                from_base=from_base,
                scan=scan,
            )
        )
        history.append({"created": created, "created_by": f"ocitool layer {path.name}"})

    cfg: dict[str, Any] = dict(base_config)
    cfg["Env"] = _merge_env(base_config.get("Env") or [], options.env)
    if options.entrypoint is not None:
        cfg["Entrypoint"] = list(options.entrypoint)
        if options.cmd is None:
            cfg.pop("Cmd", None)
    if options.cmd is not None:
        cfg["Cmd"] = list(options.cmd)
    if options.user is not None:
        cfg["User"] = options.user
    if options.workdir is not None:
        cfg["WorkingDir"] = options.workdir
    labels = dict(base_config.get("Labels") or {})
    labels.update(options.labels)
    if labels:
        cfg["Labels"] = labels
    config = {
        "architecture": options.architecture,
        "config": {k: v for k, v in cfg.items() if v not in (None, [], {}, "")},
        "created": created,
        "history": history,
        "os": options.os,
        "rootfs": {
            "type": "layers",
            "diff_ids": [layer.diff_id for layer in result_layers],
        },
    }
    config_digest, config_size = _write_blob(blobs, canonical_json(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [{"mediaType": x.media_type, "digest": x.digest, "size": x.size} for x in result_layers],
    }
    manifest_digest, manifest_size = _write_blob(blobs, canonical_json(manifest))
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": manifest_digest,
                "size": manifest_size,
            }
        ],
    }
    (out_path / "index.json").write_bytes(canonical_json(index))
    (out_path / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    return ImageResult(
        layout=out_path,
        manifest_digest=manifest_digest,
        manifest_size=manifest_size,
        config_digest=config_digest,
        layers=result_layers,
    )
