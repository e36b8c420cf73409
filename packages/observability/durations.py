"""Compact durations such as ``30m``, ``26h``, ``1d12h`` or ``90s``."""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["format_duration", "parse_duration"]

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> dt.timedelta:
    """``"1d6h"`` -> 30 hours; raises ValueError naming the text and the accepted form."""
    value = str(text).strip()
    match = _DURATION.match(value)
    if not value or not match or not any(match.groups()):
        raise ValueError(
            f"{text!r} is not a duration: write digits with d, h, m, s in that order, e.g. 30m, 26h, 1d12h"
        )
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return dt.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(delta: dt.timedelta | float) -> str:
    """A short human form: ``2d3h``, ``5h12m``, ``42s``."""
    total = int(delta.total_seconds() if isinstance(delta, dt.timedelta) else delta)
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{sign}{days}d{hours}h" if hours else f"{sign}{days}d"
    if hours:
        return f"{sign}{hours}h{minutes}m" if minutes else f"{sign}{hours}h"
    if minutes:
        return f"{sign}{minutes}m{seconds}s" if seconds else f"{sign}{minutes}m"
    return f"{sign}{seconds}s"
