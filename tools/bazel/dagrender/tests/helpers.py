"""Paths and helpers shared by the dagrender tests (imported as ``helpers`` from this folder)."""

from __future__ import annotations

from pathlib import Path

from tools.bazel.dagrender import (
    ImageRef,
    load_spec,
    read_digest_file,
    read_entrypoints,
    render_dag,
    resolve,
)

TESTDATA = Path(__file__).parent / "testdata"
GOOD_PKG = TESTDATA / "good" / "file_processing"
GOOD_SPECS = sorted((GOOD_PKG / "dags").glob("*.yaml"))
REFERENCE_SPEC = GOOD_PKG / "dags" / "file_processing_daily_profile.yaml"
DIGEST_FILE = GOOD_PKG / "image.digest"
ENTRYPOINTS = GOOD_PKG / "entrypoints.txt"
GOLDEN = TESTDATA / "golden"
REPOSITORY = "registry.example.com/etl"
PACKAGE = "file_processing"
TARGET = "//packages/file_processing:dags"


def display_path(spec: Path) -> str:
    """The workspace-relative path a Bazel action would pass for a spec of file_processing."""
    return f"packages/file_processing/dags/{spec.name}"


def image() -> ImageRef:
    return ImageRef(repository_prefix=REPOSITORY, package=PACKAGE, digest=read_digest_file(DIGEST_FILE))


def render(spec: Path, *, display: str | None = None) -> str:
    """Render a spec of the test package the way the Bazel action does."""
    shown = display or display_path(spec)
    resolved = resolve(
        load_spec(spec, shown), spec_path=shown, package=PACKAGE, entrypoints=read_entrypoints(ENTRYPOINTS)
    )
    return render_dag(resolved, image=image(), spec_path=shown, target=TARGET)


def render_all(out_dir: Path) -> list[Path]:
    """Render every good spec into ``out_dir``; returns the DAG files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    for spec in GOOD_SPECS:
        path = out_dir / f"{spec.stem}.py"
        path.write_text(render(spec), encoding="utf-8")
        files.append(path)
    return files
