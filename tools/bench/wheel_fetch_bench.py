"""Benchmark: fetching the full wheel set cold through Bazel vs `uv pip install` of the same lock.

    ./bazelw run //tools/bench:wheel_fetch_bench

Both start from an empty uv cache (downloads included), in one run:
  1. `bazel fetch @pypi//:all` in a fresh output base (uv install + BUILD generation), then
     `bazel build @pypi//:all` (byte-compilation, as cacheable pyc_compile actions);
  2. `uv pip install --no-deps --require-hashes --target DIR -r requirements_lock.txt`;
  3. the same with `--compile-bytecode` (the same work as fetch + build).
Prints wall times and ratios (target <= 1.5x).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], **kwargs: object) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[arg-type]
    return time.perf_counter() - t0


def main() -> int:
    ws = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    lock = ws / "requirements_lock.txt"
    base = Path(tempfile.mkdtemp(prefix="wheel-fetch-bench-", dir=os.environ.get("BENCH_TMP", "/var/tmp")))
    try:
        env = dict(os.environ, SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt", UV_NATIVE_TLS="1")
        results = {}

        env_bazel = dict(env, UV_CACHE_DIR=str(base / "uv-cache-bazel"))
        ob = f"--output_base={base / 'ob'}"
        print("wheel_fetch_bench: bazel fetch @pypi//:all in a fresh output base ...", flush=True)
        results["bazel fetch @pypi (uv install + BUILD)"] = timed(
            ["bazel", ob, "fetch", "@pypi//:all"],
            cwd=ws, env=env_bazel, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        print("wheel_fetch_bench: bazel build @pypi//:all (byte-compile actions) ...", flush=True)
        results["then bazel build @pypi//:all (pyc actions)"] = timed(
            ["bazel", ob, "build", "--noshow_progress", "@pypi//:all"],
            cwd=ws, env=env_bazel, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        subprocess.run(["bazel", ob, "shutdown"], cwd=ws, check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        for label, extra in (("uv pip install", []), ("uv pip install --compile-bytecode", ["--compile-bytecode"])):
            target = base / f"target-{len(results)}"
            env_uv = dict(env, UV_CACHE_DIR=str(base / f"uv-cache-{len(results)}"))
            print(f"wheel_fetch_bench: {label} (cold cache) ...", flush=True)
            results[label] = timed(
                ["uv", "pip", "install", "-q", "--no-deps", "--require-hashes", "--link-mode", "copy", *extra,
                 "--target", str(target), "--python", "/usr/bin/python3.13", "-r", str(lock),
                 "--python-version", "3.13", "--python-platform", "x86_64-unknown-linux-gnu"],
                env=env_uv,
            )
        fetch_t = results["bazel fetch @pypi (uv install + BUILD)"]
        both_t = fetch_t + results["then bazel build @pypi//:all (pyc actions)"]
        pins = sum(1 for line in lock.read_text().splitlines() if "==" in line)
        print(f"\nwheel set: {pins} pinned distributions from {lock.name}")
        for label, t in results.items():
            print(f"  {label:45s} {t:7.1f}s")
        print(f"ratio bazel fetch / uv pip install:                             {fetch_t / results['uv pip install']:.2f}x (target <= 1.5x)")
        print(f"ratio bazel fetch+compile / uv pip install --compile-bytecode: {both_t / results['uv pip install --compile-bytecode']:.2f}x")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
