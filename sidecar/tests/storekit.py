"""Test helpers: a publisher that writes the store layout (docs/store-layout.md) to a real moto S3
server or to a folder with the store contract's own writers, DAG sources that carry their own
release marker, and a sidecar built from real flags.

``StoreKit.publish`` writes only stores the real publisher (tools/bazel/publisher) could write:
the build document as the renderer makes it (image block included), release ids from
``storecontract.make_release_id`` (one second past the previous release at least, as the publisher
stamps them), ``with_release``, the bundle from ``write_bundle``, ``canonical_json`` bytes, keys from
``PackageKeys``, and the publisher's order (live files, bundle, release json, metadata.json last,
then prune). A test that needs a store the publisher cannot write says so by name:
``publish_tampered`` (a document or bundle edited after the fact).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import os
import secrets
import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from etl_core.logs import stream_logger

from sidecar.metrics import Metrics
from sidecar.settings import parse_settings
from sidecar.syncer import Syncer, build_syncer
from tools.bazel.storecontract import (
    ContractError,
    PackageKeys,
    bundle_file,
    canonical_json,
    dag_entry,
    make_release_id,
    parse_metadata,
    release_time,
    with_release,
    write_bundle,
)
from tools.bazel.storecontract import build_document as contract_build_document
from tools.testing.servers import MotoServer, moto_server

ENV = "dev"
REPOSITORY = "registry.example.com/etl"
DIGEST = "sha256:" + hashlib.sha256(b"sidecar storekit image").hexdigest()


def dag_source(dag_id: str, release: str, *, pad: int = 0) -> bytes:
    """A valid DAG-like module that names its release at the top and ends with a trailer line.

    ``release`` is a label of the test's own (``r1``), not a release id. Sources of the same dag_id
    and ``pad`` have the same size when the labels do.
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
    """(release label named in the first line, whether the trailer with the same label is present)."""
    text = data.decode()
    first = text.split("\n", 1)[0]
    release = first.removeprefix("# release: ") if first.startswith("# release: ") else ""
    complete = bool(release) and text.endswith(f"# end-of-file {release}\n")
    return release, complete


def build_document(pkg: str, files: Mapping[str, bytes]) -> dict[str, Any]:
    """The build's metadata.json (what the ``:dags`` target renders), for DAG files ``files``."""
    return contract_build_document(
        package=pkg,
        repository=f"{REPOSITORY}/{pkg}",
        digest=DIGEST,
        revision=None,
        dags=[dag_entry(d, data, schedule="@daily", tasks=["run"], resources={}) for d, data in files.items()],
    )


def bundle_block(release_id: str, tar: bytes) -> dict[str, Any]:
    """``release.bundle`` for ``tar`` stored at ``releases/<release_id>.tar``."""
    return {"key": bundle_file(release_id), "sha256": hashlib.sha256(tar).hexdigest(), "size": len(tar)}


class StoreKit:
    """Writes a package's release the way the publisher does: DAG files first, metadata.json last."""

    url: str

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def keys(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def _previous(self, keys: PackageKeys) -> str | None:
        """The committed release id, as the publisher reads it (None when absent or unreadable)."""
        data = self.get(keys.metadata)
        try:
            return None if data is None else parse_metadata(data, where=keys.metadata).release_id
        except ContractError:
            return None

    def release(self, pkg: str, files: Mapping[str, bytes], *, env: str = ENV) -> tuple[dict[str, Any], bytes]:
        """The next release of ``pkg`` as the publisher makes it: (metadata.json document, bundle tar)."""
        keys = PackageKeys(env, pkg)
        previous = self._previous(keys)
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        stamp = now if previous is None else max(now, release_time(previous) + dt.timedelta(seconds=1))
        build = build_document(pkg, files)
        release_id = make_release_id(stamp, build)
        tar = write_bundle(dict(files))
        info = {
            "id": release_id,
            "previous": previous,
            "published_at": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "image_tag": None,
            "bundle": bundle_block(release_id, tar),
        }
        return with_release(build, env=env, release=info), tar

    def publish(self, pkg: str, files: Mapping[str, bytes], *, env: str = ENV, prune: bool = True) -> dict[str, Any]:
        """Publish a new release of ``files`` as the publisher does; return its metadata.json document.

        The live DAG files, the bundle ``releases/<id>.tar``, ``releases/<id>.json``, metadata.json
        (the commit point), then stale live files are pruned.
        """
        document, tar = self.release(pkg, files, env=env)
        self.publish_release(pkg, files, document, tar, env=env, prune=prune)
        return document

    def publish_release(
        self,
        pkg: str,
        files: Mapping[str, bytes],
        document: Mapping[str, Any],
        tar: bytes,
        *,
        env: str = ENV,
        prune: bool = True,
    ) -> None:
        """Publish what ``release`` returned, unchanged (a test that must know the id before the commit)."""
        self._write(pkg, files, canonical_json(document), document["release"]["id"], tar, env=env, prune=prune)

    def publish_tampered(
        self,
        pkg: str,
        files: Mapping[str, bytes],
        document: Mapping[str, Any],
        *,
        bundle: bytes | None,
        env: str = ENV,
    ) -> None:
        """DELIBERATELY BROKEN: store ``document`` (from ``release``, then edited by the test),
        ``files`` as the live DAG files and ``bundle`` as the release's tar (None: no tar at all),
        in the publisher's order. What the publisher would never write: a test of the sidecar's
        checks against a store someone else damaged."""
        release_id = document["release"]["id"]
        self._write(pkg, files, canonical_json(document), release_id, bundle, env=env, prune=True)

    def _write(
        self,
        pkg: str,
        files: Mapping[str, bytes],
        raw: bytes,
        release_id: str | None,
        tar: bytes | None,
        *,
        env: str,
        prune: bool,
    ) -> None:
        keys = PackageKeys(env, pkg)
        for dag_id, data in files.items():
            self.put(keys.dag(dag_id), data)
        if release_id is not None:
            if tar is not None:
                self.put(keys.release_bundle(release_id), tar)
            self.put(keys.release_metadata(release_id), raw)
        self.put(keys.metadata, raw)
        if prune:
            wanted = {keys.dag(dag_id) for dag_id in files}
            for key in self.keys(keys.dags_prefix):
                if key not in wanted:
                    self.delete(key)

    def mark_removed(self, pkg: str, env: str = ENV) -> None:
        self.put(PackageKeys(env, pkg).removed_marker, b"decommissioned\n")

    def delete_package(self, pkg: str, env: str = ENV) -> None:
        for key in self.keys(PackageKeys(env, pkg).prefix):
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

    def get(self, key: str) -> bytes | None:
        try:
            return (self.root / key).read_bytes()
        except FileNotFoundError:
            return None

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

    def get(self, key: str) -> bytes | None:
        try:
            data: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None
        return data

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
    syncer = build_syncer(
        settings,
        log=stream_logger("sidecar", log if log is not None else io.StringIO(), level="info", fmt="json"),
        metrics=Metrics(),
    )
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
