"""A real OCI registry for tests: Debian's ``docker-registry`` on a free 127.0.0.1 port.

``registry_server()`` writes a config with filesystem storage in a temp dir (and, with
``users=``, htpasswd auth), starts ``docker-registry serve CONFIG``, waits for ``/v2/`` and
stops it on exit. ``RegistryServer.requests()`` reads the registry's access log as
``(method, path, status)`` triples, so tests can count uploads and HEAD hits.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from tools.testing.children import spawn
from tools.testing.servers import free_port, stop_process, wait_for_http

__all__ = [
    "RegistryServer",
    "RegistryToolMissing",
    "htpasswd_line",
    "registry_binary",
    "registry_server",
    "write_docker_config",
]

_ACCESS_RE = re.compile(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3})')


class RegistryToolMissing(RuntimeError):
    """docker-registry, or a bcrypt implementation for htpasswd, is not installed here."""


def registry_binary() -> str | None:
    """Path of Debian's ``docker-registry`` (package docker-registry), or None."""
    return shutil.which("docker-registry") or (
        "/usr/bin/docker-registry" if os.path.exists("/usr/bin/docker-registry") else None
    )


def htpasswd_line(user: str, password: str) -> str:
    """``user:$2...`` bcrypt entry, from Python's ``bcrypt`` or Apache's ``htpasswd -B``."""
    try:
        import bcrypt  # type: ignore[import-not-found]

        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        return f"{user}:{hashed}"
    except ImportError:
        pass
    tool = shutil.which("htpasswd")
    if tool is None:
        raise RegistryToolMissing("no bcrypt: install PyPI 'bcrypt' or Debian 'apache2-utils' (htpasswd)")
    out = subprocess.run(
        [tool, "-nbB", "-C", "4", user, password],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def write_docker_config(directory: str | os.PathLike[str], auths: Mapping[str, tuple[str, str]]) -> Path:
    """Write ``config.json`` with basic ``auth`` entries; point DOCKER_CONFIG at ``directory``."""
    path = Path(directory) / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "auths": {
            host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
            for host, (user, password) in auths.items()
        }
    }
    path.write_text(json.dumps(data, indent=2))
    return path


@dataclasses.dataclass
class RegistryServer:
    """A running docker-registry and where its data and log are."""

    host: str  # 127.0.0.1:PORT, the registry part of an image address
    port: int
    url: str
    storage: Path
    config_path: Path
    log_path: Path
    proc: subprocess.Popen[bytes]

    def repository(self, name: str) -> str:
        return f"{self.host}/{name}"

    def requests(self) -> list[tuple[str, str, int]]:
        """(method, path, status) of every request logged so far, in order."""
        text = self.log_path.read_text(errors="replace")
        return [(m.group(1), m.group(2), int(m.group(3))) for m in _ACCESS_RE.finditer(text)]

    def mark(self) -> int:
        return len(self.requests())

    def requests_since(self, mark: int) -> list[tuple[str, str, int]]:
        return self.requests()[mark:]

    def stop(self) -> None:
        stop_process(self.proc)

    def start_again(self) -> None:
        """Restart a stopped registry on the same port and storage (its blobs survive)."""
        self.stop()
        self.proc = _spawn(self.config_path, self.log_path)
        wait_for_http(self.url + "/v2/", timeout=30, proc=self.proc)


def _spawn(config: Path, log_path: Path) -> subprocess.Popen[bytes]:
    binary = registry_binary()
    if binary is None:
        raise RegistryToolMissing("docker-registry is not installed (Debian package docker-registry)")
    log = open(log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
    try:
        return spawn(  # dies with the test or demo that started it, even a SIGKILLed one
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
    finally:
        log.close()


@contextlib.contextmanager
def registry_server(
    *,
    users: Mapping[str, str] | None = None,
    work_dir: str | os.PathLike[str] | None = None,
) -> Iterator[RegistryServer]:
    """Start docker-registry on a free 127.0.0.1 port; ``users`` = {name: password} turns on htpasswd."""
    owned = None
    if work_dir is None:
        owned = tempfile.TemporaryDirectory(prefix="registry-")
        work_dir = owned.name
    base = Path(work_dir)
    port = free_port()
    storage = base / f"storage-{port}"
    storage.mkdir(parents=True)
    lines = [
        "version: 0.1",
        "log:",
        "  level: info",
        "  formatter: text",
        "  accesslog:",
        "    disabled: false",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        "  secret: ocitool-test-secret",
    ]
    if users:
        htpasswd = base / f"htpasswd-{port}"
        htpasswd.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in users.items()))
        lines += [
            "auth:",
            "  htpasswd:",
            "    realm: registry-test",
            f"    path: {htpasswd}",
        ]
    config = base / f"config-{port}.yml"
    config.write_text("\n".join(lines) + "\n")
    log_path = base / f"registry-{port}.log"
    proc = _spawn(config, log_path)
    server = RegistryServer(
        host=f"127.0.0.1:{port}",
        port=port,
        url=f"http://127.0.0.1:{port}",
        storage=storage,
        config_path=config,
        log_path=log_path,
        proc=proc,
    )
    try:
        wait_for_http(server.url + "/v2/", timeout=30, proc=proc)
        yield server
    finally:
        server.stop()
        if owned is not None:
            owned.cleanup()
