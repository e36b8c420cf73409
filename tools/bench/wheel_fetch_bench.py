"""Benchmark: fetching the full wheel set cold through Bazel vs `uv pip install` of the same lock.

    ./bazelw run //tools/bench:wheel_fetch_bench

Each run starts from an empty uv cache (downloads included). In alternating rounds (the side that
goes first switches each round, because PyPI's speed drifts more than either side differs):
  1. `bazel fetch --repo=@pypi` in a fresh output base: Bazel server start, module resolution,
     the uv install and BUILD generation (what a new machine pays for the wheels);
  2. `uv pip install --no-deps --require-hashes --target DIR -r requirements_lock.txt`.
Prints each run, the medians and their ratio (target <= 1.5x). Byte-compilation is not part of
the fetch (it runs as cacheable `pyc_compile` build actions), so it is left out of both sides.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], **kwargs: object) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[arg-type]
    return time.perf_counter() - t0


def median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of each side (default 3)")
    args = ap.parse_args(argv)
    ws = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    lock = ws / "requirements_lock.txt"
    base = Path(tempfile.mkdtemp(prefix="wheel-fetch-bench-", dir=os.environ.get("BENCH_TMP", "/var/tmp")))
    env = dict(os.environ, SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt", UV_NATIVE_TLS="1")
    uv_cmd = [
        "uv",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--require-hashes",
        "--no-build",
        "--link-mode",
        "copy",
        "--python",
        "/usr/bin/python3.13",
        "-r",
        str(lock),
        "--python-version",
        "3.13",
        "--python-platform",
        "x86_64-unknown-linux-gnu",
    ]
    fetch_s: list[float] = []
    uv_s: list[float] = []
    try:
        for n in range(1, args.rounds + 1):
            # Alternate which side goes first: the network (PyPI) is the noisiest part of both.
            sides = ["bazel", "uv"] if n % 2 else ["uv", "bazel"]
            for side in sides:
                run_dir = base / f"{side}-{n}"
                run_env = dict(env, UV_CACHE_DIR=str(run_dir / "uv-cache"))
                if side == "bazel":
                    ob = f"--output_base={run_dir / 'ob'}"
                    print(
                        f"wheel_fetch_bench: round {n}: bazel fetch --repo=@pypi (fresh output base, empty uv cache) ...",
                        flush=True,
                    )
                    fetch_s.append(
                        timed(
                            ["bazel", ob, "fetch", "--repo=@pypi"],
                            cwd=ws,
                            env=run_env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        )
                    )
                    subprocess.run(
                        ["bazel", ob, "shutdown"],
                        cwd=ws,
                        check=False,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                else:
                    print(
                        f"wheel_fetch_bench: round {n}: uv pip install --require-hashes (empty uv cache) ...",
                        flush=True,
                    )
                    uv_s.append(timed([*uv_cmd, "--target", str(run_dir / "target")], env=run_env))
                shutil.rmtree(run_dir, ignore_errors=True)
        pins = sum(1 for line in lock.read_text().splitlines() if "==" in line)
        ratio = median(fetch_s) / median(uv_s)
        print(
            f"\nwheel set: {pins} pinned distributions from {lock.name}; {args.rounds} alternating rounds, cold each time"
        )
        print(
            "  bazel fetch --repo=@pypi (server start, uv install, BUILD generation): "
            + " ".join(f"{t:.1f}s" for t in fetch_s)
            + f" | median {median(fetch_s):.1f}s"
        )
        print(
            "  uv pip install --require-hashes:                                        "
            + " ".join(f"{t:.1f}s" for t in uv_s)
            + f" | median {median(uv_s):.1f}s"
        )
        print(
            f"ratio bazel fetch / uv pip install (medians): {ratio:.2f}x (target <= 1.5x: {'met' if ratio <= 1.5 else 'NOT MET'})"
        )
        print("(byte-compilation is not part of the fetch: it runs as cacheable pyc_compile build actions)")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
