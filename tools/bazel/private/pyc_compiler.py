"""Action tool of `pyc_compile`: compile (source, output, display name) triples from a params file."""

from __future__ import annotations

import py_compile
import sys


def main(argv: list[str]) -> int:
    (params,) = argv
    with open(params.removeprefix("@"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    failed = 0
    for i in range(0, len(lines), 3):
        src, out, shown = lines[i : i + 3]
        try:
            py_compile.compile(
                src,
                cfile=out,
                dfile=shown,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        except (py_compile.PyCompileError, SyntaxError, ValueError):
            # Some wheels ship files that are not valid Python 3.13 (templates, py2 examples):
            # write an empty output so the action is complete. Should such a file be imported,
            # Python rejects the empty .pyc (bad magic number) and compiles the source itself.
            failed += 1
            open(out, "wb").close()
    if failed:
        print(f"pyc_compile: {failed} file(s) did not compile (left empty)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
