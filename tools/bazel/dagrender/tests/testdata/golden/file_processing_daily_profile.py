# generated from packages/file_processing/dags/file_processing_daily_profile.yaml by //packages/file_processing:dags; do not edit
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.sdk import DAG, AsyncCallback, DeadlineAlert, DeadlineReference
from kubernetes.client import models as k8s

IMAGE = "registry.example.com/etl/file_processing@sha256:3f2a9c1d0b7e4a5f6e7d8c9b0a1f2e3d4c5b6a7980f1e2d3c4b5a69788796a5b"
LABELS = {
    "app.kubernetes.io/name": "file_processing",
    "app.kubernetes.io/managed-by": "airflow",
    "etl.platform/package": "file_processing",
    "etl.platform/dag-id": "file_processing_daily_profile",
    "etl.platform/image-digest": "3f2a9c1d0b7e",
}
ANNOTATIONS = {
    "etl.platform/package": "file_processing",
    "etl.platform/dag-id": "file_processing_daily_profile",
    "etl.platform/image": "registry.example.com/etl/file_processing@sha256:3f2a9c1d0b7e4a5f6e7d8c9b0a1f2e3d4c5b6a7980f1e2d3c4b5a69788796a5b",
    "etl.platform/image-digest": "sha256:3f2a9c1d0b7e4a5f6e7d8c9b0a1f2e3d4c5b6a7980f1e2d3c4b5a69788796a5b",
    "etl.platform/spec": "packages/file_processing/dags/file_processing_daily_profile.yaml",
    "etl.platform/target": "//packages/file_processing:dags",
}


def _pod_security_context() -> k8s.V1PodSecurityContext:
    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=65532,
        run_as_group=65532,
        fs_group=65532,
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def _container_security_context() -> k8s.V1SecurityContext:
    return k8s.V1SecurityContext(
        run_as_non_root=True,
        run_as_user=65532,
        run_as_group=65532,
        read_only_root_filesystem=True,
        allow_privilege_escalation=False,
        privileged=False,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


with DAG(
    dag_id="file_processing_daily_profile",
    description="Profile and validate yesterday's landed files, then publish a report.",
    schedule="0 3 * * *",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["file_processing", "profiling"],
    default_args={"owner": "data-platform"},
    params={"date": None, "sample_rows": 10000},
    deadline=[
        DeadlineAlert(
            name="profile sla",
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(seconds=7200),
            callback=AsyncCallback("etl_alerts.deadlines.notify", kwargs={"dag_id": "file_processing_daily_profile", "task_id": "profile", "sla": "2h"}),
        ),
        DeadlineAlert(
            name="publish-report sla",
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(seconds=10800),
            callback=AsyncCallback("etl_alerts.deadlines.notify", kwargs={"dag_id": "file_processing_daily_profile", "task_id": "publish-report", "sla": "3h"}),
        ),
    ],
) as dag:
    profile = KubernetesPodOperator(
        task_id="profile",
        image=IMAGE,
        cmds=["python3.13", "-m", "file_processing.jobs.profile"],
        arguments=["--date", "{{ dag_run.conf.get('date') or params.date or (dag_run.logical_date or dag_run.run_after) | ds }}", "--sample-rows", "{{ params.sample_rows }}"],
        env_vars=[
            k8s.V1EnvVar(name="LOG_LEVEL", value="INFO"),
            k8s.V1EnvVar(name="RUN_DATE", value="{{ (dag_run.logical_date or dag_run.run_after) | ds }}"),
            k8s.V1EnvVar(name="DB_PASSWORD", value_from=k8s.V1EnvVarSource(secret_key_ref=k8s.V1SecretKeySelector(name="file-processing-warehouse-ro", key="password"))),
            k8s.V1EnvVar(name="PROFILE_BUCKET", value="s3://etl-landing"),
            k8s.V1EnvVar(name="SAMPLE_SEED", value_from=k8s.V1EnvVarSource(config_map_key_ref=k8s.V1ConfigMapKeySelector(name="file-processing-settings", key="seed", optional=True))),
            k8s.V1EnvVar(name="RUN_KEY", value="{% set day = (dag_run.logical_date or dag_run.run_after) | ds_nodash %}{{ day }}-{{ run_id }}"),
        ],
        env_from=[
            k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="etl-platform")),
            k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="file-processing-settings")),
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="file-processing-api-keys", optional=True), prefix="API_"),
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="file-processing-profile-token", optional=True)),
        ],
        namespace="etl-jobs",
        service_account_name="file-processing",
        image_pull_policy="IfNotPresent",
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": "500m", "memory": "1Gi"},
            limits={"cpu": "1", "memory": "2Gi"},
        ),
        retries=2,
        retry_delay=timedelta(seconds=300),
        execution_timeout=timedelta(seconds=3600),
        labels=dict(LABELS),
        annotations=dict(ANNOTATIONS),
        security_context=_pod_security_context(),
        container_security_context=_container_security_context(),
        volumes=[k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource())],
        volume_mounts=[k8s.V1VolumeMount(name="tmp", mount_path="/tmp")],
        on_finish_action="delete_pod",
        get_logs=True,
    )
    validate = KubernetesPodOperator(
        task_id="validate",
        image=IMAGE,
        cmds=["python3.13", "-m", "file_processing.jobs.validate"],
        arguments=["--date={{ (dag_run.logical_date or dag_run.run_after) | ds }}", "--since={{ macros.ds_add((dag_run.logical_date or dag_run.run_after) | ds, -7) }}", "--key={{ task_instance_key_str }}"],
        env_vars=[
            k8s.V1EnvVar(name="LOG_LEVEL", value="INFO"),
            k8s.V1EnvVar(name="RUN_DATE", value="{{ (dag_run.logical_date or dag_run.run_after) | ds }}"),
            k8s.V1EnvVar(name="DB_PASSWORD", value_from=k8s.V1EnvVarSource(secret_key_ref=k8s.V1SecretKeySelector(name="file-processing-warehouse", key="password"))),
        ],
        env_from=[
            k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="etl-platform")),
            k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="file-processing-settings")),
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="file-processing-api-keys", optional=True), prefix="API_"),
        ],
        namespace="etl-jobs",
        service_account_name="file-processing",
        image_pull_policy="Always",
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": "250m", "memory": "512Mi"},
            limits={"memory": "1Gi"},
        ),
        retries=0,
        retry_delay=timedelta(seconds=300),
        execution_timeout=timedelta(seconds=3600),
        labels=dict(LABELS),
        annotations=dict(ANNOTATIONS),
        security_context=_pod_security_context(),
        container_security_context=_container_security_context(),
        volumes=[k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource())],
        volume_mounts=[k8s.V1VolumeMount(name="tmp", mount_path="/tmp")],
        on_finish_action="delete_pod",
        get_logs=True,
    )
    task_publish_report = KubernetesPodOperator(
        task_id="publish-report",
        image=IMAGE,
        cmds=["python3.13", "-m", "file_processing.jobs.report"],
        arguments=[],
        env_vars=[
            k8s.V1EnvVar(name="LOG_LEVEL", value="INFO"),
            k8s.V1EnvVar(name="RUN_DATE", value="{{ (dag_run.logical_date or dag_run.run_after) | ds }}"),
            k8s.V1EnvVar(name="DB_PASSWORD", value_from=k8s.V1EnvVarSource(secret_key_ref=k8s.V1SecretKeySelector(name="file-processing-warehouse", key="password"))),
        ],
        env_from=[
            k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="etl-platform")),
            k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="file-processing-settings")),
            k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="file-processing-api-keys", optional=True), prefix="API_"),
        ],
        namespace="etl-jobs",
        service_account_name="file-processing",
        image_pull_policy="IfNotPresent",
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": "500m", "memory": "1Gi"},
            limits={"cpu": "1", "memory": "2Gi"},
        ),
        retries=2,
        retry_delay=timedelta(seconds=300),
        execution_timeout=timedelta(seconds=1800),
        labels=dict(LABELS),
        annotations=dict(ANNOTATIONS),
        security_context=_pod_security_context(),
        container_security_context=_container_security_context(),
        volumes=[k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource())],
        volume_mounts=[k8s.V1VolumeMount(name="tmp", mount_path="/tmp")],
        on_finish_action="delete_pod",
        get_logs=True,
    )

    profile >> validate
    [profile, validate] >> task_publish_report
