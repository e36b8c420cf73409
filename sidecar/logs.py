"""JSON-lines logging: one event per line, with key/value context."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import IO, Any

__all__ = ["LEVELS", "JsonLogger"]

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


class JsonLogger:
    """Writes ``{"ts", "level", "logger", "event", ...}`` lines to a stream; thread-safe."""

    def __init__(self, stream: IO[str] | None = None, *, level: str = "info", name: str = "sidecar") -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._min = LEVELS[level]
        self._name = name
        self._lock = threading.Lock()

    def log(self, level: str, event: str, **fields: Any) -> None:
        if LEVELS[level] < self._min:
            return
        now = time.time()
        record = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
            "level": level,
            "logger": self._name,
            "event": event,
            **fields,
        }
        line = json.dumps(record, default=str, separators=(",", ":"))
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                pass

    def debug(self, event: str, **fields: Any) -> None:
        self.log("debug", event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self.log("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.log("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.log("error", event, **fields)
