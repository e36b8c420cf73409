"""`bazel run //:requirements.update`: regenerate requirements_lock.txt from requirements.in with uv.

The lock is for the one interpreter of the monorepo (CPython 3.13, linux x86_64), with a sha256
for every distribution, so `@pypi` installs exactly these files or fails naming the one that differs.
Extra arguments go to `uv pip compile` (for example `--upgrade-package boto3`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

UV_ARGS = [
    "pip",
    "compile",
    "--quiet",
    "--generate-hashes",
    "--python-version",
    "3.13",
    "--python-platform",
    "x86_64-unknown-linux-gnu",
    "--no-header",
]


def main(argv: list[str]) -> int:
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace:
        print("requirements.update: run me with `./bazelw run //:requirements.update`", file=sys.stderr)
        return 2
    uv = shutil.which("uv") or "/opt/etl-tools/bin/uv"
    if not Path(uv).exists():
        print("requirements.update: uv not found: run through ./bazelw, which provides it", file=sys.stderr)
        return 1
    root = Path(workspace)
    env = dict(os.environ)
    env.setdefault("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    env.setdefault("UV_NATIVE_TLS", "1")
    cmd = [uv, *UV_ARGS, *argv, "requirements.in", "-o", "requirements_lock.txt"]
    print("requirements.update: " + " ".join(cmd[1:]), file=sys.stderr)
    done = subprocess.run(cmd, cwd=root, env=env, check=False)
    if done.returncode != 0:
        print(f"requirements.update: uv pip compile failed with exit {done.returncode}", file=sys.stderr)
        return 1
    pins = sum(1 for line in (root / "requirements_lock.txt").read_text().splitlines() if "==" in line)
    print(f"requirements.update: wrote requirements_lock.txt ({pins} pins)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
