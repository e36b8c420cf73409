"""The package's build ``metadata.json`` (without env/release): the store contract's document
(storecontract.metadata, docs/store-layout.md), checked by the contract's own validator before it
is written."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tools.bazel.dagrender.checks import ResolvedDag
from tools.bazel.dagrender.errors import InputFileError
from tools.bazel.dagrender.image import ImageRef
from tools.bazel.storecontract import MetadataError, build_document, canonical_json, dag_entry

__all__ = ["DagArtifact", "build_metadata", "dump_metadata", "read_revision"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DagArtifact:
    """A resolved spec and the bytes of the DAG file rendered from it."""

    resolved: ResolvedDag
    rendered: bytes
    rendered_path: str


def read_revision(path: Path, key: str) -> str | None:
    """Read a revision from a file: either the bare value, or Bazel status lines ``KEY value``.

    Returns None when the file is empty or does not have ``key`` (an unstamped build).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(f"cannot read revision file {str(path)!r}: {exc}") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == 1 and len(lines[0].split()) == 1:
        return lines[0]
    for line in lines:
        name, _, value = line.partition(" ")
        if name == key and value.strip():
            return value.strip()
    return None


def build_metadata(*, image: ImageRef, artifacts: list[DagArtifact], revision: str | None) -> dict[str, Any]:
    """Return the metadata document; raises ``InputFileError`` when a rendered file does not match."""
    dags: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for artifact in artifacts:
        spec = artifact.resolved.spec
        expected_name = f"{spec.dag_id}.py"
        if Path(artifact.rendered_path).name != expected_name:
            raise InputFileError(
                f"rendered file {artifact.rendered_path!r} does not belong to dag_id {spec.dag_id!r}: "
                f"expected a file named {expected_name!r}"
            )
        if image.reference.encode() not in artifact.rendered:
            raise InputFileError(
                f"rendered file {artifact.rendered_path!r} does not pin {image.reference!r}; "
                "render it again with the same --repository and --digest-file"
            )
        if spec.dag_id in seen:
            raise InputFileError(f"dag_id {spec.dag_id!r} is given twice ({seen[spec.dag_id]!r} and the next --dag)")
        seen[spec.dag_id] = artifact.rendered_path
        dags.append(
            dag_entry(
                spec.dag_id,
                artifact.rendered,
                schedule=spec.schedule,
                tasks=[task.task_id for task in artifact.resolved.tasks],
                resources={task.task_id: task.resources for task in artifact.resolved.tasks},
            )
        )
    try:
        document = build_document(
            package=image.package, repository=image.repository, digest=image.digest, revision=revision, dags=dags
        )
    except MetadataError as exc:
        raise InputFileError(f"refusing to write {exc}") from exc
    return document


def dump_metadata(document: dict[str, Any]) -> str:
    """The stored form (storecontract.canonical_json): sorted keys, two-space indent, trailing newline."""
    return canonical_json(document).decode("utf-8")
