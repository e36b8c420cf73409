"""Metrics: names, a real /metrics server scraped over HTTP, atomic textfiles, Pushgateway pushes."""

from __future__ import annotations

import http.server
import os
import socket
import stat
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from etl_core import metrics
from tools.testing.pushgateway import pushgateway_server
from tools.testing.servers import free_port


def scrape(url: str, *, accept: str | None = None) -> tuple[int, str, str]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read().decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


# --- names and factories ------------------------------------------------------------------------


def test_metric_names_get_the_product_prefix_once() -> None:
    assert metrics.metric_name("sidecar_syncs") == "etl_sidecar_syncs"
    assert metrics.metric_name("etl_sidecar_syncs") == "etl_sidecar_syncs"
    with pytest.raises(metrics.MetricNameError, match=r"invalid metric name 'sync-count'"):
        metrics.metric_name("sync-count")


def test_factories_register_prefixed_metrics_in_the_given_registry() -> None:
    registry = metrics.new_registry()
    syncs = metrics.counter("sidecar_syncs_total", "Syncs.", ["status"], registry=registry)
    files = metrics.gauge("sidecar_files", "Files on disk.", registry=registry)
    took = metrics.histogram("sidecar_sync_duration_seconds", "Sync time.", registry=registry, buckets=(1, 5))
    syncs.labels(status="success").inc(2)
    files.set(7)
    took.observe(3)
    got = samples(generate_latest(registry).decode())
    assert got[("etl_sidecar_syncs_total", (("status", "success"),))] == 2
    assert got[("etl_sidecar_files", ())] == 7
    assert got[("etl_sidecar_sync_duration_seconds_bucket", (("le", "5.0"),))] == 1
    assert got[("etl_sidecar_sync_duration_seconds_bucket", (("le", "1.0"),))] == 0
    # a fresh registry holds none of them: tests and jobs do not share state
    assert "etl_sidecar" not in generate_latest(metrics.new_registry()).decode()


def test_process_collectors_only_when_asked() -> None:
    assert "process_" not in generate_latest(metrics.new_registry()).decode()
    assert "python_info" in generate_latest(metrics.new_registry(process=True)).decode()


# --- batch job tracking -------------------------------------------------------------------------


class Ticker:
    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0)


def test_track_job_records_status_duration_and_timestamps() -> None:
    registry = metrics.new_registry()
    with metrics.track_job("profile", registry=registry, clock=Ticker(100.0, 104.5)):
        pass
    with metrics.track_job("profile", registry=registry, clock=Ticker(200.0, 200.5)) as run:
        run.status = "noop"
    with (
        pytest.raises(RuntimeError, match="disk full"),
        metrics.track_job("profile", registry=registry, clock=Ticker(300.0, 301.0)),
    ):
        raise RuntimeError("disk full")
    got = samples(generate_latest(registry).decode())
    job = ("job", "profile")
    assert got[("etl_job_runs_total", (job, ("status", "success")))] == 1
    assert got[("etl_job_runs_total", (job, ("status", "noop")))] == 1
    assert got[("etl_job_runs_total", (job, ("status", "error")))] == 1
    assert got[("etl_job_duration_seconds", (job,))] == 1.0
    assert got[("etl_job_last_run_timestamp_seconds", (job,))] == 301.0
    assert got[("etl_job_last_success_timestamp_seconds", (job,))] == 200.5


def test_job_status_must_be_one_of_the_fixed_values() -> None:
    registry = metrics.new_registry()
    with (
        pytest.raises(metrics.JobStatusError, match=r"job status 'skipped' is not one of success, error, noop"),
        metrics.track_job("x", registry=registry) as run,
    ):
        run.status = "skipped"
    got = samples(generate_latest(registry).decode())
    assert got[("etl_job_runs_total", (("job", "x"), ("status", "error")))] == 1


# --- /metrics server ----------------------------------------------------------------------------


def test_serves_metrics_and_health_over_http_and_stops() -> None:
    registry = metrics.new_registry()
    syncs = metrics.counter("sidecar_syncs", "Syncs.", ["status"], registry=registry)
    syncs.labels(status="success").inc(3)
    healthy = threading.Event()
    port = free_port()
    server = metrics.serve(port, registry=registry, host="127.0.0.1", health=healthy.is_set)
    try:
        assert server.port == port
        assert server.url == f"http://127.0.0.1:{port}"
        status, ctype, body = scrape(server.url + "/metrics")
        assert status == 200
        assert ctype.startswith("text/plain; version=0.0.4")
        assert samples(body)[("etl_sidecar_syncs_total", (("status", "success"),))] == 3

        syncs.labels(status="error").inc()
        assert samples(scrape(server.url + "/metrics")[2])[("etl_sidecar_syncs_total", (("status", "error"),))] == 1

        assert scrape(server.url + "/healthz")[:1] == (503,)
        healthy.set()
        assert scrape(server.url + "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
        assert scrape(server.url + "/nope")[0] == 404
    finally:
        server.stop()
    with pytest.raises(urllib.error.URLError), urllib.request.urlopen(server.url + "/metrics", timeout=2):
        pass
    server.stop()  # a second stop is harmless


def test_openmetrics_is_served_when_asked_for() -> None:
    registry = metrics.new_registry()
    metrics.gauge("up_things", "Things.", registry=registry).set(1)
    with metrics.serve(0, registry=registry, host="127.0.0.1") as server:
        assert server.port > 0
        status, ctype, body = scrape(server.url + "/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert status == 200
    assert ctype.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")


def test_a_failing_health_check_reports_unhealthy_with_the_reason() -> None:
    def check() -> bool:
        raise RuntimeError("no sync yet")

    with metrics.serve(0, registry=metrics.new_registry(), host="127.0.0.1", health=check) as server:
        assert scrape(server.url + "/healthz")[0::2] == (503, "unhealthy: RuntimeError: no sync yet\n")
        assert scrape(server.url + "/metrics")[0] == 200


def test_routes_add_paths_replace_health_and_a_failing_route_answers_500() -> None:
    def ready() -> tuple[int, str, bytes]:
        return 503, "application/json", b'{"ready": false}\n'

    def broken() -> tuple[int, str, bytes]:
        raise RuntimeError("state lost")

    routes = {"/readyz": ready, "/healthz": broken}
    with metrics.serve(0, registry=metrics.new_registry(), host="127.0.0.1", routes=routes) as server:
        assert scrape(server.url + "/readyz") == (503, "application/json", '{"ready": false}\n')
        assert scrape(server.url + "/healthz")[0::2] == (500, "/healthz failed: state lost\n")
        assert scrape(server.url + "/metrics")[0] == 200


def test_a_taken_port_fails_with_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(metrics.MetricsServerError, match=rf"cannot serve metrics on 127\.0\.0\.1:{port}: .*in use"):
            metrics.serve(port, registry=metrics.new_registry(), host="127.0.0.1")


# --- textfile -----------------------------------------------------------------------------------


def test_textfile_is_parseable_and_replaced_atomically(tmp_path: Path) -> None:
    registry = metrics.new_registry()
    rows = metrics.gauge("job_rows", "Rows written.", ["table"], registry=registry)
    target = tmp_path / "profile.prom"

    rows.labels(table="orders").set(10)
    assert metrics.write_textfile(target, registry) == target
    first = target.read_text()
    assert samples(first)[("etl_job_rows", (("table", "orders"),))] == 10
    assert stat.S_IMODE(target.stat().st_mode) == 0o644

    rows.labels(table="orders").set(20)
    with open(target) as reader:  # a reader that opened the old file...
        old_inode = os.fstat(reader.fileno()).st_ino
        metrics.write_textfile(target, registry)
        assert reader.read() == first  # ...still reads the whole old content, never a mix
    assert target.stat().st_ino != old_inode  # a new file was renamed into place
    assert samples(target.read_text())[("etl_job_rows", (("table", "orders"),))] == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile.prom"]  # no temp file left


def test_a_failed_collection_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "job.prom"
    target.write_text("# old\n")

    class Broken:
        def collect(self) -> Iterator[object]:
            raise RuntimeError("collector exploded")

    registry = CollectorRegistry()
    registry.register(Broken())  # type: ignore[arg-type]
    with pytest.raises(metrics.TextfileError, match=r"cannot collect metrics for '.*job\.prom': RuntimeError"):
        metrics.write_textfile(target, registry)
    assert target.read_text() == "# old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["job.prom"]


def test_a_missing_directory_is_named_in_the_error(tmp_path: Path) -> None:
    target = tmp_path / "absent" / "job.prom"
    with pytest.raises(metrics.TextfileError, match=r"cannot write metrics to '.*absent/job\.prom'.*exists and is"):
        metrics.write_textfile(target, metrics.new_registry())


# --- Pushgateway --------------------------------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers like a Pushgateway and remembers (method, path, body) of each request."""

    seen: list[tuple[str, str, str]]

    def _record(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        self.server.seen.append((self.command, self.path, body))  # type: ignore[attr-defined]
        self.send_response(200 if self.command != "DELETE" else 202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_PUT = do_POST = do_DELETE = _record

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, str]]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.seen  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def test_push_uses_put_to_replace_and_post_to_add(recorder: tuple[str, list[tuple[str, str, str]]]) -> None:
    url, seen = recorder
    registry = metrics.new_registry()
    metrics.gauge("job_rows", "Rows.", registry=registry).set(5)
    metrics.push(url, job="profile", registry=registry, grouping_key={"env": "dev"})
    metrics.push(url + "/", job="profile", registry=registry, replace=False)
    metrics.delete_pushed(url, job="profile", grouping_key={"env": "dev"})
    assert [(m, p) for m, p, _ in seen] == [
        ("PUT", "/metrics/job/profile/env/dev"),
        ("POST", "/metrics/job/profile"),
        ("DELETE", "/metrics/job/profile/env/dev"),
    ]
    assert samples(seen[0][2])[("etl_job_rows", ())] == 5


def test_push_takes_the_gateway_from_the_environment(
    recorder: tuple[str, list[tuple[str, str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = recorder
    monkeypatch.setenv("PUSHGATEWAY_URL", url.removeprefix("http://"))  # host:port is accepted too
    metrics.push(None, job="j", registry=metrics.new_registry())
    assert seen[0][:2] == ("PUT", "/metrics/job/j")


def test_push_failures_name_the_gateway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PUSHGATEWAY_URL", raising=False)
    with pytest.raises(metrics.PushError, match=r"no Pushgateway given: pass gateway= or set PUSHGATEWAY_URL"):
        metrics.push(None, job="j", registry=metrics.new_registry())
    with pytest.raises(metrics.PushError, match=r"invalid Pushgateway URL 'ftp://gw:21'"):
        metrics.push("ftp://gw:21", job="j", registry=metrics.new_registry())
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(metrics.PushError, match=rf"push of job 'j' to Pushgateway '{dead}' failed: .*refused"):
        metrics.push(dead, job="j", registry=metrics.new_registry(), timeout=2)


def test_push_to_a_real_pushgateway_and_delete() -> None:
    registry = metrics.new_registry()
    with metrics.track_job("nightly_load", registry=registry):
        pass
    with pushgateway_server() as gateway:
        url = gateway.url
        metrics.push(url, job="nightly_load", registry=registry, grouping_key={"env": "dev"})
        got = samples(scrape(url + "/metrics")[2])
        key = ("etl_job_runs_total", (("env", "dev"), ("instance", ""), ("job", "nightly_load"), ("status", "success")))
        assert got[key] == 1
        metrics.delete_pushed(url, job="nightly_load", grouping_key={"env": "dev"})
        assert not any(name == "etl_job_runs_total" for name, _ in samples(scrape(url + "/metrics")[2]))
