"""``python -m tools.bazel.publisher``: see cli.py and README.md."""

from __future__ import annotations

import sys

from tools.bazel.publisher.cli import main

if __name__ == "__main__":
    sys.exit(main())
