"""Measure Bazel's HTTP remote cache: a cold build+test, then the same from an empty output base.

    ./bazelw run //tools/ci:remote_cache_bench [-- --targets //packages/...]

Starts nginx with WebDAV (Debian's, in the toolchain root) on a free 127.0.0.1 port as the cache,
runs `bazel test <targets>` in a fresh output base A (filling the cache), then in a fresh output
base B (like a new CI machine), and prints both wall times, their ratio and the remote cache hit
rate of the second run, from Bazel's own process summary ("N remote cache hit").
The one repository fetch, @pypi (uv install + BUILD generation), is not an action and is redone by
B, with uv's download cache kept, as a CI machine's would be. The Debian base layer is an action
(//tools/bazel/images:debian_python), so B takes it from the cache.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.testing.remote_cache import remote_cache_server


def run_bazel(ws: Path, output_base: Path, url: str, targets: list[str]) -> tuple[float, str, int]:
    cmd = [
        "bazel",
        f"--output_base={output_base}",
        "test",
        "--config=remote-cache",
        f"--remote_cache={url}",
        "--noshow_progress",
        "--color=no",
        *targets,
    ]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ws, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    subprocess.run(["bazel", f"--output_base={output_base}", "shutdown"], cwd=ws, capture_output=True, check=False)
    return wall, done.stderr, done.returncode


def hit_rate(stderr: str) -> tuple[int, int]:
    """(remote cache hits, cacheable actions run) from 'INFO: N processes: ...'."""
    line = next((ln for ln in stderr.splitlines() if re.match(r"INFO: \d+ process", ln)), "")
    hits = int(m.group(1)) if (m := re.search(r"(\d+) remote cache hit", line)) else 0
    total = 0
    for count, kind in re.findall(r"(\d+) ([a-z-]+(?: [a-z-]+)*)", line.split(":", 2)[-1]):
        if kind not in ("internal",):
            total += int(count)
    return hits, total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", nargs="+", default=["//..."])
    args = ap.parse_args(argv)
    ws = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    base = Path(tempfile.mkdtemp(prefix="remote-cache-bench-", dir="/var/tmp"))
    try:
        with remote_cache_server(base / "nginx") as url:
            print(f"remote_cache_bench: cache {url}; cold run in output base A ...", flush=True)
            cold, err_a, rc_a = run_bazel(ws, base / "ob-a", url, args.targets)
            print("remote_cache_bench: second run in an empty output base B ...", flush=True)
            warm, err_b, rc_b = run_bazel(ws, base / "ob-b", url, args.targets)
        hits, total = hit_rate(err_b)
        print(f"\ncold (A, empty cache):   {cold:7.1f}s  exit {rc_a}")
        print(f"warm (B, empty output base, warm cache): {warm:7.1f}s  exit {rc_b}")
        print(f"wall ratio B/A: {warm / cold:.2f}x (target <= 0.3x)")
        print(
            f"remote cache hits in B: {hits}/{total} non-internal actions = {100.0 * hits / max(total, 1):.1f}% (target >= 95%)"
        )
        print("A: " + next((ln for ln in err_a.splitlines() if re.match(r"INFO: \d+ process", ln)), "?"))
        print("B: " + next((ln for ln in err_b.splitlines() if re.match(r"INFO: \d+ process", ln)), "?"))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
