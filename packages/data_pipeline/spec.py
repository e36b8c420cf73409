"""Dataset specs: ``data_pipeline/datasets/<dataset>.yaml``, validated with pydantic.

A spec says how to read a dataset's raw files, which typed columns it has, how rows are
de-duplicated, which reference data enriches it and which declarative transforms run afterwards
(rename, cast, filter, derive, in order; they may use the enrichment's columns)::

    dataset: orders
    source:
      format: csv                                    # csv | jsonl | parquet
      location: s3://etl-landing/orders/{run_date}/  # default of --source ({run_date} is filled in)
    output: s3://etl-curated/orders                  # default of --output
    columns:
      - {name: order_id, type: int64, required: true}
      - {name: amount, type: float64, source: "Amount EUR"}   # source: the name in the file
    dedup: {keys: [order_id], order_by: updated_at}           # keep the latest per key
    transforms:
      - filter: "status != 'test'"
      - derive: {amount_cents: "round(amount * 100)"}
    enrich:
      - name: customers
        source: s3://etl-reference/customers.parquet
        key: {customer_id: id}
        columns: {segment: customer_segment}

Errors name the file and the field: ``orders.yaml: transforms[1].derive.amount_cents: ...``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from etl_core import storage
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from .coltypes import TypeName
from .errors import ExpressionError, NotFoundError, SpecError

__all__ = [
    "DATASETS_DIR",
    "ColumnSpec",
    "CsvOptions",
    "DatasetSpec",
    "DedupSpec",
    "EnrichSpec",
    "SourceSpec",
    "Transform",
    "load_spec",
    "spec_location",
]

DATASETS_DIR = Path(__file__).parent / "datasets"
DATASET_RE = r"^[a-z][a-z0-9_]{0,62}$"
IDENT_RE = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_DATASET = re.compile(DATASET_RE)

Identifier = Annotated[str, StringConstraints(pattern=IDENT_RE)]
DEFAULT_PATTERNS = {
    "csv": ("*.csv", "*.csv.gz", "*.tsv", "*.tsv.gz"),
    "jsonl": ("*.jsonl", "*.jsonl.gz", "*.ndjson", "*.ndjson.gz", "*.json", "*.json.gz"),
    "parquet": ("*.parquet",),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Model):
    """A typed column of the dataset."""

    name: Identifier
    type: TypeName = "string"
    required: bool = Field(False, description="rows without a value are rejected")
    source: str | None = Field(None, description="the column's name in the input files (default: name)")

    @property
    def input_name(self) -> str:
        return self.source or self.name


class CsvOptions(_Model):
    delimiter: Annotated[str, StringConstraints(min_length=1, max_length=1)] = ","
    quote_char: Annotated[str, StringConstraints(min_length=1, max_length=1)] = '"'
    header: bool = Field(True, description="false: the files have no header; columns are in spec order")
    null_values: list[str] = Field(default_factory=lambda: ["", "NULL", "null", "NA", "N/A", "\\N"])


class SourceSpec(_Model):
    format: Literal["csv", "jsonl", "parquet"]
    location: str | None = Field(None, description="default --source; may use {run_date} / {run_date_nodash}")
    pattern: str | None = Field(None, description="glob of the data files under a folder (default by format)")
    csv: CsvOptions = Field(default_factory=lambda: CsvOptions.model_validate({}))

    def patterns(self) -> tuple[str, ...]:
        return (self.pattern,) if self.pattern else DEFAULT_PATTERNS[self.format]


class DedupSpec(_Model):
    keys: Annotated[list[Identifier], Field(min_length=1)]
    order_by: Identifier | None = Field(None, description="keep the row with the highest value of this column")
    keep: Literal["first", "last"] | None = Field(
        None, description="with order_by: last (default) keeps the highest; without: first (default) keeps file order"
    )


class Transform(_Model):
    """Exactly one of rename, cast, filter or derive."""

    rename: dict[Identifier, Identifier] | None = None
    cast: dict[Identifier, TypeName] | None = None
    filter: str | None = None
    derive: dict[Identifier, str] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Transform:
        given = [k for k in ("rename", "cast", "filter", "derive") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a transform has exactly one of rename, cast, filter, derive; got {given or 'none'}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("rename", "cast", "filter", "derive") if getattr(self, k) is not None)


class EnrichSpec(_Model):
    name: Identifier
    source: str = Field(description="reference file (CSV or Parquet), local or s3://; --references overrides it")
    key: dict[Identifier, Identifier] = Field(description="data column -> reference column")
    columns: dict[Identifier, Identifier] = Field(description="reference column -> new column name")
    required: bool = Field(False, description="reject rows without a match (default: leave the columns empty)")

    @field_validator("key", "columns", mode="before")
    @classmethod
    def _list_to_mapping(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {value: value}
        if isinstance(value, list):
            return {item: item for item in value}
        return value

    @field_validator("key", "columns")
    @classmethod
    def _not_empty(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("must name at least one column")
        return value


class DatasetSpec(_Model):
    dataset: Annotated[str, StringConstraints(pattern=DATASET_RE)]
    description: str = ""
    source: SourceSpec
    output: str | None = Field(None, description="default --output (a folder or s3:// prefix)")
    columns: Annotated[list[ColumnSpec], Field(min_length=1)]
    dedup: DedupSpec | None = None
    transforms: list[Transform] = Field(default_factory=list)
    enrich: list[EnrichSpec] = Field(default_factory=list)
    max_reject_ratio: float = Field(0.1, ge=0.0, le=1.0, description="fail when a larger share of rows is rejected")

    @model_validator(mode="after")
    def _check(self) -> DatasetSpec:
        names = [c.name for c in self.columns]
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                raise ValueError(f"columns[{index}].name {name!r} is used twice")
            seen.add(name)
        if self.dedup is not None:
            for key in [*self.dedup.keys, *([self.dedup.order_by] if self.dedup.order_by else [])]:
                if key not in seen:
                    raise ValueError(f"dedup names column {key!r}, which is not in columns ({', '.join(names)})")
        from .expressions import compile_expression

        for index, transform in enumerate(self.transforms):
            try:
                if transform.filter is not None:
                    compile_expression(transform.filter)
                for name, text in (transform.derive or {}).items():
                    try:
                        compile_expression(text)
                    except ExpressionError as exc:
                        raise ExpressionError(f"derive.{name}: {exc}") from None
            except ExpressionError as exc:
                raise ValueError(f"transforms[{index}]: {exc}") from None
        names_seen: set[str] = set()
        for index, enrich in enumerate(self.enrich):
            if enrich.name in names_seen:
                raise ValueError(f"enrich[{index}].name {enrich.name!r} is used twice")
            names_seen.add(enrich.name)
        return self

    def location(self, template: str | None, run_date: str) -> str | None:
        if template is None:
            return None
        return template.format(run_date=run_date, run_date_nodash=run_date.replace("-", ""))


def spec_location(dataset: str) -> Path:
    """Where the packaged spec of ``dataset`` lives."""
    if not _DATASET.match(dataset):
        raise SpecError(f"invalid dataset name {dataset!r}: use lower-case letters, digits and '_'")
    return DATASETS_DIR / f"{dataset}.yaml"


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_spec(location: str | Path, *, dataset: str | None = None) -> DatasetSpec:
    """Read and check a dataset spec (local path or s3://); raises :class:`SpecError`."""
    where = str(location)
    try:
        text = storage.read_bytes(where).decode("utf-8")
    except NotFoundError:
        raise SpecError(f"dataset spec {where!r} does not exist: add it or pass --spec") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"dataset spec {where!r} is not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise SpecError(f"dataset spec {where!r} must be a mapping with dataset, source and columns")
    try:
        spec = DatasetSpec.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = _field(tuple(first["loc"]))
        message = str(first["msg"]).removeprefix("Value error, ")
        raise SpecError(f"{where}: {field + ': ' if field else ''}{message}") from None
    if dataset is not None and spec.dataset != dataset:
        raise SpecError(f"dataset spec {where!r} is for dataset {spec.dataset!r}, not {dataset!r}")
    return spec
