"""A small client for the Airflow 3 REST API (``/api/v2``): health, failed runs, import errors.

Authentication: a ready token (``AIRFLOW_TOKEN``), or a user name and password exchanged for a
JWT at ``POST /auth/token`` (Airflow's simple and FAB auth managers both answer there); the token
is fetched again once when the API answers 401. Only the standard library is used (urllib).
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from .errors import AirflowApiError

__all__ = ["AirflowClient"]

_PAGE = 100


class AirflowClient:
    """Calls the REST API of the Airflow at ``base_url`` (e.g. ``http://airflow-api:8080``)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise AirflowApiError(f"invalid Airflow URL {base_url!r}: use http://host:port or https://host")
        self.base_url = base_url.rstrip("/")
        self._static_token = token
        self._username = username
        self._password = password
        self._token: str | None = token
        self.timeout = timeout

    # -- transport --

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
    ) -> Any:
        url = self.base_url + path
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None}, doseq=True)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if auth and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace").strip()
            raise _HttpStatus(exc.code, f"{method} {url} answered {exc.code} {exc.reason}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AirflowApiError(f"cannot reach Airflow at {self.base_url}: {reason}") from None
        try:
            return json.loads(payload) if payload else None
        except json.JSONDecodeError:
            raise AirflowApiError(f"{method} {url} did not answer JSON: {payload[:200]!r}") from None

    def login(self) -> None:
        """Exchange the user name and password for a token (``POST /auth/token``)."""
        if not (self._username and self._password):
            return
        try:
            doc = self._request(
                "POST", "/auth/token", body={"username": self._username, "password": self._password}, auth=False
            )
        except _HttpStatus as exc:
            raise AirflowApiError(f"login to Airflow as {self._username!r} failed: {exc}") from None
        token = doc.get("access_token") if isinstance(doc, dict) else None
        if not token:
            raise AirflowApiError(f"POST {self.base_url}/auth/token gave no access_token")
        self._token = str(token)

    def get(self, path: str, **params: Any) -> Any:
        """GET ``path`` as JSON, logging in first (and once more after a 401) when credentials are set."""
        if self._token is None:
            self.login()
        try:
            return self._request("GET", path, params=params)
        except _HttpStatus as exc:
            if exc.status == 401 and self._username and self._password:
                self.login()
                try:
                    return self._request("GET", path, params=params)
                except _HttpStatus as again:
                    raise AirflowApiError(str(again)) from None
            hint = "; set AIRFLOW_TOKEN or AIRFLOW_USERNAME/AIRFLOW_PASSWORD" if exc.status in (401, 403) else ""
            raise AirflowApiError(str(exc) + hint) from None

    # -- endpoints --

    def health(self) -> dict[str, Any]:
        """``GET /api/v2/monitor/health``: status and last heartbeat per component."""
        doc = self.get("/api/v2/monitor/health")
        if not isinstance(doc, dict):
            raise AirflowApiError(f"unexpected health answer from {self.base_url}: {doc!r}")
        return doc

    def _paged(self, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            doc = self.get(path, limit=_PAGE, offset=offset, **params)
            items = list(doc.get(key) or []) if isinstance(doc, dict) else []
            out.extend(items)
            total = int(doc.get("total_entries") or 0) if isinstance(doc, dict) else 0
            offset += len(items)
            if not items or offset >= total:
                return out

    def failed_runs(self, since: dt.datetime) -> list[dict[str, Any]]:
        """DAG runs of every DAG that failed and ended at or after ``since`` (all pages)."""
        stamp = since.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        return self._paged(
            "/api/v2/dags/~/dagRuns", "dag_runs", state="failed", end_date_gte=stamp, order_by="-end_date"
        )

    def import_errors(self) -> list[dict[str, Any]]:
        """Current DAG import errors (all pages)."""
        return self._paged("/api/v2/importErrors", "import_errors")


class _HttpStatus(AirflowApiError):
    """An HTTP error status from the API (kept apart so 401 can trigger a new login)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
