"""``--smoke <dag_id>``: after a publish, run the DAG once in Airflow and report how it ended.

Steps: wait until Airflow has parsed the published file (``GET /api/v2/dagSources/<dag_id>``
returns exactly the published bytes, so an older parse of the same dag_id never counts), unpause
the DAG, trigger a run **with a logical date** (now, so ``{{ ds }}`` and the data interval exist as
in a scheduled run; Airflow 3 gives a run posted with ``logical_date: null`` neither), wait until
the run ends (``--smoke-timeout``), and report each task's state; a failed task's log tail comes
with the error. The run failing, or not ending in time, is a failure of the smoke.

Environment: ``AIRFLOW_API_URL`` (e.g. ``http://localhost:8080``), and either
``AIRFLOW_API_TOKEN``, or ``AIRFLOW_USERNAME`` + ``AIRFLOW_PASSWORD`` (exchanged for a token with
``POST /auth/token``); with neither, ``GET /auth/token`` is tried (simple auth manager with
all-admins mode).

``AirflowClient``, ``trigger_run`` and ``wait_for_run`` are also what the local platform
(``//:demo``) uses to run every DAG and check the outcome.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from tools.bazel.publisher.errors import SmokeError, UsageError
from tools.bazel.publisher.events import Event, EventSink, ignore_events
from tools.bazel.retrypolicy import RetryPolicy, call_with_retry

__all__ = [
    "AirflowClient",
    "RunOutcome",
    "SmokeConfig",
    "SmokeResult",
    "TaskOutcome",
    "run_smoke",
    "smoke_config_from_env",
    "trigger_run",
    "wait_for_run",
]

FINISHED_RUN_STATES = ("success", "failed")
FAILED_TASK_STATES = ("failed", "upstream_failed", "up_for_retry")
LOG_TAIL_LINES = 12


@dataclasses.dataclass(frozen=True, kw_only=True)
class SmokeConfig:
    """Where the Airflow API is, how to authenticate, how long to wait."""

    api_url: str
    token: str | None = dataclasses.field(default=None, repr=False)
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    timeout: float = 300.0  # for Airflow to parse the published file
    run_timeout: float = 1800.0  # for the triggered run to end
    poll_interval: float = 2.0


@dataclasses.dataclass(frozen=True)
class TaskOutcome:
    """One task instance of a run as Airflow reports it."""

    task_id: str
    state: str | None
    try_number: int
    duration: float | None
    log_tail: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """A DAG run: its final (or last seen) state and its tasks."""

    dag_id: str
    run_id: str
    logical_date: str | None
    state: str
    tasks: tuple[TaskOutcome, ...]
    seconds: float

    @property
    def ok(self) -> bool:
        """Success with at least one task, all of them successful or skipped. (A run whose logical
        date is before the DAG's start_date succeeds at once without any task instance.)"""
        return (
            self.state == "success" and bool(self.tasks) and all(t.state in ("success", "skipped") for t in self.tasks)
        )

    def describe(self) -> str:
        """One line: the run's state and each task's, e.g. ``success (extract success, load success)``."""
        tasks = ", ".join(f"{t.task_id} {t.state or 'none'}" for t in self.tasks)
        return f"{self.state} ({tasks})" if tasks else self.state

    def failure_detail(self) -> str:
        """Each failed task with the tail of its log, for an error message."""
        if self.state == "success" and not self.tasks:
            return (
                f"no task ran: a run whose logical date ({self.logical_date}) is before the DAG's "
                "start_date has no task instances"
            )
        parts = []
        for task in self.tasks:
            if task.state in FAILED_TASK_STATES:
                tail = " | ".join(task.log_tail) if task.log_tail else "no log lines"
                parts.append(f"task {task.task_id!r} {task.state} (try {task.try_number}); log tail: {tail}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "tasks": [t.to_json() for t in self.tasks]}


@dataclasses.dataclass(frozen=True)
class SmokeResult:
    """The smoke run and how it ended."""

    dag_id: str
    run_id: str
    version_number: int | None
    waited_seconds: float  # until Airflow had parsed the published file
    run: RunOutcome

    def to_json(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "version_number": self.version_number,
            "waited_seconds": self.waited_seconds,
            "state": self.run.state,
            "run_seconds": round(self.run.seconds, 3),
            "tasks": [t.to_json() for t in self.run.tasks],
        }


def smoke_config_from_env(env: Mapping[str, str], *, timeout: float, run_timeout: float = 1800.0) -> SmokeConfig:
    url = env.get("AIRFLOW_API_URL", "").rstrip("/")
    if not url:
        raise UsageError("required flag: --smoke needs AIRFLOW_API_URL (e.g. http://localhost:8080)")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"invalid flag: AIRFLOW_API_URL {_redact_url(url)!r}: must be an http(s) URL")
    if parts.username or parts.password:
        raise UsageError(
            f"invalid flag: AIRFLOW_API_URL {_redact_url(url)!r}: put no credentials in the URL; "
            "use AIRFLOW_USERNAME/AIRFLOW_PASSWORD or AIRFLOW_API_TOKEN"
        )
    return SmokeConfig(
        api_url=url,
        token=env.get("AIRFLOW_API_TOKEN") or None,
        username=env.get("AIRFLOW_USERNAME") or None,
        password=env.get("AIRFLOW_PASSWORD") or None,
        timeout=timeout,
        run_timeout=run_timeout,
    )


def _redact_url(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


API_RETRY = RetryPolicy(retries=2, backoff=4.0, max_delay=8.0)
"""Idempotent API calls: 3 tries, the retries 2-4 s and 4-8 s apart."""


class _Busy(Exception):
    """The api-server answered 502-504 (busy or restarting): worth another try."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


class AirflowClient:
    """JSON calls against Airflow 3's REST API (``/api/v2``), with a bearer token."""

    def __init__(self, config: SmokeConfig) -> None:
        self.config = config
        self._token = config.token

    def __repr__(self) -> str:
        return f"AirflowClient({self.config.api_url!r})"

    def request(self, method: str, path: str, body: object = None, *, auth: bool = True) -> tuple[int, Any]:
        """One call; a GET or PATCH (idempotent) that times out, cannot connect or gets 502-504 is
        tried again (``API_RETRY``), 3 times in all: a busy api-server (one worker, also serving the tasks'
        execution API) answered a poll after more than 30 s on a loaded 2-core machine."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        policy = API_RETRY if method in ("GET", "PATCH") else RetryPolicy(retries=0)

        def send() -> tuple[int, bytes]:
            request = urllib.request.Request(self.config.api_url + path, data=data, method=method)
            request.add_header("Accept", "application/json")
            if data is not None:
                request.add_header("Content-Type", "application/json")
            if auth and self._token:
                request.add_header("Authorization", f"Bearer {self._token}")
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, response.read()
            except urllib.error.HTTPError as exc:
                if exc.code in (502, 503, 504):
                    raise _Busy(exc.code, exc.read()) from exc
                return exc.code, exc.read()

        try:
            status, raw = call_with_retry(
                send, policy=policy, is_retryable=lambda exc: isinstance(exc, (_Busy, OSError))
            )
        except _Busy as busy:
            status, raw = busy.status, busy.body
        except OSError as exc:  # urllib.error.URLError, timeouts, refused connections
            raise SmokeError(
                f"cannot reach the Airflow API at {self.config.api_url!r} "
                f"({method} {path.split('?')[0]}, {policy.retries + 1} tries): {exc}"
            ) from exc
        try:
            payload = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = raw.decode("utf-8", "replace")[:200]
        return status, payload

    def login(self) -> None:
        if self._token:
            return
        if self.config.username and self.config.password:
            status, payload = self.request(
                "POST",
                "/auth/token",
                {"username": self.config.username, "password": self.config.password},
                auth=False,
            )
        else:
            status, payload = self.request("GET", "/auth/token", auth=False)
        if status not in (200, 201) or not isinstance(payload, dict) or "access_token" not in payload:
            raise SmokeError(
                f"cannot get an Airflow API token from {self.config.api_url}/auth/token (HTTP {status}); "
                "set AIRFLOW_USERNAME/AIRFLOW_PASSWORD or AIRFLOW_API_TOKEN"
            )
        self._token = str(payload["access_token"])

    def call(self, method: str, path: str, body: object = None, *, ok: Sequence[int] = (200,)) -> Any:
        """``request`` after ``login``; a new token on 401; SmokeError on any other unexpected status."""
        self.login()
        status, payload = self.request(method, path, body)
        if status == 401 and self.config.token is None:
            self._token = None
            self.login()
            status, payload = self.request(method, path, body)
        if status not in ok:
            raise SmokeError(f"{method} {path} answered HTTP {status}: {_detail(payload)}")
        return payload

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances?limit=100"
        return list(self.call("GET", path)["task_instances"])

    def log_tail(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        *,
        lines: int = LOG_TAIL_LINES,
        settle: float = 5.0,
    ) -> tuple[str, ...]:
        """The last ``lines`` messages of one failed try's log, as Airflow serves them.

        A task's state can change before its last log lines are written: the log is read again
        (for up to ``settle`` seconds) until it holds Airflow's "Task failed" line.
        """
        path = (
            f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/logs/"
            f"{try_number}?full_content=true"
        )
        deadline = time.monotonic() + settle
        while True:
            try:
                payload = self.call("GET", path)
            except SmokeError as exc:
                return (f"(log not readable: {exc})",)
            events = [str(i.get("event")) for i in (payload or {}).get("content") or [] if isinstance(i, dict)]
            if any(e.startswith("Task failed") for e in events) or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        out = []
        for item in (payload or {}).get("content") or []:
            if isinstance(item, dict):
                text = str(item.get("event") or "")
                for error in item.get("error_detail") or []:  # the exception, not its frames
                    if isinstance(error, dict):
                        text += f" {error.get('exc_type')}: {error.get('exc_value')}"
            else:
                text = str(item)
            if text.strip() and not text.startswith(("::group::", "::endgroup::")):  # the UI's folding marks
                out.append(text.rstrip())
        return tuple(out[-lines:])


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _detail(payload: Any) -> str:
    if isinstance(payload, dict) and "detail" in payload:
        return str(payload["detail"])[:200]
    return str(payload)[:200]


def trigger_run(
    client: AirflowClient, dag_id: str, *, conf: Mapping[str, Any], logical_date: dt.datetime | None = None
) -> dict[str, Any]:
    """Unpause ``dag_id`` and create a manual run with a logical date (default: now, UTC)."""
    when = (logical_date or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    client.call("PATCH", f"/api/v2/dags/{_q(dag_id)}", {"is_paused": False})
    run = client.call(
        "POST",
        f"/api/v2/dags/{_q(dag_id)}/dagRuns",
        {"logical_date": when.isoformat(), "conf": dict(conf)},
        ok=(200, 201),
    )
    if not isinstance(run, dict) or "dag_run_id" not in run:
        raise SmokeError(f"triggering {dag_id!r} returned {_detail(run)}")
    return run


def wait_for_run(
    client: AirflowClient,
    dag_id: str,
    run_id: str,
    *,
    timeout: float,
    poll_interval: float = 2.0,
    fail_fast: bool = True,
    on_event: EventSink = ignore_events,
) -> RunOutcome:
    """Poll the run until it is ``success`` or ``failed`` (or ``timeout``); failed tasks carry log tails.

    ``fail_fast``: a task whose try failed (``up_for_retry``) ends the wait with state ``failing``:
    its retries (minutes apart, as the spec says) would only delay the verdict. The run itself goes
    on in Airflow.
    """
    started = time.monotonic()
    last_note = ""
    while True:
        run = client.call("GET", f"/api/v2/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")
        state = str(run.get("state"))
        tasks = client.task_instances(dag_id, run_id)
        note = ", ".join(
            f"{t['task_id']} {t.get('state') or 'none'}" for t in sorted(tasks, key=lambda t: t["task_id"])
        )
        if note != last_note:
            on_event(Event("smoke", f"smoke  {dag_id} {run_id}: {state} ({note})"))
            last_note = note
        if state in FINISHED_RUN_STATES:
            break
        if fail_fast and any(t.get("state") == "up_for_retry" for t in tasks):
            state = "failing"
            break
        if time.monotonic() - started >= timeout:
            break
        time.sleep(poll_interval)
    outcomes = []
    for ti in sorted(tasks, key=lambda t: (t.get("start_date") or "~", t["task_id"])):
        tail: tuple[str, ...] = ()
        if ti.get("state") in FAILED_TASK_STATES and ti.get("try_number"):
            tail = client.log_tail(dag_id, run_id, ti["task_id"], int(ti["try_number"]))
        outcomes.append(
            TaskOutcome(
                task_id=ti["task_id"],
                state=ti.get("state"),
                try_number=int(ti.get("try_number") or 0),
                duration=ti.get("duration"),
                log_tail=tail,
            )
        )
    if state == "failing":
        retrying = [t["task_id"] for t in tasks if t.get("state") == "up_for_retry"]
        state = f"failing ({', '.join(retrying)} failed a try; Airflow retries it)"
    elif state not in FINISHED_RUN_STATES:
        state = f"{state}, not finished after {timeout:.0f}s"
    return RunOutcome(
        dag_id=dag_id,
        run_id=run_id,
        logical_date=run.get("logical_date"),
        state=state,
        tasks=tuple(outcomes),
        seconds=time.monotonic() - started,
    )


def _wait_for_parse(
    client: AirflowClient, config: SmokeConfig, dag_id: str, expected: str, on_event: EventSink
) -> tuple[int | None, float]:
    started = time.monotonic()
    deadline = started + config.timeout
    last = "no answer yet"
    while True:
        status, payload = client.request("GET", f"/api/v2/dagSources/{_q(dag_id)}")
        if status == 200 and isinstance(payload, dict):
            version = payload.get("version_number")
            if payload.get("content") == expected:
                return version, time.monotonic() - started
            last = f"Airflow has version {version} of {dag_id!r}, with other source than the published file"
        elif status == 404:
            last = f"Airflow does not know dag {dag_id!r} yet (404)"
        elif status in (401, 403):
            raise SmokeError(f"the Airflow API refused access (HTTP {status}): {_detail(payload)}")
        else:
            last = f"HTTP {status}: {_detail(payload)}"
        if time.monotonic() >= deadline:
            raise SmokeError(
                f"timed out after {config.timeout:.0f}s waiting for Airflow to parse the published "
                f"{dag_id!r}; last seen: {last}"
            )
        on_event(Event("smoke", f"smoke  waiting: {last}"))
        time.sleep(config.poll_interval)


def run_smoke(
    config: SmokeConfig,
    *,
    dag_id: str,
    source: bytes,
    conf: Mapping[str, Any],
    logical_date: dt.datetime | None = None,
    on_event: EventSink = ignore_events,
) -> SmokeResult:
    """Wait for Airflow to parse ``source`` as ``dag_id``, run it once, raise SmokeError unless it succeeds."""
    client = AirflowClient(config)
    client.login()
    version, waited = _wait_for_parse(client, config, dag_id, source.decode("utf-8"), on_event)
    on_event(Event("smoke", f"smoke  Airflow parsed {dag_id!r} (version {version}) after {waited:.1f}s"))
    run = trigger_run(client, dag_id, conf=conf, logical_date=logical_date)
    run_id = str(run["dag_run_id"])
    on_event(Event("smoke", f"smoke  triggered {dag_id!r}: run {run_id} (logical date {run.get('logical_date')})"))
    outcome = wait_for_run(
        client, dag_id, run_id, timeout=config.run_timeout, poll_interval=config.poll_interval, on_event=on_event
    )
    for task in outcome.tasks:
        on_event(Event("smoke", f"smoke  task {task.task_id}: {task.state} (try {task.try_number})"))
        for line in task.log_tail:
            on_event(Event("smoke", f"smoke    | {line}"))
    if not outcome.ok:
        detail = outcome.failure_detail()
        raise SmokeError(f"run {run_id} of {dag_id!r} ended {outcome.state}" + (f": {detail}" if detail else ""))
    return SmokeResult(
        dag_id=dag_id, run_id=run_id, version_number=version, waited_seconds=round(waited, 3), run=outcome
    )
