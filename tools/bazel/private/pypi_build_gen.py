"""Write the BUILD file of the @pypi repository from the installed wheels' metadata.

Run by the `pypi` repository rule after `uv pip install --target site-packages`. For every
distribution it reads `*.dist-info/RECORD` (its files) and `METADATA` (`Requires-Dist`), evaluates
markers for this interpreter with the extras that are asked for anywhere (requirements.in, or a
dependent's `name[extra]`), merges dependency cycles into one library, and emits one py_library per
distribution named after its normalized name (`@pypi//:great_expectations`). A folder of built web
assets (see `web_roots`) is one `data` entry, so it reaches runfiles as one link.
"""

from __future__ import annotations

import argparse
import email.parser
import posixpath
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement


def normalize(name: str) -> str:
    """PEP 503 normalization, then a Bazel-friendly label: lower case, runs of -_. become _."""
    return re.sub(r"[-_.]+", "_", name).lower()


@dataclass
class Dist:
    name: str  # normalized
    project: str  # as in METADATA
    version: str
    files: list[str] = field(default_factory=list)  # relative to site-packages
    web_roots: list[str] = field(default_factory=list)  # folders of `files` given as one label each
    requires: list[Requirement] = field(default_factory=list)
    extras: set[str] = field(default_factory=set)  # extras asked for by someone
    deps: set[str] = field(default_factory=set)


# Characters Bazel accepts in a file label; anything else is left out (and reported in a comment).
_LABEL_OK = re.compile(r"^[A-Za-z0-9!%\-@^_`\"#$&'()*+,;<=>?\[\]{|}~/.]+$")


def read_dists(site: Path) -> dict[str, Dist]:
    dists: dict[str, Dist] = {}
    parser = email.parser.HeaderParser()
    for info in sorted(site.glob("*.dist-info")):
        meta = parser.parsestr((info / "METADATA").read_text(encoding="utf-8", errors="replace"))
        project = meta["Name"]
        dist = Dist(name=normalize(project), project=project, version=meta["Version"])
        for line in meta.get_all("Requires-Dist") or []:
            try:
                dist.requires.append(Requirement(line))
            except InvalidRequirement:
                print(f"warning: {project}: unparsable Requires-Dist {line!r}", file=sys.stderr)
        record = info / "RECORD"
        for row in record.read_text(encoding="utf-8").splitlines():
            path = row.rsplit(",", 2)[0].strip('"')
            if not path or path.startswith(("..", "/", "bin/")):
                continue
            if path.endswith(".pyc") or "/__pycache__/" in path:
                continue
            if not (site / path).is_file():
                continue
            dist.files.append(path)
        dist.web_roots = web_roots(site, dist.files)
        dists[dist.name] = dist
    return dists


def web_roots(site: Path, files: list[str]) -> list[str]:
    """Folders of built web assets in ``files``: they hold an ``index.html`` and no Python.

    Bazel links each runfile on its own, into the external repository, so a folder in runfiles is
    a real directory of links that point outside it. A web server that checks that a file resolves
    inside the folder it serves refuses every one of them: Starlette's StaticFiles (default
    ``follow_symlink=False``) behind Airflow 3's UI (``airflow/ui/dist``) and its simple auth
    manager's login page answered 404 for every asset, and the UI was a blank page. A folder given
    as one label is one link in runfiles (and one symlink in a sandbox), and the files inside it
    are real. Only a folder holding exactly this distribution's files qualifies, so the link
    brings in nothing the library does not own; the outermost such folder wins.
    """
    roots: list[str] = []
    candidates = sorted({posixpath.dirname(f) for f in files if posixpath.basename(f) == "index.html"})
    for folder in candidates:
        if not folder or not _LABEL_OK.match(folder) or any(folder.startswith(r + "/") for r in roots):
            continue
        inside = {f for f in files if f.startswith(folder + "/")}
        if any(f.endswith(".py") for f in inside):
            continue
        on_disk = {p.relative_to(site).as_posix() for p in (site / folder).rglob("*") if not p.is_dir()}
        if on_disk == inside:
            roots.append(folder)
    return roots


def requested_extras(requirements: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for raw in requirements.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        req = Requirement(line)
        out.setdefault(normalize(req.name), set()).update(req.extras)
    return out


def resolve_deps(dists: dict[str, Dist], roots: dict[str, set[str]]) -> list[str]:
    """Fill Dist.deps; return warnings for required-but-missing distributions."""
    for name, extras in roots.items():
        if name in dists:
            dists[name].extras |= extras
    env = default_environment()
    changed = True
    while changed:  # extras propagate along edges until nothing new is asked for
        changed = False
        for dist in dists.values():
            for req in dist.requires:
                target = normalize(req.name)
                if target not in dists or not _applies(req, dist.extras, env):
                    continue
                dist.deps.add(target)
                new = set(req.extras) - dists[target].extras
                if new:
                    dists[target].extras |= new
                    changed = True
    warnings = []
    for dist in dists.values():
        for req in dist.requires:
            if normalize(req.name) not in dists and _applies(req, dist.extras, env) and not _only_extra(req):
                warnings.append(f"{dist.project} requires {req} which is not in the lock")
    return warnings


def _only_extra(req: Requirement) -> bool:
    return req.marker is not None and "extra" in str(req.marker)


def _applies(req: Requirement, extras: set[str], env: dict[str, str]) -> bool:
    if req.marker is None:
        return True
    return any(req.marker.evaluate({**env, "extra": extra}) for extra in ["", *sorted(extras)])


def strongly_connected(dists: dict[str, Dist]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the components of the dependency graph."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(dists):
        if start in index:
            continue
        work = [(start, iter(sorted(dists[start].deps)))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(dists[child].deps))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    comp.append(member)
                    if member == node:
                        break
                components.append(sorted(comp))
    return components


def _starlark_list(items: list[str], indent: str = "        ") -> str:
    if not items:
        return "[]"
    return "[\n" + "".join(f'{indent}"{item}",\n' for item in items) + indent[:-4] + "]"


_NOT_COMPILED = re.compile(r"(^|/)(tests?|testing)/")  # wheels' own test suites: never imported


def render(dists: dict[str, Dist], warnings: list[str], pyc_bzl: str = "") -> str:
    comps = strongly_connected(dists)
    comp_of = {member: i for i, comp in enumerate(comps) for member in comp}
    out = [
        "# Generated by tools/bazel/private/pypi_build_gen.py from requirements_lock.txt: do not edit.",
        'load("@rules_python//python:defs.bzl", "py_library")',
        "",
        'package(default_visibility = ["//visibility:public"])',
        "",
    ]
    if pyc_bzl:
        out.insert(2, f'load("{pyc_bzl}", "pyc_compile")')
    out += [f"# warning: {w}" for w in warnings]
    skipped: list[str] = []
    for i, comp in enumerate(comps):
        srcs: list[str] = []
        data: list[str] = []
        for member in comp:
            roots = dists[member].web_roots
            data += ["site-packages/" + root for root in roots]
            for path in dists[member].files:
                if any(path.startswith(root + "/") for root in roots):
                    continue  # in runfiles through its folder's one link
                if not _LABEL_OK.match(path):
                    skipped.append(path)
                    continue
                label = "site-packages/" + path
                (srcs if path.endswith(".py") else data).append(label)
        deps = sorted(
            {f":{_lib_name(comps[comp_of[d]], comp_of[d])}" for m in comp for d in dists[m].deps if comp_of[d] != i}
        )
        lib = _lib_name(comp, i)
        names = ", ".join(f"{dists[m].project}=={dists[m].version}" for m in comp)
        out.append(f"# {names}")
        if pyc_bzl:
            compiled = sorted({s for s in srcs if not _NOT_COMPILED.search(s)})
            out.append("pyc_compile(")
            out.append(f'    name = "_pyc_{lib}",')
            out.append(f"    srcs = {_starlark_list(compiled)},")
            out.append(")")
            data.append(f":_pyc_{lib}")
        out.append("py_library(")
        out.append(f'    name = "{lib}",')
        out.append(f"    srcs = {_starlark_list(sorted(set(srcs)))},")
        out.append(f"    data = {_starlark_list(sorted(set(data)))},")
        out.append('    imports = ["site-packages"],')
        out.append(f"    deps = {_starlark_list(deps)},")
        out.append(f'    tags = ["pypi_name={comp[0]}", "pypi_version={dists[comp[0]].version}"],')
        out.append(")")
        out.append("")
        if len(comp) > 1:
            for member in comp:
                out.append(
                    f'alias(name = "{member}", actual = ":{lib}")  # in a dependency cycle with {", ".join(c for c in comp if c != member)}'
                )
            out.append("")
    out.append("# Every distribution in the lock, for tools that need the whole set (benchmarks).")
    out.append("py_library(")
    out.append('    name = "all",')
    out.append(f"    deps = {_starlark_list(sorted(':' + n for n in dists), '        ')},")
    out.append(")")
    out.append("")
    for path in skipped:
        out.append(f"# left out (not a valid Bazel label): {path}")
    return "\n".join(out) + "\n"


def _lib_name(comp: list[str], i: int) -> str:
    return comp[0] if len(comp) == 1 else f"_cycle_{comp[0]}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--site", required=True, type=Path)
    ap.add_argument("--requirements", required=True, type=Path)
    ap.add_argument("--lock", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--pyc-bzl", default="", help="label of pyc.bzl: byte-compile in build actions")
    args = ap.parse_args(argv)
    dists = read_dists(args.site)
    if not dists:
        print(f"error: no *.dist-info found in {args.site}", file=sys.stderr)
        return 1
    roots = requested_extras(args.requirements)
    missing = [name for name in roots if name not in dists]
    if missing:
        print(
            f"error: {args.requirements} names {missing!r}, not installed from {args.lock}: "
            "run `./bazelw run //:requirements.update`",
            file=sys.stderr,
        )
        return 1
    warnings = resolve_deps(dists, roots)
    args.out.write_text(render(dists, warnings, args.pyc_bzl), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
