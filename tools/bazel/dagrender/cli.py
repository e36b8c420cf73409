"""Command line of dagrender, run by the ``airflow_dag`` rule's actions (``python -m tools.bazel.dagrender``).

Sub-commands:
  render        one spec -> one DAG file
  metadata      specs + their rendered files -> metadata.json
  check-unique  fail when two spec files share a dag_id
  schema        write the JSON Schema of the spec

Exit status: 0 on success, 1 on an invalid spec or input (one ``ERROR: ...`` line on stderr,
nothing written), 2 on a usage error. The tool reads no environment variables, so the Bazel
actions that run it stay hermetic: every input is a flag.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tools.bazel.dagrender.checks import resolve
from tools.bazel.dagrender.errors import DagRenderError
from tools.bazel.dagrender.image import ImageRef, read_digest_file, read_entrypoints
from tools.bazel.dagrender.loader import load_spec
from tools.bazel.dagrender.metadata import DagArtifact, build_metadata, dump_metadata, read_revision
from tools.bazel.dagrender.render import render_dag
from tools.bazel.dagrender.schema import dump_schema
from tools.bazel.dagrender.uniqueness import check_unique_dag_ids

__all__ = ["main"]


def _write(path: Path, data: bytes) -> None:
    """Write through a temp file in the same folder and rename, so readers never see part of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _image(args: argparse.Namespace) -> ImageRef:
    return ImageRef(
        repository_prefix=args.repository, package=args.package, digest=read_digest_file(Path(args.digest_file))
    )


def _cmd_render(args: argparse.Namespace) -> int:
    image = _image(args)
    entrypoints = read_entrypoints(Path(args.entrypoints)) if args.entrypoints else None
    spec = load_spec(Path(args.spec), args.spec)
    resolved = resolve(spec, spec_path=args.spec, package=args.package, entrypoints=entrypoints)
    text = render_dag(resolved, image=image, spec_path=args.spec, target=args.target)
    _write(Path(args.out), text.encode("utf-8"))
    return 0


def _cmd_metadata(args: argparse.Namespace) -> int:
    image = _image(args)
    artifacts = []
    for spec_path, rendered_path in args.dag:
        spec = load_spec(Path(spec_path), spec_path)
        resolved = resolve(spec, spec_path=spec_path, package=args.package, entrypoints=None)
        try:
            rendered = Path(rendered_path).read_bytes()
        except OSError as exc:
            raise DagRenderError(f"cannot read rendered DAG {rendered_path!r}: {exc.strerror}") from None
        artifacts.append(DagArtifact(resolved=resolved, rendered=rendered, rendered_path=rendered_path))
    revision = read_revision(Path(args.revision_file), args.revision_key) if args.revision_file else None
    document = build_metadata(image=image, artifacts=artifacts, revision=revision)
    _write(Path(args.out), dump_metadata(document).encode("utf-8"))
    return 0


def _cmd_check_unique(args: argparse.Namespace) -> int:
    owners = check_unique_dag_ids((Path(path), path) for path in args.specs)
    listing = "".join(f"{dag_id}\t{path}\n" for dag_id, path in owners.items())
    if args.out:
        _write(Path(args.out), listing.encode("utf-8"))
    print(f"OK: {len(owners)} dag_ids in {len(args.specs)} spec files are unique")
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    text = dump_schema()
    if args.out:
        _write(Path(args.out), text.encode("utf-8"))
    else:
        sys.stdout.write(text)
    return 0


def _add_image_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--package", required=True, help="package name, e.g. file_processing")
    parser.add_argument(
        "--repository",
        required=True,
        help="image repository prefix, e.g. registry.example.com/etl; the image is <repository>/<package>",
    )
    parser.add_argument(
        "--digest-file",
        required=True,
        help="file holding the image digest 'sha256:<64 hex>' (the :image.digest output)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``python -m tools.bazel.dagrender``."""
    parser = argparse.ArgumentParser(prog="dagrender", description="Validate DAG specs and render Airflow DAG files.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    render = commands.add_parser("render", help="render one spec to one DAG file")
    render.add_argument("--spec", required=True, help="spec file, e.g. packages/<pkg>/dags/<dag_id>.yaml")
    _add_image_flags(render)
    render.add_argument("--target", required=True, help="Bazel label named in the header, e.g. //packages/x:dags")
    render.add_argument(
        "--entrypoints", help="file listing the package's job modules, one per line; omit to skip the job check"
    )
    render.add_argument("--out", required=True, help="DAG file to write, <dag_id>.py")
    render.set_defaults(run=_cmd_render)

    metadata = commands.add_parser("metadata", help="write metadata.json for a package's rendered DAGs")
    _add_image_flags(metadata)
    metadata.add_argument(
        "--dag", nargs=2, action="append", required=True, metavar=("SPEC", "RENDERED"), help="a spec and its DAG file"
    )
    metadata.add_argument("--revision-file", help="file with the revision (a bare value or Bazel status lines)")
    metadata.add_argument(
        "--revision-key", default="STABLE_GIT_COMMIT", help="key to read from a status file (default %(default)s)"
    )
    metadata.add_argument("--out", required=True, help="metadata.json to write")
    metadata.set_defaults(run=_cmd_metadata)

    unique = commands.add_parser("check-unique", help="fail when two spec files declare the same dag_id")
    unique.add_argument("specs", nargs="+", metavar="SPEC", help="spec files")
    unique.add_argument("--out", help="optional file to write 'dag_id<TAB>spec' lines to on success")
    unique.set_defaults(run=_cmd_check_unique)

    schema = commands.add_parser("schema", help="write the JSON Schema of the DAG spec")
    schema.add_argument("--out", help="file to write (default: stdout)")
    schema.set_defaults(run=_cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except DagRenderError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
