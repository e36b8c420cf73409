"""Control-plane settings: one place that turns (home, dags folder, ports, intervals) into the
``AIRFLOW__SECTION__KEY`` environment of every Airflow process.

The intervals follow the sidecar's: Airflow lists the dags folder every ``sync_interval`` seconds
(``[dag_processor] refresh_interval``, also each DAG bundle's refresh interval) and re-parses a
file at most that often (``min_file_process_interval``), so a file the sidecar switches in is seen
within about two intervals. ``airflow/settings.env`` shows the same settings for a deployment.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from pathlib import Path

__all__ = ["ADMIN_USER", "ControlPlaneSettings", "admin_password"]

ADMIN_USER = "admin"


def _free_port() -> int:
    from tools.testing.servers import free_port

    return free_port()


@dataclasses.dataclass(frozen=True)
class ControlPlaneSettings:
    """Where the local control plane keeps its state and what it serves."""

    home: Path  # AIRFLOW_HOME: airflow.db, passwords file, task logs
    dags_folder: Path
    api_port: int
    sync_interval: float = 5.0
    host: str = "127.0.0.1"
    # The local pod runtime's config (controlplane.localpods): KubernetesPodOperator pods run in
    # podman; None leaves KPO as it is (it then needs a Kubernetes cluster).
    local_pods_config: Path | None = None
    # Airflow's log servers (scheduler/workers, triggerer): fixed 8793/8794 by default, which two
    # local platforms (or a demo and a test) would share; they bind every interface (not
    # configurable in Airflow 3.3), so free ports at least keep them apart.
    worker_log_port: int = dataclasses.field(default_factory=_free_port)
    triggerer_log_port: int = dataclasses.field(default_factory=_free_port)
    # LocalExecutor processes: Airflow's default parallelism (32) forks 32 workers, which made the
    # scheduler take ~11 s to stop on 2 cores; the local platform never runs more than a few tasks.
    parallelism: int = 8
    # False: the scheduler creates no scheduled runs, only triggered ones run (the local platform
    # holds one seeded day of data); a deployment keeps Airflow's default (True).
    scheduled_runs: bool = True
    # The DAG delivery path. None: the dags folder, which the sidecar fills (Airflow's default
    # bundle "dags-folder"). Else the JSON of [dag_processor] dag_bundle_config_list, one
    # etl_dag_bundle.PackageDagBundle per package (etl_dag_bundle.bundle_config_json writes it);
    # the bundles keep their versions under <home>/dag_bundles.
    dag_bundles: str | None = None

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def dag_bundle_storage(self) -> Path:
        """``[dag_processor] dag_bundle_storage_path``: the bundles' versions, per bundle name."""
        return self.home / "dag_bundles"

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    @property
    def secrets_file(self) -> Path:
        return self.home / "secrets.json"

    @property
    def local_settings_file(self) -> Path:
        """``airflow_local_settings.py``: Airflow imports it from ``$AIRFLOW_HOME/config``."""
        return self.home / "config" / "airflow_local_settings.py"

    def component_environ(self, component: str) -> dict[str, str]:
        """Settings only one component gets: the scheduler (whose executor runs the tasks) gets the
        local pod runtime; the dag-processor never applies it, so serialized DAGs stay as published."""
        if component == "scheduler" and self.local_pods_config is not None:
            from controlplane.localpods.runtime import CONFIG_ENV

            return {CONFIG_ENV: str(self.local_pods_config)}
        return {}

    def environ(self) -> dict[str, str]:
        """The Airflow settings of every process (api-server, scheduler, dag-processor, triggerer)."""
        interval = str(max(1, round(self.sync_interval)))
        keys = _secrets(self.secrets_file)
        return {
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self.worker_log_port),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self.triggerer_log_port),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home}/airflow.db",
            "AIRFLOW__API__HOST": self.host,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": keys["secret_key"],
            "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
            # the sidecar's interval: list the folder and re-parse a changed file that often
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": interval,
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": interval,
            "AIRFLOW__DAG_PROCESSOR__STALE_DAG_THRESHOLD": str(max(50, 10 * int(interval))),
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.scheduled_runs),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH": str(self.dag_bundle_storage),
            **({"AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": self.dag_bundles} if self.dag_bundles else {}),
        }


def admin_password(settings: ControlPlaneSettings) -> str:
    """The admin password: read from the passwords file, or generated once and stored there."""
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.passwords_file
    try:
        password = json.loads(path.read_text()).get(ADMIN_USER)
    except (OSError, ValueError, AttributeError):
        password = None
    if not isinstance(password, str) or not password:
        password = secrets.token_urlsafe(12)
        path.write_text(json.dumps({ADMIN_USER: password}) + "\n")
        path.chmod(0o600)
    return password


def _secrets(path: Path) -> dict[str, str]:
    """Secrets shared by the processes (the JWT of task workers must verify everywhere)."""
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict) and all(isinstance(data.get(k), str) for k in ("secret_key", "jwt_secret")):
            return data
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"secret_key": secrets.token_urlsafe(24), "jwt_secret": secrets.token_urlsafe(32)}
    path.write_text(json.dumps(data) + "\n")
    path.chmod(0o600)
    return data
