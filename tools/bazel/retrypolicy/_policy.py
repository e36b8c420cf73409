"""Capped exponential backoff with equal jitter, and the loop that applies it."""

from __future__ import annotations

import dataclasses
import math
import random
import threading
import time
from collections.abc import Callable

__all__ = ["RetryPolicy", "call_with_retry"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a failed call is tried again.

    Retry ``n`` (1-based) waits ``c/2 + uniform(0, c/2)`` seconds with
    ``c = min(max_delay, backoff * 2**(n-1))`` ("equal jitter"): never less than half the
    exponential step, so a retry does not hammer a struggling server, and never two clients in
    lock step.
    """

    retries: int = 4
    """Extra attempts after the first one (0: no retry)."""
    backoff: float = 0.5
    """The first retry's ceiling, in seconds; doubles on each retry."""
    max_delay: float = 10.0
    """Upper bound of one delay, in seconds."""

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"RetryPolicy(retries={self.retries!r}): must be a whole number >= 0")
        for name in ("backoff", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"RetryPolicy({name}={value!r}): must be a finite number of seconds >= 0")

    def delay(self, retry_number: int, *, uniform: Callable[[float, float], float] = random.uniform) -> float:
        """Seconds to wait before retry ``retry_number`` (1-based)."""
        if retry_number < 1:
            raise ValueError(f"retry_number={retry_number!r}: retries are numbered from 1")
        ceiling = min(self.max_delay, self.backoff * 2.0 ** (retry_number - 1))
        return ceiling / 2 + uniform(0.0, ceiling / 2)


def call_with_retry[T](
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    is_retryable: Callable[[BaseException], bool],
    on_retry: Callable[[int, float, BaseException], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stop: threading.Event | None = None,
) -> T:
    """Call ``fn``; on an exception ``is_retryable`` accepts, wait and call it again.

    At most ``policy.retries`` retries. The last exception propagates unchanged when every attempt
    failed, when it is not retryable, or when ``stop`` is set (before or during a wait: a stopping
    service never sits out a backoff). ``on_retry(retry_number, delay, exc)`` runs before each
    wait (log it, count it); ``sleep`` waits when there is no ``stop``.
    """
    retry_number = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if retry_number >= policy.retries or not is_retryable(exc) or (stop is not None and stop.is_set()):
                raise
            retry_number += 1
            delay = policy.delay(retry_number)
            if on_retry is not None:
                on_retry(retry_number, delay, exc)
            if stop is None:
                sleep(delay)
            elif stop.wait(delay):
                raise
