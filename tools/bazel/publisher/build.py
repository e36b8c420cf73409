"""The build output the publisher ships: ``<dags-dir>/metadata.json``, ``<dags-dir>/dags/*.py``
and the image digest file. Everything is checked against metadata.json before anything is read
from or written to the store."""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import io
import json
import re
import tokenize
from pathlib import Path
from typing import Any

from tools.bazel.publisher.errors import BuildOutputError, DagSyntaxError
from tools.bazel.storecontract import DIGEST_RE, DagEntry, MetadataError, build_part, validate_document

__all__ = ["BuildOutput", "DagFile", "check_syntax", "load_build_output", "read_digest_file"]


@dataclasses.dataclass(frozen=True)
class DagFile:
    """One DAG file to publish: its bytes and where they came from (for messages)."""

    dag_id: str
    data: bytes
    origin: str  # a local path or a store address
    source_key: str | None = None  # a store key holding the same bytes (rollback copies from it)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()


@dataclasses.dataclass(frozen=True)
class BuildOutput:
    """What one publish ships: the build's metadata (no env/release) and the DAG files."""

    package: str
    metadata: dict[str, Any]
    dags: dict[str, DagFile]

    @property
    def image_repository(self) -> str:
        return str(self.metadata["image"]["repository"])

    @property
    def image_digest(self) -> str:
        return str(self.metadata["image"]["digest"])


# PEP 263, as Python's tokenizer reads it: a comment on line 1 or 2 matching this names the
# file's encoding. Used to point at the line in messages; tokenize.detect_encoding decides.
_CODING_DECLARATION = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.ASCII)
_REBUILD = "rebuild the package with the current dagrender (its DAG files are UTF-8 and declare no encoding)"


def _declaration_line(data: bytes) -> int | None:
    """The line (1 or 2) that reads as a coding declaration, or None."""
    for number, line in enumerate(data.removeprefix(codecs.BOM_UTF8).splitlines()[:2], start=1):
        if _CODING_DECLARATION.match(line):
            return number
    return None


def check_syntax(dag: DagFile) -> None:
    """Compile the DAG file's bytes as Python does when it imports the file; raise DagSyntaxError naming file and line.

    Bytes, not a decoded str: Python takes the encoding from a PEP 263 declaration on line 1 or 2
    (any comment with ``coding:<name>`` or ``coding=<name>``), so valid UTF-8 whose header reads
    ``//packages/geocoding:dag.geocoding_daily`` cannot be imported (unknown encoding
    ``dag.geocoding_daily``), while ``compile()`` of the decoded str passes. A declared encoding
    other than UTF-8 is refused too: the file would mean something else to Python than to every
    tool that reads it as UTF-8 (review, diff, the sha256 in metadata.json).
    """
    declared = _declaration_line(dag.data)
    encoding = "utf-8"
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(dag.data).readline)
    except SyntaxError as exc:  # an unknown encoding, a declaration against a BOM, or not UTF-8
        if declared is not None:
            raise DagSyntaxError(
                f"{dag.origin}: line {declared}: Python cannot import this file: {exc}; a comment with "
                f"'coding:' or 'coding=' on line 1 or 2 declares the file's encoding (PEP 263); {_REBUILD}"
            ) from exc
    if encoding not in ("utf-8", "utf-8-sig"):
        raise DagSyntaxError(
            f"{dag.origin}: line {declared or 1}: declares the encoding {encoding!r} (PEP 263), so Python "
            f"would read the file differently than UTF-8 tools do; {_REBUILD}"
        )
    try:
        dag.data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = dag.data.count(b"\n", 0, exc.start) + 1
        raise DagSyntaxError(
            f"{dag.origin}: line {line}: not valid UTF-8 at byte {exc.start}, so Python cannot import it; "
            "refusing to publish"
        ) from exc
    if b"\0" in dag.data:  # checked here: Pythons differ in how compile() reports it
        at = dag.data.index(b"\0")
        line = dag.data.count(b"\n", 0, at) + 1
        raise DagSyntaxError(
            f"{dag.origin}: line {line}: contains null bytes (at byte {at}), "
            "which Python cannot compile; refusing to publish"
        )
    try:
        compile(dag.data, dag.origin, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise DagSyntaxError(
            f"{dag.origin}: line {exc.lineno}: {exc.msg}; fix the DAG spec or template and rebuild"
        ) from exc


def read_digest_file(path: Path) -> str:
    """The ``sha256:<hex>`` in an image digest file (as written by the image rule)."""
    try:
        digest = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise BuildOutputError(f"cannot read image digest file {str(path)!r}: {exc.strerror}") from exc
    if not DIGEST_RE.fullmatch(digest):
        raise BuildOutputError(f"image digest file {str(path)!r} holds {digest!r}, not sha256:<64 hex>")
    return digest


def _fail(where: Path, message: str) -> BuildOutputError:
    return BuildOutputError(f"{where}: {message}; rebuild the package's :dags target")


def load_build_output(dags_dir: Path, *, package: str, image_digest_file: Path | None = None) -> BuildOutput:
    """Read and check the build output: a valid build metadata.json (storecontract) whose every DAG
    file is there with the listed sha256 and size, nothing else, and compiles."""
    meta_path = dags_dir / "metadata.json"
    try:
        document = json.loads(meta_path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise BuildOutputError(f"{meta_path}: not found; is --dags-dir the package's :dags output?") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(meta_path, f"not readable UTF-8 JSON ({exc})") from exc
    try:
        meta = validate_document(document, where=str(meta_path), package=package)
    except MetadataError as exc:
        raise _fail(meta_path, exc.problem) from exc
    if image_digest_file is not None:
        digest = read_digest_file(image_digest_file)
        if digest != meta.image.digest:
            raise _fail(
                meta_path,
                f"image.digest {meta.image.digest!r} differs from {digest!r} in "
                f"{str(image_digest_file)!r} (the DAGs and the image come from different builds)",
            )
    dags = {entry.dag_id: _read_dag(dags_dir, entry) for entry in meta.dags}
    listed = {entry.name for entry in meta.dags}
    extra = sorted(p.name for p in (dags_dir / "dags").glob("*.py") if p.name not in listed)
    if extra:
        raise _fail(dags_dir / "dags", f"files not listed in metadata.json: {extra!r}")
    for dag in dags.values():
        check_syntax(dag)
    return BuildOutput(package=package, metadata=build_part(document), dags=dags)


def _read_dag(dags_dir: Path, entry: DagEntry) -> DagFile:
    path = dags_dir / entry.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _fail(path, f"cannot read the DAG file of {entry.dag_id!r} ({exc.strerror})") from exc
    dag = DagFile(dag_id=entry.dag_id, data=data, origin=str(path))
    if entry.sha256 != dag.sha256:
        raise _fail(path, f"sha256 is {dag.sha256!r} but metadata.json says {entry.sha256!r}")
    if entry.size != len(data):
        raise _fail(path, f"size is {len(data)} but metadata.json says {entry.size!r}")
    return dag
