"""Local pod runtime overhead, and the demo's time to all DAG runs green.

1. Start to finish of one short job: the local pod runtime (the provider's pod for a published
   task -> podman flags -> ``run_pod``: emptyDir, security context, limits, a Secret) versus a plain
   ``podman run --rm <image> <same command>`` of the same image, same podman storage, alternating,
   medians. Target: <= 1.3x.
2. ``--demo``: ``demo.py --once`` twice (the first warms podman's image storage), and the wall time
   from demo start to all DAG runs successful that the warm run prints. Target: <= 90 s on 2 cores.

``./bazelw run //tools/bench:pod_runtime_bench -- [--rounds 9] [--demo]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from controlplane.localpods.podrun import run_pod
from controlplane.localpods.podspec import pod_to_podman
from controlplane.localpods.runtime import PLATFORM_LABEL, LocalPodRuntime
from demo import LoopbackRegistry, find_build_dir, rendered_registry

from tools.testing.registry import registry_server

# A real job module with --help: imports, settings, prints its flags, exits 0. Two published tasks:
# the headline one has limits.cpu 1, so the pod's CPU quota does not slow a one-thread job; the
# second has limits.cpu 500m, which podman enforces (the job then runs at half speed, as in a
# cluster): that is the pod's spec at work, not runtime overhead, and is shown for information.
TASKS = (
    ("file_processing", "file_processing_landing_archive", "checksum", "file_processing.jobs.checksum"),
    ("observability", "observability_platform_checks", "freshness", "observability.jobs.freshness"),
)
JOB_ARGS = ["--help"]


def task_pod(build_dir: Path, package: str, dag_id: str, task_id: str) -> dict:
    """The pod KubernetesPodOperator builds for the published task, with the job's --help as args."""
    from airflow.dag_processing.dagbag import DagBag
    from kubernetes.client import ApiClient

    bag = DagBag(dag_folder=str(build_dir / "packages" / package / "dags" / f"{dag_id}.py"))
    task = bag.dags[dag_id].get_task(task_id)
    pod = dict(ApiClient().sanitize_for_serialization(task.build_pod_request_obj(dry_run=True)))
    pod["spec"]["containers"][0]["args"] = JOB_ARGS
    return pod


def bench_runtime(rounds: int) -> None:
    build_dir = find_build_dir()
    if build_dir is None:
        sys.exit("pod_runtime_bench: no build outputs; run it with ./bazelw run //tools/bench:pod_runtime_bench")
    with (
        tempfile.TemporaryDirectory(prefix="pod-bench-") as tmp,
        registry_server(work_dir=Path(tmp) / "registry") as reg,
    ):
        work = Path(tmp)
        rendered = rendered_registry(build_dir)
        pods = LocalPodRuntime(work / "podman", mirrors={rendered: reg.host}, platform_id=uuid.uuid4().hex[:12])
        pods.add_config_map("etl-jobs", "etl-platform", {"PUSHGATEWAY_URL": "http://127.0.0.1:9"})
        pods.add_secret("etl-jobs", "observability-airflow-api", {"username": "u", "password": "p"})
        pods.inject_env("AWS_SECRET_ACCESS_KEY", "testing")
        try:
            for n, (package, dag_id, task_id, module) in enumerate(TASKS):
                root = build_dir / "packages" / package
                image = json.loads((root / "metadata.json").read_text())["image"]
                LoopbackRegistry(reg.host, rendered=rendered).push(root / "image", image["repository"], [])
                pods.pull([image["reference"]])
                pod = task_pod(build_dir, package, dag_id, task_id)
                limits = pod["spec"]["containers"][0]["resources"]["limits"]
                label = "headline" if n == 0 else "for information: the pod's CPU limit at work"
                times = _alternate(pods, pod, image["reference"], work, rounds)
                local, base = (statistics.median(times[k]) for k in ("local pod runtime", "plain podman run"))
                print(
                    f"{task_id} task's pod ({label}): python3.13 -m {module} --help, limits cpu "
                    f"{limits.get('cpu')} memory {limits.get('memory')}, {rounds} rounds, alternating:"
                )
                for side, values in times.items():
                    print(
                        f"  {side:18} median {statistics.median(values):6.3f}s  min {min(values):6.3f}s  "
                        f"max {max(values):6.3f}s"
                    )
                ratio = local / base
                verdict = f" (target <= 1.3x: {'MET' if ratio <= 1.3 else 'NOT MET'})" if n == 0 else ""
                print(f"  ratio {ratio:.2f}x{verdict}")
        finally:
            pods.cleanup()


def _alternate(pods: LocalPodRuntime, pod: dict, image: str, work: Path, rounds: int) -> dict[str, list[float]]:
    config = pods.config()
    command = pod["spec"]["containers"][0]["command"]
    plain_argv = [
        *config.podman,
        "run",
        "--rm",
        "--network=host",
        "--entrypoint",
        json.dumps(command),
        image,
        *JOB_ARGS,
    ]
    times: dict[str, list[float]] = {"local pod runtime": [], "plain podman run": []}
    for n in range(rounds + 1):  # round 0 warms both paths and is not counted
        order = ["local pod runtime", "plain podman run"] if n % 2 else ["plain podman run", "local pod runtime"]
        for side in order:
            t0 = time.perf_counter()
            if side == "local pod runtime":
                pod["metadata"]["name"] = f"bench-{uuid.uuid4().hex[:8]}"
                run = pod_to_podman(pod, config.cluster, labels={PLATFORM_LABEL: config.platform_id})
                lines: list[str] = []
                code = run_pod(
                    run, podman=config.podman, work_dir=work / "pods", on_line=lines.append, env=config.environ()
                ).exit_code
            else:
                done = subprocess.run(plain_argv, env=config.environ(), capture_output=True, check=False)
                code, lines = done.returncode, done.stdout.decode().splitlines()
            elapsed = time.perf_counter() - t0
            if code != 0 or not any("usage" in line.lower() for line in lines):
                sys.exit(f"pod_runtime_bench: {side} failed (exit {code}): {lines[-5:]}")
            if n:
                times[side].append(elapsed)
    return times


def bench_demo() -> None:
    import demo

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with tempfile.TemporaryDirectory(prefix="demo-bench-") as tmp:
        state = Path(tmp) / "state"
        for label in ("cold (pulls the images)", "warm"):
            t0 = time.monotonic()
            done = subprocess.run(
                [sys.executable, demo.__file__, "--once", "--state-dir", str(state)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.monotonic() - t0
            found = re.search(r"to all (\d+) DAG runs successful: ([0-9.]+)s", done.stdout)
            if done.returncode != 0 or not found:
                sys.exit(f"pod_runtime_bench: demo --once failed (exit {done.returncode}):\n{done.stdout[-3000:]}")
            green = float(found.group(2))
            print(
                f"demo --once, {label}: all {found.group(1)} DAG runs successful {green:.1f}s after start "
                f"(process wall {wall:.1f}s)"
            )
        print(f"  warm: {green:.1f}s (target <= 90s: {'MET' if green <= 90 else 'NOT MET'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--demo", action="store_true", help="also time demo --once (cold, then warm)")
    args = parser.parse_args()
    bench_runtime(args.rounds)
    if args.demo:
        bench_demo()


if __name__ == "__main__":
    main()
