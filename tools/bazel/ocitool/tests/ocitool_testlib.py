"""Helpers shared by the ocitool tests: file trees, the CLI as a subprocess, a tiny base layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from tools.bazel.ocitool.layer import LayerContents, write_layer

HERE = Path(__file__).resolve().parent
PACKAGE_DIR = HERE.parent
LOCK = PACKAGE_DIR.parent / "images" / "base.lock.json"


def write_tree(root: Path, files: Mapping[str, str | bytes], *, executable: tuple[str, ...] = ()) -> Path:
    """Create files below ``root`` (``{"a/b.py": "text"}``); names in ``executable`` get mode 0755."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        path.chmod(0o755 if rel in executable else 0o644)
    return root


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env.pop("SOURCE_DATE_EPOCH", None)
    env.update(extra or {})
    return env


def run_cli(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m tools.bazel.ocitool ARGS`` in a child process, as Bazel actions run it."""
    return subprocess.run(
        [sys.executable, "-m", "tools.bazel.ocitool", *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        cwd=cwd,
        check=False,
        timeout=600,
    )


def tiny_base(directory: Path) -> Path:
    """A small stand-in base layer (no Python in it): enough for golden listings and pushes."""
    contents = LayerContents()
    contents.add_bytes(
        "/etc/passwd",
        b"root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/usr/sbin/nologin\n",
    )
    contents.add_bytes("/etc/group", b"root:x:0:\nnonroot:x:65532:\n")
    contents.add_dir("/tmp", mode=0o1777)
    contents.add_bytes("/usr/bin/tool", b"#!/bin/sh\n", mode=0o755)
    contents.add_symlink("/bin", "usr/bin")
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "base.tar.gz"
    write_layer(contents, out, mtime=0)
    return out


def can_build_base() -> str | None:
    """Why the real base cannot be built here, or None when it can."""
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap is not installed"
    if os.geteuid() != 0:
        return "building the base needs root (mmdebstrap root mode, chroot)"
    return None


def reachable_mirror() -> str | None:
    """DEBIAN_MIRROR or the host's apt mirror, when its trixie Release answers; else None."""
    from tools.bazel.ocitool.debian import mirror_from_apt_sources
    from tools.bazel.ocitool.errors import UsageError

    mirror = os.environ.get("DEBIAN_MIRROR", "").strip()
    if not mirror:
        try:
            mirror = mirror_from_apt_sources()
        except UsageError:
            return None
    try:
        with urllib.request.urlopen(f"{mirror}/dists/trixie/Release", timeout=20):
            return mirror
    except OSError:
        return None
