"""Every name check matches the whole value: a trailing newline is refused, never accepted.

With ``re.match`` a pattern ending in ``$`` also matches before a final newline, so
``"etl-jobs\\n"`` passed as a namespace and ``"file_processing.jobs.profile\\n"`` as a job.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.bazel.dagrender import ImageRef, InputFileError, SpecError, load_spec, read_entrypoints
from tools.bazel.dagrender.cron import validate_schedule
from tools.bazel.dagrender.durations import parse_duration
from tools.bazel.dagrender.names import is_label_value
from tools.bazel.dagrender.quantities import parse_quantity

_BASE: dict[str, Any] = {
    "dag_id": "names",
    "schedule": None,
    "start_date": "2026-01-01",
    "owner": "data-platform",
    "params": {"day": None},
    "defaults": {"namespace": "etl-jobs"},
    "tasks": [
        {
            "task_id": "run",
            "job": "file_processing.jobs.sync",
            "env": {"MODE": "fast"},
            "env_from": [{"secret": "file-processing-keys", "prefix": "KEY_"}],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        }
    ],
}


def _spec(tmp_path: Path, change: Any) -> Path:
    data = copy.deepcopy(_BASE)
    change(data)
    path = tmp_path / "names.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def change(data: Any) -> None:
        for part in path[:-1]:
            data = data[part]
        data[path[-1]] = value

    return change


def _rename_key(path: tuple[Any, ...], old: str, new: str) -> Any:
    def change(data: Any) -> None:
        for part in path:
            data = data[part]
        data[new] = data.pop(old)

    return change


# (what, how to put a trailing newline into it, field of the error, start of the message)
CASES = [
    ("dag_id", _set(("dag_id",), "names\n"), "dag_id", "'names\\n' is not a valid dag_id"),
    ("task_id", _set(("tasks", 0, "task_id"), "run\n"), "tasks[0].task_id", "'run\\n' is not a valid task_id"),
    (
        "namespace",
        _set(("defaults", "namespace"), "etl-jobs\n"),
        "defaults.namespace",
        "'etl-jobs\\n' is not a valid Kubernetes namespace",
    ),
    (
        "job",
        _set(("tasks", 0, "job"), "file_processing.jobs.sync\n"),
        "tasks[0].job",
        "'file_processing.jobs.sync\\n' is not a valid module name",
    ),
    (
        "service account",
        _set(("defaults", "service_account"), "file-processing\n"),
        "defaults.service_account",
        "'file-processing\\n' is not a valid service account name",
    ),
    (
        "env name",
        _rename_key(("tasks", 0, "env"), "MODE", "MODE\n"),
        "tasks[0].env['MODE\\n']",
        "'MODE\\n' is not a valid environment variable name",
    ),
    (
        "env prefix",
        _set(("tasks", 0, "env_from", 0, "prefix"), "KEY_\n"),
        "tasks[0].env_from[0].prefix",
        "'KEY_\\n' is not a valid environment variable prefix",
    ),
    (
        "Secret name",
        _set(("tasks", 0, "env_from", 0, "secret"), "file-processing-keys\n"),
        "tasks[0].env_from[0].secret",
        "'file-processing-keys\\n' is not a valid Kubernetes object name",
    ),
    (
        "param name",
        _rename_key(("params",), "day", "day\n"),
        "params['day\\n']",
        "'day\\n' is not a valid param name",
    ),
    (
        "sla callback",
        _set(("sla_callback",), "etl_alerts.notify\n"),
        "sla_callback",
        "'etl_alerts.notify\\n' is not a valid callable path",
    ),
    (
        "duration",
        _set(("tasks", 0, "retry_delay"), "5m\n"),
        "tasks[0].retry_delay",
        "'5m\\n' is not a duration",
    ),
    (
        "quantity",
        _set(("tasks", 0, "resources", "requests", "cpu"), "100m\n"),
        "tasks[0].resources.requests.cpu",
        "'100m\\n' is not a Kubernetes quantity",
    ),
]


@pytest.mark.parametrize(("what", "change", "field", "message"), CASES, ids=[case[0] for case in CASES])
def test_spec_field_with_trailing_newline_is_refused(
    tmp_path: Path, what: str, change: Any, field: str, message: str
) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec(_spec(tmp_path, change))
    assert caught.value.field == field, what
    assert "\n" not in str(caught.value)
    assert caught.value.message.startswith(message), caught.value.message


def test_the_base_spec_is_valid(tmp_path: Path) -> None:
    assert load_spec(_spec(tmp_path, lambda data: None)).dag_id == "names"


def test_image_names_with_trailing_newline_are_refused() -> None:
    good = {
        "repository_prefix": "registry.example.com/etl",
        "package": "file_processing",
        "digest": "sha256:" + "a" * 64,
    }
    ImageRef(**good)
    for name, message in (
        ("package", "invalid package name 'file_processing\\n'"),
        ("repository_prefix", "invalid repository 'registry.example.com/etl\\n'"),
        ("digest", "invalid image digest 'sha256:" + "a" * 64 + "\\n'"),
    ):
        with pytest.raises(InputFileError) as caught:
            ImageRef(**{**good, name: good[name] + "\n"})
        assert str(caught.value).startswith(message), caught.value


def test_cron_items_label_values_durations_and_quantities_match_whole() -> None:
    with pytest.raises(ValueError, match=r"^minute item '0\\n' is not"):
        from tools.bazel.dagrender.cron import _FIELDS, _check_field

        _check_field("0\n", _FIELDS[0])
    assert validate_schedule("0 3 * * *") == "0 3 * * *"
    assert not is_label_value("file_processing\n")
    with pytest.raises(ValueError, match=r"is not a duration"):
        parse_duration("5m\n")
    with pytest.raises(ValueError, match=r"is not a duration"):
        parse_duration("\u0665m")  # ARABIC-INDIC DIGIT FIVE: \d without re.ASCII matched it
    with pytest.raises(ValueError, match=r"is not a Kubernetes quantity"):
        parse_quantity("1Gi\n", kind="memory")


def test_entrypoints_are_read_line_by_line(tmp_path: Path) -> None:
    # Lines are split and stripped, so a newline never reaches the pattern; the pattern still
    # matches whole (a module name with a space inside is refused).
    listing = tmp_path / "entrypoints.txt"
    listing.write_text("file_processing.jobs.sync\n")
    assert read_entrypoints(listing) == frozenset({"file_processing.jobs.sync"})
    listing.write_text("file_processing.jobs.sync x\n")
    with pytest.raises(InputFileError, match=r"file_processing.jobs.sync x"):
        read_entrypoints(listing)
