"""Test helpers: stores on a real moto S3 server or in a folder, written by the real publisher
(tools/bazel/publisher, as a library), DAG sources that carry their own release marker, and a
sidecar built from real flags.

``StoreKit.publish`` is ``publish_build``: the build document as the renderer makes it (image
block included; the image step only checks that the image is in the registry), the publisher's
release ids, bundle, order and conditional commit. ``decommission`` is the publisher's
``--decommission``. A test that needs a store the publisher does not write says so by name:
``publish_unchecked`` (a draft stored without the publisher's checks), ``publish_tampered`` (a
draft from ``release``, edited by the test, stored with raw writes) and ``delete_package``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from etl_core.logs import stream_logger

from sidecar.metrics import Metrics
from sidecar.settings import parse_settings
from sidecar.syncer import Syncer, build_syncer
from tools.bazel.publisher import (
    BuildOutput,
    DagFile,
    Event,
    PublishOptions,
    Store,
    check_syntax,
    decommission_package,
    draft_release,
    open_store,
    publish_build,
)
from tools.bazel.storecontract import PackageKeys, bundle_file, canonical_json, dag_entry, parse_metadata
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


def build_document(pkg: str, files: Mapping[str, bytes], *, schedule: str = "@daily") -> dict[str, Any]:
    """The build's metadata.json (what the ``:dags`` target renders), for DAG files ``files``."""
    return contract_build_document(
        package=pkg,
        repository=f"{REPOSITORY}/{pkg}",
        digest=DIGEST,
        revision=None,
        dags=[dag_entry(d, data, schedule=schedule, tasks=["run"], resources={}) for d, data in files.items()],
    )


def bundle_block(release_id: str, tar: bytes) -> dict[str, Any]:
    """``release.bundle`` for ``tar`` stored at ``releases/<release_id>.tar``."""
    return {"key": bundle_file(release_id), "sha256": hashlib.sha256(tar).hexdigest(), "size": len(tar)}


class _ImageInRegistry:
    """The publisher's image step, with the storekit's one image already in the registry.

    The sidecar never reads images; publishing with push off only checks that the image exists.
    A real registry is in ``tools.testing.dagstore`` (the DAG bundle's tests) and the publisher's.
    """

    def push(self, layout: Path, repository: str, tags: Sequence[str]) -> str | None:
        raise AssertionError("storekit publishes with push off")

    def exists(self, repository: str, digest: str) -> bool:
        return digest == DIGEST


class StoreKit:
    """A store the sidecar reads, written by the real publisher (tools/bazel/publisher).

    ``publish`` and ``decommission`` are the publisher's library calls; ``put``/``get``/``delete``
    are raw writes of the kind's own client, for what the publisher would never write.
    """

    url: str

    def publisher_store(self) -> Store:
        raise NotImplementedError

    def put(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    def keys(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def publish(
        self,
        pkg: str,
        files: Mapping[str, bytes],
        *,
        env: str = ENV,
        schedule: str = "@daily",
        repair: bool = False,
        on_release: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """``bazel run //packages/<pkg>:publish`` of a build with DAG files ``files`` (every DAG
        on ``schedule``; ``repair``: ``--repair``), as a library call; returns the committed
        metadata.json document. The files are checked as ``load_build_output`` checks a build's.

        ``on_release`` gets the new release id once its ``releases/<id>.json`` is stored, before
        ``metadata.json`` commits it (a reader racing the publish may see it from then on).
        """
        keys = PackageKeys(env, pkg)

        def observe(event: Event) -> None:
            key = event.key or ""
            if on_release and event.kind == "put" and key.startswith(keys.releases_prefix) and key.endswith(".json"):
                on_release(key.removeprefix(keys.releases_prefix).removesuffix(".json"))

        dags = {d: DagFile(d, data, origin=f"storekit:{pkg}/{d}.py") for d, data in files.items()}
        for dag in dags.values():
            check_syntax(dag)
        build = BuildOutput(package=pkg, metadata=build_document(pkg, files, schedule=schedule), dags=dags)
        result = publish_build(
            build,
            store=self.publisher_store(),
            env=env,
            registry=_ImageInRegistry(),
            image_layout=None,
            options=PublishOptions(push=False, allow_mass_delete=True, jobs=4, repair=repair),
            on_event=observe,
        )
        assert result.outcome == "published", f"{pkg}: the publisher did not publish ({result.outcome})"
        data = self.get(keys.metadata)
        assert data is not None
        document: dict[str, Any] = json.loads(data)
        return document

    def decommission(self, pkg: str, env: str = ENV) -> None:
        """``publish -- --decommission``: the REMOVED marker the sidecar acts on."""
        decommission_package(store=self.publisher_store(), env=env, package=pkg, allow_mass_delete=True)

    def release(self, pkg: str, files: Mapping[str, bytes], *, env: str = ENV) -> tuple[dict[str, Any], bytes]:
        """The next release of ``files`` as the publisher drafts it, NOT written: (metadata.json
        document, bundle tar), for a test to damage and store with ``publish_tampered``."""
        keys = PackageKeys(env, pkg)
        data = self.get(keys.metadata)
        previous = None if data is None else parse_metadata(data, where=keys.metadata).release_id
        draft = draft_release(
            build_document(pkg, files),
            files,
            env=env,
            previous=previous,
            now=dt.datetime.now(dt.UTC).replace(microsecond=0),
        )
        return json.loads(draft.document), draft.bundle

    def publish_unchecked(self, pkg: str, files: Mapping[str, bytes], *, env: str = ENV) -> dict[str, Any]:
        """HAND-MADE: the release the publisher drafts for ``files``, stored with raw writes in its
        order, without its checks (DAG files that do not compile, a dag_id another package owns:
        what a hand-written store or two racing publishes leave). Returns the document."""
        document, tar = self.release(pkg, files, env=env)
        self.publish_tampered(pkg, files, document, bundle=tar, env=env)
        return document

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
        in the publisher's order, with raw writes. What the publisher would never write: a test
        of the sidecar's checks against a store someone else damaged (or two publishes raced)."""
        keys = PackageKeys(env, pkg)
        release_id = document["release"]["id"]
        raw = canonical_json(document)
        for dag_id, data in files.items():
            self.put(keys.dag(dag_id), data)
        if bundle is not None:
            self.put(keys.release_bundle(release_id), bundle)
        self.put(keys.release_metadata(release_id), raw)
        self.put(keys.metadata, raw)
        wanted = {keys.dag(dag_id) for dag_id in files}
        for key in self.keys(keys.dags_prefix):
            if key not in wanted:
                self.delete(key)

    def delete_package(self, pkg: str, env: str = ENV) -> None:
        """Delete every object of the package (no REMOVED marker): an operator's mistake."""
        for key in self.keys(PackageKeys(env, pkg).prefix):
            self.delete(key)


class FileKit(StoreKit):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = f"file://{root}"
        root.mkdir(parents=True, exist_ok=True)

    def publisher_store(self) -> Store:
        return open_store(self.url)

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
        self.server = server
        self.bucket = bucket
        self.url = f"s3://{bucket}"
        self.client = server.client(key=key)
        self.client.create_bucket(Bucket=bucket)
        self.environ = {**os.environ, **server.env(), "AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1]}

    def publisher_store(self) -> Store:
        from tools.bazel.publisher._s3store import S3Store

        return S3Store(bucket=self.bucket, environ=self.environ)

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
