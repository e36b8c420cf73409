"""Benchmark: our versioned DAG bundle vs the Amazon provider's ``S3DagBundle``, side by side.

    ./bazelw run //tools/bench:dag_bundle_bench                       (10 packages x 1,000 DAG files)
    ./bazelw run //tools/bench:dag_bundle_bench -- --packages 2 --dags 100

One moto S3 server. The store is made by the real publisher (``tools.testing.dagstore``: build
outputs, a small ocitool image pushed to Debian's docker-registry, ``publish_build``): PACKAGES
packages of DAGS files each, the files realistic KubernetesPodOperator DAGs of about 2 KB
(``sidecar_bench.dag_bytes``). Each side then runs in a fresh interpreter, as Airflow's
dag-processor would use it: one bundle per package,

- ours: ``etl_dag_bundle.bundle.PackageDagBundle(name=<pkg>, dag_bucket=s3://<bucket>, env=<env>)``;
- the provider's: ``S3DagBundle(name=<pkg>, bucket_name=<bucket>, prefix=<env>/<pkg>/dags,
  aws_conn_id=None)`` (the live DAG files of the package; boto3's default credential chain);

and measures ``initialize()`` of every bundle (the first refresh, into an empty storage folder),
then ``refresh()`` of every bundle with nothing published in between (the no-op refresh):
wall time, CPU time, requests (moto's request log, between the phases), and the process's peak
RSS (``VmHWM`` read by the child at its end: a fresh process per side, so neither pays for the
other's imports). Every delivered file is checked against the sha256 the publisher recorded.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ENV = "dev"
BUCKET = "bench-dag-bundles"
SIDES = ("ours", "provider")
LABELS = {"ours": "PackageDagBundle", "provider": "S3DagBundle"}
MARK = "dag_bundle_bench: "  # the child's result lines; Airflow's own log lines may share its stdout


# --------------------------------------------------------------------------------------- child


def _vm_hwm() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _files(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in path.rglob("*.py") if p.is_file()}


def child(side: str, packages: list[str], expected_path: Path) -> int:
    """One side, in its own process: the first refresh, wait for the parent, the no-op refresh."""
    bundles: list[Any]
    t0, c0 = time.monotonic(), _cpu()
    if side == "ours":
        from etl_dag_bundle.bundle import PackageDagBundle

        bundles = [PackageDagBundle(name=p, dag_bucket=f"s3://{BUCKET}", env=ENV) for p in packages]
    else:
        from airflow.providers.amazon.aws.bundles.s3 import S3DagBundle

        bundles = [
            S3DagBundle(name=p, bucket_name=BUCKET, prefix=f"{ENV}/{p}/dags", aws_conn_id=None) for p in packages
        ]
    imported = time.monotonic() - t0
    t1, c1 = time.monotonic(), _cpu()
    for bundle in bundles:
        bundle.initialize()
    first = {"wall": time.monotonic() - t1, "cpu": _cpu() - c1, "import_wall": imported, "import_cpu": c1 - c0}
    print(MARK + json.dumps({"phase": "first", **first}), flush=True)
    sys.stdin.readline()  # the parent marked moto's request log
    t2, c2 = time.monotonic(), _cpu()
    for bundle in bundles:
        bundle.refresh()
    noop = {"wall": time.monotonic() - t2, "cpu": _cpu() - c2}
    peak = _vm_hwm()
    expected = json.loads(expected_path.read_text())
    wrong = sum(_files(b.path) != expected[b.name] for b in bundles)
    files = sum(len(_files(b.path)) for b in bundles)
    print(
        MARK + json.dumps({"phase": "noop", **noop, "rss": peak, "files": files, "wrong_packages": wrong}), flush=True
    )
    return 0


# -------------------------------------------------------------------------------------- parent


def child_env(server: Any, home: Path, storage: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(server.env())
    env.update(
        {
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(storage),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        }
    )
    return env


def run_side(side: str, server: Any, packages: list[str], work: Path, expected: Path) -> dict[str, Any]:
    home, storage = work / f"home-{side}", work / f"storage-{side}"
    shutil.rmtree(storage, ignore_errors=True)
    home.mkdir(parents=True, exist_ok=True)
    mark0 = server.mark()
    proc = subprocess.Popen(
        [sys.executable, str(HERE), "--child", side, "--expected", str(expected), "--package-list", ",".join(packages)],
        env=child_env(server, home, storage),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def phase() -> dict[str, Any]:
        while True:
            line = proc.stdout.readline()
            if not line:
                raise SystemExit(
                    f"{side}: the child exited early:\n{proc.stderr.read()[-3000:] if proc.stderr else ''}"
                )
            if line.startswith(MARK):
                return dict(json.loads(line[len(MARK) :]))

    first = phase()
    first_requests = server.requests_since(mark0)
    mark1 = server.mark()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    noop = phase()
    noop_requests = server.requests_since(mark1)
    proc.stdin.close()
    if proc.wait(timeout=120) != 0:
        raise SystemExit(f"{side}: the child failed:\n{proc.stderr.read()[-3000:] if proc.stderr else ''}")
    return {"first": first, "noop": noop, "first_requests": first_requests, "noop_requests": noop_requests}


def by_method(requests: list[tuple[str, str]]) -> str:
    counts = collections.Counter(method for method, _ in requests)
    return ", ".join(f"{n} {m}" for m, n in counts.most_common())


def seed(server: Any, registry_host: str, work: Path, packages: list[str], dags: int) -> dict[str, dict[str, str]]:
    """Publish every package with the real publisher; {package: {file name: sha256}} of what was published."""
    from sidecar_bench import dag_bytes

    from tools.testing import dagstore

    server.client().create_bucket(Bucket=BUCKET)
    layout = work / "image"
    digest = dagstore.small_image(layout, label="dag-bundle-bench")
    expected: dict[str, dict[str, str]] = {}
    for pkg in packages:
        repository = f"{registry_host}/etl/{pkg}"
        files = {f"{pkg}_job_{n:04d}": dag_bytes(pkg, n, digest.removeprefix("sha256:")) for n in range(dags)}
        out = dagstore.build_output(
            work / "builds" / pkg, pkg, files, repository=repository, image_layout=layout, digest=digest
        )
        result = dagstore.publish(out, pkg, store_url=f"s3://{BUCKET}", env=ENV)
        if result.outcome != "published":
            raise SystemExit(f"publishing {pkg} gave {result.outcome}")
        expected[pkg] = {f"{d}.py": hashlib.sha256(data).hexdigest() for d, data in files.items()}
    return expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--packages", type=int, default=10, help="packages in the store (default 10)")
    parser.add_argument("--dags", type=int, default=1000, help="DAG files per package (default 1000)")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--expected", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--package-list", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args.package_list.split(","), args.expected)
    if args.packages < 1 or args.dags < 1:
        parser.error(f"--packages {args.packages} / --dags {args.dags}: must be at least 1")

    sys.path.insert(0, str(HERE.parent))  # sidecar_bench (the DAG file template)
    from tools.testing.registry import registry_server
    from tools.testing.servers import moto_server

    packages = [f"pkg{i:02d}" for i in range(args.packages)]
    work = Path(tempfile.mkdtemp(prefix="dag-bundle-bench-"))
    print(
        f"dag_bundle_bench: {args.packages} packages x {args.dags} DAG files, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    try:
        with moto_server(log_dir=work) as server, registry_server(work_dir=work / "registry") as registry:
            os.environ.update(server.env())  # the publisher talks to moto
            t = time.monotonic()
            expected = seed(server, registry.host, work, packages, args.dags)
            expected_path = work / "expected.json"
            expected_path.write_text(json.dumps(expected))
            print(f"published {args.packages} packages with the publisher in {time.monotonic() - t:.1f}s", flush=True)
            results = {}
            for side in ("provider", "ours"):  # the provider first: a busier moto log counts against us
                results[side] = run_side(side, server, packages, work, expected_path)
                r = results[side]
                print(
                    f"{LABELS[side]}: first refresh {r['first']['wall']:.1f}s, no-op refresh {r['noop']['wall']:.2f}s",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ours, theirs = results["ours"], results["provider"]
    for side, r in results.items():
        if r["noop"]["wrong_packages"] or r["noop"]["files"] != args.packages * args.dags:
            raise SystemExit(
                f"{LABELS[side]} delivered {r['noop']['files']} files, {r['noop']['wrong_packages']} "
                f"packages differ from what was published"
            )

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.2f}x" if b else "n/a"

    n = args.packages
    rows = [
        (
            "first refresh: wall time",
            f"{ours['first']['wall']:.2f}s",
            f"{theirs['first']['wall']:.2f}s",
            ratio(ours["first"]["wall"], theirs["first"]["wall"]),
            "<= 0.5x",
            ours["first"]["wall"] <= 0.5 * theirs["first"]["wall"],
        ),
        (
            "first refresh: CPU time",
            f"{ours['first']['cpu']:.2f}s",
            f"{theirs['first']['cpu']:.2f}s",
            ratio(ours["first"]["cpu"], theirs["first"]["cpu"]),
            "",
            None,
        ),
        (
            "first refresh: requests",
            str(len(ours["first_requests"])),
            str(len(theirs["first_requests"])),
            ratio(len(ours["first_requests"]), len(theirs["first_requests"])),
            "",
            None,
        ),
        (
            "no-op refresh: wall time",
            f"{ours['noop']['wall']:.3f}s",
            f"{theirs['noop']['wall']:.3f}s",
            ratio(ours["noop"]["wall"], theirs["noop"]["wall"]),
            "",
            None,
        ),
        (
            "no-op refresh: requests per package",
            f"{len(ours['noop_requests']) / n:g}",
            f"{len(theirs['noop_requests']) / n:g}",
            ratio(len(ours["noop_requests"]), len(theirs["noop_requests"])),
            "<= 1",
            len(ours["noop_requests"]) <= n,
        ),
        (
            "peak RSS (VmHWM, whole process)",
            f"{ours['noop']['rss'] / 2**20:.1f} MiB",
            f"{theirs['noop']['rss'] / 2**20:.1f} MiB",
            ratio(ours["noop"]["rss"], theirs["noop"]["rss"]),
            "<= 1.0x",
            ours["noop"]["rss"] <= theirs["noop"]["rss"],
        ),
        (
            "import + bundle construction: wall time",
            f"{ours['first']['import_wall']:.2f}s",
            f"{theirs['first']['import_wall']:.2f}s",
            ratio(ours["first"]["import_wall"], theirs["first"]["import_wall"]),
            "",
            None,
        ),
    ]
    print()
    print(f"{'measure':<42}{LABELS['ours']:>18}{LABELS['provider']:>14}{'ratio':>8}  target")
    for name, a, b, r, target, ok in rows:
        verdict = "" if ok is None else (" met" if ok else " MISSED")
        print(f"{name:<42}{a:>18}{b:>14}{r:>8}  {target}{verdict}")
    print()
    print(
        f"requests, first refresh: {LABELS['ours']} {by_method(ours['first_requests'])}; "
        f"{LABELS['provider']} {by_method(theirs['first_requests'])}"
    )
    print(
        f"requests, no-op refresh: {LABELS['ours']} {by_method(ours['noop_requests'])}; "
        f"{LABELS['provider']} {by_method(theirs['noop_requests'])}"
    )
    print(f"every side delivered {args.packages * args.dags} files, each with the sha256 the publisher recorded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
