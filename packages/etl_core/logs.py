"""Structured logging: one JSON object per line, with key/value context and secrets redacted.

Jobs and services call :func:`configure` once at start-up, then log events with fields::

    from etl_core import logs

    logs.configure(service="sidecar", version="1.2.0")
    log = logs.get_logger(__name__).bind(env="dev")
    log.info("sync.done", package="file_processing", files=3)
    # {"ts": "2026-11-27T04:20:00.123Z", "level": "info", "logger": "sidecar.sync",
    #  "event": "sync.done", "service": "sidecar", "version": "1.2.0", "env": "dev",
    #  "package": "file_processing", "files": 3}

Records from any other stdlib logger (boto3, airflow) go through the same formatter, so the
whole process writes one format. Values under secret-looking keys (``password``, ``token``,
``secret_access_key``...) and pydantic ``SecretStr`` values are replaced by ``"***"``, and so is
the password part of URLs such as ``postgresql://user:pw@host/db``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import datetime as _dt
import enum
import json
import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import IO, Any

from etl_core.errors import EtlCoreError

__all__ = [
    "REDACTED",
    "EventLogger",
    "JsonFormatter",
    "LogConfigError",
    "TextFormatter",
    "configure",
    "get_logger",
    "is_secret_key",
    "log_context",
    "redact",
    "stream_logger",
]

REDACTED = "***"

# Fragments of key names whose values are secrets. Keys are compared lower-cased with '-' and '.'
# turned into '_', so "X-Api-Key", "aws.secret_access_key" and "DB_PASSWORD" all match.
_SECRET_KEY_FRAGMENTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "credential",
    "authorization",
    "cookie",
    "session_key",
    "signature",
)
_URL_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/?#@\s]*:)[^@/?#\s]+@")

# Attributes of a LogRecord that carry etl_core's fields and context.
_FIELDS_ATTR = "etl_fields"
_CONTEXT_ATTR = "etl_context"
# Fields may not overwrite the fixed keys; "error" and "traceback" are taken only on records that
# carry an exception (elsewhere a field ``error="..."`` is the usual way to say what went wrong).
_RESERVED = frozenset({"ts", "level", "logger", "event"})
_EXCEPTION_KEYS = frozenset({"error", "traceback"})
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_context: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "etl_core_log_context", default=None
)


class LogConfigError(EtlCoreError):
    """A logging setting (level or format) has a value etl_core does not know."""


def is_secret_key(key: str) -> bool:
    """True when a value stored under ``key`` must never be logged."""
    norm = key.lower().replace("-", "_").replace(".", "_")
    return any(fragment in norm for fragment in _SECRET_KEY_FRAGMENTS)


def _is_secret_value(value: Any) -> bool:
    # pydantic's SecretStr/SecretBytes without importing pydantic here.
    return type(value).__name__ in {"SecretStr", "SecretBytes"} and hasattr(value, "get_secret_value")


def redact(value: Any, *, key: str | None = None) -> Any:
    """Return ``value`` with secrets replaced by ``"***"``, recursing into dicts, lists and tuples.

    A value is secret when its key looks secret (see :func:`is_secret_key`) or it is a pydantic
    secret type; passwords inside URLs in strings are masked too. The input is not modified.
    """
    if key is not None and is_secret_key(key) and value is not None and value != "":
        return REDACTED
    if _is_secret_value(value):
        return REDACTED
    if isinstance(value, str):
        return _URL_USERINFO.sub(r"\g<head>" + REDACTED + "@", value)
    if isinstance(value, Mapping):
        return {k: redact(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return redact(dataclasses.asdict(value))
    dump = getattr(value, "model_dump", None)  # pydantic models
    if callable(dump):
        return redact(dump(mode="json"))
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return str(value)


def _timestamp(record: logging.LogRecord) -> str:
    moment = _dt.datetime.fromtimestamp(record.created, tz=_dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _ContextFilter(logging.Filter):
    """Copies the static and per-context fields onto each record as it is emitted."""

    def __init__(self, static: Mapping[str, Any]) -> None:
        super().__init__()
        self.static = dict(static)

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, _CONTEXT_ATTR):
            setattr(record, _CONTEXT_ATTR, {**self.static, **(_context.get() or {})})
        return True


def _record_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    fields.update(getattr(record, _CONTEXT_ATTR, None) or {})
    fields.update(getattr(record, _FIELDS_ATTR, None) or {})
    reserved = _RESERVED | _EXCEPTION_KEYS if record.exc_info or record.exc_text else _RESERVED
    out: dict[str, Any] = {}
    for key, value in fields.items():
        name = f"{key}_" if key in reserved else key
        out[name] = redact(value, key=key)
    return out


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line (keys: ts, level, logger, event, fields...)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        doc.update(_record_fields(record))
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            doc["error"] = redact(f"{type(exc).__name__}: {exc}")
            doc["traceback"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["traceback"] = redact(record.exc_text)
        if record.stack_info:
            doc["stack"] = record.stack_info
        return json.dumps(doc, default=_json_default, ensure_ascii=False, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """Human-readable single line: ``ts LEVEL logger event key=value ...`` (for terminals)."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_timestamp(record), record.levelname, record.name, str(redact(record.getMessage()))]
        for key, value in _record_fields(record).items():
            text = value if isinstance(value, str) else json.dumps(value, default=_json_default)
            parts.append(f"{key}={text}")
        line = " ".join(parts)
        if record.exc_info and record.exc_info[1] is not None:
            line += "\n" + str(redact(self.formatException(record.exc_info)))
        return line


class EventLogger:
    """A stdlib logger that takes an event name plus key/value fields, and can bind context."""

    __slots__ = ("_fields", "_logger")

    def __init__(self, logger: logging.Logger, fields: Mapping[str, Any] | None = None) -> None:
        self._logger = logger
        self._fields: dict[str, Any] = dict(fields or {})

    @property
    def name(self) -> str:
        return self._logger.name

    @property
    def stdlib(self) -> logging.Logger:
        """The underlying :class:`logging.Logger`."""
        return self._logger

    def bind(self, **fields: Any) -> EventLogger:
        """A logger that adds ``fields`` to every event it logs (this one is unchanged)."""
        return EventLogger(self._logger, {**self._fields, **fields})

    def log(self, level: int, event: str, /, *, exc_info: Any = None, **fields: Any) -> None:
        if not self._logger.isEnabledFor(level):
            return
        merged = {**self._fields, **fields}
        self._logger.log(level, event, exc_info=exc_info, extra={_FIELDS_ATTR: merged}, stacklevel=3)

    def debug(self, event: str, /, **fields: Any) -> None:
        self.log(logging.DEBUG, event, **fields)

    def info(self, event: str, /, **fields: Any) -> None:
        self.log(logging.INFO, event, **fields)

    def warning(self, event: str, /, **fields: Any) -> None:
        self.log(logging.WARNING, event, **fields)

    def error(self, event: str, /, **fields: Any) -> None:
        self.log(logging.ERROR, event, **fields)

    def critical(self, event: str, /, **fields: Any) -> None:
        self.log(logging.CRITICAL, event, **fields)

    def exception(self, event: str, /, **fields: Any) -> None:
        """Log at ERROR with the exception being handled (``error`` and ``traceback`` keys)."""
        self.log(logging.ERROR, event, exc_info=True, **fields)


def get_logger(name: str, **fields: Any) -> EventLogger:
    """An :class:`EventLogger` for ``name`` (usually ``__name__``), optionally with bound fields."""
    return EventLogger(logging.getLogger(name), fields)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to every record logged in this context (thread or task), e.g. a run id."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def _handler(stream: IO[str], fmt: str | None, context: Mapping[str, Any]) -> logging.Handler:
    fmt_name = (fmt or os.environ.get("LOG_FORMAT") or "json").strip().lower()
    formatter: logging.Formatter
    if fmt_name == "json":
        formatter = JsonFormatter()
    elif fmt_name == "text":
        formatter = TextFormatter()
    else:
        raise LogConfigError(f"invalid log format {fmt_name!r}: use 'json' or 'text' (LOG_FORMAT)")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(_ContextFilter(context))
    handler.set_name("etl_core")
    return handler


def _parse_level(level: str | int | None) -> int:
    if level is None:
        level = os.environ.get("LOG_LEVEL") or "INFO"
    if isinstance(level, int):
        return level
    name = level.strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in _LEVELS:
        raise LogConfigError(f"invalid log level {level!r}: use one of {', '.join(_LEVELS)} (LOG_LEVEL)")
    return int(getattr(logging, name))


def configure(
    *,
    level: str | int | None = None,
    fmt: str | None = None,
    stream: IO[str] | None = None,
    **context: Any,
) -> logging.Handler:
    """Send every log record of the process to ``stream`` (default stderr), one line per event.

    ``level`` defaults to ``$LOG_LEVEL`` or INFO; ``fmt`` is ``"json"`` (default, or
    ``$LOG_FORMAT``) or ``"text"``. ``context`` (e.g. ``service=``, ``version=``) is added to
    every line. Calling it again replaces the handler it installed before, so it is safe in tests.
    Returns the installed handler.
    """
    numeric = _parse_level(level)
    handler = _handler(stream if stream is not None else sys.stderr, fmt, context)

    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == "etl_core":
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(numeric)
    logging.captureWarnings(True)
    return handler


def stream_logger(
    name: str,
    stream: IO[str],
    *,
    level: str | int | None = None,
    fmt: str | None = None,
    **context: Any,
) -> EventLogger:
    """An :class:`EventLogger` that writes only its own events to ``stream``, in the same format.

    For a component that shares a process with others and must not take over its logging (the
    sidecar's syncer, one per test): the logger is not registered with :mod:`logging`, has no
    parent and leaves the root logger's handlers alone. ``level``, ``fmt`` and ``context`` are as
    in :func:`configure`.
    """
    logger = logging.Logger(name, _parse_level(level))
    logger.addHandler(_handler(stream, fmt, context))
    return EventLogger(logger)
