"""``python -m tools.bazel.ocitool {layer,image,base,push}``: argparse front end of the library.

Exit codes: 0 success, 1 runtime failure, 2 usage error. Expected failures print one line
(``ocitool <command>: error: ...``) and no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tools.bazel.ocitool._version import __version__
from tools.bazel.ocitool.errors import OciToolError, UsageError

__all__ = ["main"]


def _write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def _env_default(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "")
    return value if value.strip() else default


def _int_flag(name: str, value: str | None, *, minimum: int = 0) -> int | None:
    if value is None:
        return None
    try:
        number = int(value)
    except ValueError:
        raise UsageError(f"invalid flag: {name} {value!r} is not an integer") from None
    if number < minimum:
        raise UsageError(f"invalid flag: {name} {value!r} must be >= {minimum}")
    return number


def _key_values(items: Sequence[str], flag: str) -> list[tuple[str, str]]:
    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid flag: {flag} {item!r} must look like KEY=VALUE")
        pairs.append((key, value))
    return pairs


def _argv_list(values: Sequence[str] | None, flag: str) -> list[str] | None:
    """Repeated ``--flag=ARG`` values, or one JSON array (``--flag='["python3", "-m", "x"]'``)."""
    if values is None:
        return None
    if len(values) == 1 and values[0].lstrip().startswith("["):
        try:
            parsed = json.loads(values[0])
        except json.JSONDecodeError:
            raise UsageError(f"invalid flag: {flag} {values[0]!r} looks like JSON but does not parse") from None
        if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
            raise UsageError(f"invalid flag: {flag} {values[0]!r} must be a JSON array of strings")
        return parsed
    return list(values)


# -- layer ----------------------------------------------------------------------------------------
def _cmd_layer(args: argparse.Namespace) -> int:
    from tools.bazel.ocitool.layer import LayerContents, load_manifest, write_layer
    from tools.bazel.ocitool.pyc import compile_pyc

    if not args.manifest and not args.tree:
        raise UsageError("required flag: --manifest FILE or --tree DIR=PREFIX (at least one)")
    contents = LayerContents()
    for manifest in args.manifest or ():
        load_manifest(manifest, contents)
    for spec in args.tree or ():
        src, sep, prefix = spec.rpartition("=")
        if not sep or not src or not prefix.startswith("/"):
            raise UsageError(f"invalid flag: --tree {spec!r} must look like DIR=/prefix/in/image")
        contents.add_tree(src, prefix, excludes=args.exclude or ())
    if args.compile_pyc:
        result = compile_pyc(contents, python=args.pyc_python, python_version=args.python_version)
        print(
            f"ocitool layer: compiled {result.compiled} .pyc files, skipped {len(result.failed)}",
            file=sys.stderr,
        )
    layer = write_layer(
        contents,
        args.out,
        mtime=_int_flag("--mtime", args.mtime),
        level=int(args.compression_level),
    )
    if args.descriptor_out:
        _write_atomic(
            args.descriptor_out,
            (json.dumps(layer.descriptor(), sort_keys=True) + "\n").encode(),
        )
    if args.diff_id_out:
        _write_atomic(args.diff_id_out, layer.diff_id.encode())
    if args.digest_out:
        _write_atomic(args.digest_out, layer.digest.encode())
    print(f"{args.out}: diff_id {layer.diff_id} digest {layer.digest} size {layer.size} entries {layer.entries}")
    return 0


def _add_layer_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "layer",
        help="write a deterministic .tar.gz layer",
        description=_cmd_layer.__doc__,
    )
    p.add_argument("--out", required=True, help="layer blob to write (.tar.gz)")
    p.add_argument(
        "--manifest",
        action="append",
        help="JSON list of {path_in_image, src|content|type} (repeatable)",
    )
    p.add_argument(
        "--tree",
        action="append",
        metavar="DIR=PREFIX",
        help="copy a directory (site-packages, runfiles) to PREFIX in the image, following symlinks (repeatable)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        metavar="GLOB",
        help="skip tree paths or names matching GLOB",
    )
    p.add_argument(
        "--mtime",
        default=_env_default("SOURCE_DATE_EPOCH"),
        help="entry mtime (default SOURCE_DATE_EPOCH or 0)",
    )
    p.add_argument(
        "--compression-level",
        default="6",
        choices=[str(i) for i in range(1, 10)],
        help="gzip level",
    )
    p.add_argument(
        "--compile-pyc",
        action="store_true",
        help="add unchecked-hash .pyc files for every .py file",
    )
    p.add_argument(
        "--pyc-python",
        default=None,
        help="interpreter that compiles the .pyc (default: this one)",
    )
    p.add_argument(
        "--python-version",
        default="3.13",
        help="the image's Python major.minor (default 3.13)",
    )
    p.add_argument("--descriptor-out", help="write {mediaType, digest, size, diff_id} as JSON")
    p.add_argument("--diff-id-out", help="write sha256:<hex> of the uncompressed tar")
    p.add_argument("--digest-out", help="write sha256:<hex> of the .tar.gz blob")
    p.set_defaults(func=_cmd_layer)


# -- image ----------------------------------------------------------------------------------------
def _cmd_image(args: argparse.Namespace) -> int:
    from tools.bazel.ocitool.image import ImageOptions, build_image
    from tools.bazel.ocitool.listing import format_listing
    from tools.bazel.ocitool.sbom import build_sbom, deb_packages_from_lock, sbom_bytes

    options = ImageOptions(
        entrypoint=_argv_list(args.entrypoint, "--entrypoint"),
        cmd=_argv_list(args.cmd, "--cmd"),
        env=_key_values(args.env or (), "--env"),
        user=args.user,
        workdir=args.workdir,
        labels=dict(_key_values(args.label or (), "--label")),
        created=_int_flag("--created", args.created),
        architecture=args.arch,
        os=args.os,
    )
    result = build_image(
        out=args.out,
        base=args.base,
        layers=args.layer or (),
        options=options,
        level=int(args.compression_level),
    )
    if args.digest_out:
        _write_atomic(args.digest_out, result.manifest_digest.encode())
    if args.listing_out:
        layers = [
            (number, layer.scan.files)
            for number, layer in enumerate(result.layers, start=1)
            if layer.scan is not None and not (args.listing_skip_base and layer.from_base)
        ]
        _write_atomic(args.listing_out, format_listing(layers).encode())
    if args.sbom_out:
        debs = []
        if args.deb_lock:
            try:
                debs = deb_packages_from_lock(json.loads(Path(args.deb_lock).read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError) as exc:
                raise UsageError(f"invalid flag: --deb-lock {args.deb_lock!r} cannot be read: {exc}") from None
        dists = [d for layer in result.layers if layer.scan is not None for d in layer.scan.dists]
        doc = build_sbom(
            image_name=args.name or Path(args.out).name,
            manifest_digest=result.manifest_digest,
            debs=debs,
            dists=dists,
            tool_version=__version__,
        )
        _write_atomic(args.sbom_out, sbom_bytes(doc))
    print(f"{args.out}: {result.manifest_digest} ({len(result.layers)} layers, {result.total_layer_bytes} bytes)")
    return 0


def _add_image_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("image", help="write an OCI image layout directory")
    p.add_argument("--out", required=True, help="OCI layout directory to (re)write")
    p.add_argument("--base", help="base: a layer .tar.gz/.tar or an OCI layout directory")
    p.add_argument(
        "--layer",
        action="append",
        help="layer blob (.tar.gz or .tar), bottom to top (repeatable)",
    )
    p.add_argument(
        "--entrypoint",
        action="append",
        help="one argv element per flag (use --entrypoint=-m), or a JSON array",
    )
    p.add_argument("--cmd", action="append", help="default arguments, like --entrypoint")
    p.add_argument(
        "--env",
        action="append",
        metavar="KEY=VALUE",
        help="environment variable (repeatable)",
    )
    p.add_argument("--user", help="user (uid[:gid] or name), e.g. 65532")
    p.add_argument("--workdir", help="working directory, e.g. /app")
    p.add_argument(
        "--label",
        action="append",
        metavar="KEY=VALUE",
        help="config label (repeatable)",
    )
    p.add_argument(
        "--created",
        default=_env_default("SOURCE_DATE_EPOCH"),
        help="seconds since epoch (default SOURCE_DATE_EPOCH or 0)",
    )
    p.add_argument("--os", default="linux")
    p.add_argument("--arch", default="amd64")
    p.add_argument(
        "--compression-level",
        default="6",
        choices=[str(i) for i in range(1, 10)],
        help="for .tar inputs",
    )
    p.add_argument("--digest-out", help="write sha256:<hex> of the manifest (no newline)")
    p.add_argument("--listing-out", help="write the sorted file listing of the layers")
    p.add_argument(
        "--listing-skip-base",
        action="store_true",
        help="leave the base's layers out of the listing",
    )
    p.add_argument("--sbom-out", help="write an SPDX 2.3 JSON SBOM")
    p.add_argument("--deb-lock", help="base lock JSON whose packages go into the SBOM")
    p.add_argument("--name", help="image name in the SBOM (default: --out's base name)")
    p.set_defaults(func=_cmd_image)


# -- base -----------------------------------------------------------------------------------------
def _cmd_base(args: argparse.Namespace) -> int:
    from tools.bazel.ocitool.base import build_base
    from tools.bazel.ocitool.debian import mirror_from_apt_sources

    mirror = args.mirror
    if not mirror:
        raise UsageError("required flag: --mirror URL (or DEBIAN_MIRROR; 'auto' reads the host's apt sources)")
    if mirror == "auto":
        mirror = mirror_from_apt_sources()
    if not mirror.startswith(("http://", "https://")):
        raise UsageError(f"invalid flag: --mirror {mirror!r} must be an http(s) URL")
    result = build_base(
        lock_path=args.packages,
        mirror=mirror,
        out=args.out,
        suite=args.suite,
        update_lock=args.update_lock,
        compile_pyc=not args.no_compile_pyc,
        level=int(args.compression_level),
        update_command=args.update_command,
        **({"log": lambda line: None} if args.quiet else {}),
    )
    if not args.quiet:
        print(f"{args.out}: sha256:{result.sha256} size {result.size} packages {len(result.packages)}")
    return 0


def _add_base_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("base", help="build the Debian Python base layer with mmdebstrap")
    p.add_argument("--packages", required=True, help="base lock JSON (include, packages, tarball)")
    p.add_argument(
        "--mirror",
        default=_env_default("DEBIAN_MIRROR", "auto"),
        help="Debian mirror URL (DEBIAN_MIRROR; default 'auto': the apt sources of the machine)",
    )
    p.add_argument("--suite", default=None, help="Debian suite (default: the lock's, else trixie)")
    p.add_argument("--out", required=True, help="base layer to write (.tar.gz)")
    p.add_argument(
        "--update-lock",
        action="store_true",
        help="resolve current versions and rewrite the lock",
    )
    p.add_argument(
        "--no-compile-pyc",
        action="store_true",
        help="do not add the stdlib's .pyc files",
    )
    p.add_argument("--compression-level", default="9", choices=[str(i) for i in range(1, 10)])
    p.add_argument("--quiet", action="store_true", help="print nothing unless it fails (for build actions)")
    p.add_argument(
        "--update-command",
        default=_env_default("OCITOOL_BASE_UPDATE_COMMAND", "python -m tools.bazel.ocitool base --update-lock"),
        help="command named in errors when the lock must be re-pinned (OCITOOL_BASE_UPDATE_COMMAND)",
    )
    p.set_defaults(func=_cmd_base)


# -- push -----------------------------------------------------------------------------------------
def _check_prefix(repository: str) -> None:
    """``IMAGE_REPOSITORY``, where set, is the registry prefix: the repository must be ``<prefix>/<name>``.

    The prefix is the ``--//tools/bazel:image_repository`` build setting's value, which the rendered
    DAGs pin; a push anywhere else would leave them pointing at an image that is not there.
    """
    prefix = (_env_default("IMAGE_REPOSITORY") or "").rstrip("/")
    if prefix and prefix == repository:
        raise UsageError(
            f"invalid flag: IMAGE_REPOSITORY={prefix!r} is this image's repository; it means the registry "
            f"prefix: set it to {repository.rpartition('/')[0]!r} (images live at <prefix>/<name>)"
        )
    if prefix and repository.rpartition("/")[0] != prefix:
        raise UsageError(
            f"invalid flag: --repository {repository!r} is not under IMAGE_REPOSITORY={prefix!r} "
            f"(the registry prefix); build with --//tools/bazel:image_repository={prefix} or pass "
            f"--repository {prefix}/<name>, or unset IMAGE_REPOSITORY"
        )


def _cmd_push(args: argparse.Namespace) -> int:
    from tools.bazel.ocitool.push import push_layout

    if not args.repository:
        raise UsageError("required flag: --repository, e.g. 127.0.0.1:5000/etl/pkg")
    _check_prefix(args.repository)
    # --tag flags (the rule's remote_tags) plus IMAGE_TAG (comma/space separated), in order, once
    env_tags = (_env_default("IMAGE_TAG") or "").replace(",", " ").split()
    tags = list(dict.fromkeys([*(args.tag or ()), *env_tags]))
    result = push_layout(
        Path(args.layout),
        args.repository,
        tags,
        jobs=_int_flag("--jobs", args.jobs, minimum=1) or 4,
        timeout=float(args.timeout),
        retries=_int_flag("--retries", args.retries) or 0,
        chunk_size=_int_flag("--chunk-size", args.chunk_size, minimum=0) or None,
    )
    if args.reference_out:
        _write_atomic(args.reference_out, result.reference.encode())
    print(result.reference)
    return 0


def _add_push_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "push",
        help="push an OCI layout to a registry (blobs, manifest by digest, tags)",
    )
    p.add_argument("--layout", required=True, help="OCI image layout directory")
    p.add_argument(
        "--repository",
        help="host[:port]/path; IMAGE_REPOSITORY, where set, is the registry prefix it must be under",
    )
    p.add_argument(
        "--tag",
        action="append",
        help="tag to set after the digest push (repeatable); IMAGE_TAG adds more (comma-separated)",
    )
    p.add_argument(
        "--jobs",
        default=_env_default("PUSH_JOBS", "4"),
        help="parallel blob uploads (PUSH_JOBS, default 4)",
    )
    p.add_argument("--timeout", default="60", help="socket timeout in seconds (default 60)")
    p.add_argument("--retries", default="4", help="retries on 5xx/timeouts (default 4)")
    p.add_argument(
        "--chunk-size",
        default=None,
        help="upload blobs larger than this many bytes in PATCH chunks",
    )
    p.add_argument("--reference-out", help="write registry/path@sha256:... to this file")
    p.set_defaults(func=_cmd_push)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocitool",
        description="Deterministic OCI layers and images, and a registry pusher.",
    )
    parser.add_argument("--version", action="version", version=f"ocitool {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_layer_parser(sub)
    _add_image_parser(sub)
    _add_base_parser(sub)
    _add_push_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except OciToolError as exc:
        print(f"ocitool {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # unreadable input, full disk, ...: one line, no traceback
        print(f"ocitool {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ocitool {args.command}: interrupted", file=sys.stderr)
        return 130
