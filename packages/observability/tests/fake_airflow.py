"""A small HTTP server that speaks the parts of Airflow 3's REST API the health job uses.

POST /auth/token (JSON user/password -> 201 {"access_token"}), and, with a valid bearer token:
GET /api/v2/monitor/health, /api/v2/dags/~/dagRuns (state, end_date_gte, limit, offset) and
/api/v2/importErrors (limit, offset). Responses follow Airflow's schemas; tokens can be expired
to exercise a new login.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class AirflowState:
    users: dict[str, str] = field(default_factory=lambda: {"monitor": "s3cret"})
    health: dict[str, Any] = field(default_factory=dict)
    dag_runs: list[dict[str, Any]] = field(default_factory=list)
    import_errors: list[dict[str, Any]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    logins: int = 0

    def expire_tokens(self) -> None:
        self.tokens.clear()


def healthy(now: dt.datetime) -> dict[str, Any]:
    beat = (now - dt.timedelta(seconds=10)).isoformat()
    return {
        "metadatabase": {"status": "healthy"},
        "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": beat},
        "triggerer": {"status": "healthy", "latest_triggerer_heartbeat": beat},
        "dag_processor": {"status": "healthy", "latest_dag_processor_heartbeat": beat},
    }


def dag_run(dag_id: str, run_id: str, end: dt.datetime, state: str = "failed") -> dict[str, Any]:
    return {
        "dag_id": dag_id,
        "dag_run_id": run_id,
        "state": state,
        "end_date": end.isoformat(),
        "logical_date": (end - dt.timedelta(hours=1)).isoformat(),
        "run_type": "scheduled",
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _send(self, status: int, doc: Any) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        state = self.server.state
        parts = urllib.parse.urlsplit(self.path)
        state.requests.append(("POST", parts.path, {}))
        if parts.path != "/auth/token":
            self._send(404, {"detail": "Not Found"})
            return
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if state.users.get(body.get("username")) != body.get("password"):
            self._send(401, {"detail": "Invalid credentials"})
            return
        state.logins += 1
        token = f"jwt-{state.logins}"
        state.tokens.add(token)
        self._send(201, {"access_token": token})

    def do_GET(self) -> None:
        state = self.server.state
        parts = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parts.query)
        state.requests.append(("GET", parts.path, query))
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in state.tokens:
            self._send(401, {"detail": "Not authenticated"})
            return
        limit = int(query.get("limit", ["50"])[0])
        offset = int(query.get("offset", ["0"])[0])
        if parts.path == "/api/v2/monitor/health":
            self._send(200, state.health)
        elif parts.path == "/api/v2/dags/~/dagRuns":
            runs = state.dag_runs
            if "state" in query:
                runs = [r for r in runs if r["state"] in query["state"]]
            if "end_date_gte" in query:
                since = dt.datetime.fromisoformat(query["end_date_gte"][0])
                runs = [r for r in runs if dt.datetime.fromisoformat(r["end_date"]) >= since]
            self._send(200, {"dag_runs": runs[offset : offset + limit], "total_entries": len(runs)})
        elif parts.path == "/api/v2/importErrors":
            errors = state.import_errors
            self._send(200, {"import_errors": errors[offset : offset + limit], "total_entries": len(errors)})
        else:
            self._send(404, {"detail": "Not Found"})

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: AirflowState) -> None:
        self.state = state
        super().__init__(("127.0.0.1", 0), _Handler)


@contextmanager
def fake_airflow(state: AirflowState) -> Iterator[str]:
    """Serve ``state`` on a free loopback port; yield the base URL."""
    server = _Server(state)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
