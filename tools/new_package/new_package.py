"""`./bazelw run //:new_package -- <name>`: scaffold an ETL package under packages/<name>/.

Writes, from the templates beside this file: BUILD.bazel (`etl_package` and the package's tests),
pyproject.toml (PEP 621 + Poetry, `etl_core` as a path dependency, the same deps as BUILD.bazel),
README.md, the Python package with one example job on etl_core's job runner, the DAG spec
`dags/<name>_example.yaml` and a test of the job. Then it regenerates the files under infra/ that
derive from the packages (the package's IAM document and ServiceAccount: //infra:update). Every
other list of packages is derived at build time (packages/BUILD.bazel), so nothing else needs an
edit. Prints what it created and the next commands.

Exit codes: 0 created; 2 a refused name or bad usage (one line naming the value and the rule);
1 writing failed (nothing is left half-made under packages/).
"""

from __future__ import annotations

import argparse
import keyword
import os
import re
import shutil
import string
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["TEMPLATES", "InvalidName", "ScaffoldError", "check_name", "main", "render_files", "scaffold"]

TEMPLATES = Path(os.path.abspath(__file__)).parent / "template"  # in the runfiles tree under Bazel
LIBRARY = "etl_core"
MAX_LENGTH = 50  # the IAM role etl-<name in DNS form> stays under 64 characters, label values under 63
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# Top-level modules a package's name would shadow: the image puts packages/ first on sys.path, and
# the tests put the work tree's root there too (the platform's own import names, and the
# distributions the images and tests carry).
TAKEN_MODULES = frozenset(
    {
        "airflow",
        "boto3",
        "botocore",
        "controlplane",
        "etl_alerts",
        "great_expectations",
        "infra",
        "jinja2",
        "kubernetes",
        "moto",
        "numpy",
        "packages",
        "pandas",
        "prometheus_client",
        "pyarrow",
        "pydantic",
        "pydantic_settings",
        "pytest",
        "sidecar",
        "sqlalchemy",
        "tests",
        "tools",
        "yaml",
    }
)


class InvalidName(ValueError):
    """The package name breaks a rule (the message names the value and the rule)."""


class ScaffoldError(RuntimeError):
    """The package could not be written (the message says where and why)."""


def existing_packages(root: Path) -> list[str]:
    """Every folder under packages/ (ETL packages and libraries alike)."""
    return sorted(p.name for p in (root / "packages").iterdir() if p.is_dir() and not p.name.startswith("."))


def check_name(name: str, existing: Sequence[str]) -> None:
    """Raise InvalidName when ``name`` cannot be a new package next to ``existing``."""
    if not NAME_RE.match(name) or len(name) > MAX_LENGTH:
        raise InvalidName(
            f"{name!r}: a package name is a lowercase identifier of at most {MAX_LENGTH} characters: "
            "a-z first, then a-z, 0-9 and single underscores between them (e.g. sales_reports)"
        )
    if name == LIBRARY:
        raise InvalidName(f"{name!r}: that is the shared library every package depends on; pick another name")
    if name in existing:
        raise InvalidName(f"{name!r}: packages/{name}/ already exists; pick a name no package has")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise InvalidName(f"{name!r}: a Python keyword cannot be imported as a package; pick another name")
    if name in sys.stdlib_module_names or name in TAKEN_MODULES:
        raise InvalidName(
            f"{name!r}: a package named like a module Python or the platform already imports would "
            "shadow it; pick another name"
        )
    for other in existing:
        if other == LIBRARY:
            continue
        if (other + "_").startswith(name + "_") or (name + "_").startswith(other + "_"):
            raise InvalidName(
                f"{name!r}: its dag_ids ({name}_...) and those of package {other!r} ({other}_...) "
                "would share a prefix, so a dag_id would not say its package; pick another name"
            )


def render_files(name: str) -> dict[str, str]:
    """Relative path -> content of every file of the new package."""
    values = {"name": name, "dns": name.replace("_", "-"), "dist": name.replace("_", "-")}
    files = {}
    for template in sorted(TEMPLATES.rglob("*.tmpl")):
        rel = template.relative_to(TEMPLATES).as_posix().removesuffix(".tmpl")
        if rel == "dags/example.yaml":
            rel = f"dags/{name}_example.yaml"  # one spec per file, named by its dag_id
        files[rel] = string.Template(template.read_text()).substitute(values)
    return files


def scaffold(root: Path, name: str) -> tuple[list[str], list[str]]:
    """Create packages/<name>/ under ``root`` and regenerate infra/; return (files created, infra files changed)."""
    check_name(name, existing_packages(root))
    files = render_files(name)
    target = root / "packages" / name
    staging = root / "packages" / f".{name}.new-{os.getpid()}"
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        staging.rename(target)  # the package appears whole, or not at all
    except OSError as exc:
        raise ScaffoldError(f"cannot write {str(target)!r}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    from infra.update import update

    changed = update(root)
    return [f"packages/{name}/{rel}" for rel in files], [str(p) for p in changed]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="new_package", description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the package's name: packages/<name>/, Python package <name>, image <repo>/<name>")
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="the monorepo's work tree (default: $BUILD_WORKSPACE_DIRECTORY, set by `bazel run`)",
    )
    args = parser.parse_args(argv)
    if args.root is None:
        workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
        if not workspace:
            parser.error("required flag: --root (BUILD_WORKSPACE_DIRECTORY is not set outside `bazel run`)")
        args.root = Path(workspace)
    if not (args.root / "packages" / LIBRARY).is_dir():
        parser.error(f"invalid flag: --root={str(args.root)!r}: not the monorepo's work tree (no packages/{LIBRARY}/)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        created, changed = scaffold(args.root, args.name)
    except InvalidName as exc:
        print(f"new_package: error: {exc}", file=sys.stderr)
        return 2
    except ScaffoldError as exc:
        print(f"new_package: error: {exc}", file=sys.stderr)
        return 1
    name = args.name
    print(f"new_package: created packages/{name}/:")
    for path in created:
        print(f"  {path}")
    if changed:
        print("new_package: regenerated from the package list (//infra:update; commit them with the package):")
        for path in changed:
            print(f"  {path}")
    steps = [
        (f"./bazelw test //packages/{name}/...", "its tests, DAG-spec and pyproject checks"),
        (f"./bazelw build //packages/{name}:dags", "its image and rendered DAG"),
        (f"./bazelw run //packages/{name}:publish -- --dry-run", "what a publish would write"),
        ("./bazelw run //:demo -- --once", f"the whole platform, {name}_example included"),
        ("docs/adding-a-package.md", "what a package author must know"),
    ]
    width = max(len(command) for command, _ in steps)
    print("next:")
    for command, why in steps:
        print(f"  {command.ljust(width)}  # {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
