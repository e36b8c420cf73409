"""dagrender: validate DAG specs and render them to Airflow DAG files pinned to an image digest.

The Python side of the ``airflow_dag`` Bazel rule. Run ``python -m tools.bazel.dagrender --help``.
"""

from __future__ import annotations

from tools.bazel.dagrender.checks import ResolvedDag, ResolvedTask, resolve
from tools.bazel.dagrender.errors import (
    DagRenderError,
    DuplicateDagIdError,
    InputFileError,
    SpecError,
)
from tools.bazel.dagrender.image import ImageRef, read_digest_file, read_entrypoints
from tools.bazel.dagrender.loader import load_spec
from tools.bazel.dagrender.metadata import DagArtifact, build_metadata, dump_metadata, read_revision
from tools.bazel.dagrender.render import render_dag
from tools.bazel.dagrender.schema import dag_spec_schema, dump_schema
from tools.bazel.dagrender.spec import DagSpec, TaskSpec
from tools.bazel.dagrender.uniqueness import check_unique_dag_ids

__all__ = [
    "DagArtifact",
    "DagRenderError",
    "DagSpec",
    "DuplicateDagIdError",
    "ImageRef",
    "InputFileError",
    "ResolvedDag",
    "ResolvedTask",
    "SpecError",
    "TaskSpec",
    "build_metadata",
    "check_unique_dag_ids",
    "dag_spec_schema",
    "dump_metadata",
    "dump_schema",
    "load_spec",
    "read_digest_file",
    "read_entrypoints",
    "read_revision",
    "render_dag",
    "resolve",
]
