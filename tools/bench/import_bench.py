"""Benchmark: cold import of airflow + KubernetesPodOperator in a Bazel test vs a plain venv.

    ./bazelw run //tools/bench:import_bench

Side by side in one run: (1) a venv made with `uv pip install --require-hashes` from the same
requirements_lock.txt (byte-compiled, like @pypi), (2) `bazel test //tools/bench:import_probe`,
which times the same imports in fresh interpreters with the test's environment. Prints both medians
and the ratio (target <= 1.3x).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from import_probe import measure


def main() -> int:
    ws = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    reps = int(os.environ.get("IMPORT_REPS", "5"))
    with tempfile.TemporaryDirectory(prefix="import-bench-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run(["/usr/bin/python3.13", "-m", "venv", "--without-pip", str(venv)], check=True)
        env = dict(os.environ, SSL_CERT_FILE="/etc/ssl/certs/ca-certificates.crt", UV_NATIVE_TLS="1")
        print("import_bench: installing the lock into a plain venv with uv ...", flush=True)
        subprocess.run(
            [
                "uv",
                "pip",
                "install",
                "-q",
                "--no-deps",
                "--require-hashes",
                "--compile-bytecode",
                "--python",
                str(venv / "bin" / "python"),
                "-r",
                str(ws / "requirements_lock.txt"),
            ],
            check=True,
            env=env,
        )
        venv_env = {"PATH": "/usr/bin:/bin", "AIRFLOW_HOME": tmp, "HOME": tmp}
        measure(str(venv / "bin" / "python"), 1, venv_env)  # warm the page cache like the probe's first rep
        venv_result = measure(str(venv / "bin" / "python"), reps, venv_env)
    print("import_bench: running the probe as a Bazel test ...", flush=True)
    done = subprocess.run(
        [
            "bazel",
            "test",
            "//tools/bench:import_probe",
            "--nocache_test_results",
            "--test_output=all",
            f"--test_env=IMPORT_REPS={reps}",
        ],
        cwd=ws,
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(out for out in done.stdout.splitlines() if out.startswith("IMPORT_PROBE "))
    bazel_result = json.loads(line.split(" ", 1)[1])
    ratio = bazel_result["median_s"] / venv_result["median_s"]
    print(f"plain venv (uv, same lock):  median {venv_result['median_s']:.3f}s  min {venv_result['min_s']:.3f}s")
    print(
        f"bazel test (@pypi):          median {bazel_result['median_s']:.3f}s  min {bazel_result['min_s']:.3f}s"
        f"  ({bazel_result['sys_path_entries']} PYTHONPATH entries)"
    )
    print(f"ratio bazel/venv: {ratio:.2f}x (target <= 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
