"""A small client for Airflow 3's REST API (``/api/v2``) with a token from ``POST /auth/token``."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from controlplane.errors import AirflowApiError

__all__ = ["AirflowApi", "fetch_token"]


def fetch_token(api_url: str, username: str, password: str, *, timeout: float = 30.0) -> str:
    """A JWT for ``username`` (simple auth manager: ``POST /auth/token``)."""
    body = json.dumps({"username": username, "password": password}).encode()
    request = urllib.request.Request(
        api_url + "/auth/token", data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            token = json.loads(response.read()).get("access_token")
    except urllib.error.HTTPError as exc:
        raise AirflowApiError(
            f"POST {api_url}/auth/token as {username!r} answered {exc.code}; check the user and the passwords file"
        ) from exc
    if not isinstance(token, str):
        raise AirflowApiError(f"POST {api_url}/auth/token returned no access_token")
    return token


class AirflowApi:
    """JSON calls against one api-server, authenticated as one user (the token is refreshed on 401)."""

    def __init__(self, api_url: str, username: str, password: str, *, timeout: float = 30.0) -> None:
        self.api_url = api_url
        self._username = username
        self._password = password
        self._timeout = timeout
        self._token: str | None = None

    def call(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200,)) -> Any:
        for attempt in (1, 2):
            if self._token is None:
                self._token = fetch_token(self.api_url, self._username, self._password, timeout=self._timeout)
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(
                self.api_url + path,
                data=data,
                method=method,
                headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:
                    status, payload = response.status, response.read()
            except urllib.error.HTTPError as exc:
                status, payload = exc.code, exc.read()
            if status == 401 and attempt == 1:
                self._token = None
                continue
            if status not in ok:
                text = payload.decode("utf-8", "replace")[:300]
                raise AirflowApiError(f"{method} {path} answered {status}: {text}")
            return json.loads(payload) if payload else None
        raise AssertionError("unreachable")

    def dag_ids(self) -> set[str]:
        ids: set[str] = set()
        offset = 0
        while True:
            page = self.call("GET", f"/api/v2/dags?limit=100&offset={offset}")
            ids.update(d["dag_id"] for d in page["dags"])
            offset += len(page["dags"])
            if not page["dags"] or offset >= page["total_entries"]:
                return ids

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/api/v2/importErrors?limit=100")["import_errors"])

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> dict[str, Any]:
        """Unpause ``dag_id`` and create a manual run; return the run as Airflow stored it."""
        quoted = urllib.parse.quote(dag_id, safe="")
        self.call("PATCH", f"/api/v2/dags/{quoted}", {"is_paused": False})
        run = self.call("POST", f"/api/v2/dags/{quoted}/dagRuns", {"logical_date": None, "conf": conf or {}})
        run_id = urllib.parse.quote(run["dag_run_id"], safe="")
        return dict(self.call("GET", f"/api/v2/dags/{quoted}/dagRuns/{run_id}"))
