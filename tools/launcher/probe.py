"""A `bazel run` program for the launcher's host-path test: it reads and writes the paths it is given.

    ./bazelw run //tools/launcher:probe -- [--read PATH] [--write PATH TEXT] [--write-in-env NAME TEXT]

``--read`` prints a file; ``--write`` writes TEXT to PATH, creating its folders; ``--write-in-env``
writes TEXT to ``probe.txt`` in the folder that environment variable NAME names (a path or a
``file:///`` URL). Each option may repeat; they run in the order given. Exit 1 on a missing file.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path


def _folder_of(value: str) -> Path:
    return Path(value.removeprefix("file://"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="probe", description=__doc__)
    parser.add_argument("--read", action="append", default=[], metavar="PATH")
    parser.add_argument("--write", action="append", default=[], nargs=2, metavar=("PATH", "TEXT"))
    parser.add_argument("--write-in-env", action="append", default=[], nargs=2, metavar=("NAME", "TEXT"))
    args = parser.parse_args(argv)
    writes = [(Path(p), t) for p, t in args.write]
    for name, text in args.write_in_env:
        value = os.environ.get(name)
        if not value:
            print(f"probe: error: environment variable {name} is not set", file=sys.stderr)
            return 2
        writes.append((_folder_of(value) / "probe.txt", text))
    for path in args.read:
        try:
            sys.stdout.write(Path(path).read_text())
        except OSError as exc:
            print(f"probe: error: cannot read {path!r}: {exc.strerror}", file=sys.stderr)
            return 1
    for path, text in writes:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
