"""Benchmark (issue 4, "Measure"): how fast Airflow parses our rendered DAGs.

1. Warm-import parse time per DAG file, for 50 and 500 files: our rendered DAGs versus the same
   DAGs expressed as dag-factory YAML (one small loader .py per YAML, the per-file layout the
   dag-processor parses). Each measurement runs in a fresh child interpreter that first imports
   Airflow, the KubernetesPodOperator, DagBag and dag-factory and parses one warm-up file; then
   it times ``DagBag(dag_folder=...)`` over the folder. Kinds alternate; medians are reported.
   Target: ours <= 0.25x dag-factory.
2. Cold import time of one rendered DAG (``python <dag>.py``) versus importing
   KubernetesPodOperator alone, alternating, many runs; wall and CPU time (CPU time is the
   steadier one on a shared machine), median and minimum; and, in one interpreter, the CPU
   time of importing KPO followed by the CPU time of running the DAG file on top of it (the
   most precise split of the same quantity). Target: <= 1.05x.

Run (dev venv, with dag-factory installed):
  PYTHONPATH=. python tools/bench/dag_parse_bench.py [--sizes 50,500] [--repeats 3] [--cold-runs 15]

dag-factory's telemetry is switched off (DO_NOT_TRACK, AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY).
The dag-factory variant carries no DeadlineAlert (dag-factory has no `deadline` setting), which
only makes it cheaper.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tools.bazel.dagrender import ImageRef, load_spec, read_entrypoints, render_dag, resolve
from tools.bazel.dagrender.checks import ResolvedDag
from tools.bazel.dagrender.render import LABEL_PREFIX, PLATFORM_CONFIG_MAP, RUN_AS_USER
from tools.bazel.dagrender.spec import (
    ConfigMapEnvFrom,
    ConfigMapKeyRef,
    EnvFrom,
    EnvValue,
    SecretKeyRef,
)

HERE = Path(__file__).resolve().parent
TESTDATA = HERE.parent / "bazel" / "dagrender" / "tests" / "testdata" / "good" / "file_processing"
REFERENCE = TESTDATA / "dags" / "file_processing_daily_profile.yaml"
KPO = "airflow.providers.cncf.kubernetes.operators.pod.KubernetesPodOperator"

CHILD = r"""
import json, sys, time
request = json.loads(sys.argv[1])
import airflow
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.dag_processing.dagbag import DagBag
import dagfactory
DagBag(dag_folder=request["warmup"], safe_mode=False)
start, cpu_start = time.perf_counter(), time.process_time()
bag = DagBag(dag_folder=request["folder"], safe_mode=False)
elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
errors = {k: str(v)[:300] for k, v in bag.import_errors.items()}
print(json.dumps({"seconds": elapsed, "cpu": cpu, "dags": len(bag.dags), "errors": errors}))
"""


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY": "False",
            "DO_NOT_TRACK": "1",
            "SCARF_NO_ANALYTICS": "1",
        }
    )
    return env


def _resolved(dag_id: str) -> ResolvedDag:
    spec = load_spec(REFERENCE)
    spec = spec.model_copy(update={"dag_id": dag_id})
    return resolve(
        spec, spec_path=f"packages/file_processing/dags/{dag_id}.yaml", package="file_processing", entrypoints=None
    )


def _typed(kind: str, **kwargs: Any) -> dict[str, Any]:
    return {"__type__": f"kubernetes.client.models.{kind}", **kwargs}


def _env_var(name: str, value: EnvValue) -> dict[str, Any]:
    if isinstance(value, SecretKeyRef):
        selector = _typed("V1SecretKeySelector", name=value.secret, key=value.key, optional=value.optional)
        return _typed("V1EnvVar", name=name, value_from=_typed("V1EnvVarSource", secret_key_ref=selector))
    if isinstance(value, ConfigMapKeyRef):
        selector = _typed("V1ConfigMapKeySelector", name=value.config_map, key=value.key, optional=value.optional)
        return _typed("V1EnvVar", name=name, value_from=_typed("V1EnvVarSource", config_map_key_ref=selector))
    return _typed("V1EnvVar", name=name, value=value)


def _env_from(source: EnvFrom) -> dict[str, Any]:
    if isinstance(source, ConfigMapEnvFrom):
        ref = {"config_map_ref": _typed("V1ConfigMapEnvSource", name=source.config_map, optional=source.optional)}
    else:
        ref = {"secret_ref": _typed("V1SecretEnvSource", name=source.secret, optional=source.optional)}
    return _typed("V1EnvFromSource", prefix=source.prefix, **ref)


def _dagfactory_config(resolved: ResolvedDag, image: ImageRef) -> dict[str, Any]:
    """The same DAG as dag-factory YAML: same operator, same kwargs, same dependencies."""
    spec = resolved.spec
    labels = {
        f"{LABEL_PREFIX}/package": image.package,
        f"{LABEL_PREFIX}/dag-id": spec.dag_id,
        f"{LABEL_PREFIX}/image-digest": image.short_digest,
    }
    annotations = {f"{LABEL_PREFIX}/image-digest": image.digest, f"{LABEL_PREFIX}/image": image.reference}
    seccomp = _typed("V1SeccompProfile", type="RuntimeDefault")
    tasks = []
    for task in resolved.tasks:
        entry: dict[str, Any] = {
            "task_id": task.task_id,
            "operator": KPO,
            "image": image.reference,
            "cmds": ["python3.13", "-m", task.job],
            "arguments": list(task.arguments),
            "env_vars": [_env_var(name, value) for name, value in task.env],
            "env_from": [_env_from(ConfigMapEnvFrom(config_map=PLATFORM_CONFIG_MAP))]
            + [_env_from(source) for source in task.env_from],
            "namespace": task.namespace,
            "image_pull_policy": task.image_pull_policy,
            "container_resources": _typed("V1ResourceRequirements", **task.resources),
            "retries": task.retries,
            "retry_delay": {"__type__": "datetime.timedelta", "seconds": task.retry_delay},
            "labels": labels,
            "annotations": annotations,
            "security_context": _typed(
                "V1PodSecurityContext",
                run_as_non_root=True,
                run_as_user=RUN_AS_USER,
                run_as_group=RUN_AS_USER,
                fs_group=RUN_AS_USER,
                seccomp_profile=seccomp,
            ),
            "container_security_context": _typed(
                "V1SecurityContext",
                run_as_non_root=True,
                run_as_user=RUN_AS_USER,
                run_as_group=RUN_AS_USER,
                read_only_root_filesystem=True,
                allow_privilege_escalation=False,
                privileged=False,
                capabilities=_typed("V1Capabilities", drop=["ALL"]),
                seccomp_profile=seccomp,
            ),
            "volumes": [_typed("V1Volume", name="tmp", empty_dir=_typed("V1EmptyDirVolumeSource"))],
            "volume_mounts": [_typed("V1VolumeMount", name="tmp", mount_path="/tmp")],
            "on_finish_action": "delete_pod",
            "get_logs": True,
        }
        if task.service_account:
            entry["service_account_name"] = task.service_account
        if task.execution_timeout:
            entry["execution_timeout"] = {"__type__": "datetime.timedelta", "seconds": task.execution_timeout}
        if task.upstream:
            entry["dependencies"] = list(task.upstream)
        tasks.append(entry)
    return {
        spec.dag_id: {
            "default_args": {"owner": spec.owner, "start_date": spec.start_date.date().isoformat()},
            "description": spec.description,
            "schedule": spec.schedule,
            "catchup": spec.catchup,
            "tags": list(spec.tags),
            "params": dict(spec.params),
            "tasks": tasks,
        }
    }


def _write_ours(folder: Path, dag_ids: list[str], image: ImageRef) -> None:
    folder.mkdir(parents=True)
    for dag_id in dag_ids:
        text = render_dag(
            _resolved(dag_id), image=image, spec_path=f"packages/file_processing/dags/{dag_id}.yaml", target="//bench"
        )
        (folder / f"{dag_id}.py").write_text(text)


def _write_dagfactory(folder: Path, dag_ids: list[str], image: ImageRef) -> None:
    folder.mkdir(parents=True)
    for dag_id in dag_ids:
        config = folder / f"{dag_id}.yml"
        config.write_text(yaml.safe_dump(_dagfactory_config(_resolved(dag_id), image), sort_keys=False))
        (folder / f"{dag_id}.py").write_text(
            "# airflow DAG loaded by dag-factory\n"
            "from dagfactory import load_yaml_dags\n\n"
            f"load_yaml_dags(globals_dict=globals(), config_filepath={str(config)!r})\n"
        )


def _child(folder: Path, warmup: Path, env: dict[str, str]) -> dict[str, Any]:
    request = json.dumps({"folder": str(folder), "warmup": str(warmup)})
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, request], capture_output=True, text=True, env=env, check=False, timeout=1800
    )
    if proc.returncode != 0:
        raise SystemExit(f"benchmark child failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _per_dag(runs: list[dict[str, Any]], key: str, size: int) -> float:
    """Median over runs of ``key`` seconds, as milliseconds per DAG file."""
    return statistics.median(run[key] for run in runs) / size * 1000


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one child run.

    CPU time is the steadier number on a shared machine: it does not grow when other
    processes compete for the cores.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} exited {proc.returncode}")
    return wall, usage.ru_utime + usage.ru_stime


SPLIT = r"""
import json, runpy, sys, time
start = time.process_time()
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
middle = time.process_time()
runpy.run_path(sys.argv[1])
end = time.process_time()
print(json.dumps({"kpo_cpu": middle - start, "dag_cpu": end - middle}))
"""


def _split_run(dag_file: Path, env: dict[str, str], cwd: Path) -> dict[str, float]:
    """One fresh interpreter: CPU time of importing KPO, then of running the DAG file on top."""
    proc = subprocess.run(
        [sys.executable, "-c", SPLIT, str(dag_file)], env=env, cwd=cwd, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,500", help="numbers of DAG files (default %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="parse runs per size and kind (default %(default)s)")
    parser.add_argument("--cold-runs", type=int, default=15, help="cold-import runs per side (default %(default)s)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    image = ImageRef(
        repository_prefix="registry.example.com/etl",
        package="file_processing",
        digest=(TESTDATA / "image.digest").read_text().strip(),
    )
    read_entrypoints(TESTDATA / "entrypoints.txt")
    versions = {
        name: importlib.metadata.version(name)
        for name in ("apache-airflow", "apache-airflow-providers-cncf-kubernetes", "dag-factory")
    }
    print(f"python {sys.version.split()[0]}; " + "; ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")

    with tempfile.TemporaryDirectory(prefix="dag-parse-bench-") as tmp:
        root = Path(tmp)
        home = root / "airflow_home"
        home.mkdir()
        env = _env(home)
        _write_ours(root / "warm_ours", ["warmup_dag"], image)
        _write_dagfactory(root / "warm_df", ["warmup_dag"], image)

        print("\n== warm-import parse time per DAG file (DagBag, fresh child per run, median) ==")
        print("(cpu = process CPU time, the steadier number on a shared machine; wall = elapsed)")
        header = f"{'files':>6} {'ours wall':>10} {'d-f wall':>10} {'ratio':>7} {'ours cpu':>10} {'d-f cpu':>10} {'ratio':>7}"
        print(header + "   (ms per DAG file; target ratio <= 0.25x)")
        for size in sizes:
            dag_ids = [f"bench_dag_{size}_{i:04d}" for i in range(size)]
            ours_dir, df_dir = root / f"ours_{size}", root / f"df_{size}"
            _write_ours(ours_dir, dag_ids, image)
            _write_dagfactory(df_dir, dag_ids, image)
            runs: dict[str, list[dict[str, Any]]] = {"ours": [], "df": []}
            for _ in range(args.repeats):
                for kind, folder, warm in (("ours", ours_dir, root / "warm_ours"), ("df", df_dir, root / "warm_df")):
                    result = _child(folder, warm, env)
                    if result["dags"] != size or result["errors"]:
                        raise SystemExit(
                            f"{folder.name}: loaded {result['dags']}/{size} DAGs, errors {result['errors']}"
                        )
                    runs[kind].append(result)

            ow, dw = _per_dag(runs["ours"], "seconds", size), _per_dag(runs["df"], "seconds", size)
            oc, dc = _per_dag(runs["ours"], "cpu", size), _per_dag(runs["df"], "cpu", size)
            print(f"{size:>6} {ow:>10.2f} {dw:>10.2f} {ow / dw:>6.2f}x {oc:>10.2f} {dc:>10.2f} {oc / dc:>6.2f}x")

        print("\n== cold import, fresh interpreter each run (median of alternating runs) ==")
        dag_file = root / "ours_cold" / "cold_dag.py"
        _write_ours(dag_file.parent, ["cold_dag"], image)
        kpo_cmd = [sys.executable, "-c", f"from {KPO.rsplit('.', 1)[0]} import KubernetesPodOperator"]
        dag_cmd = [sys.executable, str(dag_file)]
        _timed(kpo_cmd, env, root)  # first run writes airflow.cfg and warms the page cache
        _timed(dag_cmd, env, root)
        kpo_runs, dag_runs = [], []
        for _ in range(args.cold_runs):
            kpo_runs.append(_timed(kpo_cmd, env, root))
            dag_runs.append(_timed(dag_cmd, env, root))
        print(f"{'':36}{'wall median':>12}{'wall min':>10}{'cpu median':>12}{'cpu min':>9}  (ms)")
        for label, runs in (("import KubernetesPodOperator alone", kpo_runs), ("one rendered DAG (3 tasks)", dag_runs)):
            walls, cpus = [w for w, _ in runs], [c for _, c in runs]
            print(
                f"{label:36}{statistics.median(walls) * 1000:>12.0f}{min(walls) * 1000:>10.0f}"
                f"{statistics.median(cpus) * 1000:>12.0f}{min(cpus) * 1000:>9.0f}"
            )
        for what, index in (("wall", 0), ("cpu", 1)):
            ours_s = statistics.median(run[index] for run in dag_runs)
            kpo_s = statistics.median(run[index] for run in kpo_runs)
            ratio_min = min(run[index] for run in dag_runs) / min(run[index] for run in kpo_runs)
            print(f"ratio ({what}): median {ours_s / kpo_s:.3f}x, min {ratio_min:.3f}x  target <= 1.05x")
        split = [_split_run(dag_file, env, root) for _ in range(args.cold_runs)]
        kpo_cpu = statistics.median(run["kpo_cpu"] for run in split)
        dag_cpu = statistics.median(run["dag_cpu"] for run in split)
        print(
            f"same process, split: import KubernetesPodOperator {kpo_cpu * 1000:.0f} ms cpu, then the DAG file "
            f"{dag_cpu * 1000:.1f} ms cpu -> ratio {(kpo_cpu + dag_cpu) / kpo_cpu:.3f}x"
        )
        print(f"\nload average {os.getloadavg()[0]:.1f} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
