"""Schedule validation: Airflow's presets or a standard five-field cron expression.

A small validator of our own, so that rendering needs neither croniter nor Airflow. It accepts
what Airflow's croniter-based timetable accepts for the standard syntax (lists, ranges, steps,
``*``, month and weekday names) and rejects the non-standard extensions (seconds field, ``L``,
``W``, ``#``, ``?``, ``H``) that not every scheduler reads the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["PRESETS", "validate_schedule"]

# Airflow 3.3's cron presets plus @once. "@continuous" is left out: it needs max_active_runs=1.
PRESETS = ("@once", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly")

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_start: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS, 1),
    _Field("day of week", 0, 7, _DAYS, 0),
)
_ITEM = re.compile(r"^(?P<range>\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(?P<step>[0-9]+))?$")


def _value(token: str, field: _Field) -> int:
    if token.isdigit():
        value = int(token)
    elif token.lower() in field.names:
        value = field.names.index(token.lower()) + field.names_start
    else:
        raise ValueError(f"{field.name} {token!r} is not a number" + (" or a name" if field.names else ""))
    if not field.low <= value <= field.high:
        raise ValueError(f"{field.name} {token!r} is outside {field.low}-{field.high}")
    return value


def _check_field(text: str, field: _Field) -> None:
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            raise ValueError(f"{field.name} item {item!r} is not '*', 'N', 'N-M' or one of them with '/STEP'")
        span, step = match.group("range"), match.group("step")
        if span != "*":
            bounds = [_value(part, field) for part in span.split("-")]
            if len(bounds) == 2 and bounds[0] > bounds[1]:
                raise ValueError(f"{field.name} range {span!r} runs backwards")
        if step is not None and not 1 <= int(step) <= field.high:
            raise ValueError(f"{field.name} step {step!r} must be between 1 and {field.high}")


def validate_schedule(schedule: str) -> str:
    """Return ``schedule`` unchanged when it is a preset or a valid 5-field cron, else raise ValueError."""
    if schedule.startswith("@"):
        if schedule not in PRESETS:
            raise ValueError(f"{schedule!r} is not a supported preset; use one of {', '.join(PRESETS)}")
        return schedule
    parts = schedule.split()
    if len(parts) != len(_FIELDS):
        raise ValueError(
            f"{schedule!r} has {len(parts)} fields; a cron expression has 5 "
            "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'"
        )
    for part, field in zip(parts, _FIELDS, strict=True):
        try:
            _check_field(part, field)
        except ValueError as exc:
            raise ValueError(f"{schedule!r} is not a valid cron expression: {exc}") from None
    return schedule
