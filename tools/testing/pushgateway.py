"""A real Prometheus Pushgateway (Debian's prometheus-pushgateway) on a free loopback port."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tools.testing.children import spawn
from tools.testing.servers import ServerStartError, free_port, stop_process, wait_for_http

__all__ = ["Pushgateway", "pushgateway_binary", "pushgateway_server"]


def pushgateway_binary() -> str | None:
    return os.environ.get("PUSHGATEWAY_BIN") or shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")


@dataclasses.dataclass
class Pushgateway:
    url: str
    proc: subprocess.Popen[bytes]

    def groups(self) -> list[dict[str, Any]]:
        """Every pushed group: ``labels`` (job, grouping key) and its metric families (``/api/v1/metrics``)."""
        with urllib.request.urlopen(self.url + "/api/v1/metrics", timeout=10) as response:
            return list(json.loads(response.read())["data"])


@contextlib.contextmanager
def pushgateway_server(*, work_dir: Path | None = None) -> Iterator[Pushgateway]:
    """Start a Pushgateway on 127.0.0.1, metrics in memory only; stop it on exit."""
    binary = pushgateway_binary()
    if binary is None:
        raise ServerStartError("prometheus-pushgateway is not installed (Debian package prometheus-pushgateway)")
    port = free_port()
    with contextlib.ExitStack() as stack:
        folder = work_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pushgateway-")))
        folder.mkdir(parents=True, exist_ok=True)
        log = stack.enter_context(open(folder / "pushgateway.log", "ab"))
        proc = spawn(
            # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: shared by
            # every gateway started in the root, so one test saw another's metrics. Memory only.
            [binary, f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", "--persistence.file="],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=folder,
        )
        stack.callback(stop_process, proc)
        server = Pushgateway(url=f"http://127.0.0.1:{port}", proc=proc)
        wait_for_http(server.url + "/-/ready", timeout=30, proc=proc)
        yield server
