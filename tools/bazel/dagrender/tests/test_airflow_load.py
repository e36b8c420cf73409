"""Every rendered DAG loads in real Airflow 3.3 (DagBag) with no package code importable.

The DAGs are loaded in a child interpreter whose sys.path holds only third-party code (Airflow,
the cncf-kubernetes provider and their dependencies); each task's pod is then built with
``build_pod_request_obj(dry_run=True)`` and compared with the spec, and built again after Airflow
rendered the templates for a run with a logical date and for one triggered without (see
airflow_probe.py). Besides the test corpus, the packages' own specs (packages/*/dags) are loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    GOOD_SPECS,
    PACKAGE,
    REPOSITORY,
    TARGET,
    display_path,
    image,
    render_all,
)

from tools.bazel.dagrender import ImageRef, load_spec, render_dag, resolve
from tools.bazel.dagrender.render import PLATFORM_CONFIG_MAP
from tools.bazel.dagrender.spec import (
    ConfigMapEnvFrom,
    ConfigMapKeyRef,
    EnvFrom,
    EnvValue,
    SecretEnvFrom,
    SecretKeyRef,
)

PROBE = Path(__file__).parent / "airflow_probe.py"
_MARKERS = ("dagrender", "etl_core", "file_processing", "sidecar", "packages", "tools/testing", "tools/bazel")
# The packages' own specs, in the runfiles (//packages:dag_specs) or the source tree.
PACKAGE_SPECS = sorted((Path(__file__).parents[4] / "packages").glob("*/dags/*.yaml"))
# Modules a DAG file must not be able to import: the platform's own and every package's.
FIRST_PARTY = [
    "tools.bazel.dagrender",
    "etl_core",
    "sidecar",
    "tools.testing",
    *sorted({s.parents[1].name for s in PACKAGE_SPECS}),
]
PLATFORM_ENV_FROM = {"configMapRef": {"name": PLATFORM_CONFIG_MAP}}


def _third_party_paths() -> list[str]:
    """The entries of our own sys.path that hold no first-party code (works in a venv and in Bazel)."""
    out = []
    for entry in sys.path:
        if not entry:
            continue
        path = Path(entry)
        if path.is_dir() and any((path / marker).exists() for marker in _MARKERS):
            continue
        out.append(entry)
    return out


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("dags")
    render_all(folder / "testdata")
    for spec_file in PACKAGE_SPECS:
        package = spec_file.parents[1].name
        shown = f"packages/{package}/dags/{spec_file.name}"
        resolved = resolve(load_spec(spec_file, shown), spec_path=shown, package=package, entrypoints=None)
        ref = ImageRef(repository_prefix=REPOSITORY, package=package, digest=image().digest)
        out = folder / package / f"{spec_file.stem}.py"
        out.parent.mkdir(exist_ok=True)
        out.write_text(render_dag(resolved, image=ref, spec_path=shown, target=f"//packages/{package}:dags"))
    home = tmp_path_factory.mktemp("airflow_home")
    request = {"paths": _third_party_paths(), "folder": str(folder), "first_party": FIRST_PARTY}
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.run(
        [sys.executable, "-I", str(PROBE), json.dumps(request)],
        capture_output=True,
        text=True,
        env=env,
        cwd=folder,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["folder"] = str(folder)
    return result


def test_no_package_code_is_importable(loaded: dict[str, Any]) -> None:
    assert loaded["leaked"] == []


def test_zero_import_errors_and_every_dag_loaded(loaded: dict[str, Any]) -> None:
    assert loaded["import_errors"] == {}
    assert sorted(loaded["dags"]) == sorted(spec.stem for spec in GOOD_SPECS + PACKAGE_SPECS)
    assert len(PACKAGE_SPECS) >= 6, "the packages' specs are missing from the test's data"
    for dag_id, dag in loaded["dags"].items():
        assert Path(dag["fileloc"]).name == f"{dag_id}.py"


@pytest.mark.parametrize("spec_file", GOOD_SPECS, ids=lambda p: p.stem)
def test_dag_matches_spec(loaded: dict[str, Any], spec_file: Path) -> None:
    spec = load_spec(spec_file)
    dag = loaded["dags"][spec.dag_id]
    assert dag["schedule"] == spec.schedule
    assert dag["catchup"] is spec.catchup
    assert dag["tags"] == sorted(spec.tags)
    assert dag["description"] == spec.description
    assert dag["params"] == dict(spec.params)
    assert dag["start_date"] == spec.start_date.isoformat()


@pytest.mark.parametrize("spec_file", GOOD_SPECS, ids=lambda p: p.stem)
def test_pods_match_spec(loaded: dict[str, Any], spec_file: Path) -> None:
    spec = load_spec(spec_file)
    resolved = resolve(spec, spec_path=str(spec_file), package=PACKAGE, entrypoints=None)
    ref = image()
    tasks = loaded["dags"][spec.dag_id]["tasks"]
    assert sorted(tasks) == sorted(task.task_id for task in resolved.tasks)
    for task in resolved.tasks:
        pod = tasks[task.task_id]
        assert pod["operator"] == "KubernetesPodOperator"
        assert pod["image"] == f"registry.example.com/etl/file_processing@{ref.digest}"
        assert pod["command"] == ["python3.13", "-m", task.job]
        assert pod["args"] == list(task.arguments)
        assert pod["env"] == [_env_var(name, value) for name, value in task.env]
        # The platform ConfigMap first; a spec that lists it too gets it once.
        spec_sources = [_env_from(source) for source in task.env_from]
        assert pod["env_from"] == [PLATFORM_ENV_FROM] + [s for s in spec_sources if s != PLATFORM_ENV_FROM]
        assert pod["namespace"] == task.namespace
        assert pod["image_pull_policy"] == task.image_pull_policy
        assert pod["service_account"] == task.service_account
        assert pod["resources"] == task.resources
        assert pod["container_security_context"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsGroup": 65532,
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert pod["pod_security_context"] == {
            "fsGroup": 65532,
            "runAsGroup": 65532,
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert pod["labels"]["etl.platform/package"] == PACKAGE
        assert pod["labels"]["etl.platform/dag-id"] == spec.dag_id
        assert pod["labels"]["etl.platform/image-digest"] == ref.digest.removeprefix("sha256:")[:12]
        assert pod["annotations"]["etl.platform/image-digest"] == ref.digest
        assert pod["annotations"]["etl.platform/spec"] == display_path(spec_file)
        assert pod["annotations"]["etl.platform/target"] == TARGET
        assert pod["volume_mounts"] == [{"mountPath": "/tmp", "name": "tmp"}]
        assert pod["volumes"] == [{"emptyDir": {}, "name": "tmp"}]
        assert pod["retries"] == task.retries
        assert pod["retry_delay"] == task.retry_delay
        assert pod["execution_timeout"] == task.execution_timeout
        assert pod["upstream"] == sorted(task.upstream)
        assert pod["on_finish_action"] == "delete_pod"
        assert pod["get_logs"] is True
        assert pod["owner"] == spec.owner


def _env_var(name: str, value: EnvValue) -> dict[str, Any]:
    """A ``V1EnvVar`` as the Kubernetes API serializes it."""
    if isinstance(value, str):
        return {"name": name, "value": value}
    if isinstance(value, SecretKeyRef):
        ref = {"secretKeyRef": {"name": value.secret, "key": value.key}}
    else:
        assert isinstance(value, ConfigMapKeyRef)
        ref = {"configMapKeyRef": {"name": value.config_map, "key": value.key}}
    if value.optional:
        next(iter(ref.values()))["optional"] = True
    return {"name": name, "valueFrom": ref}


def _env_from(source: EnvFrom) -> dict[str, Any]:
    """A ``V1EnvFromSource`` as the Kubernetes API serializes it."""
    if isinstance(source, SecretEnvFrom):
        out: dict[str, Any] = {"secretRef": {"name": source.secret}}
    else:
        assert isinstance(source, ConfigMapEnvFrom)
        out = {"configMapRef": {"name": source.config_map}}
    if source.optional:
        next(iter(out.values()))["optional"] = True
    if source.prefix is not None:
        out["prefix"] = source.prefix
    return out


def _env(entries: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in entries or []}


def test_templates_render_in_airflow_for_runs_with_and_without_logical_date(loaded: dict[str, Any]) -> None:
    tasks = loaded["dags"]["file_processing_daily_profile"]["tasks"]
    run_ids = {
        "with_logical_date": "scheduled__2026-03-04T03:00:00+00:00",
        "without_logical_date": "manual__2026-03-05T09:30:00+00:00",
    }
    # The run's logical date when it has one, else the day it was queued (run_after).
    days = {"with_logical_date": "2026-03-04", "without_logical_date": "2026-03-05"}
    for run, day in days.items():
        profile = tasks["profile"]["rendered"][run]
        validate = tasks["validate"]["rendered"][run]
        assert profile["args"] == ["--date", day, "--sample-rows", "10000"]
        env = _env(profile["env"])
        # Plain values are templates too (V1EnvVar.value is a template field of KPO).
        assert env["RUN_DATE"] == day
        assert env["RUN_KEY"] == f"{day.replace('-', '')}-{run_ids[run]}"
        # Secret and ConfigMap references pass through rendering untouched.
        assert env["DB_PASSWORD"] == {"secretKeyRef": {"name": "file-processing-warehouse-ro", "key": "password"}}
        assert env["SAMPLE_SEED"] == {
            "configMapKeyRef": {"name": "file-processing-settings", "key": "seed", "optional": True}
        }
        key = "20260304" if run == "with_logical_date" else run_ids[run]
        since = "2026-02-25" if run == "with_logical_date" else "2026-02-26"
        assert validate["args"] == [
            f"--date={day}",
            f"--since={since}",
            f"--key=file_processing_daily_profile__validate__{key}",
        ]


def test_ds_is_undefined_in_a_run_without_logical_date(loaded: dict[str, Any]) -> None:
    """The control: why templates may not read ds (the rendering above uses the same context)."""
    assert loaded["control"]["with_logical_date"]["args"] == ["2026-03-04"]
    assert loaded["control"]["without_logical_date"] == {"error": "UndefinedError: 'ds' is undefined"}


def test_every_template_renders_without_a_logical_date(loaded: dict[str, Any]) -> None:
    """What a run triggered from the UI or the API gets: no task may need ds and friends."""
    failures = {
        f"{dag_id}.{task_id}": task["rendered"][run]["error"]
        for dag_id, dag in loaded["dags"].items()
        for task_id, task in dag["tasks"].items()
        for run in ("with_logical_date", "without_logical_date")
        if "error" in task["rendered"][run]
    }
    assert failures == {}


@pytest.mark.parametrize("spec_file", PACKAGE_SPECS, ids=lambda p: p.stem)
def test_package_dag_pods_take_secrets_and_endpoints_from_the_cluster(loaded: dict[str, Any], spec_file: Path) -> None:
    spec = load_spec(spec_file)
    package = spec_file.parents[1].name
    resolved = resolve(spec, spec_path=str(spec_file), package=package, entrypoints=None)
    text = (Path(loaded["folder"]) / package / f"{spec.dag_id}.py").read_text()
    for task in resolved.tasks:
        pod = loaded["dags"][spec.dag_id]["tasks"][task.task_id]
        assert pod["env_from"][0] == PLATFORM_ENV_FROM
        env = _env(pod["env"])
        # The platform ConfigMap carries the cluster's endpoints; no spec sets them.
        assert not {"PUSHGATEWAY_URL", "AIRFLOW_URL", "SIDECAR_URL", "AWS_ENDPOINT_URL"} & set(env)
        for name, value in task.env:
            if isinstance(value, SecretKeyRef):
                assert env[name] == {"secretKeyRef": {"name": value.secret, "key": value.key}}
                assert f'name="{name}", value=' not in text
        for run in ("with_logical_date", "without_logical_date"):
            rendered = _env(pod["rendered"][run]["env"])
            if "RUN_DATE" in rendered:
                assert rendered["RUN_DATE"] == ("2026-03-04" if run == "with_logical_date" else "2026-03-05")


def test_observability_credentials_come_from_its_secret(loaded: dict[str, Any]) -> None:
    pod = loaded["dags"]["observability_platform_checks"]["tasks"]["airflow_health"]
    env = _env(pod["env"])
    assert env["AIRFLOW_USERNAME"] == {"secretKeyRef": {"name": "observability-airflow-api", "key": "username"}}
    assert env["AIRFLOW_PASSWORD"] == {"secretKeyRef": {"name": "observability-airflow-api", "key": "password"}}


def test_sla_becomes_deadline_alerts(loaded: dict[str, Any]) -> None:
    deadlines = loaded["dags"]["file_processing_daily_profile"]["deadlines"]
    assert deadlines == [
        {
            "name": "profile sla",
            "reference": "DagRunQueuedAtDeadline",
            "interval": 7200.0,
            "callback": "AsyncCallback",
            "path": "etl_alerts.deadlines.notify",
            "kwargs": {"dag_id": "file_processing_daily_profile", "task_id": "profile", "sla": "2h"},
        },
        {
            "name": "publish-report sla",
            "reference": "DagRunQueuedAtDeadline",
            "interval": 10800.0,
            "callback": "AsyncCallback",
            "path": "etl_alerts.deadlines.notify",
            "kwargs": {"dag_id": "file_processing_daily_profile", "task_id": "publish-report", "sla": "3h"},
        },
    ]
    assert loaded["dags"]["file_processing_hourly_sync"]["deadlines"] == []
