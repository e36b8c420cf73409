"""End to end: publish all -> sidecar or DAG bundles -> Airflow; rebuild one package with a new image
digest and republish it; roll it back; smoke-trigger a run. Real moto S3, docker-registry, ocitool,
dagrender, publisher, sidecar or etl_dag_bundle, and Airflow 3 (api-server, scheduler,
dag-processor), all on loopback.

``ETL_DAG_DELIVERY`` picks the delivery path, as the demo's ``--dag-delivery`` (//airflow:test_e2e
runs ``sidecar``, //airflow:test_e2e_bundle ``bundle``). What changes between two snapshots is
compared exactly: every S3 key with its ETag (moto's listing) and every file (sha256) and symlink
under the local folder Airflow reads (the sidecar's dags folder, or the bundles' storage), per package.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import urllib.parse
from pathlib import Path

import boto3
import demo
from rebuild import rebuild_with_new_image

from tools.testing.registry import registry_binary

CHANGED = "file_processing"  # the package rebuilt with a new image digest
SYNC_INTERVAL = 3.0
DELIVERY = os.environ.get("ETL_DAG_DELIVERY", "sidecar")


def s3_snapshot(bucket: str) -> dict[str, dict[str, str]]:
    """{package: {key: ETag}} of the whole bucket (the package is the key's second component)."""
    by_package: dict[str, dict[str, str]] = {}
    for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            parts = obj["Key"].split("/")
            by_package.setdefault(parts[1] if len(parts) > 2 else "", {})[obj["Key"]] = obj["ETag"]
    return by_package


def local_snapshot(dags: Path) -> dict[str, dict[str, str]]:
    """{package: {path: sha256 or '-> target'}} of the dags folder (the sidecar's state included), or
    of the bundles' storage (``<pkg>/current``, ``<pkg>/followed/``, ``<pkg>/versions/``)."""
    by_package: dict[str, dict[str, str]] = {}
    for path in sorted(dags.rglob("*")):
        rel = path.relative_to(dags)
        parts = rel.parts
        package = parts[1] if parts[0] == ".sidecar" and len(parts) > 1 else parts[0]
        if path.is_symlink():
            value = "-> " + os.readlink(path)
        elif path.is_file():
            value = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            continue
        by_package.setdefault(package, {})[str(rel)] = value
    return by_package


def visible_dag_files(dags: Path, package: str) -> dict[str, bytes]:
    """What Airflow's dag-processor reads for ``package``: ``<dags>/<package>/*.py`` through the
    sidecar's symlink, or the bundle's tracking path ``<storage>/<package>/current/*.py``."""
    folder = dags / package / "current" if DELIVERY == "bundle" else dags / package
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.py"))}


def dag_source(api, dag_id: str) -> str | None:
    quoted = urllib.parse.quote(dag_id, safe="")
    with contextlib.suppress(Exception):
        return str(api.call("GET", f"/api/v2/dagSources/{quoted}")["content"])
    return None


def wait_until(what: str, check, *, timeout: float = 300.0, platform=None) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if platform is not None:
            platform.check_running()
        if check():
            return time.monotonic()
        time.sleep(0.25)
    raise AssertionError(f"after {timeout:.0f}s: still not {what}")


def assert_only_package_changed(before: dict, after: dict, package: str, what: str) -> None:
    others = sorted((set(before) | set(after)) - {package})
    for other in others:
        assert before.get(other) == after.get(other), f"{what}: package {other!r} changed"
    assert before.get(package) != after.get(package), f"{what}: package {package!r} did not change"


def test_publish_republish_one_package_roll_back_and_smoke(tmp_path: Path, build_dir: Path) -> None:
    assert registry_binary() is not None, (
        "docker-registry is not installed: ./bazelw provisions it in the toolchain root"
    )
    from tools.bazel.publisher import PackageKeys, list_releases, rollback_release
    from tools.bazel.publisher.smoke import SmokeConfig, run_smoke

    build = build_dir
    args = demo.parse_args(
        [
            "--state-dir",
            str(tmp_path / "state"),
            "--build-dir",
            str(build),
            "--sync-interval",
            str(SYNC_INTERVAL),
            "--timeout",
            "600",
            "--dag-delivery",
            DELIVERY,
        ]
    )
    with contextlib.ExitStack() as stack:
        platform = demo.start_platform(args, stack)
        api, store = platform.api(), platform.store()
        dags = platform.bundles if DELIVERY == "bundle" else platform.dirs["dags"]
        assert api.dag_ids() >= platform.expected and api.import_errors() == []
        first = next(p for p in platform.published if p.package == CHANGED)
        original_files = visible_dag_files(dags, CHANGED)
        assert sorted(original_files) == [f"{d}.py" for d in first.dag_ids]
        for dag_id in first.dag_ids:
            assert f"@{first.digest}" in (dag_source(api, dag_id) or "")
        s3_before, local_before = s3_snapshot(demo.BUCKET), local_snapshot(dags)

        # 1. rebuild CHANGED with a new image digest and publish it
        new_digest = rebuild_with_new_image(build, CHANGED, tmp_path / "rebuild", label="etl.platform/e2e=republish")
        assert new_digest != first.digest
        rebuilt = {p.name: p.read_bytes() for p in sorted((tmp_path / "rebuild" / "dags").glob("*.py"))}
        for name, data in rebuilt.items():  # the digest is the only difference from Bazel's build
            assert data != original_files[name]
            old, new = first.digest.removeprefix("sha256:").encode(), new_digest.removeprefix("sha256:").encode()
            back = data.replace(new, old).replace(new[:12], old[:12])
            assert back == original_files[name], name
        t_publish = time.monotonic()
        second = demo.publish_package(
            tmp_path / "rebuild", CHANGED, store=store, env=args.env, registry=platform.registry
        )
        t_committed = time.monotonic()
        assert second.outcome == "published" and second.release_id != first.release_id, second
        t_synced = wait_until(
            f"delivered by the {DELIVERY}", lambda: visible_dag_files(dags, CHANGED) == rebuilt, platform=platform
        )
        t_visible = wait_until(
            "showing the new digest in Airflow's API",
            lambda: all(f"@{new_digest}" in (dag_source(api, d) or "") for d in second.dag_ids),
            platform=platform,
        )
        s3_after, local_after = s3_snapshot(demo.BUCKET), local_snapshot(dags)
        assert_only_package_changed(s3_before, s3_after, CHANGED, "S3 after the republish")
        assert_only_package_changed(local_before, local_after, CHANGED, "dags folder after the republish")
        changed_keys = {k for k, e in s3_after[CHANGED].items() if s3_before[CHANGED].get(k) != e}
        prefix = f"{args.env}/{CHANGED}/"
        assert {f"{prefix}metadata.json"} | {f"{prefix}dags/{d}.py" for d in second.dag_ids} <= changed_keys
        assert set(s3_before[CHANGED]) <= set(s3_after[CHANGED])  # the first release is kept
        assert api.dag_ids() >= platform.expected and api.import_errors() == []

        # 2. roll back to the first release: the first digest is back in Airflow
        t_rollback = time.monotonic()
        rolled = rollback_release(
            first.release_id, store=store, env=args.env, package=CHANGED, registry=platform.registry
        )
        assert rolled.release_id not in (first.release_id, second.release_id), rolled
        t_back = wait_until(
            "showing the first digest again in Airflow's API",
            lambda: all(dag_source(api, d) == original_files[f"{d}.py"].decode() for d in first.dag_ids),
            platform=platform,
        )
        assert visible_dag_files(dags, CHANGED) == original_files
        s3_rolled, local_rolled = s3_snapshot(demo.BUCKET), local_snapshot(dags)
        assert_only_package_changed(s3_after, s3_rolled, CHANGED, "S3 after the rollback")
        assert_only_package_changed(local_after, local_rolled, CHANGED, "dags folder after the rollback")
        for other in set(s3_before) - {CHANGED}:
            assert s3_rolled.get(other) == s3_before[other]
        releases = {r.id: r for r in list_releases(store, PackageKeys(env=args.env, package=CHANGED))}
        assert releases[rolled.release_id].current and releases[rolled.release_id].rollback_of == first.release_id
        assert releases[rolled.release_id].image_digest == first.digest
        assert api.import_errors() == []

        # 3. smoke: the publisher's smoke step waits for exactly these bytes, then triggers a run
        dag_id = first.dag_ids[0]
        smoke = run_smoke(
            SmokeConfig(
                api_url=platform.settings.api_url,
                username=platform.plane.username,
                password=platform.plane.password,
                timeout=120,
            ),
            dag_id=dag_id,
            source=original_files[f"{dag_id}.py"],
            conf={"smoke": True, "release_id": rolled.release_id},
        )
        quoted = urllib.parse.quote(dag_id, safe="")
        run = api.call("GET", f"/api/v2/dags/{quoted}/dagRuns/{urllib.parse.quote(smoke.run_id, safe='')}")
        assert run["dag_id"] == dag_id and run["conf"]["release_id"] == rolled.release_id

        refresh = platform.refresh_interval()
        print(
            f"e2e ({DELIVERY}): republish {CHANGED}: publish call {t_committed - t_publish:.1f}s, {DELIVERY} switched at "
            f"{t_synced - t_publish:.1f}s, new digest in Airflow's API at {t_visible - t_publish:.1f}s "
            f"after the publish started (sync interval {SYNC_INTERVAL:g}s, Airflow refresh interval {refresh}s)"
        )
        print(
            f"e2e ({DELIVERY}): rollback {CHANGED} to {first.release_id}: first digest back in Airflow's API after "
            f"{t_back - t_rollback:.1f}s; smoke run {smoke.run_id} (waited {smoke.waited_seconds:.1f}s)"
        )
