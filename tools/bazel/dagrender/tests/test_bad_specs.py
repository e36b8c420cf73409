"""Malformed specs beyond the corpus: the pinned one-line errors of every bad spec live in the
hostile-input corpus, tools/testing/hostile/cases/spec/ (//tools/testing/hostile:test_hostile runs
them through the real CLI); these cover what a corpus case cannot (several errors, missing files).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ENTRYPOINTS, PACKAGE

from tools.bazel.dagrender import SpecError, load_spec, read_entrypoints, resolve


def test_several_errors_are_counted_on_the_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "many.yaml"
    spec.write_text(
        "dag_id: many\nschedule: '@daily'\nstart_date: 2026-01-01\nowner: x\n"
        "tasks:\n  - task_id: a\n    job: m.a\n    retries: -1\n    retry_delay: soon\n    namespace: Bad\n"
    )
    # Errors come in the model's field order; the first is shown and the rest are counted.
    with pytest.raises(SpecError, match=r"tasks\[0\]\.namespace: 'Bad' is not a valid .* \(and 2 more errors\)$"):
        load_spec(spec)


def test_entrypoint_check_is_skipped_without_a_list(tmp_path: Path) -> None:
    path = tmp_path / "unknown_job.yaml"
    path.write_text(
        "dag_id: unknown_job\nschedule: null\nstart_date: 2026-01-01\nowner: x\n"
        "tasks:\n  - task_id: a\n    job: file_processing.jobs.profiler\n    namespace: etl-jobs\n"
        "    resources: {requests: {cpu: 100m, memory: 128Mi}, limits: {memory: 256Mi}}\n"
    )
    with pytest.raises(SpecError, match=r"tasks\[0\]\.job: 'file_processing.jobs.profiler' is not a module"):
        resolve(load_spec(path), spec_path=str(path), package=PACKAGE, entrypoints=read_entrypoints(ENTRYPOINTS))
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
