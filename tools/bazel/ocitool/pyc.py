"""Byte-compile the ``.py`` files of a layer into ``__pycache__`` entries of the same layer.

The ``.pyc`` files use ``unchecked-hash`` invalidation (PEP 552): the interpreter loads them
without comparing the source's mtime, which is fixed in the image, and never tries to rewrite
them (the image runs as a non-root user who cannot). Compilation runs in a child interpreter
with ``PYTHONHASHSEED=0`` so that set constants marshal in the same order every time.
"""

from __future__ import annotations

import json
import os
import posixpath
import subprocess
import sys
import tempfile
from pathlib import Path

from tools.bazel.ocitool.errors import UsageError
from tools.bazel.ocitool.layer import Entry, LayerContents

__all__ = ["PycResult", "compile_pyc", "interpreter_info"]

_WORKER = r"""
import json, py_compile, sys
jobs = json.load(sys.stdin)
ok = []
for src, cfile, dfile in jobs:
    try:
        py_compile.compile(src, cfile=cfile, dfile=dfile, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        ok.append(True)
    except (py_compile.PyCompileError, SyntaxError, ValueError, UnicodeDecodeError):
        ok.append(False)
json.dump(ok, sys.stdout)
"""


class PycResult:
    """How many ``.py`` files were compiled and how many were skipped (syntax errors)."""

    def __init__(self, compiled: int, failed: list[str]) -> None:
        self.compiled = compiled
        self.failed = failed


def interpreter_info(python: str) -> tuple[str, str]:
    """(``major.minor``, cache tag such as ``cpython-313``) of the interpreter at ``python``."""
    if python == sys.executable:
        return f"{sys.version_info[0]}.{sys.version_info[1]}", str(sys.implementation.cache_tag)
    try:
        out = subprocess.run(
            [
                python,
                "-S",
                "-c",
                "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.implementation.cache_tag)",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError) as exc:
        raise UsageError(f"invalid flag: --pyc-python {python!r} cannot be run: {exc}") from None
    return out[0], out[1]


def compile_pyc(
    contents: LayerContents,
    *,
    python: str | None = None,
    python_version: str = "3.13",
) -> PycResult:
    """Add ``__pycache__/<stem>.<tag>.pyc`` for every ``.py`` file entry that has none yet.

    ``python`` is the interpreter that compiles (default: this one); it must be ``python_version``,
    the version of the image's interpreter, or the files would be ignored at run time.
    """
    python = python or sys.executable
    version, tag = interpreter_info(python)
    if version != python_version:
        raise UsageError(
            f"invalid flag: --compile-pyc needs Python {python_version!r} (the image's) but {python!r} "
            f"is {version!r}: pass --pyc-python with a python{python_version}, or drop --compile-pyc"
        )
    jobs: list[tuple[Entry, str]] = []
    for entry in contents.entries():
        if entry.kind != "file" or not entry.path.endswith(".py"):
            continue
        directory, name = posixpath.split(entry.path)
        pyc_path = posixpath.join(directory, "__pycache__", f"{name[:-3]}.{tag}.pyc")
        if contents.get(pyc_path) is None:
            jobs.append((entry, pyc_path))
    if not jobs:
        return PycResult(0, [])
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ocitool-pyc-") as tmp:
        work: list[tuple[str, str, str]] = []
        for index, (entry, _) in enumerate(jobs):
            if entry.src is not None:
                src = str(entry.src)
            else:
                src = os.path.join(tmp, f"{index}.py")
                Path(src).write_bytes(entry.read_bytes())
            work.append((src, os.path.join(tmp, f"{index}.pyc"), "/" + entry.path))
        env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONPYCACHEPREFIX", None)
        proc = subprocess.run(
            [python, "-S", "-c", _WORKER],
            input=json.dumps(work),
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise UsageError(f"compiling .pyc files with {python!r} failed: {proc.stderr.strip()[-500:]!r}")
        results = json.loads(proc.stdout)
        compiled = 0
        for (entry, pyc_path), (_, cfile, _), ok in zip(jobs, work, results, strict=True):
            if not ok:
                failed.append("/" + entry.path)
                continue
            contents.add_bytes(
                pyc_path,
                Path(cfile).read_bytes(),
                mode=0o644,
                origin=f"compiled from /{entry.path}",
            )
            compiled += 1
    return PycResult(compiled, failed)
