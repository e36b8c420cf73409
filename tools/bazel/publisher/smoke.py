"""``--smoke <dag_id>``: after a publish, wait until Airflow has parsed the new file, then
unpause the DAG and trigger one run with conf (Airflow 3 REST API, ``/api/v2``).

Environment: ``AIRFLOW_API_URL`` (e.g. ``http://localhost:8080``), and either
``AIRFLOW_API_TOKEN``, or ``AIRFLOW_USERNAME`` + ``AIRFLOW_PASSWORD`` (exchanged for a token with
``POST /auth/token``); with neither, ``GET /auth/token`` is tried (simple auth manager with
all-admins mode, as in the local demo).

"Parsed the new file" means ``GET /api/v2/dagSources/<dag_id>`` returns exactly the published
bytes, so an older parse of the same dag_id never counts.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from publisher.errors import SmokeError, UsageError
from publisher.events import Event, EventSink, ignore_events

__all__ = ["SmokeConfig", "SmokeResult", "run_smoke", "smoke_config_from_env"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class SmokeConfig:
    """Where the Airflow API is and how to authenticate."""

    api_url: str
    token: str | None = None
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    timeout: float = 300.0
    poll_interval: float = 2.0


@dataclasses.dataclass(frozen=True)
class SmokeResult:
    """The triggered run."""

    dag_id: str
    run_id: str
    version_number: int | None
    waited_seconds: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def smoke_config_from_env(env: Mapping[str, str], *, timeout: float) -> SmokeConfig:
    url = env.get("AIRFLOW_API_URL", "").rstrip("/")
    if not url:
        raise UsageError("required flag: --smoke needs AIRFLOW_API_URL (e.g. http://localhost:8080)")
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise UsageError(f"invalid flag: AIRFLOW_API_URL {url!r}: must be an http(s) URL")
    return SmokeConfig(
        api_url=url,
        token=env.get("AIRFLOW_API_TOKEN") or None,
        username=env.get("AIRFLOW_USERNAME") or None,
        password=env.get("AIRFLOW_PASSWORD") or None,
        timeout=timeout,
    )


class _Api:
    def __init__(self, config: SmokeConfig) -> None:
        self.config = config
        self.token = config.token

    def call(self, method: str, path: str, body: object = None, *, auth: bool = True) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.config.api_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if auth and self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise SmokeError(f"cannot reach the Airflow API at {self.config.api_url!r}: {exc}") from exc
        try:
            payload = json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            payload = raw.decode("utf-8", "replace")[:200]
        return status, payload

    def login(self) -> None:
        if self.token:
            return
        if self.config.username and self.config.password:
            status, payload = self.call(
                "POST", "/auth/token",
                {"username": self.config.username, "password": self.config.password}, auth=False,
            )
        else:
            status, payload = self.call("GET", "/auth/token", auth=False)
        if status not in (200, 201) or not isinstance(payload, dict) or "access_token" not in payload:
            raise SmokeError(
                f"cannot get an Airflow API token from {self.config.api_url}/auth/token (HTTP {status}); "
                "set AIRFLOW_USERNAME/AIRFLOW_PASSWORD or AIRFLOW_API_TOKEN"
            )
        self.token = str(payload["access_token"])


def _detail(payload: Any) -> str:
    if isinstance(payload, dict) and "detail" in payload:
        return str(payload["detail"])[:200]
    return str(payload)[:200]


def run_smoke(
    config: SmokeConfig,
    *,
    dag_id: str,
    source: bytes,
    conf: Mapping[str, Any],
    on_event: EventSink = ignore_events,
) -> SmokeResult:
    """Wait for Airflow to parse ``source`` as ``dag_id``, unpause it, trigger a run with ``conf``."""
    api = _Api(config)
    api.login()
    quoted = urllib.parse.quote(dag_id, safe="")
    expected = source.decode("utf-8")
    started = time.monotonic()
    deadline = started + config.timeout
    last = "no answer yet"
    version: int | None = None
    while True:
        status, payload = api.call("GET", f"/api/v2/dagSources/{quoted}")
        if status == 200 and isinstance(payload, dict):
            version = payload.get("version_number")
            if payload.get("content") == expected:
                break
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
    waited = time.monotonic() - started
    on_event(Event("smoke", f"smoke  Airflow parsed {dag_id!r} (version {version}) after {waited:.1f}s"))
    status, payload = api.call("PATCH", f"/api/v2/dags/{quoted}", {"is_paused": False})
    if status != 200:
        raise SmokeError(f"unpausing {dag_id!r} failed (HTTP {status}): {_detail(payload)}")
    status, payload = api.call(
        "POST", f"/api/v2/dags/{quoted}/dagRuns", {"logical_date": None, "conf": dict(conf)}
    )
    if status not in (200, 201) or not isinstance(payload, dict) or "dag_run_id" not in payload:
        raise SmokeError(f"triggering {dag_id!r} failed (HTTP {status}): {_detail(payload)}")
    run_id = str(payload["dag_run_id"])
    on_event(Event("smoke", f"smoke  triggered {dag_id!r}: run {run_id}"))
    return SmokeResult(dag_id=dag_id, run_id=run_id, version_number=version, waited_seconds=round(waited, 3))
