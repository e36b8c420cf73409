"""The build-time template check: syntax, filters, and the names read from Airflow's context."""

from __future__ import annotations

import pytest

from tools.bazel.dagrender.templating import (
    ALLOWED_CONTEXT,
    DENIED_CONTEXT,
    NEEDS_LOGICAL_DATE,
    REMOVED_IN_AIRFLOW_3,
    check_template,
    context_names,
)


@pytest.mark.parametrize(
    "text",
    [
        "plain text, no template",
        "{{ dag_run.conf.get('date') or params.date or (dag_run.logical_date or dag_run.run_after) | ds }}",
        "{{ dag_run.conf | tojson }}",
        "{{ run_id }}/{{ task_instance_key_str }}",
        "{{ macros.ds_add((dag_run.logical_date or dag_run.run_after) | ds, -1) }}",
        "{{ dag_run.run_after | ts_nodash_with_tz }}",
        # Names bound by the template itself are not context lookups, even when they shadow one.
        "{% set ds = (dag_run.logical_date or dag_run.run_after) | ds %}{{ ds }}",
        "{% for var in params.items %}{{ var }}{{ loop.index }}{% endfor %}",
        "{% macro day(ti) %}{{ ti }}{% endmacro %}{{ day(run_id) }}",
        "{% for n in range(3) %}{{ n }}{% endfor %}",  # a Jinja global, not the context
    ],
)
def test_allowed_templates(text: str) -> None:
    check_template(text)


def test_context_names_are_the_top_level_lookups() -> None:
    assert context_names("{{ dag_run.conf.x }} {{ params['a'] }} {% set y = 1 %}{{ y }}") == {"dag_run", "params"}


@pytest.mark.parametrize("name", sorted(NEEDS_LOGICAL_DATE))
def test_names_a_run_without_logical_date_lacks(name: str) -> None:
    with pytest.raises(ValueError, match=rf"^template uses '{name}', which a run triggered without a logical date"):
        check_template("{{ " + name + " }}")


@pytest.mark.parametrize("name", sorted(REMOVED_IN_AIRFLOW_3))
def test_names_removed_in_airflow_3(name: str) -> None:
    with pytest.raises(
        ValueError, match=rf"^template uses '{name}', which Airflow 3 removed from the template context; "
    ):
        check_template("{{ " + name + " }}")


@pytest.mark.parametrize("name", sorted(DENIED_CONTEXT))
def test_names_the_platform_refuses(name: str) -> None:
    with pytest.raises(ValueError) as caught:
        check_template("{{ " + name + ".anything }}")
    assert str(caught.value) == f"template uses {name!r}, which {DENIED_CONTEXT[name]}"


def test_the_rule_sets_do_not_overlap() -> None:
    sets = [set(ALLOWED_CONTEXT), set(NEEDS_LOGICAL_DATE), set(REMOVED_IN_AIRFLOW_3), set(DENIED_CONTEXT)]
    assert sum(len(s) for s in sets) == len(set().union(*sets))


def test_every_suggested_replacement_passes_the_check() -> None:
    for hint in [*NEEDS_LOGICAL_DATE.values(), *REMOVED_IN_AIRFLOW_3.values()]:
        if '"' in hint:
            check_template(hint.split('"')[1])


def test_ds_as_a_filter_is_fine_but_as_a_name_is_not() -> None:
    check_template("{{ dag_run.run_after | ds }}")
    with pytest.raises(ValueError, match=r"template uses 'ds'"):
        check_template("{{ dag_run.conf.get('date', ds) }}")


def test_unknown_names_suggest_a_close_allowed_one() -> None:
    with pytest.raises(ValueError, match=r"template uses 'dagrun', .* did you mean 'dag_run'\? see 'Templates'"):
        check_template("{{ dagrun.conf }}")
    with pytest.raises(
        ValueError, match=r"template uses 'partition_key', .*allowlist \(dag_run, .*\); see 'Templates'"
    ):
        check_template("{{ partition_key }}")


def test_first_refused_name_in_sorted_order_is_reported() -> None:
    with pytest.raises(ValueError, match=r"^template uses 'conn'"):
        check_template("{{ var.value.x }}{{ conn.y.password }}")


def test_syntax_and_filter_errors() -> None:
    with pytest.raises(ValueError, match=r"is not a valid Jinja template: unexpected '}'"):
        check_template("{{ run_id }")
    with pytest.raises(ValueError, match=r"is not a valid Jinja template: No filter named 'date'"):
        check_template("{{ dag_run.run_after | date }}")
