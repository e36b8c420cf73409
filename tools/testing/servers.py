"""Real local servers for tests: each starts on a free loopback port and stops on exit.

Tests and benchmarks use these instead of mocks: the S3 API is a real ``moto_server`` speaking
HTTP, so boto3, the AWS CLI and our own code go through the same wire protocol as in production.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tools.testing.children import spawn

__all__ = ["MotoServer", "create_iam_users", "free_port", "iam_requests", "moto_server", "wait_for_http"]


_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_REQUEST_RE = re.compile(r'"(GET|PUT|POST|DELETE|HEAD|PATCH|OPTIONS) (\S+) HTTP/1\.[01]"')


class ServerStartError(RuntimeError):
    """A local test server did not become ready in time."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a server process and reap it; kill it if it ignores SIGTERM for 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_http(url: str, *, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers any HTTP status, or raise ServerStartError."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerStartError(f"server for {url!r} exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered: that is all we wait for
        except OSError as exc:  # connection refused while it starts
            last = exc
            time.sleep(0.05)
    raise ServerStartError(f"server at {url!r} not ready after {timeout}s: {last!r}")


@dataclasses.dataclass
class MotoServer:
    """A running moto S3 server and where its request log goes."""

    endpoint_url: str
    port: int
    log_path: Path
    proc: subprocess.Popen[bytes]
    extra_env: dict[str, str] = dataclasses.field(default_factory=dict)
    _sentinels: int = 0

    def env(self) -> dict[str, str]:
        """Environment for a client process (boto3, aws CLI) that should talk to this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self, service: str = "s3", *, key: tuple[str, ...] = ("testing", "testing"), **options: Any) -> Any:
        """A boto3 client of ``service`` on this server, signed with ``key`` (id, secret[, session token])."""
        import boto3  # moto's own dependency; imported when a test asks for a client

        credentials = dict(zip(("aws_access_key_id", "aws_secret_access_key", "aws_session_token"), key, strict=False))
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name="us-east-1", **credentials, **options)

    def requests(self, *, settle: float = 0.3, timeout: float = 10.0) -> list[tuple[str, str]]:
        """(method, path) of every request the server has logged so far, in order of logging.

        The server logs a request after it has sent the response, from the handler's thread, so a
        client can see its call return before the log line exists. So: send a sentinel request,
        wait until it is logged, then until the log has not grown for ``settle`` seconds. The
        sentinel requests (``/moto-api/?sentinel=...``) are left out of the result.
        """
        self._sentinels += 1
        token = f"sentinel={os.getpid()}-{self._sentinels}"
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/?{token}", timeout=5):
                pass
        except OSError:
            pass  # a stopped server logs nothing more: read what is there
        deadline = time.monotonic() + timeout
        size = -1
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            if token in text and len(text) == size:
                break
            size = len(text)
            time.sleep(settle if token in text else 0.02)
        # werkzeug access log: 127.0.0.1 - - [date] "PUT /bucket/key HTTP/1.1" 200 -
        # Handler threads write concurrently, so two entries can share a line: match entries, not lines.
        text = _ANSI_RE.sub("", self.log_path.read_text(errors="replace"))  # werkzeug colours non-200 lines
        return [(m.group(1), m.group(2)) for m in _REQUEST_RE.finditer(text) if "sentinel=" not in m.group(2)]

    def mark(self) -> int:
        """Number of requests logged so far: pass it to ``requests_since``."""
        return len(self.requests())

    def requests_since(self, mark: int) -> list[tuple[str, str]]:
        return self.requests()[mark:]

    def stop(self) -> None:
        stop_process(self.proc)

    def start_again(self) -> None:
        """Restart a stopped server on the same port (its state is lost, as after an outage)."""
        self.stop()
        self.proc = _spawn_moto(self.port, self.log_path, self.extra_env)
        wait_for_http(self.endpoint_url + "/moto-api/", timeout=30, proc=self.proc)


def _spawn_moto(port: int, log_path: Path, extra_env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    env = {**os.environ, **extra_env}
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["NO_COLOR"] = "1"
    try:
        return spawn(  # dies with the test or demo that started it, even a SIGKILLed one
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    finally:
        log.close()


@contextlib.contextmanager
def moto_server(
    *, log_dir: str | os.PathLike[str] | None = None, unchecked_requests: int | None = None
) -> Iterator[MotoServer]:
    """Start ``moto.server`` on a free 127.0.0.1 port; yield it; stop it on exit.

    ``unchecked_requests=N`` turns on moto's IAM auth after the server's first N requests: from
    then on every request's SigV4 signature and IAM policy are checked. The first N are the setup
    that creates the keys (``create_iam_users`` costs ``iam_requests(users)`` of them).
    """
    owned = None
    if log_dir is None and os.environ.get("MOTO_LOG_DIR"):
        log_dir = os.environ["MOTO_LOG_DIR"]  # keep the request logs (debugging a test)
    if log_dir is None:
        owned = tempfile.TemporaryDirectory(prefix="moto-")
        log_dir = owned.name
    port = free_port()
    log_path = Path(log_dir) / f"moto-{port}.log"
    extra_env = {} if unchecked_requests is None else {"INITIAL_NO_AUTH_ACTION_COUNT": str(unchecked_requests)}
    proc = _spawn_moto(port, log_path, extra_env)
    server = MotoServer(
        endpoint_url=f"http://127.0.0.1:{port}", port=port, log_path=log_path, proc=proc, extra_env=extra_env
    )
    try:
        wait_for_http(server.endpoint_url + "/moto-api/", timeout=60, proc=proc)
        yield server
    finally:
        server.stop()
        if owned is not None:
            owned.cleanup()


def iam_requests(users: Mapping[str, Mapping[str, Any] | None]) -> int:
    """How many requests ``create_iam_users(server, users)`` makes (for ``unchecked_requests``)."""
    return sum(2 if policy is None else 3 for policy in users.values())


def create_iam_users(server: MotoServer, users: Mapping[str, Mapping[str, Any] | None]) -> dict[str, tuple[str, str]]:
    """Create IAM users on ``server``, each with an access key and its inline policy (None: no policy).

    Returns user -> (access key id, secret access key).
    """
    iam = server.client("iam")
    keys = {}
    for user, policy in users.items():
        iam.create_user(UserName=user)
        created = iam.create_access_key(UserName=user)["AccessKey"]
        keys[user] = (created["AccessKeyId"], created["SecretAccessKey"])
        if policy is not None:
            iam.put_user_policy(UserName=user, PolicyName="p", PolicyDocument=json.dumps(policy))
    return keys
