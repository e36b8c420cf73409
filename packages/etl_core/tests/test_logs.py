"""JSON-lines logging: one parseable object per line, context fields, redaction of secrets."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from etl_core import logs


@pytest.fixture(autouse=True)
def _restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_an_event_is_one_json_line_with_fields_and_static_context() -> None:
    out = io.StringIO()
    logs.configure(stream=out, level="INFO", service="sidecar", version="1.2.0")
    logs.get_logger("sidecar.sync").info("sync.done", package="file_processing", files=3, ok=True)
    [doc] = lines(out)
    assert doc["event"] == "sync.done"
    assert doc["level"] == "info"
    assert doc["logger"] == "sidecar.sync"
    assert (doc["service"], doc["version"]) == ("sidecar", "1.2.0")
    assert (doc["package"], doc["files"], doc["ok"]) == ("file_processing", 3, True)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", doc["ts"])


def test_levels_below_the_configured_one_are_dropped() -> None:
    out = io.StringIO()
    logs.configure(stream=out, level="warning")
    log = logs.get_logger("x")
    log.info("quiet")
    log.debug("quieter")
    log.warning("loud")
    assert [d["event"] for d in lines(out)] == ["loud"]


def test_log_level_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    out = io.StringIO()
    logs.configure(stream=out)
    logs.get_logger("x").debug("visible")
    assert [d["event"] for d in lines(out)] == ["visible"]


def test_bind_and_log_context_add_fields_without_leaking() -> None:
    out = io.StringIO()
    logs.configure(stream=out)
    base = logs.get_logger("job")
    bound = base.bind(run_id="r1")
    with logs.log_context(dag_id="daily"):
        bound.info("inside", step=1)
        base.info("unbound")
    base.info("outside")
    inside, unbound, outside = lines(out)
    assert (inside["run_id"], inside["dag_id"], inside["step"]) == ("r1", "daily", 1)
    assert unbound["dag_id"] == "daily" and "run_id" not in unbound
    assert "dag_id" not in outside


def test_log_context_is_per_thread() -> None:
    out = io.StringIO()
    logs.configure(stream=out)
    log = logs.get_logger("t")
    ready, go = threading.Event(), threading.Event()

    def other() -> None:
        ready.wait(5)
        log.info("other")
        go.set()

    thread = threading.Thread(target=other)
    thread.start()
    with logs.log_context(run_id="main-only"):
        ready.set()
        go.wait(5)
        log.info("main")
    thread.join(5)
    by_event = {d["event"]: d for d in lines(out)}
    assert by_event["main"]["run_id"] == "main-only"
    assert "run_id" not in by_event["other"]


def test_secrets_are_redacted_by_key_name_type_and_url() -> None:
    out = io.StringIO()
    logs.configure(stream=out)
    logs.get_logger("x").info(
        "connect to postgresql://etl:hunter2@db:5432/etl",
        password="hunter2",
        API_TOKEN="abc123",
        headers={"Authorization": "Bearer xyz", "Accept": "json"},
        aws={"aws_secret_access_key": "AKIA-secret", "region": "eu-west-1"},
        dsn="redis://:s3cr3t@cache:6379/0",
        api_key=SecretStr("k-123"),
        wrapped=SecretStr("hidden"),
        user="etl",
    )
    raw = out.getvalue()
    for secret in ("hunter2", "abc123", "xyz", "AKIA-secret", "s3cr3t", "k-123", "hidden"):
        assert secret not in raw
    [doc] = lines(out)
    assert doc["event"] == "connect to postgresql://etl:***@db:5432/etl"
    assert doc["password"] == logs.REDACTED
    assert doc["API_TOKEN"] == logs.REDACTED
    assert doc["headers"] == {"Authorization": logs.REDACTED, "Accept": "json"}
    assert doc["aws"] == {"aws_secret_access_key": logs.REDACTED, "region": "eu-west-1"}
    assert doc["dsn"] == "redis://:***@cache:6379/0"
    assert doc["wrapped"] == logs.REDACTED
    assert doc["user"] == "etl"


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("DB_PASSWORD", True),
        ("X-Api-Key", True),
        ("aws.secret_access_key", True),
        ("refresh_token", True),
        ("Cookie", True),
        ("package", False),
        ("dag_id", False),
        ("bucket", False),
    ],
)
def test_is_secret_key(key: str, secret: bool) -> None:
    assert logs.is_secret_key(key) is secret


def test_exceptions_keep_the_line_single_and_carry_error_and_traceback() -> None:
    out = io.StringIO()
    logs.configure(stream=out)
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        logs.get_logger("x").exception("step.failed", step="load")
    text = out.getvalue()
    assert text.count("\n") == 1
    [doc] = lines(out)
    assert doc["level"] == "error"
    assert doc["error"] == "RuntimeError: boom\nsecond line"
    assert "Traceback (most recent call last)" in doc["traceback"]
    assert doc["step"] == "load"


def test_records_of_plain_stdlib_loggers_use_the_same_format() -> None:
    out = io.StringIO()
    logs.configure(stream=out, service="job")
    logging.getLogger("botocore.thing").warning("retrying %s in %.1fs", "GetObject", 0.5)
    [doc] = lines(out)
    assert doc["event"] == "retrying GetObject in 0.5s"
    assert doc["logger"] == "botocore.thing"
    assert doc["service"] == "job"


def test_values_json_cannot_encode_are_turned_into_text() -> None:
    out = io.StringIO()
    logs.configure(stream=out)

    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    when = dt.datetime(2026, 11, 27, 4, 20, tzinfo=dt.UTC)
    logs.get_logger("x").info("values", path=Path("/tmp/a"), when=when, thing=Opaque(), raw=b"bytes", tags={"a"})
    [doc] = lines(out)
    assert doc["path"] == "/tmp/a"
    assert doc["when"] == "2026-11-27T04:20:00+00:00"
    assert doc["thing"] == "opaque!"
    assert doc["raw"] == "bytes"
    assert doc["tags"] == ["a"]


def test_fields_cannot_overwrite_the_fixed_keys() -> None:
    out = io.StringIO()
    logs.configure(stream=out)
    logs.get_logger("x").info("real", level="fake", ts="fake", logger="fake")
    [doc] = lines(out)
    assert (doc["event"], doc["level"], doc["logger"]) == ("real", "info", "x")
    assert (doc["level_"], doc["ts_"], doc["logger_"]) == ("fake", "fake", "fake")


def test_configure_twice_replaces_its_own_handler_only() -> None:
    other = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(other)
    first, second = io.StringIO(), io.StringIO()
    logs.configure(stream=first)
    logs.configure(stream=second)
    logs.get_logger("x").info("once")
    ours = [h for h in logging.getLogger().handlers if h.get_name() == "etl_core"]
    assert len(ours) == 1
    assert other in logging.getLogger().handlers
    assert first.getvalue() == ""
    assert [d["event"] for d in lines(second)] == ["once"]
    logging.getLogger().removeHandler(other)


def test_text_format_for_terminals() -> None:
    out = io.StringIO()
    logs.configure(stream=out, fmt="text")
    logs.get_logger("cli").info("published", files=2, token="t0ps3cret")
    line = out.getvalue().strip()
    assert re.fullmatch(r"\S+Z INFO cli published files=2 token=\*\*\*", line)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"level": "LOUD"},
            r"invalid log level 'LOUD': use one of DEBUG, INFO, WARNING, ERROR, CRITICAL \(LOG_LEVEL\)",
        ),
        ({"fmt": "xml"}, r"invalid log format 'xml': use 'json' or 'text' \(LOG_FORMAT\)"),
    ],
)
def test_bad_settings_are_rejected(kw: dict[str, str], message: str) -> None:
    with pytest.raises(logs.LogConfigError, match=message):
        logs.configure(stream=io.StringIO(), **kw)


def test_redact_leaves_its_input_unchanged() -> None:
    data = {"token": "t", "nested": [{"password": "p"}]}
    assert logs.redact(data) == {"token": "***", "nested": [{"password": "***"}]}
    assert data == {"token": "t", "nested": [{"password": "p"}]}


def test_an_error_field_is_kept_as_is_unless_the_record_carries_an_exception() -> None:
    out = io.StringIO()
    logs.configure(stream=out)
    log = logs.get_logger("x")
    log.error("store.unreadable", error="timed out")
    try:
        raise ValueError("bad")
    except ValueError:
        log.exception("step.failed", error="field")
    plain, failed = lines(out)
    assert plain["error"] == "timed out"
    assert failed["error"] == "ValueError: bad"
    assert failed["error_"] == "field"


def test_a_stream_logger_writes_only_its_events_and_leaves_the_root_alone() -> None:
    root_out, mine, other = io.StringIO(), io.StringIO(), io.StringIO()
    logs.configure(stream=root_out)
    first = logs.stream_logger("component", mine, level="info", service="sidecar")
    second = logs.stream_logger("component", other, level="warning")
    first.debug("hidden")
    first.info("sync.done", files=3, secret_access_key="abc")
    second.info("hidden")
    second.warning("slow")
    logging.getLogger("botocore").warning("not ours")
    [doc] = lines(mine)
    assert (doc["logger"], doc["event"], doc["files"], doc["service"]) == ("component", "sync.done", 3, "sidecar")
    assert doc["secret_access_key"] == logs.REDACTED
    assert [d["event"] for d in lines(other)] == ["slow"]
    assert [d["event"] for d in lines(root_out)] == ["not ours"]
    assert "component" not in logging.Logger.manager.loggerDict
