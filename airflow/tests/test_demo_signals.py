"""How the demo stops, without a platform: in this process, a stop signal that something on its way
swallowed is delivered again by the watcher (``demo._watch_stops``) and one that reached the
clean-up is not; and the control plane's reaper SIGKILLs a process group that outlived its owner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import demo
import pytest
from controlplane import runner


def _busy(seconds: float) -> None:
    """Python code in the main thread, where signal handlers run."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_stop_swallowed_on_its_way_is_delivered_again(capsys: pytest.CaptureFixture[str]) -> None:
    with demo.stop_signals():
        swallowed: list[BaseException] = []
        try:
            os.kill(os.getpid(), signal.SIGINT)
            _busy(5)
        except BaseException as exc:  # what a library that catches everything does
            swallowed.append(exc)
        assert [type(e) for e in swallowed] == [demo._Stop]
        started = time.monotonic()
        with pytest.raises(demo._Stop, match="SIGINT"):
            _busy(10)
        assert time.monotonic() - started < demo._WATCH_SECONDS + 2
    out = capsys.readouterr().out
    assert "demo: SIGINT has not stopped the demo after 2s (its handler ran); delivering it again" in out


def test_a_stop_that_reaches_the_clean_up_is_not_delivered_again(capsys: pytest.CaptureFixture[str]) -> None:
    with demo.stop_signals():
        with pytest.raises(demo._Stop, match="SIGTERM"):
            os.kill(os.getpid(), signal.SIGTERM)
            _busy(5)
        demo._UNWINDING.set()  # what run()'s clean-up does
        _busy(demo._WATCH_SECONDS + 1)  # no second _Stop comes
    assert "delivering it again" not in capsys.readouterr().out


def test_the_previous_handlers_come_back() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with demo.stop_signals():
        assert signal.getsignal(signal.SIGINT) is demo._on_signal
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_the_reaper_kills_a_group_that_ignored_the_parent_death_sigterm() -> None:
    grace = 1.0
    reaper = subprocess.Popen([sys.executable, str(runner._REAPER), str(grace)], stdin=subprocess.PIPE)
    stubborn = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; sleep 60 & echo ready; wait"], stdout=subprocess.PIPE, start_new_session=True
    )
    try:
        assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
        assert reaper.stdin is not None
        reaper.stdin.write(f"{stubborn.pid}\n".encode())
        reaper.stdin.flush()
        os.killpg(stubborn.pid, signal.SIGTERM)  # ignored, as a stuck component would
        time.sleep(0.3)
        assert stubborn.poll() is None
        closed = time.monotonic()
        reaper.stdin.close()  # what the kernel does when the owner dies, however it dies
        assert reaper.wait(timeout=10) == 0
        assert stubborn.wait(timeout=5) == -signal.SIGKILL
        assert grace <= time.monotonic() - closed < grace + 3
    finally:
        for proc in (stubborn, reaper):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_the_reaper_exits_at_once_when_the_groups_are_gone() -> None:
    reaper = subprocess.Popen([sys.executable, str(runner._REAPER), "30"], stdin=subprocess.PIPE)
    done = subprocess.Popen(["true"], start_new_session=True)
    done.wait()
    assert reaper.stdin is not None
    reaper.stdin.write(f"{done.pid}\n".encode())
    reaper.stdin.close()
    started = time.monotonic()
    assert reaper.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
