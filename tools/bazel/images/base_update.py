"""`bazel run //tools/bazel/images:base.update`: re-pin the base layer's packages and rewrite the lock."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from tools.bazel.ocitool.cli import main as ocitool_main


def main() -> int:
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace:
        print("base.update: run me with `./bazelw run //tools/bazel/images:base.update`", file=sys.stderr)
        return 2
    lock = Path(workspace) / "tools/bazel/images/base.lock.json"
    mirror = os.environ.get("BAZELW_DEBIAN_MIRROR") or os.environ.get("DEBIAN_MIRROR") or "auto"
    with tempfile.TemporaryDirectory() as tmp:
        return ocitool_main(
            [
                "base",
                "--packages",
                str(lock),
                "--mirror",
                mirror,
                "--out",
                str(Path(tmp) / "base.tar.gz"),
                "--update-lock",
            ]
        )


if __name__ == "__main__":
    sys.exit(main())
