"""Run Airflow 3's api-server, scheduler, dag-processor and triggerer as separate local processes.

SQLite in ``AIRFLOW_HOME``, 127.0.0.1 only, the simple auth manager with one admin whose password
lives in the home's passwords file. Each process (``airflow db migrate`` too) runs in its own
process group so ``stop()`` ends it and every child it forked: SIGTERM to the process, which stops
its own children (as in a container, where only PID 1 gets it), then SIGKILL to the group once it
exited or after ``stop_timeout``. ``stop()`` may be called from another thread while
``migrate()``/``start()`` are still running (Ctrl-C during start-up): once it has run, no further
process is started.

Each process starts with the default signal mask and gets SIGTERM when the thread that started it
exits (``tools.testing.children.spawn``): call ``start()`` from a thread that lives as long as the
control plane should run (the main thread); ``migrate()`` may run in any thread, as it waits.
When the owner dies without ``stop()`` (SIGKILL), ``controlplane/reaper.py``, told each process
group as it starts, SIGKILLs the groups still there ``stop_timeout`` seconds later.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from controlplane.api import AirflowApi
from controlplane.errors import AirflowStartError
from controlplane.settings import ADMIN_USER, ControlPlaneSettings, admin_password
from tools.testing.children import spawn

__all__ = ["COMPONENTS", "ControlPlane"]

_REAPER = Path(__file__).with_name("reaper.py")

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class ControlPlane:
    """``start()`` migrates the DB and starts the four processes; ``stop()`` ends them by PID."""

    def __init__(
        self,
        settings: ControlPlaneSettings,
        *,
        log_dir: Path,
        extra_env: Mapping[str, str] | None = None,
        python: str = sys.executable,
        stop_timeout: float = 20.0,
    ) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.python = python
        self.stop_timeout = stop_timeout
        self.password = admin_password(settings)
        self.env = {**os.environ, **(extra_env or {}), **settings.environ()}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()  # spawn vs stop from another thread
        self._stopped = False
        self._reaper: subprocess.Popen[bytes] | None = None

    @property
    def username(self) -> str:
        return ADMIN_USER

    def api(self) -> AirflowApi:
        return AirflowApi(self.settings.api_url, ADMIN_USER, self.password)

    def migrate(self, *, timeout: float = 600.0) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / "airflow-db-migrate.log"
        proc = self._spawn("db-migrate", [self.python, "-m", "airflow", "db", "migrate"], log, mode="wb")
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
            raise AirflowStartError(f"`airflow db migrate` took more than {timeout}s; see {log}") from exc
        finally:
            with self._lock:
                if self.procs.get("db-migrate") is proc:
                    del self.procs["db-migrate"]
        _signal_group(proc, signal.SIGKILL)  # anything it forked and left behind
        if self._stopped:
            raise AirflowStartError("the control plane was stopped during `airflow db migrate`")
        if code != 0:
            raise AirflowStartError(f"`airflow db migrate` exited {code}; see {log}")

    def _spawn(
        self, name: str, args: list[str], log: Path, *, mode: str = "ab", env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``args`` in a new session and record it, unless ``stop()`` already ran."""
        with self._lock:
            if self._stopped:
                raise AirflowStartError(f"the control plane was stopped; not starting airflow {name}")
            with open(log, mode) as out:
                proc = spawn(
                    args,
                    env={**self.env, **(env or {})},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            self.procs[name] = proc
            self._tell_reaper(proc.pid)
            return proc

    def _tell_reaper(self, group: int) -> None:
        """Give the reaper one more process group (started with the first one; see reaper.py)."""
        if self._reaper is None:
            self._reaper = spawn(
                [self.python, str(_REAPER), str(self.stop_timeout)],
                death_signal=0,  # it must outlive its owner: the end of its stdin is its cue
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                start_new_session=True,  # no terminal signal reaches it
            )
        assert self._reaper.stdin is not None
        try:
            self._reaper.stdin.write(f"{group}\n".encode())
            self._reaper.stdin.flush()
        except OSError:
            pass  # it died: the parent-death SIGTERM still stops the components

    def start(self) -> None:
        """Start the four components (call ``migrate()`` first)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.settings.dags_folder.mkdir(parents=True, exist_ok=True)
        write_local_settings(self.settings)
        for name in COMPONENTS:
            args = [self.python, "-m", "airflow", name]
            if name == "api-server":
                args += ["--host", self.settings.host, "--port", str(self.settings.api_port)]
            self._spawn(name, args, self.log_dir / f"airflow-{name}.log", env=self.settings.component_environ(name))

    def check_running(self) -> None:
        for name, proc in list(self.procs.items()):
            if proc.poll() is not None:
                raise AirflowStartError(
                    f"airflow {name} exited with code {proc.returncode}; see {self.log_dir / f'airflow-{name}.log'}"
                )

    def wait_healthy(self, *, timeout: float = 300.0, progress: Callable[[str], None] | None = None) -> dict:
        """Poll ``/api/v2/monitor/health`` until the metadatabase is healthy; return the last answer."""
        url = self.settings.api_url + "/api/v2/monitor/health"
        deadline = time.monotonic() + timeout
        last: object = None
        next_note = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.check_running()
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    body = json.loads(response.read())
                    if body.get("metadatabase", {}).get("status") == "healthy":
                        return dict(body)
                    last = body
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = exc
            if progress is not None and time.monotonic() >= next_note:
                progress(f"waiting for the Airflow api-server at {self.settings.api_url} ...")
                next_note = time.monotonic() + 10
            time.sleep(0.5)
        raise AirflowStartError(f"Airflow at {url!r} not healthy after {timeout}s; last answer: {last!r}")

    def stop(self) -> None:
        """SIGTERM each process, then SIGKILL its group once it exited or after ``stop_timeout``.

        Not SIGTERM to the whole group: the scheduler then shuts down LocalExecutor workers that
        are dying of their own SIGTERM, and its group took until the SIGKILL at 20 s in one run of
        //airflow:test_demo_interrupt; signalled alone (as the parent-death signal does), the
        scheduler's group was gone within 2-7 s.

        Safe from any thread and more than once; after it, ``migrate()``/``start()`` start nothing.
        """
        with self._lock:
            self._stopped = True
            procs = list(self.procs.values())
        for proc in procs:
            try:
                proc.send_signal(signal.SIGTERM)  # a no-op once it was reaped
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + self.stop_timeout
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)  # the group's stragglers too, even if the leader exited
            if proc.poll() is None:
                proc.wait()
        with self._lock:
            for name in [n for n, p in self.procs.items() if p in procs]:
                del self.procs[name]
            reaper, self._reaper = self._reaper, None
        if reaper is not None:  # every group is gone: end of input, and it exits at once
            if reaper.stdin is not None:
                try:
                    reaper.stdin.close()
                except OSError:
                    pass
            try:
                reaper.wait(timeout=self.stop_timeout + 5)
            except subprocess.TimeoutExpired:
                reaper.kill()
                reaper.wait()


def write_local_settings(settings: ControlPlaneSettings) -> None:
    """``$AIRFLOW_HOME/config/airflow_local_settings.py``: the local pod runtime's cluster policy, or
    nothing (a deployment sets its own through the Helm chart's ``airflowLocalSettings``)."""
    path = settings.local_settings_file
    if settings.local_pods_config is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by controlplane.runner: KubernetesPodOperator pods run in podman where ETL_LOCAL_PODS is set.\n"
        "from controlplane.localpods.operator import preload, task_policy\n\n"
        "preload()  # in the scheduler: its forked task processes find the provider imported\n"
        '__all__ = ["task_policy"]\n'
    )


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
