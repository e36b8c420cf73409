"""A fault-injecting HTTP front for the real registry, on a free 127.0.0.1 port.

It forwards every request to the registry unchanged (Host included, so upload Locations point
back at the front), except that it can answer the first matching requests with 5xx, stall past
the client's timeout, or demand a bearer token it hands out at ``/token`` for basic credentials:
the failure modes and auth flow a remote registry has, in front of a real one.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import http.client
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["Front", "registry_front"]


@dataclasses.dataclass
class Front:
    """Settings and counters of a running front; change settings between requests."""

    host: str
    upstream: str  # 127.0.0.1:PORT of the registry
    fail: Callable[[str, str], bool] | None = None  # (method, path) -> answer 503?
    fail_times: int = 0
    stall_seconds: float = 0.0
    stall_times: int = 0
    token_user: tuple[str, str] | None = None  # require bearer tokens, issued for these credentials
    seen: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def token(self) -> str:
        return "tok-" + base64.b64encode(f"{self.token_user}".encode()).decode()[:16]


def _handler(front: Front) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            with front.lock:
                front.seen.append((self.command, self.path, status))

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/token"):
                return self._token()
            with front.lock:
                stall = front.stall_times > 0
                if stall:
                    front.stall_times -= 1
                failing = front.fail is not None and front.fail_times > 0 and front.fail(self.command, self.path)
                if failing:
                    front.fail_times -= 1
            if stall:
                time.sleep(front.stall_seconds)
            if failing:
                return self._reply(503, b'{"errors":[{"code":"UNAVAILABLE","message":"injected"}]}')
            if front.token_user is not None and self.headers.get("Authorization") != f"Bearer {front.token}":
                realm = f"http://{front.host}/token"
                challenge = f'Bearer realm="{realm}",service="front"'
                return self._reply(
                    401,
                    b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                    {"WWW-Authenticate": challenge},
                )
            conn = http.client.HTTPConnection(front.upstream, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "authorization"}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            passed = {k: v for k, v in resp.getheaders() if k.lower() not in ("content-length", "connection")}
            conn.close()
            self._reply(resp.status, data, passed)

        def _token(self) -> None:
            expected = "Basic " + base64.b64encode(":".join(front.token_user or ("", "")).encode()).decode()
            if self.headers.get("Authorization") != expected:
                return self._reply(401, b'{"details":"bad credentials"}')
            self._reply(
                200,
                json.dumps({"token": front.token}).encode(),
                {"Content-Type": "application/json"},
            )

        do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    return Handler


@contextlib.contextmanager
def registry_front(upstream: str) -> Iterator[Front]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    front = Front(host=f"127.0.0.1:{server.server_address[1]}", upstream=upstream)
    server.RequestHandlerClass = _handler(front)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield front
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
