"""``python -m sidecar``: the DAG sync sidecar (loop) or init container (``--once``)."""

from __future__ import annotations

import os
import sys

if not __package__:
    # Run as a script (Bazel's py_binary): put the folder above this package on sys.path instead
    # of this folder, so `sidecar.*` imports resolve and our module names shadow nothing.
    _here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _here:
        sys.path[0] = os.path.dirname(_here)

from sidecar.cli import main

if __name__ == "__main__":
    sys.exit(main())
