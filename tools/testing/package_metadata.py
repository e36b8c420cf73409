"""A package's pyproject.toml agrees with its BUILD.bazel: the same distributions, the same path.

Bazel builds from BUILD.bazel; Poetry and other PEP 621 readers read pyproject.toml. They must
name the same dependencies, or an IDE, `poetry install` or a wheel built from pyproject.toml
would see a different package than the image does. Versions are pinned once, for the monorepo,
in requirements_lock.txt, so only names (and the ranges the two pyproject sections repeat) are
compared. BUILD.bazel is read with Python's own parser (Starlark's syntax is a subset) and only
literal `deps` lists are understood.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

__all__ = ["UnreadableBuild", "normalize", "problems"]

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*?)\s*$")
_LIBRARY = "etl_core"


class UnreadableBuild(ValueError):
    """BUILD.bazel has a deps value this check cannot read (not a literal list of strings)."""


def normalize(name: str) -> str:
    """PEP 503 normalisation, with `_`: `pydantic-settings`, `Pydantic_Settings` -> `pydantic_settings`."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _requirement(text: str) -> tuple[str, str]:
    """`moto[server]>=5` -> (`moto`, `>=5`)."""
    found = _REQUIREMENT.match(text)
    if not found:
        raise ValueError(f"not a requirement: {text!r}")
    return normalize(found.group(1)), found.group(3)


def _label_name(label: str) -> str | None:
    """The distribution a dep label stands for, or None for a target of this package."""
    if label.startswith("@pypi//:"):
        return normalize(label.removeprefix("@pypi//:"))
    if label.startswith("//packages/"):
        return normalize(label.removeprefix("//packages/").split(":")[0].split("/")[0])
    if label.startswith(":"):
        return None
    return label  # another part of the monorepo: not a distribution, reported as such


def _deps(build: Path) -> tuple[set[str], set[str]]:
    """(deps of the package's libraries, deps of its test targets), as distribution names."""
    main: set[str] = set()
    test: set[str] = set()
    for node in ast.walk(ast.parse(build.read_text(), str(build))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
            continue
        kind = node.func.id
        if kind not in ("py_library", "py_pytest_test", "py_test", "py_binary"):
            continue
        keywords = {k.arg: k.value for k in node.keywords if k.arg}
        testonly = isinstance(keywords.get("testonly"), ast.Constant) and keywords["testonly"].value is True
        deps = keywords.get("deps")
        if deps is None:
            continue
        try:
            labels = ast.literal_eval(deps)
        except ValueError:
            raise UnreadableBuild(
                f"{build}: line {deps.lineno}: deps of {kind} is not a literal list of labels; write it as one"
            ) from None
        names = {n for n in (_label_name(str(label)) for label in labels) if n is not None}
        if testonly or kind != "py_library":
            # Tests may use the monorepo's own test support (//tools/testing, ...): only the
            # distributions they need must be in pyproject.toml.
            test.update(n for n in names if not n.startswith("//"))
        else:
            main.update(names)
    return main, test


def problems(package_dir: Path) -> list[str]:
    """Every disagreement between ``package_dir``'s pyproject.toml and BUILD.bazel (none: [])."""
    name = package_dir.name
    shown = f"packages/{name}"
    project_file = package_dir / "pyproject.toml"
    try:
        data = tomllib.loads(project_file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return [f"{shown}/pyproject.toml: cannot read it ({exc})"]
    project = data.get("project") or {}
    found: list[str] = []
    if normalize(str(project.get("name", ""))) != normalize(name):
        found.append(
            f"{shown}/pyproject.toml: [project] name {project.get('name')!r} must be the folder's "
            f"name {name.replace('_', '-')!r}"
        )
    declared = dict(_requirement(r) for r in project.get("dependencies", []))
    extras = {_requirement(r)[0] for group in (project.get("optional-dependencies") or {}).values() for r in group}
    main, test = _deps(package_dir / "BUILD.bazel")
    for missing in sorted(main - set(declared)):
        found.append(
            f"{shown}: BUILD.bazel depends on {missing!r}, which pyproject.toml's [project] dependencies does not list"
        )
    for extra in sorted(set(declared) - main):
        found.append(
            f"{shown}: pyproject.toml's [project] dependencies lists {extra!r}, which no library "
            "in BUILD.bazel depends on"
        )
    for missing in sorted(test - set(declared) - extras - {"pytest"}):
        found.append(
            f"{shown}: a test target in BUILD.bazel depends on {missing!r}, which pyproject.toml "
            "lists neither in dependencies nor in optional-dependencies"
        )
    poetry = (data.get("tool") or {}).get("poetry") or {}
    if poetry.get("packages") != [{"include": name, "from": ".."}]:
        found.append(
            f"{shown}/pyproject.toml: [tool.poetry] packages must be "
            f'[{{ include = "{name}", from = ".." }}] (the package is the folder itself)'
        )
    poetry_deps = poetry.get("dependencies")
    if poetry_deps is not None:
        named = {normalize(k): v for k, v in poetry_deps.items() if k != "python"}
        if set(named) != set(declared):
            found.append(
                f"{shown}/pyproject.toml: [tool.poetry.dependencies] names {sorted(named)}, "
                f"[project] dependencies {sorted(declared)}: they must be the same"
            )
        for dist, spec in sorted(declared.items()):
            value = named.get(dist)
            if dist == _LIBRARY:
                if value != {"path": "../etl_core", "develop": True}:
                    found.append(
                        f"{shown}/pyproject.toml: [tool.poetry.dependencies] etl-core must be "
                        f'{{ path = "../etl_core", develop = true }}, got {value!r}'
                    )
            elif value is not None and value != spec:
                found.append(
                    f"{shown}/pyproject.toml: {dist} is {spec!r} in [project] and {value!r} in "
                    "[tool.poetry.dependencies]: write the same range"
                )
    return found
