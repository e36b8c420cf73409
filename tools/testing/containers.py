"""Rootful podman for tests: runc (crun fails on this kernel's cgroups), lower ulimits, private storage."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PodmanUnavailable", "podman"]

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
