"""Settings and helpers shared by the observability jobs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from etl_core.jobs import JobSettings
from pydantic import Field, field_validator

from ..durations import parse_duration

__all__ = ["PACKAGE", "CheckSettings", "duration_field", "now_from"]

PACKAGE = "observability"


def duration_field(default: str, description: str) -> Any:
    return Field(default, description=f"{description} (e.g. 30m, 26h, 1d12h)")


class CheckSettings(JobSettings):
    now: dt.datetime | None = Field(
        None, description="evaluate as of this UTC time (ISO 8601; default: the current time), for replays"
    )

    @field_validator("now")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value


def check_duration(value: str) -> str:
    parse_duration(value)
    return value


def now_from(settings: CheckSettings) -> dt.datetime:
    return settings.now or dt.datetime.now(dt.UTC)
