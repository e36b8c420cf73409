"""``python -m tools.bazel.dagrender``: see ``cli.py``."""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):
    # Run as a script (Bazel py_binary main = "__main__.py"): drop this folder from sys.path so
    # that its modules (spec, schema, metadata, ...) cannot shadow top-level modules of the same
    # name; the package itself is imported from the work tree's root (the py_library's imports).
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]

from tools.bazel.dagrender.cli import main

if __name__ == "__main__":
    sys.exit(main())
