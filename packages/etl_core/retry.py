"""Retries with exponential backoff and full jitter, bounded by attempts and by total time.

A :class:`Retry` policy is used as a decorator or called directly::

    from etl_core.retry import Retry, retry

    @retry(attempts=5, retry_on=(ConnectionError, TimeoutError), max_time=30)
    def fetch() -> bytes: ...

    policy = Retry(attempts=3, retry_on=lambda exc: getattr(exc, "status", 0) >= 500)
    body = policy.call(download, url, timeout=10)

Before attempt ``n + 1`` it sleeps a random time in ``[0, min(max_delay, base_delay * 2**(n-1))]``
("full jitter"). It gives up with :class:`RetriesExhausted` (the last error chained as
``__cause__``) after ``attempts`` calls, or when the next attempt would start more than
``max_time`` seconds after the first one began. Errors that the policy does not retry propagate
unchanged. ``sleep``, ``clock`` and ``random`` are injectable, so tests run on a fake clock.
"""

from __future__ import annotations

import dataclasses
import functools
import random as _random
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from etl_core.errors import EtlCoreError
from etl_core.logs import get_logger

__all__ = ["RetriesExhausted", "Retry", "RetryPolicyError", "RetryState", "retry"]

P = ParamSpec("P")
T = TypeVar("T")

RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]

_log = get_logger("etl_core.retry")


class RetryPolicyError(EtlCoreError):
    """A retry policy was built with an impossible setting (e.g. ``attempts=0``)."""


class RetriesExhausted(EtlCoreError):
    """Every allowed attempt failed (or the time cap was reached); ``__cause__`` is the last error."""

    def __init__(self, *, name: str, attempts: int, elapsed: float, last: BaseException, reason: str) -> None:
        self.name = name
        self.attempts = attempts
        self.elapsed = elapsed
        self.last_exception = last
        self.reason = reason
        super().__init__(
            f"{name} failed after {attempts} attempt{'s' if attempts != 1 else ''} in {elapsed:.3f}s "
            f"({reason}); last error: {type(last).__name__}: {last}"
        )


@dataclasses.dataclass(frozen=True)
class RetryState:
    """What :attr:`Retry.on_retry` is told before each sleep."""

    name: str
    attempt: int  # the attempt that just failed, from 1
    delay: float  # seconds it will sleep before the next attempt
    elapsed: float  # seconds since the first attempt started
    error: BaseException


@dataclasses.dataclass(frozen=True, kw_only=True)
class Retry:
    """A retry policy; immutable, reusable, and usable as a decorator.

    attempts: total calls allowed, including the first (>= 1).
    base_delay: upper bound of the first backoff, in seconds; doubles each retry.
    max_delay: cap on any single backoff, in seconds.
    max_time: cap on the whole operation in seconds (``None`` = no cap): no attempt starts later.
    retry_on: exception types to retry, or a predicate ``exc -> bool``. Default: ``Exception``.
    sleep / clock / random: injectable ``time.sleep``, ``time.monotonic`` and a ``() -> [0, 1)``.
    on_retry: called with a :class:`RetryState` before each sleep (default: a ``retry`` log event).
    reraise: raise the last error itself instead of :class:`RetriesExhausted`.
    """

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 20.0
    max_time: float | None = 120.0
    retry_on: RetryOn = Exception
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    random: Callable[[], float] = _random.random
    on_retry: Callable[[RetryState], None] | None = None
    reraise: bool = False

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise RetryPolicyError(f"attempts must be >= 1, got {self.attempts!r}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise RetryPolicyError(
                f"delays must be >= 0, got base_delay={self.base_delay!r} max_delay={self.max_delay!r}"
            )
        if self.max_time is not None and self.max_time < 0:
            raise RetryPolicyError(f"max_time must be >= 0 or None, got {self.max_time!r}")
        rule = self.retry_on
        if not (callable(rule) and not isinstance(rule, type)) and not _is_exception_types(rule):
            raise RetryPolicyError(f"retry_on must be an exception type, a tuple of them or a predicate, got {rule!r}")

    def should_retry(self, exc: BaseException) -> bool:
        """True when ``exc`` is one this policy retries."""
        rule = self.retry_on
        if isinstance(rule, type | tuple):
            return isinstance(exc, rule)
        return bool(rule(exc))

    def backoff_ceiling(self, attempt: int) -> float:
        """Largest sleep after failed attempt number ``attempt`` (1-based): exponential, capped."""
        exponent = min(attempt - 1, 62)  # 2**62 is far above any cap; avoids float overflow
        return float(min(self.max_delay, self.base_delay * (2**exponent)))

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` under this policy and return its result."""
        name = _callable_name(fn)
        start = self.clock()
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                if not self.should_retry(exc):
                    raise
                elapsed = self.clock() - start
                if attempt >= self.attempts:
                    self._give_up(name, attempt, elapsed, exc, f"max attempts {self.attempts} reached")
                delay = self.backoff_ceiling(attempt) * self.random()
                if self.max_time is not None and elapsed + delay > self.max_time:
                    self._give_up(name, attempt, elapsed, exc, f"time cap {self.max_time}s reached")
                state = RetryState(name=name, attempt=attempt, delay=delay, elapsed=elapsed, error=exc)
                if self.on_retry is not None:
                    self.on_retry(state)
                else:
                    _log.warning(
                        "retry",
                        operation=name,
                        attempt=attempt,
                        delay_seconds=round(delay, 3),
                        error=f"{type(exc).__name__}: {exc}",
                    )
                self.sleep(delay)

    def _give_up(self, name: str, attempt: int, elapsed: float, exc: Exception, reason: str) -> None:
        if self.reraise:
            raise exc
        raise RetriesExhausted(name=name, attempts=attempt, elapsed=elapsed, last=exc, reason=reason) from exc

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Decorate ``fn`` so that each call runs under this policy."""

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return self.call(fn, *args, **kwargs)

        wrapper.retry_policy = self  # type: ignore[attr-defined]
        return wrapper

    def replace(self, **changes: Any) -> Retry:
        """A copy of this policy with some settings changed."""
        return dataclasses.replace(self, **changes)


def _callable_name(fn: Callable[..., Any]) -> str:
    target = getattr(fn, "func", fn)  # functools.partial
    return str(getattr(target, "__qualname__", None) or type(target).__qualname__)


def _is_exception_types(rule: object) -> bool:
    if isinstance(rule, type):
        return issubclass(rule, BaseException)
    if isinstance(rule, tuple):
        return bool(rule) and all(isinstance(t, type) and issubclass(t, BaseException) for t in rule)
    return False


def retry(**settings: Any) -> Retry:
    """``@retry(attempts=3, retry_on=OSError)``: a :class:`Retry` policy, used as a decorator."""
    return Retry(**settings)
