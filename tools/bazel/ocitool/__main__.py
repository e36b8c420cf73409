"""Entry point: ``python -m tools.bazel.ocitool`` (and the ``ocitool_cli`` py_binary)."""

from __future__ import annotations

import sys

from tools.bazel.ocitool.cli import main

if __name__ == "__main__":
    sys.exit(main())
