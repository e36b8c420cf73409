"""Test helpers: a tiny publisher that writes the store layout (docs/store-layout.md) to a real
moto S3 server or to a folder, DAG sources that carry their own release marker, and a sidecar
built from real flags.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.logs import JsonLogger
from sidecar.metrics import Metrics
from sidecar.settings import parse_settings
from sidecar.syncer import Syncer, build_syncer
from tools.testing.servers import MotoServer, moto_server

ENV = "dev"


def dag_source(dag_id: str, release: str, *, pad: int = 0) -> bytes:
    """A valid DAG-like module that names its release at the top and ends with a trailer line.

    Sources of the same dag_id and ``pad`` have the same size when the release strings do.
    """
    body = (
        f"# release: {release}\n"
        f"# dag: {dag_id}\n"
        "from __future__ import annotations\n"
        f"DAG_ID = {dag_id!r}\n"
        f"RELEASE = {release!r}\n"
        f"PADDING = {'x' * pad!r}\n"
        f"# end-of-file {release}\n"
    )
    return body.encode()


def parse_marker(data: bytes) -> tuple[str, bool]:
    """(release named in the first line, whether the trailer with the same release is present)."""
    text = data.decode()
    first = text.split("\n", 1)[0]
    release = first.removeprefix("# release: ") if first.startswith("# release: ") else ""
    complete = bool(release) and text.endswith(f"# end-of-file {release}\n")
    return release, complete


def make_tar(members: list[tuple[str, bytes]] | dict[str, bytes]) -> bytes:
    """A deterministic uncompressed pax tar, as the publisher writes bundles: regular files,
    sorted by name, mtime 0, uid/gid 0, empty owner names, mode 0644."""
    out = io.BytesIO()
    items = sorted(members.items()) if isinstance(members, dict) else list(members)
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in items:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), 0, 0o644, 0, 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def bundle_block(release_id: str, tar: bytes) -> dict[str, Any]:
    """``release.bundle`` for ``tar`` stored at ``releases/<release_id>.tar``."""
    return {"key": f"releases/{release_id}.tar", "sha256": hashlib.sha256(tar).hexdigest(), "size": len(tar)}


class StoreKit:
    """Writes a package's release the way the publisher does: DAG files first, metadata.json last."""

    url: str

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def keys(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def metadata(
        self, pkg: str, files: dict[str, bytes], *, release_id: str | None = None, env: str = ENV
    ) -> dict[str, Any]:
        dags = [
            {
                "dag_id": dag_id,
                "file": f"dags/{dag_id}.py",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size": len(data),
                "schedule": "@daily",
                "tasks": ["run"],
            }
            for dag_id, data in sorted(files.items())
        ]
        doc: dict[str, Any] = {"schema_version": 1, "package": pkg, "revision": None, "dags": dags, "env": env}
        if release_id is not None:
            doc["release"] = {"id": release_id, "published_at": "2026-11-27T04:20:00Z"}
        return doc

    def publish(
        self,
        pkg: str,
        files: dict[str, bytes],
        *,
        release_id: str | None = None,
        env: str = ENV,
        metadata: dict[str, Any] | None = None,
        prune: bool = True,
        bundle: bool | bytes = True,
    ) -> dict[str, Any]:
        """Publish like the real publisher: the live DAG files, the release bundle
        ``releases/<id>.tar`` and ``releases/<id>.json``, metadata.json (the commit point), then
        prune stale live files. ``bundle=False`` stores the release as before bundles
        (``releases/<id>/dags/*.py`` + ``releases/<id>/metadata.json``, no ``release.bundle``);
        bytes are stored as the bundle instead of the real tar (a damaged bundle).
        """
        doc = metadata if metadata is not None else self.metadata(pkg, files, release_id=release_id, env=env)
        rid = (doc.get("release") or {}).get("id")
        tar: bytes | None = None
        if rid and bundle is not False:
            tar = (
                bundle
                if isinstance(bundle, bytes)
                else make_tar({f"dags/{dag_id}.py": data for dag_id, data in files.items()})
            )
            if metadata is None:
                doc["release"]["bundle"] = bundle_block(
                    rid, make_tar({f"dags/{dag_id}.py": data for dag_id, data in files.items()})
                )
        raw = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
        if rid and tar is None:
            for dag_id, data in files.items():
                self.put(f"{env}/{pkg}/releases/{rid}/dags/{dag_id}.py", data)
        for dag_id, data in files.items():
            self.put(f"{env}/{pkg}/dags/{dag_id}.py", data)
        if rid and tar is not None:
            self.put(f"{env}/{pkg}/releases/{rid}.tar", tar)
            self.put(f"{env}/{pkg}/releases/{rid}.json", raw)
        elif rid:
            self.put(f"{env}/{pkg}/releases/{rid}/metadata.json", raw)
        self.put(f"{env}/{pkg}/metadata.json", raw)
        if prune:
            wanted = {f"{env}/{pkg}/dags/{dag_id}.py" for dag_id in files}
            for key in self.keys(f"{env}/{pkg}/dags/"):
                if key not in wanted:
                    self.delete(key)
        return doc

    def mark_removed(self, pkg: str, env: str = ENV) -> None:
        self.put(f"{env}/{pkg}/REMOVED", b"decommissioned\n")

    def delete_package(self, pkg: str, env: str = ENV) -> None:
        for key in self.keys(f"{env}/{pkg}/"):
            self.delete(key)


class FileKit(StoreKit):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root}"
        root.mkdir(parents=True, exist_ok=True)

    def put(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        base = self.root / prefix
        if not base.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def delete_package(self, pkg: str, env: str = ENV) -> None:
        shutil.rmtree(self.root / env / pkg, ignore_errors=True)  # a folder store has no empty prefixes


class S3Kit(StoreKit):
    def __init__(self, server: MotoServer, bucket: str, *, key: tuple[str, str] = ("testing", "testing")) -> None:
        import boto3

        self.server = server
        self.bucket = bucket
        self.url = f"s3://{bucket}"
        self.client = boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=key[0],
            aws_secret_access_key=key[1],
        )
        self.client.create_bucket(Bucket=bucket)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=key)

    def keys(self, prefix: str) -> list[str]:
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            out.extend(obj["Key"] for obj in page.get("Contents", []))
        return out


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with moto_server(log_dir=tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(params=["file", "s3"])
def kit(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StoreKit:
    """A fresh, empty store of each kind: a folder, and a new bucket on a real moto server."""
    if request.param == "file":
        return FileKit(tmp_path / "store")
    server: MotoServer = request.getfixturevalue("moto")
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    return S3Kit(server, f"dags-{secrets.token_hex(4)}")


def make_syncer(kit: StoreKit, dags_dir: Path, *extra: str, log: io.StringIO | None = None) -> Syncer:
    """A started in-process sidecar (real flags, fast retries, no status server)."""
    argv = [
        "--dag-bucket",
        kit.url,
        "--dags-dir",
        str(dags_dir),
        "--metrics-port",
        "0",
        "--retries",
        "1",
        "--retry-backoff",
        "0.01",
        "--timeout",
        "5",
        *extra,
    ]
    settings = parse_settings(argv, {})
    syncer = build_syncer(settings, log=JsonLogger(log if log is not None else io.StringIO()), metrics=Metrics())
    assert syncer.start()
    return syncer


@contextlib.contextmanager
def running_syncer(kit: StoreKit, dags_dir: Path, *extra: str, log: io.StringIO | None = None) -> Iterator[Syncer]:
    syncer = make_syncer(kit, dags_dir, *extra, log=log)
    try:
        yield syncer
    finally:
        syncer.close()


def metric(syncer: Syncer, name: str, labels: dict[str, str] | None = None) -> float:
    value = syncer.metrics.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


def subprocess_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for ``python -m sidecar`` in a child: the same import path as this test."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def local_files(dags_dir: Path, pkg: str) -> dict[str, bytes]:
    pkg_dir = dags_dir / pkg
    return {p.stem: p.read_bytes() for p in sorted(pkg_dir.iterdir()) if p.suffix == ".py"}
