"""Rootful podman for tests: runc (crun fails on this kernel's cgroups), lower ulimits, private storage."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["CONTAINERS_CONF", "RUNTIME_FAILURE_CODES", "PodmanUnavailable", "podman", "run_container"]

# `podman run` itself failed (125), or the command could not be started (126, 127).
RUNTIME_FAILURE_CODES = (125, 126, 127)

CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


class PodmanUnavailable(RuntimeError):
    """podman or runc is missing, or not running as root."""


@contextlib.contextmanager
def podman(work: Path) -> Iterator[list[str]]:
    """Yield the podman argv prefix (storage under ``work``); reset and clean up on exit.

    Sets CONTAINERS_CONF for the duration (podman reads it from the environment).
    """
    if shutil.which("podman") is None or shutil.which("runc") is None:
        raise PodmanUnavailable("podman or runc is not installed (Debian packages podman, runc)")
    if os.geteuid() != 0:
        raise PodmanUnavailable("rootful podman needs root")
    conf = work / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    old = os.environ.get("CONTAINERS_CONF")
    os.environ["CONTAINERS_CONF"] = str(conf)
    runroot = tempfile.mkdtemp(prefix="podman-run-", dir="/tmp")  # podman wants a short runroot path
    cmd = ["podman", "--root", str(work / "storage"), "--runroot", runroot]
    try:
        yield cmd
    finally:
        subprocess.run([*cmd, "system", "reset", "--force"], capture_output=True, check=False, timeout=120)
        shutil.rmtree(runroot, ignore_errors=True)
        if old is None:
            os.environ.pop("CONTAINERS_CONF", None)
        else:
            os.environ["CONTAINERS_CONF"] = old


def run_container(argv: list[str], *, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`podman run ...`, retried once when the runtime failed to start the container.

    Exit codes 125-127 with no output from the container mean podman or runc failed before the
    program ran (seen here once in ~20 runs on a loaded 2-core machine); the program's own failures
    are never retried.
    """
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    if done.returncode in RUNTIME_FAILURE_CODES and not done.stdout.strip():
        print(
            f"podman run failed to start the container (exit {done.returncode}); retrying once: {done.stderr.strip()}"
        )
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    return done
