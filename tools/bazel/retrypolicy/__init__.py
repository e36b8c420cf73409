"""retrypolicy: the platform's one retry loop and jitter policy (standard library only).

from tools.bazel.retrypolicy import RetryPolicy, call_with_retry

policy = RetryPolicy(retries=2, backoff=0.1, max_delay=1.0)
data = call_with_retry(lambda: fetch(url), policy=policy, is_retryable=lambda e: isinstance(e, OSError))
"""

from __future__ import annotations

from tools.bazel.retrypolicy._policy import RetryPolicy, call_with_retry

__all__ = ["RetryPolicy", "call_with_retry"]
