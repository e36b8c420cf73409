"""Idle keep-alive ``http.client`` connections to one origin, shared by threads."""

from __future__ import annotations

import http.client
import threading
from typing import Any

from tools.bazel.s3http.settings import Endpoint, ca_bundle

__all__ = ["ConnectionPool"]


class ConnectionPool:
    """Each request takes a connection and gives it back; at most ``max_idle`` are kept open."""

    def __init__(self, endpoint: Endpoint, *, max_idle: int, connect_timeout: float, read_timeout: float) -> None:
        self.endpoint = endpoint
        self.max_idle = max(1, max_idle)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._ssl: Any = None

    def _new(self) -> http.client.HTTPConnection:
        host, port = self.endpoint.host, self.endpoint.port
        if self.endpoint.scheme == "http":
            return http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
        with self._lock:
            if self._ssl is None:
                import ssl  # only for https: a local endpoint never pays for it

                self._ssl = ssl.create_default_context(cafile=ca_bundle())
        return http.client.HTTPSConnection(host, port, timeout=self.connect_timeout, context=self._ssl)

    def take(self, *, fresh: bool = False) -> tuple[http.client.HTTPConnection, bool]:
        """A connection, and whether it was used before (the server may have closed it since)."""
        if not fresh:
            with self._lock:
                if self._idle:
                    return self._idle.pop(), True
        conn = self._new()
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        assert conn.sock is not None
        conn.sock.settimeout(self.read_timeout)
        return conn, False

    def give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
