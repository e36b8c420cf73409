"""The demo's stop signals, in this process: a stop that something on its way swallowed is
delivered again by the watcher (``demo._watch_stops``), and one that reached the clean-up is not."""

from __future__ import annotations

import os
import signal
import time

import demo
import pytest


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
