"""DAG versions with the versioned DAG bundle, against real Airflow 3.3 processes.

The demo's platform with ``--dag-delivery bundle`` (moto S3, docker-registry, Airflow's
api-server, scheduler, dag-processor and triggerer on SQLite; every task's pod in podman):

1. every DAG version Airflow records carries its package's release id (``/dagVersions``);
2. run A of data_pipeline_orders_daily (ingest_orders -> enrich_orders) is triggered; while
   ingest_orders runs, data_pipeline is rebuilt with a new image digest the way Bazel builds it
   and published (release 2). The DAG is paused from ingest_orders' start until Airflow has
   recorded release 2, so enrich_orders is scheduled only after the publish reached Airflow:
   it still runs release 1's DAG file, the old image digest (its task log's "Running pod ...
   image=...@sha256:<old>" line, from the pod the provider built), and its task instance is on
   DAG version 1. Pausing holds only the scheduling of the next task; the running one goes on;
3. run B, started after the publish, runs release 2 (the new digest) in both tasks;
4. a rollback to release 1 is a new release id, and Airflow records a new DAG version with it
   whose source is release 1's file again; run C runs it.

It prints run ids, each run's version at start, the version and image of each task.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import urllib.parse
from pathlib import Path
from typing import Any

import demo
import pytest
from rebuild import rebuild_with_new_image

PACKAGE = "data_pipeline"
DAG_ID = "data_pipeline_orders_daily"
FIRST, SECOND = "ingest_orders", "enrich_orders"
SYNC_INTERVAL = 3.0


def q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def wait_for(what: str, check, *, platform, timeout: float = 300.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        platform.check_running()
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"after {timeout:.0f}s: still not {what}")


def dag_versions(api) -> list[dict[str, Any]]:
    return list(api.call("GET", f"/api/v2/dags/{q(DAG_ID)}/dagVersions?order_by=version_number")["dag_versions"])


def task_instances(api, run_id: str) -> dict[str, dict[str, Any]]:
    tis = api.call("GET", f"/api/v2/dags/{q(DAG_ID)}/dagRuns/{q(run_id)}/taskInstances")["task_instances"]
    return {ti["task_id"]: ti for ti in tis}


def pod_line(api, run_id: str, task_id: str, try_number: int) -> str:
    """The local pod runtime's "Running pod <ns>/<name> in podman ...: image=..." line of a task's log."""
    path = (
        f"/api/v2/dags/{q(DAG_ID)}/dagRuns/{q(run_id)}/taskInstances/{q(task_id)}/logs/{try_number}?full_content=true"
    )
    events = [str(e.get("event")) for e in api.call("GET", path).get("content") or [] if isinstance(e, dict)]
    lines = [e for e in events if e.startswith("Running pod ")]
    assert len(lines) == 1, f"{task_id} of {run_id}: expected one 'Running pod' line, got {lines!r}"
    return lines[0]


def trigger(api, when: dt.datetime, conf: dict[str, Any]) -> str:
    run = api.call(
        "POST", f"/api/v2/dags/{q(DAG_ID)}/dagRuns", {"logical_date": when.isoformat(), "conf": conf}, ok=(200, 201)
    )
    return str(run["dag_run_id"])


def pause(api, paused: bool) -> None:
    api.call("PATCH", f"/api/v2/dags/{q(DAG_ID)}", {"is_paused": paused})


def finished_run(api, run_id: str, *, platform) -> dict[str, Any]:
    run = wait_for(
        f"run {run_id} finished",
        lambda: (
            r
            if (r := api.call("GET", f"/api/v2/dags/{q(DAG_ID)}/dagRuns/{q(run_id)}"))["state"] in ("success", "failed")
            else None
        ),
        platform=platform,
        timeout=600,
        every=1.0,
    )
    states = {t: ti["state"] for t, ti in task_instances(api, run_id).items()}
    assert run["state"] == "success" and states == {FIRST: "success", SECOND: "success"}, (run_id, run["state"], states)
    return dict(run)


def describe(api, run: dict[str, Any], digests: dict[str, str]) -> list[str]:
    """One line per task: DAG version, its bundle version, and which release's image its pod ran."""
    out = []
    for task_id, ti in sorted(task_instances(api, run["dag_run_id"]).items(), key=lambda kv: kv[1]["start_date"]):
        line = pod_line(api, run["dag_run_id"], task_id, int(ti["try_number"]))
        image = next((name for name, digest in digests.items() if f"@{digest}" in line), "unknown image")
        out.append(
            f"  {task_id}: started {ti['start_date']}, DAG version {ti['dag_version']['version_number']} "
            f"(bundle version {ti['dag_version']['bundle_version']}), pod image {image}"
        )
    return out


def test_a_run_keeps_its_version_new_runs_take_the_new_one_and_rollback_is_a_version(
    tmp_path: Path, build_dir: Path
) -> None:
    from tools.bazel.publisher import rollback_release

    args = demo.parse_args(
        [
            "--state-dir",
            str(tmp_path / "state"),
            "--build-dir",
            str(build_dir),
            "--dag-delivery",
            "bundle",
            "--sync-interval",
            str(SYNC_INTERVAL),
            "--timeout",
            "600",
        ]
    )
    with contextlib.ExitStack() as stack:
        platform = demo.start_platform(args, stack)
        api, store = platform.api(), platform.store()
        first = next(p for p in platform.published if p.package == PACKAGE)
        release = {p.package: p.release_id for p in platform.published}

        # 1. every DAG version carries its package's release id
        for item in platform.published:
            for dag_id in item.dag_ids:
                versions = api.call("GET", f"/api/v2/dags/{q(dag_id)}/dagVersions")["dag_versions"]
                assert [(v["bundle_name"], v["bundle_version"]) for v in versions] == [
                    (item.package, release[item.package])
                ], dag_id

        # 2. run A starts on release 1; release 2 (a new image digest) is published while ingest_orders runs
        new_digest = rebuild_with_new_image(
            build_dir, PACKAGE, tmp_path / "rebuild", label="etl.platform/test=bundle-versions"
        )  # the build, not yet published
        assert new_digest != first.digest
        day = dt.datetime.combine(platform.seeded.run_date, dt.time(), tzinfo=dt.UTC)
        pause(api, False)
        run_a = trigger(api, day, {"case": "run A"})
        wait_for(
            f"{FIRST} of {run_a} running",
            lambda: task_instances(api, run_a).get(FIRST, {}).get("state") == "running",
            platform=platform,
            every=0.2,
        )
        pause(api, True)  # enrich_orders is scheduled only once Airflow has recorded release 2
        second = demo.publish_package(
            tmp_path / "rebuild", PACKAGE, store=store, env=args.env, registry=platform.registry
        )
        ingest_at_publish = task_instances(api, run_a)[FIRST]["state"]
        assert ingest_at_publish == "running", f"{FIRST} finished before the publish did: {ingest_at_publish}"
        assert second.outcome == "published" and second.release_id != first.release_id, second
        versions = wait_for(
            "release 2 recorded as a DAG version",
            lambda: v if (v := dag_versions(api))[-1]["bundle_version"] == second.release_id else None,
            platform=platform,
        )
        assert [(v["version_number"], v["bundle_version"]) for v in versions] == [
            (1, first.release_id),
            (2, second.release_id),
        ]
        pause(api, False)
        run_a_done = finished_run(api, run_a, platform=platform)

        # 3. run B, started after the publish, runs release 2
        run_b = trigger(api, day + dt.timedelta(minutes=1), {"case": "run B"})
        run_b_done = finished_run(api, run_b, platform=platform)

        # 4. rollback to release 1: a new release id and a new DAG version with release 1's file
        rolled = rollback_release(
            first.release_id, store=store, env=args.env, package=PACKAGE, registry=platform.registry
        )
        assert rolled.release_id not in (first.release_id, second.release_id)
        versions = wait_for(
            "the rollback recorded as a DAG version",
            lambda: v if (v := dag_versions(api))[-1]["bundle_version"] == rolled.release_id else None,
            platform=platform,
        )
        assert [(v["version_number"], v["bundle_version"]) for v in versions] == [
            (1, first.release_id),
            (2, second.release_id),
            (3, rolled.release_id),
        ]
        old_file = (build_dir / "packages" / PACKAGE / "dags" / f"{DAG_ID}.py").read_text()
        source = api.call("GET", f"/api/v2/dagSources/{q(DAG_ID)}?version_number=3")["content"]
        assert source == old_file and f"@{first.digest}" in source and f"@{new_digest}" not in source
        run_c = trigger(api, day + dt.timedelta(minutes=2), {"case": "run C"})
        run_c_done = finished_run(api, run_c, platform=platform)

        digests = {f"release 1 ({first.digest[:19]}...)": first.digest, f"release 2 ({new_digest[:19]}...)": new_digest}
        tis_a, tis_b, tis_c = (task_instances(api, r) for r in (run_a, run_b, run_c))
        # the proof: run A's later task ran the OLD digest, from DAG version 1, after release 2 was recorded
        assert f"@{first.digest}" in pod_line(api, run_a, SECOND, int(tis_a[SECOND]["try_number"]))
        assert tis_a[SECOND]["dag_version"]["bundle_version"] == first.release_id
        assert dt.datetime.fromisoformat(tis_a[SECOND]["start_date"]) > dt.datetime.fromisoformat(
            versions[1]["created_at"]
        )
        assert run_a_done["bundle_version"] == first.release_id
        for task_id in (FIRST, SECOND):
            assert f"@{new_digest}" in pod_line(api, run_b, task_id, int(tis_b[task_id]["try_number"]))
            assert tis_b[task_id]["dag_version"]["bundle_version"] == second.release_id
            assert f"@{first.digest}" in pod_line(api, run_c, task_id, int(tis_c[task_id]["try_number"]))
            assert tis_c[task_id]["dag_version"]["bundle_version"] == rolled.release_id
        assert run_b_done["bundle_version"] == second.release_id and run_c_done["bundle_version"] == rolled.release_id
        pinned = platform.bundles / PACKAGE / "versions"
        assert {p.name for p in pinned.iterdir()} == {first.release_id, second.release_id, rolled.release_id}

        print(
            f"bundle versions: {DAG_ID}, releases of {PACKAGE}: 1 = {first.release_id} (image {first.digest}), "
            f"2 = {second.release_id} (image {new_digest}), rollback of 1 = {rolled.release_id}"
        )
        print(
            f"run A {run_a}: version at start {run_a_done['bundle_version']}; release 2 published while {FIRST} "
            f"was {ingest_at_publish}, recorded as DAG version 2 at {versions[1]['created_at']}"
        )
        for line in describe(api, run_a_done, digests):
            print(line)
        print(f"run B {run_b} (new run after the publish): version at start {run_b_done['bundle_version']}")
        for line in describe(api, run_b_done, digests):
            print(line)
        print(
            f"rollback to {first.release_id}: release {rolled.release_id}, DAG version 3 "
            f"(bundle version {versions[2]['bundle_version']}, source = release 1's file)"
        )
        print(f"run C {run_c} (after the rollback): version at start {run_c_done['bundle_version']}")
        for line in describe(api, run_c_done, digests):
            print(line)


@pytest.fixture()
def build_dir() -> Path:
    """The packages' build outputs; this test fails (never skips) without them."""
    found = demo.find_build_dir()
    assert found is not None, (
        "no build outputs of the packages in the runfiles: check //airflow:test_bundle_versions' deps"
    )
    return found
