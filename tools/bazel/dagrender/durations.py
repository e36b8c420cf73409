"""Durations in specs: compact ``<n>d<n>h<n>m<n>s`` strings such as ``"30m"``, ``"2h"``, ``"1h30m"``."""

from __future__ import annotations

import re

__all__ = ["DURATION_RE", "parse_duration"]

DURATION_RE = r"^(?=\d)(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
# re.ASCII: \d would also match other scripts' digits (int() reads them, a spec must not).
_DURATION = re.compile(r"^(?=\d)(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$", re.ASCII)
_UNIT_SECONDS = (86400, 3600, 60, 1)


def parse_duration(text: str) -> int:
    """Return the number of seconds in a compact duration; raise ``ValueError`` with advice."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration; write units in the order d, h, m, s, "
            "for example '45s', '30m', '2h', '1h30m' or '1d'"
        )
    seconds = sum(int(part) * unit for part, unit in zip(match.groups(), _UNIT_SECONDS, strict=True) if part)
    if seconds <= 0:
        raise ValueError(f"{text!r} is zero; a duration must be positive")
    return seconds
