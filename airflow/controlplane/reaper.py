"""Finish stopping a control plane whose owner died without calling ``stop()`` (a SIGKILLed demo).

``ControlPlane`` starts this once, with a pipe on stdin, and writes the process group id of every
Airflow process it starts, one per line. The kernel closes the pipe when the owner exits, however
it exits, so end of input is the cue. By then each group leader has had SIGTERM from the kernel
(its parent-death signal), as ``stop()`` would send; this gives the groups the same ``grace``
seconds, then SIGKILLs what is left of them, forked children included. It reads nothing else and
imports only the standard library. After a normal ``stop()`` the groups are gone and it exits at once.

Why: one run of //airflow:test_demo_interrupt had the dag-processor still running 120 s after the
demo was SIGKILLed, with only the parent-death SIGTERM to stop it.

Usage: ``python reaper.py GRACE_SECONDS`` (stdin: process group ids).
"""

from __future__ import annotations

import os
import signal
import sys
import time


def _alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str]) -> int:
    grace = float(argv[1])
    groups = {int(line) for line in sys.stdin if line.strip().isdigit()}  # until the owner is gone
    deadline = time.monotonic() + grace
    left = {g for g in groups if _alive(g)}
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = {g for g in left if _alive(g)}
    for group in left:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
