"""Run one ``PodmanRun`` to completion: the container's output line by line, then its exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from controlplane.localpods.podspec import PodmanRun
from tools.testing.containers import RUNTIME_FAILURE_CODES

__all__ = ["PodResult", "remove_container", "run_pod"]


class PodResult:
    """How the container ended."""

    def __init__(self, *, exit_code: int, seconds: float, attempts: int, deadline_exceeded: bool) -> None:
        self.exit_code = exit_code
        self.seconds = seconds
        self.attempts = attempts
        self.deadline_exceeded = deadline_exceeded

    def __repr__(self) -> str:
        return (
            f"PodResult(exit_code={self.exit_code}, seconds={self.seconds:.2f}, attempts={self.attempts}, "
            f"deadline_exceeded={self.deadline_exceeded})"
        )


def remove_container(podman: Sequence[str], name: str, *, env: Mapping[str, str] | None = None, grace: int = 5) -> None:
    """Stop (SIGTERM, SIGKILL after ``grace`` seconds) and remove the container ``name``, if it exists."""
    subprocess.run(
        [*podman, "rm", "--force", "--ignore", "--time", str(grace), name],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
        timeout=grace + 60,
    )


def _recorded_exit_code(podman: Sequence[str], name: str, *, env: Mapping[str, str] | None) -> int | None:
    """The exit code the exited container ``name`` recorded, or None (not there, or not exited)."""
    done = subprocess.run(
        [*podman, "inspect", "--type", "container", "--format", "{{.State.Status}} {{.State.ExitCode}}", name],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    status, _, value = done.stdout.strip().partition(" ")
    return int(value) if done.returncode == 0 and status == "exited" and value.lstrip("-").isdigit() else None


def _attempt(
    argv: list[str],
    *,
    env: Mapping[str, str] | None,
    on_line: Callable[[str], None],
    podman: Sequence[str],
    name: str,
    deadline: float | None,
) -> tuple[int, bool, bool]:
    """One `podman run`: (exit code, whether the program printed anything, deadline exceeded)."""
    proc = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    expired = threading.Event()
    timer = None
    if deadline is not None:

        def expire() -> None:
            expired.set()
            remove_container(podman, name, env=env)

        timer = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
        timer.daemon = True
        timer.start()
    printed = False
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            printed = printed or not line.startswith("Error:")  # podman's own failures start so
            on_line(line)
        return proc.wait(), printed, expired.is_set()
    finally:
        if timer is not None:
            timer.cancel()
        if proc.poll() is None:
            # Interrupted (the task's execution_timeout, SIGTERM to the task): the container runs under
            # conmon, not under this client, so stop the container itself, then the client.
            remove_container(podman, name, env=env)
            proc.kill()
            proc.wait()


def run_pod(
    run: PodmanRun,
    *,
    podman: Sequence[str],
    work_dir: Path,
    on_line: Callable[[str], None],
    env: Mapping[str, str] | None = None,
    active_deadline: float | None = None,
) -> PodResult:
    """Create the pod's emptyDir folders, run it, stream its output to ``on_line``, clean up.

    A runtime failure before the program printed anything (exit 125-127 and no output: seen about
    once in 20 starts on a loaded 2-core machine, runc failing to set up the container) is retried
    once; the program's own failures never are (Airflow's task retries decide those). The container
    is not started with ``--rm``: under heavy load `podman run` once answered 127 after the job had
    exited 0 (the container removed before podman read its exit file), so when podman itself
    answers 125-127 the exit code the container recorded is read back, then it is removed.
    """
    started = time.monotonic()
    deadline = started + active_deadline if active_deadline else None
    pod_dir = work_dir / run.name
    attempts = 0
    try:
        while True:
            attempts += 1
            shutil.rmtree(pod_dir, ignore_errors=True)
            paths: dict[str, str] = {}
            for volume in run.empty_dirs:
                path = pod_dir / "volumes" / volume
                path.mkdir(parents=True)
                os.chmod(path, 0o1777)  # the kubelet's emptyDir mode: any uid of the pod may write
                paths[volume] = str(path)
            code, printed, expired = _attempt(
                run.argv(podman, paths), env=env, on_line=on_line, podman=podman, name=run.name, deadline=deadline
            )
            if code in RUNTIME_FAILURE_CODES and printed:
                recorded = _recorded_exit_code(podman, run.name, env=env)
                if recorded is not None and recorded != code:
                    on_line(f"podman answered {code}, but the container recorded exit code {recorded}")
                    code = recorded
            remove_container(podman, run.name, env=env)
            if code in RUNTIME_FAILURE_CODES and attempts == 1 and not printed and not expired:
                on_line(f"podman could not start the container (exit {code}); retrying once")
                continue
            return PodResult(
                exit_code=code, seconds=time.monotonic() - started, attempts=attempts, deadline_exceeded=expired
            )
    finally:
        shutil.rmtree(pod_dir, ignore_errors=True)
