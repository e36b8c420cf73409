"""Command line of ``bazel run //packages/<pkg>:publish -- [flags]``.

The Bazel rule passes ``--package``, ``--dags-dir``, ``--image-layout`` and
``--image-digest-file``; users pass the other flags. Each setting flag mirrors an environment
variable (the flag wins). Exit codes: 0 success, 1 runtime failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from tools.bazel.publisher.build import load_build_output
from tools.bazel.publisher.errors import EXPECTED, PublishError, UsageError
from tools.bazel.publisher.image import (
    ImageRegistry,
    OcitoolRegistry,
    validate_repository,
    validate_tag,
)
from tools.bazel.publisher.publish import (
    PublishOptions,
    PublishResult,
    decommission_package,
    publish_build,
    rollback_release,
)
from tools.bazel.publisher.report import ProgressPrinter, format_releases, format_result
from tools.bazel.publisher.store import default_store_url, open_store
from tools.bazel.storecontract import InvalidNameError, PackageKeys, validate_dag_id, validate_release_id

if TYPE_CHECKING:
    from tools.bazel.publisher.smoke import SmokeResult

# Imported where used: publisher.releases (--list-releases) and publisher.smoke (--smoke, urllib).

__all__ = ["build_parser", "main"]

PROG = "publish"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"invalid flag: {message} (see --help)")


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value if value else None


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Publish one package: push its image, upload its DAGs and metadata.json to "
        "<ENV>/<pkg>/ of the DAG store, then prune. See tools/bazel/publisher/README.md.",
    )
    rule = p.add_argument_group("set by the Bazel rule")
    rule.add_argument(
        "--package", default=_env(environ, "PACKAGE_NAME"), help="package name (env PACKAGE_NAME must agree if set)"
    )
    rule.add_argument("--dags-dir", type=Path, help="the :dags output (dags/*.py and metadata.json)")
    rule.add_argument("--image-layout", type=Path, help="the :image output (an OCI image layout)")
    rule.add_argument("--image-digest-file", type=Path, help="the :image.digest output (sha256:<hex>)")

    where = p.add_argument_group("where")
    where.add_argument(
        "--env",
        default=_env(environ, "ENV") or "dev",
        help="environment, the first key component [env ENV, default dev]",
    )
    where.add_argument(
        "--bucket",
        default=_env(environ, "DAG_BUCKET"),
        help="s3://<bucket> or file:///<dir> [env DAG_BUCKET, default "
        "file://$BUILD_WORKSPACE_DIRECTORY/.etl/dag-store]; S3 uses AWS_ENDPOINT_URL "
        "and the usual AWS credential chain",
    )
    where.add_argument(
        "--repository",
        default=_env(environ, "IMAGE_REPOSITORY"),
        help="registry prefix, e.g. registry.example.com/etl: the image is <prefix>/<pkg>, and the "
        "DAGs must pin it there (the build's --//tools/bazel:image_repository); a mismatch is "
        "refused [env IMAGE_REPOSITORY, default: the build's]",
    )
    where.add_argument(
        "--tag",
        default=_env(environ, "IMAGE_TAG"),
        help="extra human-readable image tag to push; DAGs always pin the digest [env IMAGE_TAG]",
    )

    how = p.add_argument_group("how")
    how.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    how.add_argument(
        "--output",
        choices=("text", "json"),
        default="text",
        help="summary format on stdout (progress always goes to stderr)",
    )
    how.add_argument(
        "--no-push",
        action="store_true",
        help="do not push the image; fail unless its digest is already in the registry",
    )
    how.add_argument(
        "--allow-mass-delete",
        action="store_true",
        help="allow a release that removes more than half of the package's DAGs",
    )
    how.add_argument(
        "--repair",
        action="store_true",
        help="also list the live dags/ objects and rewrite or delete those that differ from "
        "metadata.json (after an interrupted publish or a hand edit), and replace a metadata.json "
        "that cannot be read; a plain publish trusts metadata.json and reads only it",
    )
    how.add_argument(
        "--jobs",
        type=int,
        default=int(_env(environ, "PUBLISH_JOBS") or 8),
        help="parallel store requests [env PUBLISH_JOBS, default 8]",
    )

    modes = p.add_argument_group("other actions").add_mutually_exclusive_group()
    modes.add_argument("--list-releases", action="store_true", help="list the stored releases and exit")
    modes.add_argument("--rollback", metavar="RELEASE_ID", help="republish a stored release")
    modes.add_argument(
        "--decommission",
        action="store_true",
        help="remove the package from Airflow (marks metadata.json, writes the REMOVED marker; "
        "releases are kept, a later publish brings it back); needs --allow-mass-delete",
    )

    smoke = p.add_argument_group("smoke run (Airflow REST API)")
    smoke.add_argument(
        "--smoke",
        metavar="DAG_ID",
        help="after publishing, wait until Airflow parsed this DAG's new file, unpause it, "
        "trigger a run with a logical date (now) and wait for it: exit 1 unless every task "
        "succeeds (AIRFLOW_API_URL; AIRFLOW_API_TOKEN or AIRFLOW_USERNAME/AIRFLOW_PASSWORD)",
    )
    smoke.add_argument(
        "--smoke-conf",
        metavar="JSON",
        default=None,
        help='conf of the smoke run, a JSON object [default {"smoke": true, "release_id": ...}]',
    )
    smoke.add_argument(
        "--timeout",
        type=float,
        default=float(_env(environ, "PUBLISH_TIMEOUT") or 300),
        help="seconds --smoke waits for Airflow to parse the file [env PUBLISH_TIMEOUT, default 300]",
    )
    smoke.add_argument(
        "--smoke-timeout",
        type=float,
        default=float(_env(environ, "SMOKE_TIMEOUT") or 1800),
        help="seconds --smoke waits for the triggered run to end [env SMOKE_TIMEOUT, default 1800]",
    )
    return p


def _parse(argv: Sequence[str], environ: Mapping[str, str]) -> argparse.Namespace:
    try:
        args = build_parser(environ).parse_args(list(argv))
    except ValueError as exc:  # a bad int/float in an env default
        raise UsageError(f"invalid flag: {exc}") from exc
    if not args.package:
        raise UsageError("required flag: --package (set by the Bazel rule)")
    env_package = _env(environ, "PACKAGE_NAME")
    if env_package and env_package != args.package:
        raise UsageError(
            f"invalid flag: PACKAGE_NAME={env_package!r} but this target publishes {args.package!r}; "
            "unset PACKAGE_NAME or run the other package's :publish target"
        )
    try:
        PackageKeys(env=args.env, package=args.package)
        if args.rollback is not None:
            validate_release_id(args.rollback)
        if args.smoke is not None:
            validate_dag_id(args.smoke)
    except InvalidNameError as exc:
        raise UsageError(f"invalid flag: {exc}") from exc
    if args.tag is not None:
        validate_tag(args.tag)
    if args.repository is not None:
        validate_repository(args.repository)
    if args.jobs < 1 or args.jobs > 64:
        raise UsageError(f"invalid flag: --jobs {args.jobs!r}: must be 1..64")
    if args.timeout <= 0:
        raise UsageError(f"invalid flag: --timeout {args.timeout!r}: must be > 0")
    if args.smoke_timeout <= 0:
        raise UsageError(f"invalid flag: --smoke-timeout {args.smoke_timeout!r}: must be > 0")
    if args.smoke and (args.dry_run or args.list_releases or args.decommission):
        raise UsageError("invalid flag: --smoke cannot be combined with --dry-run, --list-releases or --decommission")
    if args.decommission and args.dry_run:
        raise UsageError("invalid flag: --decommission cannot be combined with --dry-run")
    args.smoke_conf_obj = None
    if args.smoke_conf is not None:
        try:
            args.smoke_conf_obj = json.loads(args.smoke_conf)
        except json.JSONDecodeError as exc:
            raise UsageError(f"invalid flag: --smoke-conf {args.smoke_conf!r}: not JSON ({exc})") from exc
        if not isinstance(args.smoke_conf_obj, dict):
            raise UsageError(f"invalid flag: --smoke-conf {args.smoke_conf!r}: must be a JSON object")
    if not (args.list_releases or args.decommission) and args.rollback is None and args.dags_dir is None:
        raise UsageError("required flag: --dags-dir (set by the Bazel rule)")
    return args


def _run(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    registry: ImageRegistry,
    stdout: TextIO,
    stderr: TextIO,
) -> dict[str, Any]:
    url = args.bucket or default_store_url(_env(environ, "BUILD_WORKSPACE_DIRECTORY"))
    store = open_store(url, jobs=args.jobs)
    keys = PackageKeys(env=args.env, package=args.package)
    progress = ProgressPrinter(stderr)
    if args.list_releases:
        from tools.bazel.publisher.releases import list_releases

        releases = list_releases(store, keys, jobs=args.jobs)
        location = store.address(keys.prefix)
        if args.output == "text":
            stdout.write(format_releases(location, releases))
        return {
            "ok": True,
            "action": "list-releases",
            "location": location,
            "releases": [r.to_json() for r in releases],
        }

    if args.decommission:
        payload = decommission_package(
            store=store, env=args.env, package=args.package, allow_mass_delete=args.allow_mass_delete, on_event=progress
        )
        if args.output == "text":
            stdout.write(
                f"decommissioned {args.package} in env {args.env} ({payload['location']}): "
                f"{len(payload['dags'])} DAGs leave Airflow when the sidecar sees the REMOVED marker; "
                f"release {payload['release']['id']} is kept (publish or --rollback to bring it back)\n"
            )
        return payload

    options = PublishOptions(
        dry_run=args.dry_run,
        push=not args.no_push,
        allow_mass_delete=args.allow_mass_delete,
        image_tag=args.tag,
        repository=args.repository,
        jobs=args.jobs,
        repair=args.repair,
    )
    result: PublishResult
    if args.rollback is not None:
        result = rollback_release(
            args.rollback,
            store=store,
            env=args.env,
            package=args.package,
            registry=registry,
            options=options,
            on_event=progress,
        )
    else:
        build = load_build_output(args.dags_dir, package=args.package, image_digest_file=args.image_digest_file)
        if args.smoke and args.smoke not in build.dags:
            raise UsageError(f"invalid flag: --smoke {args.smoke!r}: not a DAG of package {args.package!r}")
        result = publish_build(
            build,
            store=store,
            env=args.env,
            registry=registry,
            image_layout=args.image_layout,
            options=options,
            on_event=progress,
        )
    smoke: SmokeResult | None = None
    if args.smoke:
        if args.smoke not in result.dag_sizes:
            raise UsageError(f"invalid flag: --smoke {args.smoke!r}: not a DAG of this release")
        stored = store.get(keys.dag(args.smoke))
        if stored is None:
            raise PublishError(f"--smoke: {store.address(keys.dag(args.smoke))} is missing after the publish")
        from tools.bazel.publisher.smoke import run_smoke, smoke_config_from_env

        conf = args.smoke_conf_obj or {"smoke": True, "release_id": result.release_id or result.previous_release_id}
        try:
            config = smoke_config_from_env(environ, timeout=args.timeout, run_timeout=args.smoke_timeout)
            smoke = run_smoke(config, dag_id=args.smoke, source=stored.data, conf=conf, on_event=progress)
        except PublishError as exc:
            released = result.release_id or result.previous_release_id
            raise type(exc)(f"release {released} is published, but the smoke run failed: {exc}") from exc
    if args.output == "text":
        stdout.write(format_result(result, smoke))
    payload = result.to_json()
    if smoke is not None:
        payload["smoke"] = smoke.to_json()
    return payload


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    registry: ImageRegistry | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the CLI; return the exit code. ``registry`` defaults to the real ocitool one."""
    environ = os.environ if environ is None else environ
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    argv = sys.argv[1:] if argv is None else argv
    as_json = "--output=json" in argv or any(
        a == "--output" and i + 1 < len(argv) and argv[i + 1] == "json" for i, a in enumerate(argv)
    )
    try:
        args = _parse(argv, environ)
        payload = _run(args, environ, registry or OcitoolRegistry(), stdout, stderr)
    except EXPECTED as exc:
        code = getattr(exc, "exit_code", 1)  # a broken store contract (storecontract's errors): a runtime failure
        print(f"{PROG}: error: {exc}", file=stderr, flush=True)
        if as_json:
            stdout.write(json.dumps({"ok": False, "error": str(exc), "exit_code": code}) + "\n")
        return code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=stderr)
        return 130
    if args.output == "json":
        stdout.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return 0
