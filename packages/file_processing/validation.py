"""Run an expectation suite with great-expectations 1.x on pandas, in an ephemeral context.

What keeps it close to hand-written pandas checks (see tools/bench/packages_bench.py):

- great-expectations is imported here only, when a suite runs (importing it takes seconds);
- one ephemeral context, one pandas data source and one whole-dataframe batch definition;
  expectations that read the same columns are validated together as one suite on one batch, so
  the per-run overhead is paid once per column group, not per expectation, and nothing goes
  through the context's stores (each store write serialises the project config);
- the batch's md5 fingerprint of the whole frame (a pandas hash of every value, ~40% of a naive
  run) is skipped: nothing here reads it;
- columns get the dtypes great-expectations vectorises (int64, float64, datetime64[ns], and
  categoricals for text with few distinct values); other dtypes fall back to a Python call per value;
- the next column group is read in a background thread while the current one is checked;
- ``result_format`` SUMMARY by default (counts plus a few sample values; BOOLEAN_ONLY is cheaper),
  computed as BASIC first and completed to SUMMARY only for expectations that found unexpected
  values (the sample's counts and row indexes are what SUMMARY costs extra).

Memory: with ``grouping="columns"`` (the default) each group's columns are loaded, checked and
dropped before the next; expectations about the table's shape (row count, column names) run on
zero-byte stand-in columns that only carry the names and the row count. Peak memory then follows
the widest group, not the whole table; ``"table"`` loads every referenced column into one frame
and runs the suite once.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

from etl_core.memory import release

from .errors import SuiteError
from .suites import ExpectationSpec, Suite
from .tables import Table

__all__ = ["GROUPINGS", "RESULT_FORMATS", "Outcome", "SuiteResult", "run_suite"]

GROUPINGS = ("columns", "table")
RESULT_FORMATS = ("BOOLEAN_ONLY", "BASIC", "SUMMARY")
_KEPT_RESULT_KEYS = (
    "observed_value",
    "element_count",
    "missing_count",
    "missing_percent",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_nonmissing",
    "partial_unexpected_list",
    "partial_unexpected_counts",
    "details",
)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The result of one expectation."""

    id: str
    type: str
    kwargs: dict[str, Any]
    critical: bool
    success: bool
    error: str | None
    result: dict[str, Any]

    @property
    def unexpected_percent(self) -> float | None:
        value = self.result.get("unexpected_percent")
        return float(value) if isinstance(value, int | float) else None

    def summary(self) -> str:
        """``id (12 unexpected, 0.01%)`` or ``id (error: ...)`` for failure messages."""
        if self.error:
            return f"{self.id} (error: {self.error})"
        bits = []
        if isinstance(self.result.get("unexpected_count"), int):
            bits.append(f"{self.result['unexpected_count']} unexpected")
        if self.unexpected_percent is not None:
            bits.append(f"{self.unexpected_percent:.3g}%")
        if "observed_value" in self.result and not bits:
            bits.append(f"observed {self.result['observed_value']!r}")
        return f"{self.id} ({', '.join(bits)})" if bits else self.id

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "kwargs": self.kwargs,
            "critical": self.critical,
            "success": self.success,
            "error": self.error,
            "result": self.result,
        }


@dataclasses.dataclass(frozen=True)
class SuiteResult:
    """All outcomes of a suite on one dataset."""

    dataset: str
    rows: int
    outcomes: list[Outcome]
    seconds: float
    groups: int
    gx_version: str

    @property
    def critical_failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.critical and not o.success]

    @property
    def warnings(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.critical and not o.success]

    @property
    def success(self) -> bool:
        """True when no critical expectation failed."""
        return not self.critical_failures

    def to_json(self, *, source: str, suite: str, result_format: str, grouping: str) -> dict[str, Any]:
        """The results document written next to the data (``_dq_<dataset>.json``)."""
        return {
            "dataset": self.dataset,
            "source": source,
            "suite": suite,
            "success": self.success,
            "rows": self.rows,
            "statistics": {
                "evaluated": len(self.outcomes),
                "passed": sum(1 for o in self.outcomes if o.success),
                "failed_critical": len(self.critical_failures),
                "failed_warning": len(self.warnings),
                "errors": sum(1 for o in self.outcomes if o.error),
            },
            "run": {
                "great_expectations_version": self.gx_version,
                "result_format": result_format,
                "grouping": grouping,
                "groups": self.groups,
                "seconds": round(self.seconds, 3),
            },
            "results": [o.to_json() for o in self.outcomes],
        }


def _gx() -> Any:
    """great_expectations, imported on first use, without the per-batch fingerprint."""
    # No usage statistics from batch pods (GX sends them by default); an explicit env var wins.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine

    # GX logs routine steps at INFO (one of its modules even pins its logger to INFO).
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
    # The engine md5-hashes every value of a batch below this size, only to label the batch.
    pandas_execution_engine.HASH_THRESHOLD = 0
    return gx


def _context(gx: Any) -> Any:
    """An ephemeral (in-memory) context without progress bars on stderr."""
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def _expectation(gx: Any, spec: ExpectationSpec, eid: str, kwargs: dict[str, Any]) -> Any:
    from great_expectations.exceptions import ExpectationNotFoundError
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        impl = get_expectation_impl(spec.type)
    except ExpectationNotFoundError:
        raise SuiteError(f"expectation {eid!r}: unknown type {spec.type!r} (see great-expectations' gallery)") from None
    try:
        return impl(**kwargs, meta={"id": eid, "critical": spec.critical})
    except Exception as exc:
        message = str(exc).replace("\n", " ")
        raise SuiteError(f"expectation {eid!r} ({spec.type}): invalid kwargs {kwargs!r}: {message}") from None


def _timestamp_bound(value: Any, tz: Any) -> Any:
    import pandas as pd

    if isinstance(value, dt.date | dt.datetime | str):
        try:
            stamp = pd.Timestamp(value)
        except ValueError:
            return value
        if tz is not None:
            return stamp.tz_localize(tz) if stamp.tzinfo is None else stamp.tz_convert(tz)
        return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp
    return value


def _adapt_kwargs(spec: ExpectationSpec, frame: Any) -> dict[str, Any]:
    """Bounds given as dates or strings become Timestamps of the column's timezone."""
    import pandas as pd

    kwargs = dict(spec.kwargs)
    column = kwargs.get("column")
    if not isinstance(column, str) or column not in frame.columns:
        return kwargs
    dtype = frame[column].dtype
    if not pd.api.types.is_datetime64_any_dtype(dtype):
        return kwargs
    tz = getattr(dtype, "tz", None)
    for key in ("min_value", "max_value", "value"):
        if key in kwargs and kwargs[key] is not None:
            kwargs[key] = _timestamp_bound(kwargs[key], tz)
    return kwargs


def _groups(suite: Suite, table: Table, grouping: str) -> list[tuple[tuple[str, ...], list[int]]]:
    """Expectation indexes grouped by the columns whose values they read, in suite order."""
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
    existing = set(table.columns)
    if grouping == "table":
        used = {c for spec in suite.expectations if spec.reads_values for c in spec.columns}
        if any(spec.reads_values and not spec.columns for spec in suite.expectations):
            used = set(table.columns)
        return [(tuple(c for c in table.columns if c in used), list(range(len(suite.expectations))))]
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, spec in enumerate(suite.expectations):
        if not spec.reads_values:
            key: tuple[str, ...] = ()
        elif spec.columns and "row_condition" not in spec.kwargs:
            key = tuple(c for c in table.columns if c in set(spec.columns) & existing)
        else:  # reads values of unknown columns (table-level, or a row_condition): all of them
            key = tuple(table.columns)
        groups.setdefault(key, []).append(index)
    return list(groups.items())


def _json_safe(value: Any) -> Any:
    import json

    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _json_safe(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [_json_safe(v) for v in value]
        return str(value)


def _error_message(info: Any) -> str | None:
    """The first exception message in GX's exception_info (flat, or keyed by metric id)."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        if not info.get("raised_exception"):
            return None
        return str(info.get("exception_message") or "raised an exception").splitlines()[0][:500]
    for value in info.values():
        found = _error_message(value)
        if found:
            return found
    return None


def _outcome(spec: ExpectationSpec, eid: str, kwargs: dict[str, Any], res: Any) -> Outcome:
    doc = res.to_json_dict()
    error = _error_message(doc.get("exception_info"))
    result = {k: v for k, v in (doc.get("result") or {}).items() if k in _KEPT_RESULT_KEYS}
    return Outcome(
        id=eid,
        type=spec.type,
        kwargs=_json_safe(spec.kwargs),
        critical=spec.critical,
        success=bool(doc.get("success")) and error is None,
        error=error,
        result=_json_safe(result),
    )


def run_suite(
    suite: Suite,
    table: Table,
    *,
    result_format: str = "SUMMARY",
    grouping: str = "columns",
) -> SuiteResult:
    """Validate ``table`` against ``suite``; raises :class:`SuiteError` for a bad expectation."""
    if result_format not in RESULT_FORMATS:
        raise ValueError(f"result_format must be one of {RESULT_FORMATS}, got {result_format!r}")
    started = time.monotonic()
    gx = _gx()
    ids = suite.ids()
    for index, spec in enumerate(suite.expectations):  # fail on a bad suite before reading any data
        _expectation(gx, spec, ids[index], dict(spec.kwargs))
    context = _context(gx)
    source = context.data_sources.add_pandas(suite.dataset)
    batch_definition = source.add_dataframe_asset(suite.dataset).add_batch_definition_whole_dataframe("whole")
    engine = source.get_execution_engine()
    outcomes: dict[int, Outcome] = {}
    plan = _groups(suite, table, grouping)
    # Widest group first: the process only grows (freed memory is not all given back), so the
    # biggest frame should meet the smallest heap. The next group is loaded while one is checked
    # (below), so wide and narrow groups alternate: a wide group is never read next to another.
    # Results keep the suite's order regardless.
    sizes = {c: table.column_bytes(c) for c in table.columns} if len(plan) > 1 else {}
    plan.sort(key=lambda group: -sum(sizes.get(c, 0) for c in group[0]))
    plan = [plan[i // 2] if i % 2 == 0 else plan[-1 - i // 2] for i in range(len(plan))]

    def load(columns: tuple[str, ...]) -> Any:
        # Expectations about the table's shape need every column name: the shape group (and the
        # single "table" group) get stand-ins for the columns not loaded. Value groups see only
        # their columns (pandas would materialise stand-ins when great-expectations filters rows).
        return table.frame(columns, placeholders=grouping == "table" or not columns)

    # The next group's columns are read (Parquet decoding releases the GIL) while
    # great-expectations, which is Python-bound, checks the current one: memory holds at most
    # two groups, and the read time mostly disappears behind the checks.
    from concurrent.futures import ThreadPoolExecutor

    reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dq-read")
    pending = reader.submit(load, plan[0][0]) if plan else None
    try:
        for number, (_columns, indexes) in enumerate(plan):
            assert pending is not None
            frame = pending.result()
            pending = reader.submit(load, plan[number + 1][0]) if number + 1 < len(plan) else None
            _validate_group(gx, suite, ids, number, indexes, frame, batch_definition, result_format, outcomes)
            # The engine caches the last batch's frame; drop it so two groups never overlap in memory.
            engine.batch_manager.reset_batch_cache()
            engine.batch_manager.batch_data_cache.clear()
            del frame
            release()
    finally:
        if pending is not None:
            pending.cancel()
        reader.shutdown(wait=True)
    ordered = [outcomes[i] for i in range(len(suite.expectations))]
    return SuiteResult(
        dataset=suite.dataset,
        rows=table.rows,
        outcomes=ordered,
        seconds=time.monotonic() - started,
        groups=len(plan),
        gx_version=str(getattr(gx, "__version__", "unknown")),
    )


def _validate_group(
    gx: Any,
    suite: Suite,
    ids: list[str],
    number: int,
    indexes: list[int],
    frame: Any,
    batch_definition: Any,
    result_format: str,
    outcomes: dict[int, Outcome],
) -> None:
    """Validate the expectations ``indexes`` of ``suite`` on ``frame`` as one suite; fills ``outcomes``."""
    built = []
    for index in indexes:
        spec = suite.expectations[index]
        kwargs = _adapt_kwargs(spec, frame)
        built.append((index, kwargs, _expectation(gx, spec, ids[index], kwargs)))
    group_suite = gx.ExpectationSuite(name=f"{suite.dataset}.{number}", expectations=[e for _, _, e in built])
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    # SUMMARY differs from BASIC only by the counts and row indexes of the sample of unexpected
    # values, which cost a sizeable share of a run to compute. Run BASIC, and SUMMARY again only
    # for the expectations that found unexpected values (none, on good data): an expectation
    # without any gets SUMMARY's empty sample counts, so the results are the same.
    first = "BASIC" if result_format == "SUMMARY" else result_format
    run = batch.validate(group_suite, result_format=first)
    by_id = {r.expectation_config.meta.get("id"): r for r in run.results}
    if first != result_format:
        again = []
        for index, _, expectation in built:
            res = by_id.get(ids[index])
            detail = res.result if res is not None and isinstance(res.result, dict) else None
            if (
                detail is not None
                and "partial_unexpected_list" in detail
                and not detail["partial_unexpected_list"]
                and not detail.get("unexpected_count")
                and _error_message(res.exception_info) is None
            ):
                detail["partial_unexpected_counts"] = []
            elif detail is not None and "partial_unexpected_list" in detail:
                again.append(expectation)
        if again:
            rerun = batch.validate(
                gx.ExpectationSuite(name=f"{suite.dataset}.{number}.summary", expectations=again),
                result_format=result_format,
            )
            by_id.update({r.expectation_config.meta.get("id"): r for r in rerun.results})
    for index, kwargs, _ in built:
        res = by_id.get(ids[index])
        if res is None:  # pragma: no cover - every expectation yields a result
            raise SuiteError(f"expectation {ids[index]!r} produced no result")
        outcomes[index] = _outcome(suite.expectations[index], ids[index], kwargs, res)


def failure_message(result: SuiteResult, where: str, limit: int = 5) -> str:
    """One line naming the critical failures, for the job's exit message."""
    failed = result.critical_failures
    shown = "; ".join(o.summary() for o in failed[:limit])
    more = f"; and {len(failed) - limit} more" if len(failed) > limit else ""
    return (
        f"{len(failed)} critical expectation{'s' if len(failed) != 1 else ''} failed on dataset "
        f"{result.dataset!r} ({where}, {result.rows} rows): {shown}{more}"
    )


def columns_needed(specs: Sequence[ExpectationSpec]) -> set[str]:
    return {c for spec in specs for c in spec.columns}
