"""Store outages against a real moto server: stopped mid-sync, restarted empty, re-seeded."""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from sidecar.cli import run_loop
from sidecar.health import serve_status
from sidecar.layout import STATE_DIR_NAME
from sidecar.tests.storekit import S3Kit, dag_source, local_files, make_syncer, metric
from tools.testing.servers import free_port, moto_server


def http_status(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def release_files(release: str, count: int) -> dict[str, bytes]:
    return {f"d{i:03d}": dag_source(f"d{i:03d}", release) for i in range(count)}


def staging_has_files(staging: Path) -> bool:
    try:
        return any(any(p.iterdir()) for p in staging.iterdir())
    except FileNotFoundError:
        return False


def test_outage_keeps_last_good_release_and_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with moto_server(log_dir=tmp_path) as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        kit = S3Kit(server, "dags-outage")
        v1 = release_files("r1", 5)
        kit.publish("alpha", v1)
        dags = tmp_path / "dags"
        log = io.StringIO()
        syncer = make_syncer(kit, dags, "--failure-threshold", "2", "--timeout", "2", "--concurrency", "2", log=log)
        status = serve_status(host="127.0.0.1", port=free_port(), health=syncer.health, metrics=syncer.metrics)
        base = f"http://127.0.0.1:{status.port}"
        loop = threading.Thread(target=run_loop, args=(syncer,), kwargs={"interval": 0.1}, daemon=True)
        try:
            assert http_status(base + "/healthz")[0] == 503  # before the first good sync
            assert http_status(base + "/readyz")[0] == 503
            loop.start()
            wait_until(lambda: http_status(base + "/healthz")[0] == 200, timeout=30, what="first good sync")
            assert local_files(dags, "alpha") == v1

            # a big release starts staging; the store goes away in the middle of it
            v2 = release_files("r2", 400)
            # DELIBERATELY BROKEN: release.bundle names a tar that was never stored, so staging takes
            # 400 single GETs after the bundle's 404: time to stop moto
            doc, _ = kit.release("alpha", v2)
            kit.publish_tampered("alpha", v2, doc, bundle=None)
            staging = dags / STATE_DIR_NAME / "alpha" / "staging"
            wait_until(lambda: staging_has_files(staging), timeout=30, what="staging of r2 to start")
            server.stop()
            wait_until(lambda: http_status(base + "/healthz")[0] == 503, timeout=60, what="health to turn 503")
            code, body = http_status(base + "/healthz")
            assert code == 503
            assert int(str(body["consecutive_failures"])) >= 2
            assert "cannot reach the store" in str(body["last_error"])
            assert http_status(base + "/readyz")[0] == 200  # the last good DAGs keep serving
            assert local_files(dags, "alpha") == v1
            assert not any(staging.iterdir())  # the interrupted staging was discarded
            assert metric(syncer, "etl_sidecar_store_retries_total") >= 1
            assert metric(syncer, "etl_sidecar_syncs_total", {"status": "error"}) >= 2

            # moto comes back empty (its state is lost): still failing, still serving r1
            server.start_again()
            errors_before = metric(syncer, "etl_sidecar_syncs_total", {"status": "error"})
            wait_until(
                lambda: metric(syncer, "etl_sidecar_syncs_total", {"status": "error"}) >= errors_before + 2,
                timeout=30,
                what="cycles against the empty server",
            )
            assert http_status(base + "/healthz")[0] == 503
            assert local_files(dags, "alpha") == v1
            assert "does not exist" in str(http_status(base + "/healthz")[1]["last_error"])

            # re-seeded: it recovers by itself and takes the new release
            kit = S3Kit(server, "dags-outage")
            v3 = release_files("r3", 20)
            kit.publish("alpha", v3)
            wait_until(
                lambda: (dags / "alpha" / "d000.py").read_bytes() == v3["d000"], timeout=30, what="r3 to be switched in"
            )
            assert local_files(dags, "alpha") == v3
            wait_until(lambda: http_status(base + "/healthz")[0] == 200, timeout=30, what="health to recover")
            assert http_status(base + "/healthz")[1]["consecutive_failures"] == 0
        finally:
            syncer.stop_event.set()
            loop.join(timeout=30)
            status.stop()
            syncer.close()
    events = [json.loads(line)["event"] for line in log.getvalue().splitlines()]
    assert "store_retry" in events and "store_unreadable" in events and "release_switched" in events
