"""Retry policy on a fake clock: backoff sizes, jitter bounds, attempt and time caps, both forms."""

from __future__ import annotations

import logging
import random

import pytest

from etl_core.retry import RetriesExhausted, Retry, RetryPolicyError, RetryState, retry


class FakeClock:
    """A monotonic clock that only moves when someone sleeps or spends time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Fails ``failures`` times with ``exc``, then returns ``result``; each call may take time."""

    def __init__(self, failures: int, exc: Exception, *, clock: FakeClock | None = None, cost: float = 0.0) -> None:
        self.failures = failures
        self.exc = exc
        self.calls = 0
        self.clock = clock
        self.cost = cost

    def __call__(self, value: str = "ok") -> str:
        self.calls += 1
        if self.clock is not None:
            self.clock.now += self.cost
        if self.calls <= self.failures:
            raise self.exc
        return value


def policy(clock: FakeClock, **kw: object) -> Retry:
    settings: dict[str, object] = {
        "attempts": 5,
        "base_delay": 1.0,
        "max_delay": 30.0,
        "max_time": None,
        "retry_on": ConnectionError,
        "sleep": clock.sleep,
        "clock": clock.clock,
        "random": lambda: 0.5,
        "on_retry": lambda state: None,
    }
    settings.update(kw)
    return Retry(**settings)  # type: ignore[arg-type]


def test_succeeds_after_failures_with_exponential_half_jitter_sleeps() -> None:
    clock = FakeClock()
    fn = Flaky(3, ConnectionError("reset"))
    assert policy(clock).call(fn, "done") == "done"
    assert fn.calls == 4
    # ceilings 1, 2, 4 scaled by random() == 0.5
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_full_jitter_stays_within_the_capped_exponential_ceiling() -> None:
    clock = FakeClock()
    rng = random.Random(7)
    p = policy(clock, attempts=12, base_delay=0.5, max_delay=8.0, random=rng.random)
    fn = Flaky(11, ConnectionError("down"))
    assert p.call(fn) == "ok"
    assert len(clock.sleeps) == 11
    for attempt, slept in enumerate(clock.sleeps, start=1):
        assert 0.0 <= slept <= min(8.0, 0.5 * 2 ** (attempt - 1))
    # full jitter: not all sleeps sit on the ceiling
    assert any(slept < p.backoff_ceiling(n) * 0.9 for n, slept in enumerate(clock.sleeps, start=1))
    assert p.backoff_ceiling(1) == 0.5
    assert p.backoff_ceiling(5) == 8.0
    assert p.backoff_ceiling(1000) == 8.0


def test_gives_up_after_max_attempts_with_the_last_error_chained() -> None:
    clock = FakeClock()
    errors = [ConnectionError(f"down {n}") for n in range(1, 5)]
    calls = iter(errors)

    def always_down() -> None:
        raise next(calls)

    with pytest.raises(RetriesExhausted, match=r"failed after 4 attempts .*max attempts 4 reached.*down 4") as info:
        policy(clock, attempts=4).call(always_down)
    assert info.value.__cause__ is errors[-1]
    assert info.value.last_exception is errors[-1]
    assert info.value.attempts == 4
    assert len(clock.sleeps) == 3


def test_errors_it_does_not_retry_propagate_unchanged_at_once() -> None:
    clock = FakeClock()
    fn = Flaky(5, ValueError("bad input"))
    with pytest.raises(ValueError, match="bad input"):
        policy(clock).call(fn)
    assert fn.calls == 1
    assert clock.sleeps == []


def test_predicate_decides_which_errors_retry() -> None:
    clock = FakeClock()

    class HTTPError(Exception):
        def __init__(self, status: int) -> None:
            super().__init__(f"HTTP {status}")
            self.status = status

    p = policy(clock, retry_on=lambda exc: isinstance(exc, HTTPError) and exc.status >= 500)
    server_error = Flaky(2, HTTPError(503))
    assert p.call(server_error) == "ok"
    assert server_error.calls == 3
    client_error = Flaky(2, HTTPError(404))
    with pytest.raises(HTTPError, match="HTTP 404"):
        p.call(client_error)
    assert client_error.calls == 1


def test_tuple_of_types_retries_each_of_them() -> None:
    clock = FakeClock()
    p = policy(clock, retry_on=(ConnectionError, TimeoutError))
    assert p.call(Flaky(1, TimeoutError("slow"))) == "ok"
    assert p.should_retry(ConnectionResetError()) is True  # subclasses count
    assert p.should_retry(KeyError("x")) is False


def test_total_time_cap_counts_time_spent_in_calls_and_sleeps() -> None:
    clock = FakeClock()
    fn = Flaky(100, ConnectionError("slow down"), clock=clock, cost=10.0)
    p = policy(clock, attempts=100, max_time=25.0, random=lambda: 0.999)
    with pytest.raises(
        RetriesExhausted, match=r"Flaky failed after 3 attempts in 32\.997s \(time cap 25\.0s reached\)"
    ):
        p.call(fn)
    # t=0..10 fail, sleep ~1 -> 11..21 fail, sleep ~2 -> 23..33 fail, next start ~37 > 25: stop
    assert fn.calls == 3
    assert clock.sleeps == pytest.approx([0.999, 1.998])


def test_no_attempt_starts_after_the_cap_even_with_zero_cost_calls() -> None:
    clock = FakeClock()
    fn = Flaky(100, ConnectionError("down"))
    p = policy(clock, attempts=1000, base_delay=1.0, max_delay=4.0, max_time=10.0, random=lambda: 0.999)
    with pytest.raises(RetriesExhausted, match="time cap 10.0s"):
        p.call(fn)
    assert clock.now <= 10.0
    assert sum(clock.sleeps) <= 10.0


def test_decorator_form_keeps_the_function_identity() -> None:
    clock = FakeClock()
    state = {"calls": 0}
    p = policy(clock)

    @p
    def fetch(key: str, *, suffix: str = "") -> str:
        """Fetch a thing."""
        state["calls"] += 1
        if state["calls"] < 3:
            raise ConnectionError("flap")
        return key + suffix

    assert fetch("a", suffix="!") == "a!"
    assert state["calls"] == 3
    assert fetch.__name__ == "fetch"
    assert fetch.__doc__ == "Fetch a thing."
    assert fetch.retry_policy is p  # type: ignore[attr-defined]


def test_retry_function_builds_a_decorator() -> None:
    clock = FakeClock()
    calls: list[int] = []

    @retry(attempts=2, retry_on=OSError, sleep=clock.sleep, clock=clock.clock, random=lambda: 0.0, max_time=None)
    def once_broken() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise OSError("EAGAIN")
        return len(calls)

    assert once_broken() == 2
    assert clock.sleeps == [0.0]


def test_on_retry_sees_each_failed_attempt() -> None:
    clock = FakeClock()
    seen: list[RetryState] = []
    p = policy(clock, on_retry=seen.append)
    p.call(Flaky(2, ConnectionError("x"), clock=clock, cost=1.0))
    assert [s.attempt for s in seen] == [1, 2]
    assert [s.delay for s in seen] == [0.5, 1.0]
    assert [s.elapsed for s in seen] == [1.0, 2.5]
    assert all(isinstance(s.error, ConnectionError) for s in seen)
    assert seen[0].name == "Flaky"


def test_reraise_gives_back_the_original_exception() -> None:
    clock = FakeClock()
    err = ConnectionError("still down")
    with pytest.raises(ConnectionError, match="still down") as info:
        policy(clock, attempts=2, reraise=True).call(Flaky(9, err))
    assert info.value is err


def test_default_on_retry_logs_a_structured_retry_event(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    p = policy(clock, on_retry=None)
    with caplog.at_level(logging.WARNING, logger="etl_core.retry"):
        p.call(Flaky(1, ConnectionError("blip")))
    [record] = [r for r in caplog.records if r.name == "etl_core.retry"]
    assert record.getMessage() == "retry"
    fields = record.etl_fields  # type: ignore[attr-defined]
    assert fields["attempt"] == 1
    assert fields["delay_seconds"] == 0.5
    assert fields["error"] == "ConnectionError: blip"


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"attempts": 0}, r"attempts must be >= 1, got 0"),
        ({"base_delay": -1.0}, r"delays must be >= 0, got base_delay=-1\.0"),
        ({"max_time": -5.0}, r"max_time must be >= 0 or None, got -5\.0"),
        ({"retry_on": "ConnectionError"}, r"retry_on must be an exception type.*got 'ConnectionError'"),
        ({"retry_on": (ConnectionError, int)}, r"retry_on must be an exception type"),
    ],
)
def test_impossible_policies_are_rejected(kw: dict[str, object], message: str) -> None:
    with pytest.raises(RetryPolicyError, match=message):
        Retry(**kw)  # type: ignore[arg-type]


def test_replace_makes_a_changed_copy() -> None:
    base = Retry(attempts=3)
    changed = base.replace(attempts=7)
    assert (base.attempts, changed.attempts) == (3, 7)
    assert changed.base_delay == base.base_delay
