"""Dataset freshness: is the newest partition (or object) of each dataset recent enough?

Datasets are declared in YAML (``observability/checks/freshness.yaml`` by default)::

    datasets:
      - name: orders
        location: s3://etl-curated/orders/     # local folders work too
        kind: partition                       # newest dt=YYYY-MM-DD folder
        max_age: 30h
        marker: _manifest.json                # a partition counts once this file is in it
      - name: landing_orders
        location: s3://etl-landing/orders/
        kind: object                          # newest object's last-modified time
        pattern: "*.csv"
        max_age: 26h

For ``partition`` the age is measured from the end of the newest partition's day: ``dt=2026-11-25``
covers data up to 2026-11-26T00:00Z, so at 06:00Z that day its age is 6h. For ``object`` it is the
time since the newest matching object was last modified. A dataset with nothing to measure (no
partition, no object, an unreadable location) is a breach too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fnmatch
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from etl_core import storage
from etl_core.errors import EtlCoreError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from .durations import format_duration, parse_duration
from .errors import ChecksError, NotFoundError, StorageError

__all__ = ["CHECKS_DIR", "DatasetCheck", "FreshnessConfig", "FreshnessResult", "check_dataset", "load_config"]

CHECKS_DIR = Path(__file__).parent / "checks"
_PARTITION = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<date>\d{4}-\d{2}-\d{2})$")
_MAX_MARKER_LOOKBACK = 14


class DatasetCheck(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    location: str
    kind: Literal["partition", "object"] = "partition"
    max_age: str = Field(description="allowed age, e.g. 30h, 1d6h")
    partition_key: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "dt"
    marker: str | None = Field(None, description="partition: a file that must exist in it (e.g. _manifest.json)")
    pattern: str | None = Field(None, description="object: glob the object names must match")

    @field_validator("max_age")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def max_age_delta(self) -> dt.timedelta:
        return parse_duration(self.max_age)


class FreshnessConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    datasets: Annotated[list[DatasetCheck], Field(min_length=1)]

    @field_validator("datasets")
    @classmethod
    def _unique(cls, value: list[DatasetCheck]) -> list[DatasetCheck]:
        seen: set[str] = set()
        for item in value:
            if item.name in seen:
                raise ValueError(f"dataset {item.name!r} is listed twice")
            seen.add(item.name)
        return value


@dataclasses.dataclass(frozen=True)
class FreshnessResult:
    """The verdict on one dataset."""

    dataset: str
    ok: bool
    max_age: dt.timedelta
    age: dt.timedelta | None
    newest: dt.datetime | None
    detail: str  # e.g. "dt=2026-11-25" or the object URL, or why nothing could be measured

    def summary(self) -> str:
        if self.age is None:
            return f"{self.dataset} ({self.detail})"
        return f"{self.dataset} ({self.detail}, age {format_duration(self.age)} > max {format_duration(self.max_age)})"


def load_config(location: str | Path) -> FreshnessConfig:
    """Read and check a freshness checks file; raises :class:`ChecksError` naming the field."""
    where = str(location)
    try:
        data = yaml.safe_load(storage.read_bytes(where).decode("utf-8"))
    except NotFoundError:
        raise ChecksError(f"checks file {where!r} does not exist: add it or pass --checks") from None
    except yaml.YAMLError as exc:
        raise ChecksError(f"checks file {where!r} is not valid YAML: {exc}".replace("\n", " ")) from None
    try:
        return FreshnessConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in first["loc"]).replace(".[", "[")
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ChecksError(f"{where}: {field}: {message}") from None


def _partitions(check: DatasetCheck) -> list[tuple[dt.date, str]]:
    found = []
    for name in storage.list_folders(check.location):
        match = _PARTITION.match(name)
        if match and match.group("key") == check.partition_key:
            try:
                found.append((dt.date.fromisoformat(match.group("date")), name))
            except ValueError:
                continue
    return sorted(found, reverse=True)


def _newest_partition(check: DatasetCheck) -> tuple[dt.datetime, str] | None:
    for count, (day, name) in enumerate(_partitions(check)):
        if count >= _MAX_MARKER_LOOKBACK:
            break
        if check.marker and not storage.exists(storage.join(check.location, name, check.marker)):
            continue  # being written, or a failed run: not complete yet
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
        return end, name
    return None


def _newest_object(check: DatasetCheck) -> tuple[dt.datetime, str] | None:
    newest = None
    for info in storage.list_files(check.location):
        if check.pattern and not fnmatch.fnmatchcase(info.name, check.pattern):
            continue
        if newest is None or info.modified > newest.modified:
            newest = info
    return (newest.modified, newest.url) if newest else None


def check_dataset(check: DatasetCheck, now: dt.datetime) -> FreshnessResult:
    """Measure one dataset; never raises for a missing or unreadable location (that is a breach)."""
    limit = check.max_age_delta
    try:
        found = _newest_partition(check) if check.kind == "partition" else _newest_object(check)
    except NotFoundError:
        found = None
        what = f"nothing at {check.location}"
    except (StorageError, OSError, EtlCoreError) as exc:  # access denied, S3 down: a breach, not a crash
        return FreshnessResult(check.name, False, limit, None, None, f"cannot list {check.location}: {exc}")
    else:
        what = (
            f"no {check.partition_key}=YYYY-MM-DD partition"
            + (f" with {check.marker}" if check.marker else "")
            + f" under {check.location}"
            if check.kind == "partition"
            else f"no object{' matching ' + check.pattern if check.pattern else ''} under {check.location}"
        )
    if found is None:
        return FreshnessResult(check.name, False, limit, None, None, what)
    newest, detail = found
    age = max(now - newest, dt.timedelta(0))
    return FreshnessResult(check.name, age <= limit, limit, age, newest, detail)
