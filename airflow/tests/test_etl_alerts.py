"""The deadline callback every SLA'd DAG names exists, logs, and posts to the webhook."""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml
from airflow.triggers.callback import CallbackTrigger
from etl_alerts import deadlines

PACKAGES = Path(__file__).resolve().parents[2] / "packages"


def _specs_with_callbacks() -> list[tuple[str, str]]:
    found = []
    for spec in sorted(PACKAGES.glob("*/dags/*.yaml")):
        callback = (yaml.safe_load(spec.read_text()) or {}).get("sla_callback")
        if callback:
            found.append((f"{spec.parent.parent.name}/{spec.name}", callback))
    return found


def test_some_specs_name_a_callback() -> None:
    assert _specs_with_callbacks(), f"no DAG spec under {PACKAGES} sets sla_callback"


async def _run_trigger(path: str, kwargs: dict[str, object]) -> list[dict[str, object]]:
    """Run Airflow's own callback trigger (what the triggerer does on a missed deadline)."""
    return [event.payload async for event in CallbackTrigger(path, dict(kwargs)).run()]


@pytest.mark.parametrize(("spec", "path"), _specs_with_callbacks())
def test_every_spec_callback_runs_on_airflows_callback_trigger(
    spec: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(deadlines.WEBHOOK_ENV, raising=False)
    kwargs = {"dag_id": "x_dag", "task_id": "t", "sla": "2h", "context": {"dag_run": {"run_id": "manual__1"}}}
    events = asyncio.run(_run_trigger(path, kwargs))
    assert [e["state"] for e in events] == ["running", "success"], f"{spec}: {path}: {events}"


class _Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, object]]] = []
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def webhook() -> Iterator[tuple[str, type[_Hook]]]:
    handler = type("Hook", (_Hook,), {"received": [], "status": 200})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    finally:
        server.shutdown()
        server.server_close()


def test_notify_logs_and_posts(
    webhook: tuple[str, type[_Hook]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url, hook = webhook
    monkeypatch.setenv(deadlines.WEBHOOK_ENV, url)
    context = {"dag_run": {"run_id": "scheduled__2026-11-27T03:00:00+00:00"}}
    with caplog.at_level(logging.WARNING, logger=deadlines.__name__):
        asyncio.run(deadlines.notify(context, dag_id="data_pipeline_orders_daily", task_id="ingest_orders", sla="2h"))
    assert len(hook.received) == 1
    body = hook.received[0]
    assert body["event"] == "deadline_missed"
    assert body["dag_id"] == "data_pipeline_orders_daily" and body["task_id"] == "ingest_orders"
    assert body["run_id"] == "scheduled__2026-11-27T03:00:00+00:00"
    assert "ingest_orders did not finish within 2h" in str(body["text"])
    assert json.loads(caplog.records[-1].getMessage()) == body


def test_notify_without_webhook_only_logs(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.delenv(deadlines.WEBHOOK_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger=deadlines.__name__):
        asyncio.run(deadlines.notify(dag_id="file_processing_orders_quality", task_id="validate", sla="2h"))
    assert json.loads(caplog.records[-1].getMessage())["dag_id"] == "file_processing_orders_quality"


def test_webhook_failure_is_raised_with_the_url(
    webhook: tuple[str, type[_Hook]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, hook = webhook
    hook.status = 500
    monkeypatch.setenv(deadlines.WEBHOOK_ENV, url)
    with pytest.raises(RuntimeError, match=r"ETL_ALERTS_WEBHOOK_URL=http://127\.0\.0\.1:\d+/hook failed"):
        asyncio.run(deadlines.notify(dag_id="x_dag", task_id="t", sla="1h"))
