"""Benchmark (issue 7, "Measure"): the ETL packages' jobs against plain pandas, side by side.

1. Ingestion of a 1M-row orders CSV (~95 MB, 2% re-exported orders): the data_pipeline ``ingest``
   job (explicit types, de-duplication, the spec's filter and derived columns, rejects, manifest)
   versus ``pandas.read_csv(engine="pyarrow")`` + ``DataFrame.to_parquet``. Reports MB/s of CSV
   read. Target: job >= 1.0x the baseline's MB/s. Libraries are imported before the clock in both
   (pandas, which loads numpy and pyarrow; pyarrow, numpy and the job's own modules for the job;
   the "process" column includes all imports), and the job runs without pandas importable, as in
   its image (pyarrow would otherwise import pandas on its first Python-object conversion).
2. Data quality on the 1M-row curated orders partition: the file_processing ``validate`` job with
   the packaged ``orders`` suite (great-expectations 1.x) versus the same twelve checks written
   directly in pandas (``pd.read_parquet`` + boolean masks + a JSON result), and, for reference, a
   naive great-expectations run (one batch of the whole frame, default settings, result_format
   COMPLETE). great-expectations is imported before the clock starts in all GE variants; its
   import cost is reported in (4). Target: job <= 2x the pandas checks.
3. Peak RSS of each of the above, every run in its own subprocess (``ru_maxrss`` from wait4).
   Target: job <= 1.0x its baseline.
4. Import time of every job module in a fresh interpreter (and of great-expectations itself,
   which only ``file_processing.jobs.validate`` loads, lazily, when it validates).

Every measurement runs in a fresh child process; variants alternate (in (1) their order flips
every repeat, and every run writes a new file) and the medians of ``--repeats`` runs are
reported (wall and CPU seconds: CPU is the steadier one on a shared host).
Children get a bytecode cache in the benchmark's temp dir (PYTHONPYCACHEPREFIX), filled by a
warm-up run, as an image ships compiled bytecode; nothing is written into the venv.

Run from the repo root, as the product runs (Python 3.13, locked wheels):
  ./bazelw run //tools/bench:packages_bench -- [--rows 1000000] [--repeats 7] [--only ingest|dq|imports]
or in the dev venv (older Python and libraries: its numbers differ, use it for quick checks only):
  PYTHONPATH=packages:. python tools/bench/packages_bench.py [--rows 1000000] [--repeats 3]
``--profile`` (with ``--only ingest`` or ``--only dq``) runs the job once under cProfile instead and
prints its hottest calls (main thread only: time spent in worker threads shows as waits).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "packages"

GEN = r"""
import sys
import numpy as np, pandas as pd
rows, out = int(sys.argv[1]), sys.argv[2]
rng = np.random.default_rng(7)
ids = np.arange(rows)
again = rng.choice(rows, rows // 50, replace=False)          # 2% of orders exported twice
ids = np.concatenate([ids, ids[again]])
n = len(ids)
created = pd.Timestamp("2026-11-26") + pd.to_timedelta(rng.integers(0, 86400, n), unit="s")
frame = pd.DataFrame({
    "order_id": ids,
    "customer_id": rng.integers(1, 50000, n),
    "amount": np.round(rng.gamma(2.0, 40.0, n), 2),
    "currency": rng.choice(["EUR", "USD", "GBP", " eur"], n, p=[.5, .3, .19, .01]),
    "status": rng.choice(["new", "paid", "shipped", "cancelled", "test"], n, p=[.3, .3, .3, .09, .01]),
    "email": ["user%d@example.com" % i for i in rng.integers(0, 100000, n)],
    "created_at": created,
    "updated_at": created + pd.to_timedelta(rng.integers(0, 3600, n), unit="s"),
})
frame.to_csv(out, index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
"""

# Each child prints one JSON line: {"seconds": work wall time, "cpu": work CPU time}.
CHILDREN: dict[str, str] = {
    "ingest_baseline": r"""
import json, sys, time
import pandas as pd
src, out = sys.argv[1], sys.argv[2]
t, c = time.perf_counter(), time.process_time()
frame = pd.read_csv(src, engine="pyarrow")
frame.to_parquet(out)
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - c}))
""",
    "ingest_job": r"""
import json, sys, time
# The data_pipeline image ships no pandas; in the dev venv pyarrow would import it (1-2 s, ~60 MiB)
# on its first Python-object conversion. Hide it, as the image does.
class _NoPandas:
    def find_spec(self, name, path=None, target=None):
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("No module named 'pandas'", name=name)
sys.meta_path.insert(0, _NoPandas())
# Libraries and the job's modules are imported before the clock, as `import pandas` (which loads
# numpy and pyarrow) is for the baseline; the "process" column includes every import.
import numpy, pyarrow, pyarrow.compute, pyarrow.csv, pyarrow.parquet, yaml
import data_pipeline.pipeline
from data_pipeline.jobs import ingest
src, out = sys.argv[1], sys.argv[2]
extra = ["--spec", sys.argv[3]] if len(sys.argv) > 3 else []
t, c = time.perf_counter(), time.process_time()
code = ingest.run(["--dataset", "orders", "--run-date", "2026-11-26", "--source", src, "--output", out,
                   "--log-level", "WARNING", *extra])
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - c, "code": code}))
""",
    "dq_pandas": r"""
import json, sys, time
import pandas as pd
src, out = sys.argv[1], sys.argv[2]
t, c = time.perf_counter(), time.process_time()
df = pd.read_parquet(src)
n = len(df)
def frac(bad): return int(bad.sum())
utc = "UTC"
checks = {
    "rows": n >= 1,
    "columns": set(["order_id", "customer_id", "amount", "currency", "status", "email", "created_at",
                    "updated_at", "amount_cents", "order_date"]) <= set(df.columns),
    "order_id_not_null": frac(df["order_id"].isna()) == 0,
    "order_id_unique": frac(df["order_id"].duplicated(keep=False)) == 0,
    "customer_id_not_null": frac(df["customer_id"].isna()) == 0,
    "amount_between": frac(~df["amount"].between(0, 100000) & df["amount"].notna()) == 0,
    "currency_in_set": frac(~df["currency"].isin(["EUR", "USD", "GBP"]) & df["currency"].notna()) == 0,
    "status_in_set": frac(~df["status"].isin(["new", "paid", "shipped", "cancelled"]) & df["status"].notna()) <= 0.01 * n,
    "email_regex": frac(~df["email"].str.contains(r"^[^@ ]+@[^@ ]+\.[A-Za-z]{2,}$", na=True)) <= 0.01 * n,
    "created_between": frac(~df["created_at"].between(pd.Timestamp("2020-01-01", tz=utc),
                                                        pd.Timestamp("2100-01-01", tz=utc)) & df["created_at"].notna()) == 0,
    "updated_ge_created": frac((df["updated_at"] < df["created_at"])) == 0,
    "amount_cents_min": frac((df["amount_cents"] < 0)) == 0,
}
with open(out, "w") as handle:
    json.dump({"success": all(checks.values()), "checks": checks}, handle)
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - c, "ok": all(checks.values())}))
""",
    "dq_job": r"""
import json, sys, time
import great_expectations  # imported before the clock, as in the other GE variant
from file_processing.jobs import validate
src, out = sys.argv[1], sys.argv[2]
t, c = time.perf_counter(), time.process_time()
code = validate.run(["--dataset", "orders", "--input", src, "--results", out, "--log-level", "WARNING"])
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - c, "code": code}))
""",
    "dq_naive_gx": r"""
import json, os, sys, time
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
import great_expectations as gx
import pandas as pd, yaml
from great_expectations.expectations.registry import get_expectation_impl
src, out, suite_path = sys.argv[1], sys.argv[2], sys.argv[3]
t, c = time.perf_counter(), time.process_time()
df = pd.read_parquet(src)
spec = yaml.safe_load(open(suite_path))
context = gx.get_context(mode="ephemeral")
batch = context.data_sources.add_pandas("p").add_dataframe_asset("a").add_batch_definition_whole_dataframe("b")
suite = context.suites.add(gx.ExpectationSuite(name="s"))
for e in spec["expectations"]:
    kwargs = dict(e["kwargs"])
    for key in ("min_value", "max_value"):
        if e["type"] == "expect_column_values_to_be_between" and kwargs.get("column") == "created_at" and key in kwargs:
            kwargs[key] = pd.Timestamp(str(kwargs[key]), tz="UTC")
    suite.add_expectation(get_expectation_impl(e["type"])(**kwargs))
vd = context.validation_definitions.add(gx.ValidationDefinition(name="v", data=batch, suite=suite))
result = vd.run(batch_parameters={"dataframe": df}, result_format="COMPLETE")
with open(out, "w") as handle:
    json.dump({"success": result.success}, handle)
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - c}))
""",
}

JOB_MODULES = [
    "file_processing.jobs.list_files",
    "file_processing.jobs.copy_files",
    "file_processing.jobs.move_files",
    "file_processing.jobs.checksum",
    "file_processing.jobs.compress",
    "file_processing.jobs.decompress",
    "file_processing.jobs.convert",
    "file_processing.jobs.validate",
    "file_processing.jobs.profile",
    "data_pipeline.jobs.ingest",
    "data_pipeline.jobs.transform",
    "observability.jobs.freshness",
    "observability.jobs.airflow_health",
    "observability.jobs.sidecar_health",
]


PYCACHE: list[str] = []  # set by main(): a bytecode cache outside the venv and the work tree


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PACKAGES), str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["GX_ANALYTICS_ENABLED"] = "false"
    # Images ship compiled bytecode; without a cache every import compiles its sources again
    # (PYTHONDONTWRITEBYTECODE is set in the dev shell). Cache it in the benchmark's temp dir.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if PYCACHE:
        env["PYTHONPYCACHEPREFIX"] = PYCACHE[0]
    return env


def run_child(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; its JSON line plus wall time and peak RSS (MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env()
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read().decode() if proc.stdout else ""
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stdout:
        proc.stdout.close()
    if proc.stderr:
        proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}): {err[-2000:]}")
    doc = json.loads(out.strip().splitlines()[-1])
    doc["wall"] = wall
    doc["rss_mib"] = usage.ru_maxrss / 1024.0
    return doc


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(float(r[key]) for r in runs)


def _row(name: str, runs: list[dict[str, Any]], extra: str = "") -> str:
    return (
        f"  {name:<34} work {_median(runs, 'seconds'):7.3f}s  cpu {_median(runs, 'cpu'):7.3f}s  "
        f"process {_median(runs, 'wall'):7.3f}s  peak RSS {_median(runs, 'rss_mib'):7.1f} MiB{extra}"
    )


def _typed_only_spec(work: Path) -> Path:
    """The orders spec without its transforms: typing, rejects and de-duplication only."""
    import yaml

    spec = yaml.safe_load((PACKAGES / "data_pipeline" / "datasets" / "orders.yaml").read_text())
    spec.pop("transforms", None)
    path = work / "orders_typed_dedup.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _rows_written(baseline: Path, *outputs: Path) -> str:
    """What each side wrote: the baseline's rows, and the job's manifest counts per spec."""
    import pyarrow.parquet as pq

    parts = [f"baseline {pq.ParquetFile(baseline).metadata.num_rows} (every CSV row)"]
    for output in outputs:
        manifest = json.loads((output / "dt=2026-11-26" / "_manifest.json").read_text())
        rows = manifest["rows"]
        parts.append(
            f"{output.name.rsplit('-', 1)[0]} {rows['written']} ({rows['records']} read, {rows['rejected']} "
            f"rejected, {rows['duplicates']} duplicates, {rows['filtered']} filtered)"
        )
    return "; ".join(parts)


def bench_ingest(work: Path, csv_path: Path, repeats: int) -> None:
    size_mb = csv_path.stat().st_size / 1e6
    typed_only = _typed_only_spec(work)
    base: list[dict[str, Any]] = []
    job: list[dict[str, Any]] = []
    lean: list[dict[str, Any]] = []
    run_child(CHILDREN["ingest_baseline"], str(csv_path), str(work / "warmup.parquet"))  # fills the bytecode cache
    run_child(CHILDREN["ingest_job"], str(csv_path), str(work / "warmup"))
    for index in range(repeats):
        # Every run writes a new file or partition (replacing one would add the old file's unlink);
        # the order of the variants alternates, so none always runs right after another.
        variants: list[tuple[list[dict[str, Any]], str, list[str]]] = [
            (base, "ingest_baseline", [str(work / f"baseline-{index}.parquet")]),
            (job, "ingest_job", [str(work / f"curated-{index}")]),
            (lean, "ingest_job", [str(work / f"typed-{index}"), str(typed_only)]),
        ]
        for runs, child, args in variants if index % 2 == 0 else reversed(variants):
            runs.append(run_child(CHILDREN[child], str(csv_path), *args))
        for runs in (job, lean):
            if runs[-1].get("code") != 0:
                raise SystemExit(f"ingest job failed with exit code {runs[-1].get('code')}")
    b_mbps = size_mb / _median(base, "seconds")
    print(f"\n1. ingestion of {csv_path.name} ({size_mb:.1f} MB), medians of {repeats}")
    print("  rows written: " + _rows_written(work / "baseline-0.parquet", work / "curated-0", work / "typed-0"))
    print(_row("pandas read_csv(pyarrow)+to_parquet", base, f"  {b_mbps:6.1f} MB/s"))
    for label, runs in (("ingest, spec orders (all steps)", job), ("ingest, typing + dedup only", lean)):
        mbps = size_mb / _median(runs, "seconds")
        print(_row(label, runs, f"  {mbps:6.1f} MB/s"))
    for label, runs in (("orders spec", job), ("typing + dedup", lean)):
        mbps = size_mb / _median(runs, "seconds")
        print(
            f"  {label}: MB/s ratio job/baseline {mbps / b_mbps:.2f}x (target >= 1.0x); CPU ratio "
            f"baseline/job {_median(base, 'cpu') / _median(runs, 'cpu'):.2f}x; peak RSS ratio job/baseline "
            f"{_median(runs, 'rss_mib') / _median(base, 'rss_mib'):.2f}x (target <= 1.0x)"
        )


def bench_dq(work: Path, parquet: Path, repeats: int, naive: bool) -> None:
    suite = PACKAGES / "file_processing" / "suites" / "orders.yaml"
    pandas_runs: list[dict[str, Any]] = []
    job_runs: list[dict[str, Any]] = []
    naive_runs: list[dict[str, Any]] = []
    run_child(CHILDREN["dq_pandas"], str(parquet), str(work / "dq-warmup.json"))  # fills the bytecode cache
    run_child(CHILDREN["dq_job"], str(parquet), str(work / "dq-warmup.json"))
    for index in range(repeats):
        pandas_runs.append(run_child(CHILDREN["dq_pandas"], str(parquet), str(work / f"dq-pandas-{index}.json")))
        job_runs.append(run_child(CHILDREN["dq_job"], str(parquet), str(work / f"dq-job-{index}.json")))
        if job_runs[-1].get("code") != 0:
            raise SystemExit(f"validate job failed with exit code {job_runs[-1].get('code')}")
        if naive:
            naive_runs.append(
                run_child(CHILDREN["dq_naive_gx"], str(parquet), str(work / f"dq-naive-{index}.json"), str(suite))
            )
    print(f"\n2./3. data quality on {parquet.name} (12 expectations), medians of {repeats}")
    print(_row("plain pandas checks", pandas_runs))
    print(_row("file_processing.jobs.validate", job_runs))
    if naive_runs:
        print(_row("naive great-expectations run", naive_runs))
    base = _median(pandas_runs, "seconds")
    print(f"  time ratio job/pandas: {_median(job_runs, 'seconds') / base:.2f}x   (target <= 2.0x)")
    print(f"  CPU ratio job/pandas:  {_median(job_runs, 'cpu') / _median(pandas_runs, 'cpu'):.2f}x")
    if naive_runs:
        print(f"  time ratio naive GE/pandas: {_median(naive_runs, 'seconds') / base:.2f}x")
    rss = _median(job_runs, "rss_mib") / _median(pandas_runs, "rss_mib")
    print(
        f"  peak RSS ratio job/pandas: {rss:.2f}x   (target <= 1.0x; the job process also holds "
        "great-expectations' modules)"
    )


IMPORT_PROBE = r"""
import json, sys, time
t = time.perf_counter()
__import__(sys.argv[1])
if len(sys.argv) > 2:
    from file_processing.validation import _gx
    _gx()
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time()}))
"""


PROFILE_WRAP = r"""
import cProfile, io, pstats, sys
code, report = sys.argv[1], sys.argv[2]
sys.argv = ["-c", *sys.argv[3:]]
profile = cProfile.Profile()
profile.enable()
exec(compile(code, "<child>", "exec"), {"__name__": "__main__"})
profile.disable()
text = io.StringIO()
stats = pstats.Stats(profile, stream=text)
stats.sort_stats("cumulative").print_stats(45)
stats.sort_stats("tottime").print_stats(30)
with open(report, "w") as handle:
    handle.write(text.getvalue())
"""


def profile_child(work: Path, child: str, *args: str) -> None:
    """Run one child under cProfile (main thread only) and print its hottest calls."""
    report = work / f"profile-{child}.txt"
    run_child(CHILDREN[child], *args)  # fills the bytecode cache
    doc = run_child(PROFILE_WRAP, CHILDREN[child], str(report), *args)
    print(f"\n--- profile of {child} (work {doc['seconds']:.3f}s under cProfile) ---")
    print(report.read_text())


def bench_imports(repeats: int) -> None:
    print(f"\n4. import time of each job module (fresh interpreter, bytecode cached, median of {repeats})")
    cases = [(m, False) for m in JOB_MODULES] + [("file_processing.jobs.validate", True)]
    for module, with_gx in cases:
        try:
            run_child(IMPORT_PROBE, module, *(["gx"] if with_gx else []))  # fills the bytecode cache
            runs = [run_child(IMPORT_PROBE, module, *(["gx"] if with_gx else [])) for _ in range(repeats)]
        except SystemExit as exc:
            print(f"  {module:<42} not importable: {str(exc)[:120]}")
            continue
        label = module + (" + great_expectations" if with_gx else "")
        print(f"  {label:<60} {_median(runs, 'seconds'):6.3f}s  RSS {_median(runs, 'rss_mib'):6.1f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="orders in the generated CSV (plus 2%% repeats)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each variant (medians are reported)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive great-expectations reference run")
    parser.add_argument("--only", choices=["ingest", "dq", "imports"], help="run one part only")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="with --only ingest or dq: run the job once under cProfile and print where time goes",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="packages-bench-") as tmp:
        work = Path(tmp)
        PYCACHE.append(str(work / "pycache"))
        csv_path = work / "orders.csv"
        if args.only != "imports":
            print(f"generating {args.rows} orders ...", flush=True)
            run_child(GEN + "\nimport json; print(json.dumps({'seconds': 0, 'cpu': 0}))", str(args.rows), str(csv_path))
        if args.profile:
            if args.only == "ingest":
                profile_child(work, "ingest_job", str(csv_path), str(work / "profiled"))
            elif args.only == "dq":
                profile_child(work, "ingest_job", str(csv_path), str(work / "curated-0"))
                part = work / "curated-0" / "dt=2026-11-26" / "part-0.parquet"
                profile_child(work, "dq_job", str(part), str(work / "dq-profile.json"))
            else:
                raise SystemExit("--profile needs --only ingest or --only dq")
            return 0
        if args.only in (None, "ingest"):
            bench_ingest(work, csv_path, args.repeats)
        if args.only in (None, "dq"):
            curated = work / "curated-0"  # written by part 1, or now
            if not (curated / "dt=2026-11-26" / "part-0.parquet").exists():
                run_child(CHILDREN["ingest_job"], str(csv_path), str(curated))
            bench_dq(work, curated / "dt=2026-11-26" / "part-0.parquet", args.repeats, naive=not args.no_naive)
        if args.only in (None, "imports"):
            bench_imports(args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
