"""A real Bazel HTTP remote cache for tests and benchmarks: Debian's nginx with WebDAV on loopback.

``remote_cache_server(work_dir)`` writes an nginx config (``/ac/`` and ``/cas/`` are plain files
under ``work_dir/data``; PUT creates them), starts nginx on a free 127.0.0.1 port, waits until it
answers and stops it on exit. Bazel uses it with ``--remote_cache=<url>``.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tools.testing.servers import free_port, stop_process, wait_for_http

__all__ = ["RemoteCacheToolMissing", "remote_cache_server"]

_NGINX_CONF = """
daemon off;
user root;
worker_processes 2;
error_log {root}/error.log;
pid {root}/nginx.pid;
events {{ worker_connections 256; }}
http {{
  access_log {root}/access.log;
  client_body_temp_path {root}/tmp;
  client_max_body_size 0;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      root {root}/data;
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
    }}
  }}
}}
"""


class RemoteCacheToolMissing(RuntimeError):
    """nginx is not installed here (Debian package nginx)."""


@contextlib.contextmanager
def remote_cache_server(work_dir: Path) -> Iterator[str]:
    """Start nginx WebDAV in ``work_dir``; yield its ``http://127.0.0.1:<port>`` URL; stop it on exit."""
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if nginx is None:
        raise RemoteCacheToolMissing("nginx is not installed (Debian package nginx)")
    port = free_port()
    for sub in ("data", "tmp"):
        (work_dir / sub).mkdir(parents=True, exist_ok=True)
    conf = work_dir / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(root=work_dir, port=port))
    proc = subprocess.Popen([nginx, "-c", str(conf), "-e", str(work_dir / "error.log")])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/", timeout=30, proc=proc)
        yield url
    finally:
        stop_process(proc)
