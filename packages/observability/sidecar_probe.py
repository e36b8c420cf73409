"""Read the DAG sync sidecar's ``/metrics`` and judge how long ago it last synced successfully."""

from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.error
import urllib.parse
import urllib.request

from .durations import format_duration
from .errors import MetricsScrapeError

__all__ = ["LAST_SUCCESS", "SidecarResult", "check_sidecar", "scrape"]

LAST_SUCCESS = "etl_sidecar_last_success_timestamp_seconds"
FAILURES = "etl_sidecar_consecutive_failed_syncs"


def scrape(url: str, *, timeout: float = 5.0) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by metric name from a Prometheus text endpoint; raises :class:`MetricsScrapeError`."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers={"Accept": "text/plain"}), timeout=timeout
        ) as response:
            text = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        raise MetricsScrapeError(f"{url} answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise MetricsScrapeError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    except ValueError as exc:
        raise MetricsScrapeError(f"{url} did not serve Prometheus text format: {exc}") from None
    return samples


@dataclasses.dataclass(frozen=True)
class SidecarResult:
    target: str  # host:port, the metrics label
    url: str
    ok: bool
    reachable: bool
    age: dt.timedelta | None
    max_age: dt.timedelta
    failures: float | None
    detail: str

    def summary(self) -> str:
        if self.age is None:
            return f"sidecar {self.target} ({self.detail})"
        return (
            f"sidecar {self.target} (last success {format_duration(self.age)} ago > max {format_duration(self.max_age)}"
            + (f", {int(self.failures)} failed syncs in a row)" if self.failures else ")")
        )


def target_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts.netloc or url


def check_sidecar(url: str, *, max_age: dt.timedelta, now: dt.datetime, timeout: float = 5.0) -> SidecarResult:
    """Judge one sidecar; an unreachable endpoint or a missing metric is a breach, not a crash."""
    target = target_of(url)
    try:
        samples = scrape(url, timeout=timeout)
    except MetricsScrapeError as exc:
        return SidecarResult(target, url, False, False, None, max_age, None, str(exc))
    values = [value for _, value in samples.get(LAST_SUCCESS, [])]
    failures = max((v for _, v in samples.get(FAILURES, [])), default=None)
    if not values:
        return SidecarResult(target, url, False, True, None, max_age, failures, f"no {LAST_SUCCESS} metric")
    last = max(values)
    if last <= 0:
        return SidecarResult(target, url, False, True, None, max_age, failures, "it never synced successfully")
    age = max(now - dt.datetime.fromtimestamp(last, tz=dt.UTC), dt.timedelta(0))
    return SidecarResult(
        target, url, age <= max_age, True, age, max_age, failures, f"last success {format_duration(age)} ago"
    )
