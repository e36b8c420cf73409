"""Benchmark: the DAG sync sidecar vs ``aws s3 sync``, side by side against one moto S3 server.

    PYTHONPATH=.:packages python tools/bench/sidecar_bench.py                 (dev venv, full size)
    PYTHONPATH=.:packages python tools/bench/sidecar_bench.py --packages 2 --dags 100 --latency-samples 5

The store holds PACKAGES x DAGS rendered DAG files (about 2 KB each, KubernetesPodOperator-like)
in the layout the publisher writes (docs/store-layout.md): the live ``<env>/<pkg>/dags/*.py``,
each release's bundle ``releases/<id>.tar`` (a deterministic uncompressed pax tar of the DAG
files, built here) and ``releases/<id>.json``, and ``metadata.json`` (with ``release.bundle``)
written last. ``aws s3 sync`` runs as ``python -m awscli s3 sync s3://<bucket>/<env>/ <dir>
--exclude '*/releases/*' --only-show-errors`` with the same interpreter, so it copies exactly the
live files Airflow needs (the DAG files and metadata.json); the sidecar runs as ``python -m
sidecar`` in loop mode and may read a bundle instead of single files. Measured:

1. cold sync into an empty folder: wall time, CPU time, peak RSS, requests;
2. steady-state RSS of the sidecar between cycles;
3. a no-op cycle: requests (from moto's request log) and CPU time;
4. STALE_EDITS same-size edits (a new image digest: same length, new bytes): stale files left
   by each tool after one run / one cycle;
5. propagation latency from publish (metadata.json written) to the switched local file,
   LATENCY_SAMPLES samples at random moments, against the sync interval.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import hashlib
import json
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from botocore.config import Config

from tools.bazel.publisher import ReleaseDraft, draft_release
from tools.bazel.storecontract import build_document, dag_entry
from tools.testing.servers import MotoServer, moto_server

ENV = "dev"
BUCKET = "bench-dags"
TICK = os.sysconf("SC_CLK_TCK")

DAG_TEMPLATE = '''"""Rendered by airflow_dag from {pkg}/dags/{dag_id}.yaml (//packages/{pkg}:dags). Do not edit."""
from __future__ import annotations

import datetime

from airflow import DAG
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

IMAGE = "registry.example.com/etl/{pkg}@sha256:{digest}"

with DAG(
    dag_id="{dag_id}",
    description="Nightly job {n} of {pkg}",
    schedule="{minute} 3 * * *",
    start_date=datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc),
    catchup=False,
    tags=["{pkg}", "generated"],
    default_args={{"owner": "data-platform", "retries": 2, "retry_delay": datetime.timedelta(minutes=5)}},
) as dag:
    extract = KubernetesPodOperator(
        task_id="extract",
        name="{dag_id}-extract",
        namespace="etl",
        image=IMAGE,
        image_pull_policy="IfNotPresent",
        cmds=["python", "-m", "{pkg}.jobs.extract"],
        arguments=["--date", "{{{{ ds }}}}", "--source", "{{{{ dag_run.conf.get('source', 'default') }}}}"],
        env_vars={{"ENV": "{env}", "PACKAGE_NAME": "{pkg}", "JOB": "{dag_id}"}},
        container_resources=k8s.V1ResourceRequirements(
            requests={{"cpu": "500m", "memory": "1Gi"}}, limits={{"cpu": "1", "memory": "2Gi"}}
        ),
        execution_timeout=datetime.timedelta(hours=1),
        get_logs=True,
        on_finish_action="delete_pod",
    )
    load = KubernetesPodOperator(
        task_id="load",
        name="{dag_id}-load",
        namespace="etl",
        image=IMAGE,
        image_pull_policy="IfNotPresent",
        cmds=["python", "-m", "{pkg}.jobs.load"],
        arguments=["--date", "{{{{ ds }}}}"],
        env_vars={{"ENV": "{env}", "PACKAGE_NAME": "{pkg}", "JOB": "{dag_id}"}},
        container_resources=k8s.V1ResourceRequirements(
            requests={{"cpu": "250m", "memory": "512Mi"}}, limits={{"cpu": "500m", "memory": "1Gi"}}
        ),
        execution_timeout=datetime.timedelta(hours=1),
        get_logs=True,
        on_finish_action="delete_pod",
    )
    extract >> load
'''


def dag_bytes(pkg: str, n: int, digest: str) -> bytes:
    dag_id = f"{pkg}_job_{n:04d}"
    return DAG_TEMPLATE.format(pkg=pkg, dag_id=dag_id, n=n, digest=digest, minute=n % 60, env=ENV).encode()


def release_bytes(pkg: str, files: dict[str, bytes], serial: int, previous: str | None) -> ReleaseDraft:
    """Release number ``serial`` of ``files`` as the publisher drafts it (id, metadata.json, bundle)."""
    digest = "sha256:" + hashlib.sha256(b"bench image").hexdigest()
    repository = f"registry.example.com/etl/{pkg}"
    resources = {"extract": {"requests": {"cpu": "500m", "memory": "1Gi"}}}
    build = build_document(
        package=pkg,
        repository=repository,
        digest=digest,
        revision=None,
        dags=[
            dag_entry(d, data, schedule="0 3 * * *", tasks=["extract", "load"], resources=resources)
            for d, data in files.items()
        ],
    )
    when = datetime.datetime(2026, 11, 27, 4, 20, tzinfo=datetime.UTC) + datetime.timedelta(seconds=serial)
    return draft_release(build, files, env=ENV, previous=previous, now=when)


class Store:
    """The benchmark's publisher: the publisher's drafts and order (files first, metadata.json last,
    the commit point), with boto3 from 16 threads so that seeding 10,000 files stays quick."""

    def __init__(self, server: MotoServer, *, packages: int, dags: int) -> None:
        self.client = server.client(config=Config(max_pool_connections=32))
        self.packages = [f"pkg{i:02d}" for i in range(packages)]
        self.files: dict[str, dict[str, bytes]] = {}
        self.releases: dict[str, str] = {}
        self.serial = 0
        self.dags = dags

    def seed(self) -> None:
        self.client.create_bucket(Bucket=BUCKET)
        jobs: list[tuple[str, bytes]] = []
        digest = hashlib.sha256(b"v1").hexdigest()
        for pkg in self.packages:
            self.files[pkg] = {f"{pkg}_job_{n:04d}": dag_bytes(pkg, n, digest) for n in range(self.dags)}
            jobs.extend((f"{ENV}/{pkg}/dags/{dag_id}.py", data) for dag_id, data in self.files[pkg].items())
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda kv: self.put(*kv), jobs))
        for pkg in self.packages:
            self.commit(pkg)

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=BUCKET, Key=key, Body=data)

    def commit(self, pkg: str) -> None:
        """The publisher's steps after the live files: bundle, release metadata, metadata.json last."""
        self.serial += 1
        draft = release_bytes(pkg, self.files[pkg], self.serial, self.releases.get(pkg))
        self.put(f"{ENV}/{pkg}/releases/{draft.release_id}.tar", draft.bundle)
        self.put(f"{ENV}/{pkg}/releases/{draft.release_id}.json", draft.document)
        self.put(f"{ENV}/{pkg}/metadata.json", draft.document)
        self.releases[pkg] = draft.release_id

    def edit(self, pkg: str, dag_ids: list[str]) -> dict[str, bytes]:
        """Same-size edits: a new image digest in each file, then one metadata.json commit."""
        changed = {}
        for dag_id in dag_ids:
            n = int(dag_id.rsplit("_", 1)[1])
            digest = hashlib.sha256(f"{dag_id}-{time.time_ns()}".encode()).hexdigest()
            data = dag_bytes(pkg, n, digest)
            assert len(data) == len(self.files[pkg][dag_id])
            self.put(f"{ENV}/{pkg}/dags/{dag_id}.py", data)
            self.files[pkg][dag_id] = data
            changed[dag_id] = data
        self.commit(pkg)
        return changed


# ------------------------------------------------------------------------------------- processes


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_mem(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


class PeakWatcher:
    """Polls VmHWM of a running child. (ru_maxrss from wait4 would not do: Linux carries the
    high-water mark of the forking parent, this big benchmark process, across exec.)"""

    def __init__(self, pid: int, every: float = 0.02) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, proc_mem(self.pid).get("VmHWM", 0))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                return
            self._stop.wait(every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def child_env(server: MotoServer) -> dict[str, str]:
    env = dict(os.environ)
    env.update(server.env())
    # the children import what this process imports (the dev venv, or Bazel's runfiles)
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([str(ROOT), *(p for p in sys.path if p)]))
    return env


def run_aws(server: MotoServer, dest: Path) -> dict[str, float]:
    """One ``aws s3 sync`` (default comparison flags) into ``dest``: wall, CPU, peak RSS, requests."""
    mark = server.mark()
    with tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            # only the live files Airflow needs: the DAG files and metadata.json, not releases/
            [
                sys.executable,
                "-m",
                "awscli",
                "s3",
                "sync",
                f"s3://{BUCKET}/{ENV}/",
                str(dest),
                "--exclude",
                "*/releases/*",
                "--only-show-errors",
            ],
            env=child_env(server),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        peak = PeakWatcher(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)  # CPU of exactly this child
        wall = time.monotonic() - started
        peak.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"aws s3 sync failed ({proc.returncode}): {err.read().decode()[-2000:]}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": peak.peak,
        "requests": len(server.requests_since(mark)),
    }


class Sidecar:
    """``python -m sidecar`` in loop mode; its JSON log lines arrive on a queue."""

    def __init__(self, server: MotoServer, dags_dir: Path, *, interval: float, extra: list[str]) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sidecar",
                "--dag-bucket",
                f"s3://{BUCKET}",
                "--dags-dir",
                str(dags_dir),
                "--sync-interval",
                str(interval),
                "--metrics-port",
                "0",
                *extra,
            ],
            env=child_env(server),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.cycles: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            try:
                event = json.loads(raw)
            except ValueError:
                self.errors.append(raw.decode(errors="replace"))
                continue
            if event.get("level") == "error":
                self.errors.append(raw.decode(errors="replace"))
            if event.get("event") == "sync_cycle":
                self.cycles.put((time.monotonic(), event))

    def next_cycle(self, timeout: float = 600) -> tuple[float, dict[str, Any]]:
        try:
            return self.cycles.get(timeout=timeout)
        except queue.Empty:
            raise SystemExit(f"the sidecar finished no cycle in {timeout}s; errors: {self.errors[-5:]}") from None

    def drain(self) -> None:
        while not self.cycles.empty():
            self.cycles.get_nowait()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def stale_count(root: Path, expected: dict[tuple[str, str], bytes], layout: str) -> int:
    stale = 0
    for (pkg, dag_id), data in expected.items():
        path = root / pkg / ("dags" if layout == "aws" else "") / f"{dag_id}.py"
        try:
            if path.read_bytes() != data:
                stale += 1
        except FileNotFoundError:
            stale += 1
    return stale


def mib(n: float) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def verdict(ok: bool) -> str:
    return "meets target" if ok else "MISSES target"


# ------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", type=int, default=10, help="packages in the store (default 10)")
    parser.add_argument("--dags", type=int, default=1000, help="DAG files per package (default 1000)")
    parser.add_argument("--interval", type=float, default=5.0, help="sidecar --sync-interval (default 5)")
    parser.add_argument("--latency-samples", type=int, default=20, help="propagation samples (default 20)")
    parser.add_argument("--edits", type=int, default=100, help="same-size edits (default 100)")
    parser.add_argument("--sidecar-args", default="", help="extra sidecar flags, space-separated")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="sidecar-bench-"))
    total_files = args.packages * args.dags
    print(
        f"sidecar_bench: {args.packages} packages x {args.dags} DAG files = {total_files} files, "
        f"interval {args.interval}s, python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    sidecar: Sidecar | None = None
    try:
        with moto_server(log_dir=work) as server:
            store = Store(server, packages=args.packages, dags=args.dags)
            t = time.monotonic()
            store.seed()
            sizes = [len(d) for files in store.files.values() for d in files.values()]
            print(
                f"seeded {total_files} files ({mib(sum(sizes))}, mean {statistics.mean(sizes):.0f} B) "
                f"in {time.monotonic() - t:.1f}s",
                flush=True,
            )

            # 1. cold sync: aws first, then the sidecar (any slowdown of a busier moto counts against us)
            aws_dir = work / "aws"
            aws_cold = run_aws(server, aws_dir)
            copied = sorted(str(p.relative_to(aws_dir)) for p in aws_dir.rglob("*") if p.is_file())
            wanted = sorted(
                [f"{pkg}/metadata.json" for pkg in store.packages]
                + [f"{pkg}/dags/{dag_id}.py" for pkg in store.packages for dag_id in store.files[pkg]]
            )
            if copied != wanted:
                raise SystemExit(f"aws s3 sync copied {len(copied)} files, expected the {len(wanted)} live ones")
            print(f"aws cold: {aws_cold['wall']:.1f}s ({len(copied)} files)", flush=True)
            dags_dir = work / "dags"
            mark = server.mark()
            sidecar = Sidecar(server, dags_dir, interval=args.interval, extra=args.sidecar_args.split())
            done_at, event = sidecar.next_cycle()
            ours_cold = {
                "wall": done_at - sidecar.started,
                "cpu": proc_cpu(sidecar.proc.pid),
                "rss": proc_mem(sidecar.proc.pid)["VmHWM"],
                "requests": len(server.requests_since(mark)),
            }
            if event["status"] != "success":
                raise SystemExit(f"cold sync did not succeed: {event} {sidecar.errors[-3:]}")
            everything = {(pkg, d): data for pkg in store.packages for d, data in store.files[pkg].items()}
            if stale_count(dags_dir, everything, "ours") or stale_count(aws_dir, everything, "aws"):
                raise SystemExit("after the cold sync, a DAG file differs from the store")
            print(f"sidecar cold: {ours_cold['wall']:.1f}s", flush=True)

            # 2 + 3. steady state and a no-op cycle (between two consecutive cycle ends)
            sidecar.drain()
            sidecar.next_cycle()
            cpu0, mark = proc_cpu(sidecar.proc.pid), server.mark()
            _, noop_event = sidecar.next_cycle()
            ours_noop = {
                "cpu": proc_cpu(sidecar.proc.pid) - cpu0,
                "requests": len(server.requests_since(mark)),
                "wall": noop_event["seconds"],
            }
            time.sleep(args.interval / 2)
            steady_rss = proc_mem(sidecar.proc.pid)["VmRSS"]
            aws_noop = run_aws(server, aws_dir)

            # 4. same-size edits
            edited: dict[tuple[str, str], bytes] = {}
            per_pkg: dict[str, list[str]] = {}
            for pkg, dag_id in rng.sample([(p, d) for p in store.packages for d in store.files[p]], k=args.edits):
                per_pkg.setdefault(pkg, []).append(dag_id)
            sidecar.drain()
            for pkg, dag_ids in per_pkg.items():
                edited.update({(pkg, k): v for k, v in store.edit(pkg, dag_ids).items()})
            run_aws(server, aws_dir)
            sidecar.drain()
            sidecar.next_cycle()  # a cycle that may have started before the last commit
            sidecar.next_cycle()  # a cycle that surely started after it
            stale_aws = stale_count(aws_dir, edited, "aws")
            stale_ours = stale_count(dags_dir, edited, "ours")

            # 5. propagation latency
            latencies = []
            for _ in range(args.latency_samples):
                time.sleep(rng.uniform(0, args.interval))
                pkg = rng.choice(store.packages)
                dag_id = rng.choice(sorted(store.files[pkg]))
                new = store.edit(pkg, [dag_id])[dag_id]
                published = time.monotonic()
                path = dags_dir / pkg / f"{dag_id}.py"
                deadline = published + 10 * args.interval + 60
                while True:
                    try:
                        if path.read_bytes() == new:
                            break
                    except FileNotFoundError:
                        pass
                    if time.monotonic() > deadline:
                        raise SystemExit(f"{path} never got the edit")
                    time.sleep(0.005)
                latencies.append(time.monotonic() - published)
            steady_rss = max(steady_rss, proc_mem(sidecar.proc.pid)["VmRSS"])
            errors = list(sidecar.errors)
            sidecar.stop()
            sidecar = None
    finally:
        if sidecar is not None:
            sidecar.stop()
        shutil.rmtree(work, ignore_errors=True)

    latencies.sort()
    p95 = latencies[max(0, round(0.95 * len(latencies)) - 1)]
    cold_ratio = ours_cold["wall"] / aws_cold["wall"]
    cpu_ratio = ours_noop["cpu"] / aws_noop["cpu"] if aws_noop["cpu"] else float("inf")
    rss_ratio = ours_cold["rss"] / aws_cold["rss"]
    steady_ratio = steady_rss / aws_cold["rss"]
    print()
    print(f"{'measure':<44}{'sidecar':>14}{'aws s3 sync':>14}{'ratio':>9}  target")
    rows = [
        (
            "cold sync wall time",
            f"{ours_cold['wall']:.1f}s",
            f"{aws_cold['wall']:.1f}s",
            f"{cold_ratio:.2f}x",
            f"<= 0.5x: {verdict(cold_ratio <= 0.5)}",
        ),
        (
            "cold sync CPU time",
            f"{ours_cold['cpu']:.1f}s",
            f"{aws_cold['cpu']:.1f}s",
            f"{ours_cold['cpu'] / aws_cold['cpu']:.2f}x",
            "",
        ),
        (
            "cold sync requests",
            f"{ours_cold['requests']}",
            f"{aws_cold['requests']}",
            f"{ours_cold['requests'] / aws_cold['requests']:.2f}x",
            "",
        ),
        (
            "no-op cycle requests",
            f"{ours_noop['requests']}",
            f"{aws_noop['requests']}",
            f"{ours_noop['requests'] / aws_noop['requests']:.2f}x",
            f"no more: {verdict(ours_noop['requests'] <= aws_noop['requests'])}",
        ),
        (
            "no-op cycle CPU time",
            f"{ours_noop['cpu']:.2f}s",
            f"{aws_noop['cpu']:.2f}s",
            f"{cpu_ratio:.2f}x",
            f"<= 0.25x: {verdict(cpu_ratio <= 0.25)}",
        ),
        (
            "no-op cycle wall time",
            f"{ours_noop['wall']:.2f}s",
            f"{aws_noop['wall']:.2f}s",
            f"{ours_noop['wall'] / aws_noop['wall']:.2f}x",
            "",
        ),
        (
            f"stale files after {args.edits} same-size edits",
            f"{stale_ours}",
            f"{stale_aws}",
            "",
            f"0: {verdict(stale_ours == 0)}",
        ),
        (
            "peak RSS, cold sync",
            mib(ours_cold["rss"]),
            mib(aws_cold["rss"]),
            f"{rss_ratio:.2f}x",
            f"<= 0.5x: {verdict(rss_ratio <= 0.5)}",
        ),
        (
            "steady-state RSS between cycles (vs aws peak)",
            mib(steady_rss),
            mib(aws_cold["rss"]),
            f"{steady_ratio:.2f}x",
            f"<= 0.5x: {verdict(steady_ratio <= 0.5)}",
        ),
    ]
    for name, ours, theirs, ratio, target in rows:
        print(f"{name:<44}{ours:>14}{theirs:>14}{ratio:>9}  {target}")
    print(
        f"propagation latency, {len(latencies)} samples at interval {args.interval}s: "
        f"p50 {statistics.median(latencies):.2f}s, p95 {p95:.2f}s, max {latencies[-1]:.2f}s "
        f"(target p95 <= interval + 1s = {args.interval + 1:.1f}s: {verdict(p95 <= args.interval + 1)})"
    )
    if errors:
        print(f"sidecar error lines: {len(errors)}; last: {errors[-1].strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
