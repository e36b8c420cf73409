"""The Airflow side of the local pod runtime: a cluster policy that runs KPO pods in podman.

The published DAG files are the production files, byte for byte: their tasks are plain
``KubernetesPodOperator``. In the local control plane, ``airflow_local_settings.py`` (written by
``ControlPlane`` into ``$AIRFLOW_HOME/config/``) exports ``task_policy`` below. In a process whose
environment names a runtime config (``ETL_LOCAL_PODS``, set only for the scheduler and the task
processes it starts), the policy turns each KubernetesPodOperator into ``LocalPodOperator``, whose
``execute`` asks the provider for the exact pod (``build_pod_request_obj``, after Airflow rendered
the templates), runs it with podman, streams the container's output into the task log and fails
the task when the container exits non-zero. The dag-processor never applies it, so Airflow's
serialized DAGs (and the UI) show the operator production runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from controlplane.localpods.runtime import CONFIG_ENV

__all__ = ["preload", "task_policy"]

_LOCAL_CLASS: type | None = None


def _local_operator_class() -> type:
    """Defined on first use: importing the provider costs ~2.5 s, which only task processes pay."""
    global _LOCAL_CLASS
    if _LOCAL_CLASS is not None:
        return _LOCAL_CLASS
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.sdk.exceptions import AirflowException
    from kubernetes.client import ApiClient

    from controlplane.localpods.podrun import remove_container, run_pod
    from controlplane.localpods.podspec import UnsupportedPod, pod_to_podman
    from controlplane.localpods.runtime import PLATFORM_LABEL, RuntimeConfig

    class LocalPodOperator(KubernetesPodOperator):
        """KubernetesPodOperator whose pod runs in podman on this machine (local control plane only)."""

        def execute(self, context: Any) -> None:
            config = RuntimeConfig.from_environ()
            if config is None:
                raise AirflowException(f"{CONFIG_ENV} is not set: no local pod runtime in this process")
            self.name = self._set_name(self.name)
            # The provider's own pod construction; dry_run only skips asking a cluster whether it
            # runs in-cluster (a label). pod_mutation_hook has run.
            pod = self.build_pod_request_obj(context, dry_run=True)
            self.pod_request_obj = pod
            manifest = ApiClient().sanitize_for_serialization(pod)
            try:
                run = pod_to_podman(manifest, config.cluster, labels={PLATFORM_LABEL: config.platform_id})
            except UnsupportedPod as exc:
                raise AirflowException(f"pod {manifest['metadata']['name']}: {exc}") from None
            self._local_container = (config, run.name)
            self.log.info(
                "Running pod %s/%s in podman (local pod runtime): %s",
                run.namespace,
                run.name,
                ", ".join(f"{k}={v}" for k, v in run.summary.items() if k not in ("env", "secret_env")),
            )
            result = run_pod(
                run,
                podman=config.podman,
                work_dir=Path(config.work_dir),
                on_line=lambda line: self.log.info("[%s] %s", self.base_container_name, line),
                env=config.environ(),
                active_deadline=self.active_deadline_seconds,
            )
            self._local_container = None
            self.log.info("Pod %s finished: exit code %d after %.1fs", run.name, result.exit_code, result.seconds)
            if result.deadline_exceeded:
                raise AirflowException(
                    f"Pod {run.name} exceeded activeDeadlineSeconds={self.active_deadline_seconds} and was stopped"
                )
            if result.exit_code != 0:
                raise AirflowException(
                    f"Pod {run.name} returned a failure: container {self.base_container_name!r} exited with "
                    f"code {result.exit_code}"
                )

        def on_kill(self) -> None:
            running = getattr(self, "_local_container", None)
            if running:
                config, name = running
                remove_container(config.podman, name, env=config.environ())

    _LOCAL_CLASS = LocalPodOperator
    return LocalPodOperator


def preload() -> None:
    """Import the provider and define LocalPodOperator now, where ``ETL_LOCAL_PODS`` is set.

    Called from ``airflow_local_settings`` as the scheduler starts: LocalExecutor workers and the
    task processes they start are forked from it, so each task skips the ~3 s provider import
    (measured: parse of a DAG file in a task process 4.3 s -> see docs/airflow/local-pod-runtime.md).
    """
    if os.environ.get(CONFIG_ENV):
        _local_operator_class()


def task_policy(task: Any) -> None:
    """Cluster policy: run KubernetesPodOperator pods in podman where ``ETL_LOCAL_PODS`` is set."""
    if not os.environ.get(CONFIG_ENV):
        return
    if type(task).__name__ != "KubernetesPodOperator":  # exactly KPO: a subclass may override execute
        return
    local = _local_operator_class()
    if type(task) is local.__mro__[1]:
        task.__class__ = local
