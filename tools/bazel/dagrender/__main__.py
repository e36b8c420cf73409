"""``python -m dagrender``: see ``dagrender.cli``."""

from __future__ import annotations

import os
import sys

if __package__ in (None, ""):
    # Run as a script (Bazel py_binary main = "__main__.py"): import the package from its parent
    # folder, and drop this folder from sys.path so that its modules (spec, schema, metadata, ...)
    # cannot shadow top-level modules of the same name.
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
    sys.path.insert(0, os.path.dirname(_here))

from dagrender.cli import main

if __name__ == "__main__":
    sys.exit(main())
