"""Retry with capped exponential backoff and jitter, for reads from the DAG store."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Callable

__all__ = ["RetryPolicy", "call_with_retry"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a failed store request is tried again."""

    retries: int = 4
    """Extra attempts after the first one."""
    backoff: float = 0.5
    """Delay before the first retry, in seconds; doubles on each retry."""
    max_delay: float = 10.0
    """Upper bound of one delay, in seconds."""

    def delay(self, retry_number: int) -> float:
        """Delay before retry ``retry_number`` (1-based): half fixed, half random ("equal jitter")."""
        ceiling = min(self.max_delay, self.backoff * 2.0 ** (retry_number - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def call_with_retry[T](
    fn: Callable[[], T],
    *,
    policy: RetryPolicy,
    is_retryable: Callable[[BaseException], bool],
    on_retry: Callable[[int, float, BaseException], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    stop: threading.Event | None = None,
) -> T:
    """Call ``fn``; on a retryable exception wait and call it again, up to ``policy.retries`` times.

    The last exception propagates unchanged when every attempt failed, when an exception is not
    retryable, or when ``stop`` is set (before or during a wait: a stopping sidecar never sits out
    a backoff). ``on_retry(retry_number, delay, exc)`` is called before each wait; ``sleep`` waits
    when there is no ``stop``.
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
