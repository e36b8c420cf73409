"""The local pod runtime: the provider's own pod for a published DAG's task, mapped to podman and
run for real (docker-registry + podman), with the pod's security context, resources, emptyDir,
env and Secrets enforced inside the container."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from controlplane.localpods.podrun import run_pod
from controlplane.localpods.podspec import Cluster, UnsupportedPod, pod_to_podman
from controlplane.localpods.runtime import PLATFORM_LABEL, LocalPodRuntime
from demo import LoopbackRegistry, rendered_registry

from tools.testing.registry import registry_server

PACKAGE = "observability"


def _task_pod(build_dir: Path, dag_id: str, task_id: str) -> dict[str, Any]:
    """The pod KubernetesPodOperator builds for a task of a published DAG file, in API form."""
    from airflow.dag_processing.dagbag import DagBag
    from kubernetes.client import ApiClient

    bag = DagBag(dag_folder=str(build_dir / "packages" / PACKAGE / "dags" / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    task = bag.dags[dag_id].get_task(task_id)
    return dict(ApiClient().sanitize_for_serialization(task.build_pod_request_obj(dry_run=True)))


def test_the_published_pod_maps_to_podman_flags(build_dir: Path) -> None:
    pod = _task_pod(build_dir, "observability_platform_checks", "freshness")
    cluster = Cluster(
        config_maps={"etl-jobs/etl-platform": {"PUSHGATEWAY_URL": "http://127.0.0.1:9"}},
        secrets={"etl-jobs/observability-airflow-api": {"username": "s.u", "password": "s.p"}},
        injected_secret_env={"AWS_SECRET_ACCESS_KEY": "s.aws"},
    )
    run = pod_to_podman(pod, cluster, labels={PLATFORM_LABEL: "t"})
    args = list(run.args)

    def value(flag: str) -> list[str]:
        return [args[i + 1] for i, a in enumerate(args) if a == flag]

    image = json.loads((build_dir / "packages" / PACKAGE / "metadata.json").read_text())["image"]["reference"]
    assert args[args.index(image) - 2 : args.index(image)] == [
        "--entrypoint",
        '["python3.13", "-m", "observability.jobs.freshness"]',
    ]
    assert args[args.index(image) + 1 :] == pod["spec"]["containers"][0]["args"]
    assert value("--user") == ["65532:65532"] and value("--group-add") == ["65532"]
    assert "--read-only" in args and "--read-only-tmpfs=false" in args
    assert value("--cap-drop") == ["all"] and value("--security-opt") == ["no-new-privileges"]
    assert value("--memory") == [str(512 * 2**20)] and value("--memory-swap") == [str(512 * 2**20)]
    assert value("--cpus") == ["0.5"] and value("--cpu-shares") == ["102"]
    assert value("--mount") == ["type=bind,source=@emptyDir:tmp@,destination=/tmp"] and run.empty_dirs == ("tmp",)
    assert (
        "--pull=missing" in args and "--network=host" in args and "--rm" not in args
    )  # removed after its exit code is read (podrun)
    assert f"{PLATFORM_LABEL}=t" in value("--label")
    assert "etl.platform/dag-id=observability_platform_checks" in value("--label")
    # the platform ConfigMap (envFrom) and the injected credentials; no secret value on the line
    assert "PUSHGATEWAY_URL=http://127.0.0.1:9" in value("--env")
    assert "s.aws,type=env,target=AWS_SECRET_ACCESS_KEY" in value("--secret")


def _pod(**container: Any) -> dict[str, Any]:
    base = {"name": "base", "image": "localhost:5000/etl/x@sha256:" + "a" * 64, "command": ["true"]}
    return {
        "metadata": {"name": "p-1", "namespace": "etl-jobs"},
        "spec": {"containers": [{**base, **container}], "restartPolicy": "Never"},
    }


@pytest.mark.parametrize(
    ("pod", "message"),
    [
        (
            {**_pod(), "spec": {**_pod()["spec"], "volumes": [{"name": "h", "hostPath": {"path": "/etc"}}]}},
            r"spec.volumes\[0\]: volume 'h' of kind \['hostPath'\] is not supported by the local pod runtime \(emptyDir only\)",
        ),
        (
            {**_pod(), "spec": {**_pod()["spec"], "initContainers": [{"name": "i", "image": "x"}]}},
            r"spec.initContainers: init containers are not supported",
        ),
        (
            _pod(resources={"limits": {"nvidia.com/gpu": "1"}}),
            r"spec.containers\[0\].resources.limits.nvidia.com/gpu: the local runtime can enforce cpu and memory only",
        ),
        (
            _pod(env=[{"name": "P", "valueFrom": {"secretKeyRef": {"name": "other-team-db", "key": "password"}}}]),
            r"spec.containers\[0\].env\[0\].valueFrom.secretKeyRef: Secret etl-jobs/other-team-db does not exist in the "
            r"local cluster \(a cluster would fail the pod with CreateContainerConfigError\)",
        ),
        (
            _pod(livenessProbe={"exec": {"command": ["true"]}}),
            r"spec.containers\[0\].livenessProbe: container field 'livenessProbe' is not supported",
        ),
        (
            _pod(securityContext={"runAsNonRoot": True, "runAsUser": 0}),
            r"spec.containers\[0\].securityContext: runAsNonRoot is true but runAsUser is 0",
        ),
    ],
)
def test_what_the_runtime_cannot_honour_is_refused_by_field(pod: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedPod, match=message):
        pod_to_podman(pod, Cluster())


def test_kubernetes_env_rules() -> None:
    pod = _pod(
        command=["sh", "-c", "echo $(GREETING) $$(LITERAL)"],
        envFrom=[{"configMapRef": {"name": "cm"}}],
        env=[
            {"name": "WHO", "value": "world"},
            {"name": "GREETING", "value": "hello $(WHO) $(UNSET)"},
            {"name": "FROM_CM", "value": "explicit wins"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        ],
        resources={"limits": {"memory": "256Mi"}},
    )
    run = pod_to_podman(pod, Cluster(config_maps={"etl-jobs/cm": {"FROM_CM": "from map", "OTHER": "x"}}))
    env = [run.args[i + 1] for i, a in enumerate(run.args) if a == "--env"]
    assert env == [
        "FROM_CM=explicit wins",
        "OTHER=x",
        "WHO=world",
        "GREETING=hello world $(UNSET)",
        "POD=p-1",
        "MEM=256",
    ]
    assert run.args[run.args.index("--entrypoint") + 1] == '["sh", "-c", "echo hello world $(UNSET) $(LITERAL)"]'


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalPodRuntime, str]]:
    """A LocalPodRuntime whose mirror serves the observability image from a real registry."""
    from demo import find_build_dir

    found = find_build_dir()
    assert found is not None, "no build outputs in the runfiles"
    work = tmp_path_factory.mktemp("pods")
    root = found / "packages" / PACKAGE
    image = json.loads((root / "metadata.json").read_text())["image"]
    with registry_server(work_dir=work / "registry") as registry:
        rendered = rendered_registry(found)
        LoopbackRegistry(registry.host, rendered=rendered).push(root / "image", image["repository"], [])
        pods = LocalPodRuntime(work / "podman", mirrors={rendered: registry.host}, platform_id=uuid.uuid4().hex[:12])
        pods.add_secret("etl-jobs", "observability-airflow-api", {"password": "s3cr3t-value"})
        try:
            yield pods, image["reference"]
        finally:
            assert pods.cleanup() == 0  # every container removed itself (--rm)


PROBE = r"""
import os, sys
print("uid", os.getuid(), "gid", os.getgid(), "groups", sorted(os.getgroups()))
for path in ("/probe", "/tmp/probe"):
    try:
        open(path, "w").write("x"); print("write", path, "ok")
    except OSError as exc:
        print("write", path, "refused", exc.errno)
status = open("/proc/self/status").read()
print("capeff", [l.split()[1] for l in status.splitlines() if l.startswith("CapEff")][0])
print("nonewprivs", [l.split()[1] for l in status.splitlines() if l.startswith("NoNewPrivs")][0])
print("memlimit", open("/sys/fs/cgroup/memory/memory.limit_in_bytes").read().strip())
print("password", os.environ.get("AIRFLOW_PASSWORD"), "run date", os.environ.get("RUN_DATE"))
sys.exit(3)
"""


def test_the_pod_runs_with_its_security_context_resources_and_secrets(
    runtime: tuple[LocalPodRuntime, str], tmp_path: Path
) -> None:
    pods, image = runtime
    pod = {
        "metadata": {"name": f"probe-{uuid.uuid4().hex[:8]}", "namespace": "etl-jobs", "labels": {"app": "probe"}},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532},
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": [
                {
                    "name": "base",
                    "image": image,
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["python3.13", "-c", PROBE],
                    "env": [
                        {"name": "RUN_DATE", "value": "2026-12-04"},
                        {
                            "name": "AIRFLOW_PASSWORD",
                            "valueFrom": {"secretKeyRef": {"name": "observability-airflow-api", "key": "password"}},
                        },
                    ],
                    "resources": {
                        "limits": {"memory": "300Mi", "cpu": "1"},
                        "requests": {"memory": "100Mi", "cpu": "250m"},
                    },
                    "securityContext": {
                        "readOnlyRootFilesystem": True,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
        },
    }
    config = pods.config()
    run = pod_to_podman(pod, config.cluster, labels={PLATFORM_LABEL: config.platform_id})
    assert "s3cr3t-value" not in " ".join(run.args)
    lines: list[str] = []
    result = run_pod(run, podman=config.podman, work_dir=tmp_path, on_line=lines.append, env=config.environ())
    out = "\n".join(lines)
    assert result.exit_code == 3, out
    assert "uid 65532 gid 65532 groups [65532]" in out
    assert "write /probe refused 30" in out  # EROFS: read-only root filesystem
    assert "write /tmp/probe ok" in out  # the emptyDir
    assert "capeff 0000000000000000" in out and "nonewprivs 1" in out
    assert f"memlimit {300 * 2**20}" in out
    assert "password s3cr3t-value run date 2026-12-04" in out  # the Secret reached the process only
    assert not list(tmp_path.iterdir())  # the pod's emptyDir is gone
    left = subprocess.run(
        [*config.podman, "ps", "-a", "-q", "--filter", f"name={run.name}"],
        env=config.environ(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert left.stdout.strip() == ""  # removed by run_pod once it exited
