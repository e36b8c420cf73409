"""dagrender: validate DAG specs and render them to Airflow DAG files pinned to an image digest.

The Python side of the ``airflow_dag`` Bazel rule. Run ``python -m dagrender --help``.
"""

from __future__ import annotations

from dagrender.checks import ResolvedDag, ResolvedTask, resolve
from dagrender.errors import (
    DagRenderError,
    DuplicateDagIdError,
    InputFileError,
    SpecError,
)
from dagrender.image import ImageRef, read_digest_file, read_entrypoints
from dagrender.loader import load_spec
from dagrender.metadata import DagArtifact, build_metadata, dump_metadata, read_revision
from dagrender.render import render_dag
from dagrender.schema import dag_spec_schema, dump_schema
from dagrender.spec import DagSpec, TaskSpec
from dagrender.uniqueness import check_unique_dag_ids

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
