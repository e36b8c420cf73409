"""An HTTP proxy in front of a moto server that answers chosen requests with S3 errors.

    with fault_proxy(moto) as (endpoint, faults):
        faults.add("/metadata.json", 503, "SlowDown", times=2)   # two throttles, then moto answers
        ... point the client under test at ``endpoint`` (AWS_ENDPOINT_URL) ...
        assert sum("/metadata.json" in p for p in faults.seen) == 3

Every request (any method) whose path contains a rule's substring is answered by that rule while
it has ``times`` left: the status, optional headers and an S3 XML error body with the code.
Everything else is forwarded to moto unchanged. ``faults.seen`` lists every request path in
arrival order, so tests can count retries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import http.server
import threading
from collections.abc import Iterator

from tools.testing.servers import MotoServer

__all__ = ["Faults", "fault_proxy"]


@dataclasses.dataclass
class _Rule:
    part: str
    status: int
    code: str
    left: int
    headers: dict[str, str]


class Faults:
    """The rules of one proxy and the paths it saw."""

    def __init__(self) -> None:
        self._rules: list[_Rule] = []
        self.seen: list[str] = []
        self._lock = threading.Lock()

    def add(self, part: str, status: int, code: str, times: int, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._rules.append(_Rule(part, status, code, times, dict(headers or {})))

    def match(self, path: str) -> _Rule | None:
        with self._lock:
            self.seen.append(path)
            for rule in self._rules:
                if rule.part in path and rule.left > 0:
                    rule.left -= 1
                    return rule
        return None


@contextlib.contextmanager
def fault_proxy(upstream: MotoServer) -> Iterator[tuple[str, Faults]]:
    """Start the proxy on a free loopback port; yield (its endpoint URL, its Faults)."""
    faults = Faults()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rule = faults.match(self.path)
            if rule is not None:
                data = (
                    f"<?xml version='1.0'?><Error><Code>{rule.code}</Code><Message>injected</Message></Error>"
                ).encode()
                self.send_response(rule.status)
                for name, value in rule.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            conn = http.client.HTTPConnection("127.0.0.1", upstream.port, timeout=10)
            try:
                conn.request(self.command, self.path, body=body or None, headers=dict(self.headers.items()))
                resp = conn.getresponse()
                data = resp.read()
            finally:
                conn.close()
            self.send_response(resp.status)
            for name, value in resp.getheaders():
                if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _any

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", faults
    finally:
        server.shutdown()
        server.server_close()
