"""Build-time check of the Jinja templates that Airflow renders at run time (arguments, env values).

Two checks, both on Jinja's own parse tree so that nothing is guessed from the text:
- syntax (and filter names), with a sandboxed environment like the one Airflow renders with;
- the names a template reads from Airflow's template context: only ``ALLOWED_CONTEXT``. Names
  bound inside the template (``{% set %}``, loop variables, macro arguments) are not context
  lookups; ``jinja2.meta.find_undeclared_variables`` leaves them out.

The rules follow Airflow 3.3's task runner (``airflow/sdk/execution_time/task_runner.py``,
``RuntimeTaskInstance.get_template_context``): the keys derived from the logical date exist only
when the run has one, and a run triggered through the API or the UI may have none.
"""

from __future__ import annotations

import difflib
from typing import Final

import jinja2
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

__all__ = [
    "AIRFLOW_FILTERS",
    "ALLOWED_CONTEXT",
    "DENIED_CONTEXT",
    "NEEDS_LOGICAL_DATE",
    "REMOVED_IN_AIRFLOW_3",
    "check_template",
    "context_names",
]

# The only context names a spec's template may read. Each is a value of this run alone:
#   dag_run                the run: conf, run_id, run_after, logical_date (None on a run triggered
#                          without one), data_interval_start/end, run_type
#   params                 the DAG's params, overridden by the run's conf
#   run_id                 the run's id
#   macros                 Airflow's pure helpers (ds_add, ds_format, datetime, timedelta, ...)
#   task_instance_key_str  '<dag_id>__<task_id>__<ds_nodash>', or '...__<run_id>' on a run without
#                          a logical date
ALLOWED_CONTEXT: Final = ("dag_run", "macros", "params", "run_id", "task_instance_key_str")

# Airflow's template filters (airflow/sdk/definitions/_internal/templater.py FILTERS), taking a date.
# Registered by name so that `x | ds` parses; an unknown filter is then a build error, as it would
# be a run-time error.
AIRFLOW_FILTERS: Final = ("ds", "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz")

_PASS_IT: Final = "pass the date in dag_run.conf or a param instead"

# Context keys Airflow 3 sets only when the run has a logical date -> what to write instead.
NEEDS_LOGICAL_DATE: Final[dict[str, str]] = {
    "ds": 'use "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"',
    "ds_nodash": 'use "{{ (dag_run.logical_date or dag_run.run_after) | ds_nodash }}"',
    "ts": 'use "{{ (dag_run.logical_date or dag_run.run_after) | ts }}"',
    "ts_nodash": 'use "{{ (dag_run.logical_date or dag_run.run_after) | ts_nodash }}"',
    "ts_nodash_with_tz": 'use "{{ (dag_run.logical_date or dag_run.run_after) | ts_nodash_with_tz }}"',
    "logical_date": 'use "{{ dag_run.logical_date or dag_run.run_after }}"',
    "data_interval_start": 'use "{{ dag_run.data_interval_start or dag_run.run_after }}"',
    "data_interval_end": 'use "{{ dag_run.data_interval_end or dag_run.run_after }}"',
    "prev_data_interval_start_success": _PASS_IT,
    "prev_data_interval_end_success": _PASS_IT,
}

# Context keys Airflow 2 had and Airflow 3 removed -> what to write instead.
REMOVED_IN_AIRFLOW_3: Final[dict[str, str]] = {
    "conf": 'for the run\'s conf use "{{ dag_run.conf }}"',
    "execution_date": 'use "{{ dag_run.logical_date or dag_run.run_after }}"',
    "next_execution_date": 'use "{{ dag_run.data_interval_end or dag_run.run_after }}"',
    "prev_execution_date": _PASS_IT,
    "prev_execution_date_success": _PASS_IT,
    "next_ds": 'use "{{ (dag_run.data_interval_end or dag_run.run_after) | ds }}"',
    "next_ds_nodash": 'use "{{ (dag_run.data_interval_end or dag_run.run_after) | ds_nodash }}"',
    "prev_ds": _PASS_IT,
    "prev_ds_nodash": _PASS_IT,
    "yesterday_ds": 'use "{{ macros.ds_add((dag_run.logical_date or dag_run.run_after) | ds, -1) }}"',
    "yesterday_ds_nodash": "use \"{{ macros.ds_add((dag_run.logical_date or dag_run.run_after) | ds, -1) | replace('-', '') }}\"",
    "tomorrow_ds": 'use "{{ macros.ds_add((dag_run.logical_date or dag_run.run_after) | ds, 1) }}"',
    "tomorrow_ds_nodash": "use \"{{ macros.ds_add((dag_run.logical_date or dag_run.run_after) | ds, 1) | replace('-', '') }}\"",
}

_SECRET_HINT: Final = "take secrets from a Kubernetes Secret with {secret: <name>, key: <key>}"
_XCOM: Final = (
    "reads the XComs of any DAG of any team (xcom_pull); pass values as params or in dag_run.conf, "
    "and data between tasks through storage (e.g. S3)"
)
_OBJECT: Final = (
    "is Airflow's Python {what} object, whose attributes are no contract of the platform; "
    "use dag_run.dag_id, run_id or params"
)
_ASSETS: Final = (
    "is Airflow's asset and state-store machinery, shared by every team and unused by the platform's "
    "DAGs; tasks exchange data through storage (e.g. S3)"
)

# Context keys Airflow 3 has and the platform refuses -> why.
DENIED_CONTEXT: Final[dict[str, str]] = {
    "var": f"reads any Airflow Variable of any team; pass values as params, or {_SECRET_HINT}",
    "conn": f"reads any Airflow Connection of any team, password included; {_SECRET_HINT}",
    "ti": _XCOM,
    "task_instance": _XCOM,
    "task": _OBJECT.format(what="operator"),
    "dag": _OBJECT.format(what="DAG"),
    "inlets": _ASSETS,
    "outlets": _ASSETS,
    "inlet_events": _ASSETS,
    "outlet_events": _ASSETS,
    "triggering_asset_events": _ASSETS,
    "asset_state_store": _ASSETS,
    "task_state_store": _ASSETS,
}

# Airflow renders operator template fields with a sandboxed Jinja environment; parsing with the
# same kind of environment catches syntax errors here instead of in a running task.
_ENV = SandboxedEnvironment()
# Stand-ins: only the names matter at build time (an unknown filter fails to compile).
_ENV.filters.update(dict.fromkeys(AIRFLOW_FILTERS, str))


def context_names(text: str) -> set[str]:
    """The names ``text`` reads from the template context; raises ValueError on bad syntax."""
    try:
        return meta.find_undeclared_variables(_ENV.parse(text))
    except jinja2.TemplateSyntaxError as exc:  # TemplateAssertionError (unknown filter) included
        raise ValueError(f"{text!r} is not a valid Jinja template: {exc.message}") from None


def _refusal(name: str) -> str | None:
    """Why the template may not read ``name`` (one line), or None when it may."""
    if name in ALLOWED_CONTEXT:
        return None
    if name in NEEDS_LOGICAL_DATE:
        return (
            f"template uses {name!r}, which a run triggered without a logical date does not have "
            f"(Airflow 3); {NEEDS_LOGICAL_DATE[name]}"
        )
    if name in REMOVED_IN_AIRFLOW_3:
        return (
            f"template uses {name!r}, which Airflow 3 removed from the template context; {REMOVED_IN_AIRFLOW_3[name]}"
        )
    if name in DENIED_CONTEXT:
        return f"template uses {name!r}, which {DENIED_CONTEXT[name]}"
    close = difflib.get_close_matches(name, ALLOWED_CONTEXT, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"template uses {name!r}, which is not in the template context allowlist "
        f"({', '.join(ALLOWED_CONTEXT)}); {hint}see 'Templates' in tools/bazel/dagrender/README.md"
    )


def check_template(text: str) -> None:
    """Raise ValueError naming the problem when ``text`` is not valid Jinja or reads a refused name."""
    if "{" not in text:
        return
    for name in sorted(context_names(text)):
        reason = _refusal(name)
        if reason is not None:
            raise ValueError(reason)
