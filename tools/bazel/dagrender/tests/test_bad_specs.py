"""The corpus of malformed specs in testdata/bad/: each fails with a pinned message naming file and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from dagrender import SpecError, load_spec, read_entrypoints, resolve
from dagrender.cli import main
from helpers import BAD, DIGEST_FILE, ENTRYPOINTS, PACKAGE, REPOSITORY, TARGET


def _exact(message: str) -> str:
    """A regex matching exactly ``message``: the whole pinned error text."""
    return "^" + re.escape(message) + "$"


_ALLOWLIST = "(dag_run, macros, params, run_id, task_instance_key_str)"
_SECRET_REF = "{secret: <name>, key: <key>}"
_TENANT = (
    "a package may use only Secrets whose names start with its name in DNS form and '-', here "
    "'file-processing-' (any pod in the namespace may read any Secret there, so names tie Secrets to "
    "packages); use a Secret named with that prefix, e.g. "
)

# file name -> (field path, message regex). Every file in testdata/bad/ must be listed here.
EXPECTED: dict[str, tuple[str, str]] = {
    "bad_cron.yaml": ("schedule", r"'0 25 \* \* \*' is not a valid cron expression: hour '25' is outside 0-23"),
    "bad_cron_six_fields.yaml": ("schedule", r"'0 0 3 \* \* \*' has 6 fields; a cron expression has 5"),
    "bad_preset.yaml": ("schedule", r"'@every_day' is not a supported preset; use one of @once, @hourly, @daily"),
    "unknown_field.yaml": ("tasks[0].retry", r"unknown field 'retry'; did you mean 'retries'\? \(allowed: arguments,"),
    "unknown_top_level_field.yaml": (
        "schedule_interval",
        r"unknown field 'schedule_interval'; did you mean 'schedule'\?",
    ),
    "dag_id_mismatch.yaml": (
        "dag_id",
        r"'daily_profile' must equal the file name 'dag_id_mismatch'; rename the file to daily_profile.yaml",
    ),
    "dag_id_illegal_chars.yaml": ("dag_id", r"'daily profile/v2' is not a valid dag_id; use letters, digits"),
    "malformed_resources.yaml": (
        "tasks[0].resources.requests.cpu",
        r"'two' is not a Kubernetes quantity; write e.g. '500m', '1' or '2.5'",
    ),
    "memory_in_millibytes.yaml": ("tasks[0].resources.limits.memory", r"'512m' is a fraction of a byte"),
    "request_over_limit.yaml": (
        "tasks[0].resources.requests.memory",
        r"request '2Gi' is more than the limit '1Gi'",
    ),
    "missing_memory_limit.yaml": ("tasks[0].resources.limits.memory", r"required: every task needs"),
    "negative_retries.yaml": ("tasks[0].retries", r"must be >= 0, got -1$"),
    "invalid_namespace.yaml": (
        "tasks[0].namespace",
        r"'ETL_Jobs' is not a valid Kubernetes namespace; use a DNS-1123 label",
    ),
    "missing_namespace.yaml": ("tasks[0].namespace", r"required: set it on the task or in defaults.namespace"),
    "duplicate_task_ids.yaml": ("tasks[1].task_id", r"duplicate task_id 'profile' \(also tasks\[0\]\)"),
    "dependency_cycle.yaml": (
        "tasks[0].upstream",
        r"dependency cycle 'profile' -> 'validate' -> 'report' -> 'profile'; remove one of these edges",
    ),
    "self_dependency.yaml": ("tasks[0].upstream[0]", r"task 'profile' depends on itself"),
    "unknown_upstream.yaml": (
        "tasks[1].upstream[0]",
        r"task 'report' depends on unknown task 'profil' \(tasks: profile, report\)",
    ),
    "template_syntax_error.yaml": (
        "tasks[0].arguments[1]",
        r"\"\{\{ dag_run.conf.get\('date', ds\) \}\" is not a valid Jinja template: unexpected '\}'",
    ),
    "template_syntax_error_env.yaml": (
        "tasks[0].env.RUN_DATE",
        r"'\{% if ds %\}\{\{ ds \}\}' is not a valid Jinja template: Unexpected end of template",
    ),
    "unknown_job.yaml": (
        "tasks[0].job",
        r"'file_processing.jobs.profiler' is not a module of this package \(modules: file_processing.jobs.profile,",
    ),
    "sla_without_callback.yaml": ("sla_callback", r"required because task 'profile' sets sla"),
    "bad_duration.yaml": ("tasks[0].execution_timeout", r"'30 minutes' is not a duration; write units in the order"),
    "start_date_not_utc.yaml": ("start_date", r"'2026-01-01T03:00:00\+02:00' is not in UTC"),
    "duplicate_yaml_key.yaml": ("line 9, column 5", r"invalid YAML: duplicate key 'namespace'"),
    "yaml_syntax_error.yaml": ("line 5, column 4", r"invalid YAML: expected <block end>"),
    "no_tasks.yaml": ("tasks", r"needs at least 1 item"),
    "env_value_not_string.yaml": ("tasks[0].env.DEBUG", r"must be a string, got True \(bool\); quote the value"),
    "bad_pull_policy.yaml": (
        "tasks[0].image_pull_policy",
        r"'always' is not one of 'Always', 'IfNotPresent' or 'Never'",
    ),
    "missing_owner.yaml": ("owner", r"required field is missing"),
    # Tenant isolation: a spec uses only its own package's Secrets.
    "secret_of_another_package.yaml": (
        "tasks[0].env.DB_PASSWORD.secret",
        _exact(
            "Secret 'data-pipeline-warehouse' does not belong to package 'file_processing': "
            + _TENANT
            + "'file-processing-data-pipeline-warehouse'"
        ),
    ),
    "secret_without_package_prefix_env_from.yaml": (
        "defaults.env_from[1].secret",
        _exact(
            "Secret 'warehouse-credentials' does not belong to package 'file_processing': "
            + _TENANT
            + "'file-processing-warehouse-credentials'"
        ),
    ),
    # The run-time template context.
    "template_ds.yaml": (
        "defaults.env.RUN_DATE",
        _exact(
            "template uses 'ds', which a run triggered without a logical date does not have (Airflow 3); "
            'use "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"'
        ),
    ),
    "template_execution_date.yaml": (
        "tasks[0].arguments[1]",
        _exact(
            "template uses 'execution_date', which Airflow 3 removed from the template context; "
            'use "{{ dag_run.logical_date or dag_run.run_after }}"'
        ),
    ),
    "template_conf.yaml": (
        "tasks[0].arguments[1]",
        _exact(
            "template uses 'conf', which Airflow 3 removed from the template context; "
            "for the run's conf use \"{{ dag_run.conf }}\""
        ),
    ),
    "template_var.yaml": (
        "tasks[0].arguments[1]",
        _exact(
            "template uses 'var', which reads any Airflow Variable of any team; pass values as params, "
            f"or take secrets from a Kubernetes Secret with {_SECRET_REF}"
        ),
    ),
    "template_conn.yaml": (
        "tasks[0].env.DB_PASSWORD",
        _exact(
            "template uses 'conn', which reads any Airflow Connection of any team, password included; "
            f"take secrets from a Kubernetes Secret with {_SECRET_REF}"
        ),
    ),
    "template_xcom_pull.yaml": (
        "tasks[0].arguments[1]",
        _exact(
            "template uses 'ti', which reads the XComs of any DAG of any team (xcom_pull); pass values as "
            "params or in dag_run.conf, and data between tasks through storage (e.g. S3)"
        ),
    ),
    "template_not_allowlisted.yaml": (
        "tasks[0].arguments[1]",
        _exact(
            f"template uses 'param', which is not in the template context allowlist {_ALLOWLIST}; "
            "did you mean 'params'? see 'Templates' in tools/bazel/dagrender/README.md"
        ),
    ),
    "template_unknown_filter.yaml": (
        "tasks[0].arguments[1]",
        _exact("'{{ dag_run.run_after | date }}' is not a valid Jinja template: No filter named 'date'."),
    ),
    # Env values and env_from sources that are neither a string nor a well-formed reference.
    "env_secret_without_key.yaml": ("tasks[0].env.DB_PASSWORD.key", _exact("required field is missing")),
    "env_secret_and_config_map.yaml": (
        "tasks[0].env.DB_PASSWORD",
        _exact("names both secret 'file-processing-warehouse' and config_map 'file-processing-settings'; keep one"),
    ),
    "env_ref_unknown_field.yaml": (
        "tasks[0].env.DB_PASSWORD.prefix",
        _exact("unknown field 'prefix' (allowed: key, optional, secret)"),
    ),
    "env_object_without_source.yaml": (
        "tasks[0].env.DB_PASSWORD",
        _exact(
            f"must be a template string, {_SECRET_REF} or {{config_map: <name>, key: <key>}}, "
            "got {'value_from': 'file-processing-warehouse', 'key': 'password'}"
        ),
    ),
    "env_secret_bad_name.yaml": (
        "tasks[0].env.DB_PASSWORD.secret",
        _exact(
            "'File_Processing_Warehouse' is not a valid Kubernetes object name; use a DNS-1123 subdomain: "
            "lowercase letters, digits, '-' and '.', alphanumeric at both ends"
        ),
    ),
    "env_from_with_key.yaml": (
        "tasks[0].env_from[0].key",
        _exact("unknown field 'key' (allowed: optional, prefix, secret)"),
    ),
    "env_from_not_mapping.yaml": (
        "tasks[0].env_from[0]",
        _exact(
            "must be {secret: <name>} or {config_map: <name>}, each with optional prefix and optional, "
            "got 'file-processing-settings'"
        ),
    ),
}

BAD_FILES = sorted(path.name for path in BAD.glob("*.yaml"))


def test_every_bad_spec_has_a_pinned_message() -> None:
    assert BAD_FILES == sorted(EXPECTED)


@pytest.mark.parametrize("name", BAD_FILES)
def test_bad_spec_fails_with_pinned_message(name: str) -> None:
    field, message = EXPECTED[name]
    path = BAD / name
    with pytest.raises(SpecError) as caught:
        spec = load_spec(path, str(path))
        resolve(spec, spec_path=str(path), package=PACKAGE, entrypoints=read_entrypoints(ENTRYPOINTS))
    assert caught.value.spec_path == str(path)
    assert caught.value.field == field
    assert re.search(message, caught.value.message), caught.value.message
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", BAD_FILES)
def test_cli_prints_one_error_line_and_writes_nothing(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    field, message = EXPECTED[name]
    path = BAD / name
    out = tmp_path / "out.py"
    argv = [
        "render",
        f"--spec={path}",
        f"--package={PACKAGE}",
        f"--repository={REPOSITORY}",
        f"--digest-file={DIGEST_FILE}",
        f"--target={TARGET}",
        f"--entrypoints={ENTRYPOINTS}",
        f"--out={out}",
    ]
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    prefix = f"ERROR: {path}: {field}: "
    assert lines[0].startswith(prefix), lines[0]
    assert re.search(message, lines[0].removeprefix(prefix)), lines[0]
    assert list(tmp_path.iterdir()) == []


def test_several_errors_are_counted_on_the_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "many.yaml"
    spec.write_text(
        "dag_id: many\nschedule: '@daily'\nstart_date: 2026-01-01\nowner: x\n"
        "tasks:\n  - task_id: a\n    job: m.a\n    retries: -1\n    retry_delay: soon\n    namespace: Bad\n"
    )
    # Errors come in the model's field order; the first is shown and the rest are counted.
    with pytest.raises(SpecError, match=r"tasks\[0\]\.namespace: 'Bad' is not a valid .* \(and 2 more errors\)$"):
        load_spec(spec)


def test_entrypoint_check_is_skipped_without_a_list() -> None:
    path = BAD / "unknown_job.yaml"
    resolved = resolve(load_spec(path), spec_path=str(path), package=PACKAGE, entrypoints=None)
    assert resolved.tasks[0].job == "file_processing.jobs.profiler"


def test_spec_that_is_not_a_mapping(tmp_path: Path) -> None:
    spec = tmp_path / "listy.yaml"
    spec.write_text("- dag_id: listy\n")
    with pytest.raises(SpecError, match=r"listy.yaml: <root>: the spec must be a YAML mapping, got list"):
        load_spec(spec)


def test_missing_spec_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"gone.yaml: <file>: cannot read the spec: No such file or directory"):
        load_spec(tmp_path / "gone.yaml")


def test_param_values_must_be_json(tmp_path: Path) -> None:
    spec = tmp_path / "p.yaml"
    spec.write_text(
        "dag_id: p\nschedule: null\nstart_date: 2026-01-01\nowner: x\nparams:\n  day: 2026-01-02\n"
        "tasks:\n  - {task_id: a, job: m.a}\n"
    )
    with pytest.raises(SpecError, match=r"params.day: datetime.date\(2026, 1, 2\) \(date\) is not a JSON value"):
        load_spec(spec)
