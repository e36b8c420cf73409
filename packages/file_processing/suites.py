"""Expectation suites as YAML, one per dataset: ``file_processing/suites/<dataset>.yaml``.

A suite lists great-expectations 1.x expectations by their snake_case type with their kwargs, and
marks each one ``critical`` (the default: a failure fails the job) or not (a failure is a warning)::

    dataset: orders
    description: Daily orders extract from the shop database.
    expectations:
      - type: expect_column_values_to_not_be_null
        kwargs: {column: order_id}
      - type: expect_column_values_to_be_between
        kwargs: {column: amount, min_value: 0, max_value: 50000, mostly: 0.999}
        critical: false

Loading a suite checks its shape only (no great-expectations import); unknown expectation types
and bad kwargs are reported by :mod:`file_processing.validation` when the suite runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from etl_core import storage
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from .errors import NotFoundError, SuiteError

__all__ = ["SUITES_DIR", "ExpectationSpec", "Suite", "load_suite", "suite_location"]

SUITES_DIR = Path(__file__).parent / "suites"
DATASET_RE = r"^[a-z][a-z0-9_]{0,62}$"
_DATASET = re.compile(DATASET_RE)

# Expectations that read only the table's shape (its column names and row count), never values.
TABLE_SHAPE_TYPES = frozenset(
    {
        "expect_table_row_count_to_be_between",
        "expect_table_row_count_to_equal",
        "expect_table_column_count_to_be_between",
        "expect_table_column_count_to_equal",
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_column_to_exist",
    }
)
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list",)


class ExpectationSpec(BaseModel):
    """One expectation: its great-expectations type, kwargs and severity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Annotated[str, StringConstraints(pattern=r"^expect_[a-z0-9_]+$")] = Field(
        description="snake_case great-expectations type, e.g. expect_column_values_to_not_be_null"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict)
    critical: bool = Field(True, description="a failure fails the job (false: it is only reported)")
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:#-]{1,120}$")] | None = Field(
        None, description="stable name for metrics and results (default: '<type>:<column>')"
    )
    notes: str = ""

    @property
    def columns(self) -> tuple[str, ...]:
        """Columns whose values this expectation reads (empty for table-level ones)."""
        out: list[str] = []
        for key in _COLUMN_KWARGS:
            if isinstance(self.kwargs.get(key), str):
                out.append(self.kwargs[key])
        for key in _COLUMN_LIST_KWARGS:
            value = self.kwargs.get(key)
            if isinstance(value, list):
                out.extend(str(item) for item in value)
        return tuple(dict.fromkeys(out))

    @property
    def reads_values(self) -> bool:
        """False for expectations that look only at column names and the row count."""
        return self.type not in TABLE_SHAPE_TYPES

    def default_id(self) -> str:
        cols = self.columns
        return f"{self.type}:{','.join(cols)}" if cols else self.type


class Suite(BaseModel):
    """A dataset's expectation suite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Annotated[str, StringConstraints(pattern=DATASET_RE)]
    description: str = ""
    expectations: Annotated[list[ExpectationSpec], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_ids(self) -> Suite:
        seen: set[str] = set()
        for index, spec in enumerate(self.expectations):
            if spec.id is not None:
                if spec.id in seen:
                    raise ValueError(f"expectations[{index}].id {spec.id!r} is used twice; ids must be unique")
                seen.add(spec.id)
        return self

    def ids(self) -> list[str]:
        """Each expectation's id (explicit, or derived and numbered ``#2``, ``#3`` when repeated)."""
        taken = {spec.id for spec in self.expectations if spec.id}
        counts: dict[str, int] = {}
        out: list[str] = []
        for spec in self.expectations:
            if spec.id:
                out.append(spec.id)
                continue
            base = spec.default_id()
            counts[base] = counts.get(base, 0) + 1
            candidate = base if counts[base] == 1 else f"{base}#{counts[base]}"
            while candidate in taken:
                counts[base] += 1
                candidate = f"{base}#{counts[base]}"
            taken.add(candidate)
            out.append(candidate)
        return out


def suite_location(dataset: str) -> Path:
    """Where the packaged suite of ``dataset`` lives."""
    if not _DATASET.match(dataset):
        raise SuiteError(f"invalid dataset name {dataset!r}: use lower-case letters, digits and '_'")
    return SUITES_DIR / f"{dataset}.yaml"


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<top>"


def load_suite(location: str | Path, *, dataset: str | None = None) -> Suite:
    """Read and check a suite (local path or ``s3://``); raises :class:`SuiteError` naming the field."""
    where = str(location)
    try:
        text = storage.read_bytes(where).decode("utf-8")
    except NotFoundError:
        raise SuiteError(f"suite {where!r} does not exist: add it or pass --suite") from None
    except UnicodeDecodeError as exc:
        raise SuiteError(f"suite {where!r} is not UTF-8 text: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SuiteError(f"suite {where!r} is not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise SuiteError(f"suite {where!r} must be a mapping with 'dataset' and 'expectations'")
    try:
        suite = Suite.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise SuiteError(
            f"suite {where!r}: {_field(tuple(first['loc']))}: {first['msg']} (got {first.get('input')!r})"
        ) from None
    if dataset is not None and suite.dataset != dataset:
        raise SuiteError(f"suite {where!r} is for dataset {suite.dataset!r}, not {dataset!r}")
    return suite
