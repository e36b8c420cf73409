"""``python -m sidecar`` as a process: --once (init container), the loop with its status server,
exit codes, and the JSON log lines."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from sidecar.settings import stop_grace
from sidecar.tests.storekit import FileKit, dag_source, local_files, subprocess_env
from tools.testing.servers import free_port, wait_for_http


def run_sidecar(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(env),
        timeout=timeout,
        check=False,
    )


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_once_syncs_and_exits_zero(tmp_path: Path) -> None:
    kit = FileKit(tmp_path / "store")
    kit.publish("alpha", {"d1": dag_source("d1", "r1")})
    dags = tmp_path / "dags"
    proc = run_sidecar(
        "--once",
        "--dag-bucket",
        kit.url,
        "--dags-dir",
        str(dags),
        "--metrics-port",
        "0",
        env={"AWS_SECRET_ACCESS_KEY": "do-not-print-me", "AWS_ENDPOINT_URL": "http://user:pw@127.0.0.1:1"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert local_files(dags, "alpha") == {"d1": dag_source("d1", "r1")}
    events = json_lines(proc.stdout)
    start = events[0]
    assert start["event"] == "starting" and start["level"] == "info"
    assert start["settings"]["dag_bucket"] == kit.url  # type: ignore[index]
    assert start["settings"]["once"] is True  # type: ignore[index]
    assert start["aws_endpoint_url"] == "http://user:***@127.0.0.1:1"
    assert "do-not-print-me" not in proc.stdout and "pw@" not in proc.stdout
    assert [e["status"] for e in events if e["event"] == "sync_cycle"] == ["success"]


def test_once_fails_with_exit_1_when_the_store_is_unreachable(tmp_path: Path) -> None:
    proc = run_sidecar(
        "--once",
        "--dag-bucket",
        "s3://dag-bucket",
        "--dags-dir",
        str(tmp_path / "dags"),
        "--metrics-port",
        "0",
        "--retries",
        "1",
        "--retry-backoff",
        "0.01",
        "--timeout",
        "2",
        env={
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    )
    assert proc.returncode == 1
    last = json_lines(proc.stdout)[-1]
    assert last["event"] == "sync_failed" and last["level"] == "error"
    assert "cannot reach the store reading 's3://dag-bucket/dev/'" in str(last["error"])
    assert "Traceback" not in proc.stderr


def test_a_taken_metrics_port_fails_start_up_naming_the_port(tmp_path: Path) -> None:
    kit = FileKit(tmp_path / "store")
    kit.publish("alpha", {"d1": dag_source("d1", "r1")})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run_sidecar(
            "--once",
            "--dag-bucket",
            kit.url,
            "--dags-dir",
            str(tmp_path / "dags"),
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(port),
        )
    assert proc.returncode == 1
    last = json_lines(proc.stdout)[-1]
    assert (last["event"], last["hint"]) == ("startup_failed", "pick another --metrics-port")
    assert f"cannot serve metrics on 127.0.0.1:{port}" in str(last["error"])
    assert not (tmp_path / "dags" / "alpha").exists()


def test_usage_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    proc = run_sidecar("--dag-bucket", "s3://dag-bucket", "--sync-interval", "soon", env={"DAG_BUCKET": ""})
    assert proc.returncode == 2
    assert proc.stderr == "invalid flag: --sync-interval='soon' (from --sync-interval): must be a number of seconds\n"
    proc = run_sidecar(env={"DAG_BUCKET": ""})
    assert proc.returncode == 2
    assert proc.stderr.startswith("required flag: --dag-bucket (or DAG_BUCKET)")
    assert proc.stderr.count("\n") == 1


def test_loop_serves_health_and_metrics_and_stops_on_sigterm(tmp_path: Path) -> None:
    kit = FileKit(tmp_path / "store")
    kit.publish("alpha", {"d1": dag_source("d1", "r1")})
    dags = tmp_path / "dags"
    port = free_port()
    out = tmp_path / "sidecar.log"
    with open(out, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "--metrics-host", "127.0.0.1"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=subprocess_env(
                {"DAG_BUCKET": kit.url, "DAGS_DIR": str(dags), "SYNC_INTERVAL": "0.2", "METRICS_PORT": str(port)}
            ),
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout=30, proc=proc)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                    assert json.loads(resp.read())["healthy"] is True
                    break
            except urllib.error.HTTPError as exc:
                assert exc.code == 503
                assert time.monotonic() < deadline, "never became healthy"
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as resp:
            assert resp.status == 200
        kit.publish("alpha", {"d1": dag_source("d1", "r2")})
        deadline = time.monotonic() + 30
        while (dags / "alpha" / "d1.py").read_bytes() != dag_source("d1", "r2"):
            assert time.monotonic() < deadline, "r2 never arrived"
            time.sleep(0.05)
        deadline = time.monotonic() + 30
        while True:  # the file switches before the cycle that switched it is counted
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                metrics = resp.read().decode()
            if 'etl_sidecar_syncs_total{status="success"} 2.0' in metrics:
                break
            assert time.monotonic() < deadline, metrics
            time.sleep(0.05)
        for line in (
            "etl_sidecar_packages 1.0",
            "etl_sidecar_objects_fetched_total 4.0",
            'etl_sidecar_rejected_releases_total{reason="hash_mismatch"} 0.0',
            "etl_sidecar_sync_duration_seconds_count",
            "etl_sidecar_last_success_timestamp_seconds",
            "etl_sidecar_bytes_fetched_total",
        ):
            assert line in metrics, line
        assert 'etl_sidecar_syncs_total{status="noop"}' in metrics
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=5)
            raise AssertionError("expected 404")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    events = json_lines(out.read_text())
    assert events[0]["event"] == "starting"
    assert events[-1]["event"] == "stopped"
    assert any(e["event"] == "stopping" and e["signal"] == "SIGTERM" for e in events)


def _sidecar_against(endpoint: str, tmp_path: Path, *flags: str) -> tuple[subprocess.Popen[str], Path]:
    out = tmp_path / "sidecar.log"
    with open(out, "w") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sidecar",
                "--dag-bucket",
                "s3://dag-bucket",
                "--dags-dir",
                str(tmp_path / "dags"),
                "--metrics-port",
                "0",
                "--sync-interval",
                "60",
                *flags,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=subprocess_env(
                {
                    "AWS_ENDPOINT_URL": endpoint,
                    "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1",
                }
            ),
        )
    return proc, out


def _stop_and_time(proc: subprocess.Popen[str], out: Path, grace: float, case: str) -> None:
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    took = time.monotonic() - sent
    print(f"\nsidecar alone, {case}: exit {code}, stopped {took:.2f}s after SIGTERM (grace {grace:g}s)")
    events = json_lines(out.read_text())
    assert code == 0, out.read_text()
    assert took <= grace, f"{case}: {took:.1f}s from SIGTERM to exit, more than the grace period {grace}s"
    assert events[0]["stop_grace_seconds"] == grace
    assert events[-1]["event"] == "stopped"
    assert any(e["event"] == "sync_cycle" and e["status"] == "stopped" for e in events), events


def _wait_for_event(proc: subprocess.Popen[str], out: Path, event: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not any(e["event"] == event for e in json_lines(out.read_text())):
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < deadline, f"no {event!r} after {timeout}s:\n{out.read_text()}"
        time.sleep(0.05)


def test_sigterm_ends_a_retry_backoff_at_once_while_the_store_refuses_connections(tmp_path: Path) -> None:
    # Backoff 10 s: each of the 4 retries would wait 5-10 s; SIGTERM must not sit them out.
    proc, out = _sidecar_against(
        f"http://127.0.0.1:{free_port()}", tmp_path, "--timeout", "2", "--retries", "4", "--retry-backoff", "10"
    )
    _wait_for_event(proc, out, "store_retry", timeout=60)
    _stop_and_time(proc, out, stop_grace(2), "store refuses connections, SIGTERM during a retry backoff")


def test_sigterm_stops_within_the_grace_period_while_a_request_hangs(tmp_path: Path) -> None:
    # A server that accepts connections and never answers: the request in flight runs to its read
    # timeout (2 s); no retry follows it (each would add a 5-10 s backoff and 2 s more).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(60)
        proc, out = _sidecar_against(
            f"http://127.0.0.1:{listener.getsockname()[1]}",
            tmp_path,
            "--timeout",
            "2",
            "--retries",
            "4",
            "--retry-backoff",
            "10",
        )
        conn, _ = listener.accept()  # the sidecar's first request is in flight from here
        with conn:
            _stop_and_time(proc, out, stop_grace(2), "store accepts but never answers, SIGTERM mid-request")
