"""The retry loop on a recorded sleep: delay bounds, retry counts, what is not retried, stop."""

from __future__ import annotations

import threading

import pytest

from tools.bazel.retrypolicy import RetryPolicy, call_with_retry


class Flaky:
    """Raises the given exceptions in order, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def _always(exc: BaseException) -> bool:
    return True


def test_delays_are_equal_jitter_capped_and_doubling() -> None:
    policy = RetryPolicy(retries=6, backoff=0.5, max_delay=3.0)
    assert [policy.delay(n, uniform=lambda lo, hi: lo) for n in range(1, 6)] == [0.25, 0.5, 1.0, 1.5, 1.5]
    assert [policy.delay(n, uniform=lambda lo, hi: hi) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    for n in range(1, 8):
        assert 0.5 * min(3.0, 0.5 * 2 ** (n - 1)) <= policy.delay(n) <= min(3.0, 0.5 * 2 ** (n - 1))


def test_retries_until_success_and_reports_each_retry() -> None:
    slept: list[float] = []
    seen: list[tuple[int, str]] = []
    fn = Flaky(OSError("a"), OSError("b"))
    result = call_with_retry(
        fn,
        policy=RetryPolicy(retries=2, backoff=0.1),
        is_retryable=_always,
        on_retry=lambda n, d, e: seen.append((n, str(e))),
        sleep=slept.append,
    )
    assert (result, fn.calls) == ("ok", 3)
    assert seen == [(1, "a"), (2, "b")]
    assert 0.05 <= slept[0] <= 0.1 and 0.1 <= slept[1] <= 0.2


def test_the_last_error_propagates_unchanged_after_the_last_retry() -> None:
    fn = Flaky(OSError("1"), OSError("2"), OSError("3"))
    with pytest.raises(OSError, match=r"^3$"):
        call_with_retry(fn, policy=RetryPolicy(retries=2, backoff=0), is_retryable=_always, sleep=lambda s: None)
    assert fn.calls == 3


def test_an_error_that_is_not_retryable_is_raised_at_once() -> None:
    fn = Flaky(ValueError("bad request"))
    with pytest.raises(ValueError, match="bad request"):
        call_with_retry(
            fn,
            policy=RetryPolicy(retries=5),
            is_retryable=lambda e: isinstance(e, OSError),
            sleep=lambda s: pytest.fail("slept"),
        )
    assert fn.calls == 1


def test_no_retries_means_one_attempt() -> None:
    fn = Flaky(OSError("down"))
    with pytest.raises(OSError, match="down"):
        call_with_retry(fn, policy=RetryPolicy(retries=0), is_retryable=_always)
    assert fn.calls == 1


def test_a_set_stop_event_ends_the_wait_and_raises_the_last_error() -> None:
    stop = threading.Event()

    def fn() -> str:
        stop.set()  # e.g. SIGTERM arrives while the request fails
        raise OSError("refused")

    with pytest.raises(OSError, match="refused"):
        call_with_retry(
            fn, policy=RetryPolicy(retries=3, backoff=60.0, max_delay=60.0), is_retryable=_always, stop=stop
        )
    stop2 = threading.Event()
    timer = threading.Timer(0.05, stop2.set)
    timer.start()
    fn2 = Flaky(OSError("x"), OSError("y"))
    with pytest.raises(OSError, match="x"):  # stopped during the first (60 s) wait
        call_with_retry(
            fn2, policy=RetryPolicy(retries=3, backoff=60.0, max_delay=60.0), is_retryable=_always, stop=stop2
        )
    assert fn2.calls == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"retries": -1}, r"RetryPolicy\(retries=-1\): must be a whole number >= 0"),
        ({"retries": 1.5}, r"RetryPolicy\(retries=1.5\): must be a whole number"),
        ({"backoff": float("nan")}, r"RetryPolicy\(backoff=nan\): must be a finite number"),
        ({"max_delay": -2}, r"RetryPolicy\(max_delay=-2\): must be a finite"),
    ],
)
def test_bad_policies_are_refused_with_the_value(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
