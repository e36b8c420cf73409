"""Ctrl-C (SIGINT) or SIGTERM to the demo while it is starting: it exits 0 and nothing it started
survives (moto, docker-registry, `airflow db migrate`, api-server, scheduler, dag-processor, sidecar).

Every process the demo starts inherits its environment, so a marker variable given to the demo
finds them all in /proc, including those in their own sessions (reparented once the demo exits).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import demo
from tools.testing.registry import registry_binary

DEMO = Path(demo.__file__)
PACKAGES = demo.PACKAGES


def processes_with(marker: str) -> dict[int, str]:
    """{pid: command line} of every live process whose environment holds ``marker``."""
    found: dict[int, str] = {}
    needle = marker.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes():
                continue
            if (entry / "stat").read_text().rpartition(")")[2].split()[0] == "Z":
                continue  # a zombie is dead; its parent has not reaped it yet
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
    return found


def _wait_for_line(proc: subprocess.Popen[str], log: Path, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in log.read_text(errors="replace"):
            return
        assert proc.poll() is None, f"the demo exited {proc.returncode} before {needle!r}:\n{log.read_text()}"
        time.sleep(0.05)
    raise AssertionError(f"no {needle!r} after {timeout}s:\n{log.read_text()}")


@pytest.mark.skipif(registry_binary() is None, reason="docker-registry is not installed")
@pytest.mark.parametrize(
    ("moment", "sig", "extra_wait"),
    [
        (f"publishing {len(PACKAGES)} packages", signal.SIGINT, 0.0),  # `airflow db migrate` running in a thread
        ("Airflow processes started", signal.SIGINT, 0.0),  # the three components booting
        ("Airflow processes started", signal.SIGTERM, 3.0),  # waiting for the api-server
    ],
)
def test_signal_during_start_up_leaves_nothing_running(tmp_path: Path, moment: str, sig: signal.Signals,
                                                       extra_wait: float, build_dir: Path) -> None:
    marker = f"ETL_DEMO_TEST_MARKER={uuid.uuid4().hex}"
    name, _, value = marker.partition("=")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), name: value}
    env.pop("BUILD_WORKSPACE_DIRECTORY", None)
    log = tmp_path / "demo.out"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(DEMO), "--state-dir", str(tmp_path / "state"), "--build-dir", str(build_dir)],
            env=env, stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )
    try:
        _wait_for_line(proc, log, moment, timeout=300)
        time.sleep(extra_wait)
        started = processes_with(marker)
        assert len(started) >= 3, f"expected the demo, moto and the registry at least: {started}"
        proc.send_signal(sig)  # to the demo only, as `kill -INT <pid>` would (not its process group)
        code = proc.wait(timeout=120)
        text = log.read_text()
        assert code == 0, text
        assert f"demo: {sig.name}: stopped everything it started" in text
        deadline = time.monotonic() + 5  # SIGKILLed children may take a moment to disappear
        while processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processes_with(marker) == {}, f"left running after {sig.name} at {moment!r}:\n{text}"
    finally:
        for pid in processes_with(marker):  # never leave them behind, even when the test fails
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
