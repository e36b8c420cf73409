"""List the packages a change affects, and optionally publish only those.

    ./bazelw run //tools/ci:affected -- --base origin/main             # prints package names
    ./bazelw run //tools/ci:affected -- --base origin/main --json      # one JSON list (a CI matrix)
    ./bazelw run //tools/ci:affected -- --base origin/main --publish   # bazel run each :publish

A package is affected when a file changed since `--base` is a (transitive) input of its `:image`
or `:dags` target: `bazel query "rdeps(<package targets>, set(<changed files>))"`. Changing one
package's code selects that package; changing etl_core selects every package that depends on it;
changing a README, a doc or another package's tests selects none of the unrelated packages.
Changes to MODULE.bazel, the lock or the rules (tools/bazel) select every package, as they should.
With `--publish`, each package is built for `IMAGE_REPOSITORY` where it is set (the registry
prefix, passed as `--//tools/bazel:image_repository`), so its DAGs pin the registry it is pushed to.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE_TARGETS = ("image", "dags")


class AffectedError(RuntimeError):
    """git or bazel failed while computing affected packages."""


def _run(cmd: list[str], cwd: Path) -> str:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise AffectedError(f"{' '.join(cmd[:3])} ... failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return done.stdout


def changed_files(ws: Path, base: str) -> list[str]:
    out = _run(["git", "diff", "--name-only", "--no-renames", f"{base}...HEAD"], ws)
    out += _run(["git", "diff", "--name-only", "--no-renames", "HEAD"], ws)  # uncommitted edits too
    return sorted({line for line in out.splitlines() if line})


def packages(ws: Path) -> list[str]:
    return sorted(
        p.parent.name
        for p in (ws / "packages").glob("*/BUILD.bazel")
        if "etl_package(" in p.read_text(encoding="utf-8")
    )


def _file_label(ws: Path, path: str) -> str | None:
    """//pkg:file for a source file, from the nearest folder holding a BUILD file."""
    parts = Path(path).parts
    for i in range(len(parts) - 1, -1, -1):
        folder = ws.joinpath(*parts[:i])
        if (folder / "BUILD.bazel").exists() or (folder / "BUILD").exists():
            pkg = "/".join(parts[:i])
            return f"//{pkg}:{'/'.join(parts[i:])}"
    return None


GLOBAL_INPUTS = ("MODULE.bazel", "requirements_lock.txt", "requirements.in", ".bazelrc", ".bazelversion")


def affected(ws: Path, base: str, bazel: str = "bazel") -> list[str]:
    files = changed_files(ws, base)
    pkgs = packages(ws)
    if any(f in GLOBAL_INPUTS or f.startswith("tools/toolchain/") for f in files):
        return pkgs
    labels = [label for f in files if (ws / f).exists() and (label := _file_label(ws, f))]
    if not labels or not pkgs:
        return []
    # Only labels Bazel knows as targets: a file no rule uses (a README) is not one.
    known = _query_keep_going(ws, bazel, f"set({' '.join(labels)})")
    if not known:
        return []
    universe = " ".join(f"//packages/{p}:{t}" for p in pkgs for t in PACKAGE_TARGETS)
    hits = _query_keep_going(ws, bazel, f"rdeps(set({universe}), set({' '.join(known)}))")
    selected = {
        label.split(":")[0].removeprefix("//packages/")
        for label in hits
        if label.startswith("//packages/") and label.split(":")[1] in PACKAGE_TARGETS
    }
    return sorted(selected)


def publish_command(
    pkg: str, publisher_args: list[str], environ: dict[str, str] | None = None, bazel: str = "bazel"
) -> list[str]:
    """``bazel run`` of one package's :publish, built for ``IMAGE_REPOSITORY`` (the prefix) where set."""
    environ = os.environ if environ is None else environ
    flags = []
    if environ.get("IMAGE_REPOSITORY"):
        flags.append(f"--//tools/bazel:image_repository={environ['IMAGE_REPOSITORY']}")
    return [bazel, "run", *flags, f"//packages/{pkg}:publish", "--", *publisher_args]


def _query_keep_going(ws: Path, bazel: str, expr: str) -> list[str]:
    done = subprocess.run(
        [bazel, "query", "--keep_going", "--noshow_progress", "--output=label", expr],
        cwd=ws,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode not in (0, 3):  # 3: partial result (some labels were not targets)
        raise AffectedError(f"bazel query failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return [line for line in done.stdout.splitlines() if line.startswith("//")]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--base",
        default=os.environ.get("BASE_REF", "origin/main"),
        help="git revision to compare with (BASE_REF; default origin/main)",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON list instead of one name per line")
    ap.add_argument(
        "--publish",
        action="store_true",
        help="run `bazel run //packages/<pkg>:publish` for each "
        "(built for IMAGE_REPOSITORY where set); arguments after `--` go to the publisher",
    )
    ap.add_argument("--bazel", default="bazel", help=argparse.SUPPRESS)
    args, rest = ap.parse_known_args(argv)
    ws = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    try:
        selected = affected(ws, args.base, args.bazel)
    except AffectedError as exc:
        print(f"affected: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(selected))
    else:
        for pkg in selected:
            print(pkg)
    if not args.publish:
        return 0
    print(f"affected: publishing {len(selected)} package(s): {', '.join(selected) or 'none'}", file=sys.stderr)
    failed = []
    for pkg in selected:
        done = subprocess.run(
            publish_command(pkg, rest, bazel=args.bazel), cwd=ws, check=False, env=dict(os.environ, PACKAGE_NAME=pkg)
        )
        if done.returncode != 0:
            failed.append(pkg)
    if failed:
        print(f"affected: publish failed for {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
