"""The sidecar's files in DAGS_DIR: versioned release folders and one symlink per package.

```
<DAGS_DIR>/.airflowignore                     hides .sidecar/ from Airflow (glob and regexp syntax)
<DAGS_DIR>/<pkg> -> .sidecar/<pkg>/releases/<tree12>-<nonce>     what Airflow reads
<DAGS_DIR>/.sidecar/lock                      one writer per DAGS_DIR (flock)
<DAGS_DIR>/.sidecar/<pkg>/releases/<dir>/     a complete, verified release; never changed once here
<DAGS_DIR>/.sidecar/<pkg>/staging/<nonce>/    a release being downloaded (removed on restart)
<DAGS_DIR>/.sidecar/<pkg>/quarantine/<dir>/   rejected releases with REASON.json (newest few kept)
```

A package switches release by renaming a new symlink over ``<DAGS_DIR>/<pkg>`` (rename(2) is
atomic), so a reader that resolves the link sees the old release or the new one, never a mix.
Retired release folders stay for a grace period so readers that resolved the old link can finish.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from sidecar.errors import LocalLayoutError

__all__ = ["IGNORE_LINES", "MANIFEST_NAME", "STATE_DIR_NAME", "DagsDir", "LocalRelease"]

STATE_DIR_NAME = ".sidecar"
MANIFEST_NAME = ".release.json"
IGNORE_FILE_NAME = ".airflowignore"
IGNORE_LINES = (
    "# Managed by the DAG sync sidecar: hide its staging area (.sidecar/) from Airflow.",
    "# First line for dag_ignore_file_syntax = glob (the default), second for regexp.",
    f"/{STATE_DIR_NAME}/",
    rf"^\{STATE_DIR_NAME}(/|$)",
)


@dataclasses.dataclass(frozen=True)
class LocalRelease:
    """A release folder on disk and its manifest (local file name -> sha256)."""

    path: Path
    files: dict[str, str]
    tree: str
    manifest: dict[str, Any]

    @property
    def name(self) -> str:
        return self.path.name


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path`` and rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class DagsDir:
    """The dags folder as the sidecar manages it (see the module docstring for the layout)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.state = self.root / STATE_DIR_NAME
        self._lock_fd: int | None = None

    # ---------------------------------------------------------------- start-up

    def prepare(self) -> None:
        """Create the folders and make sure ``.airflowignore`` hides the staging area."""
        self.state.mkdir(parents=True, exist_ok=True)
        ignore = self.root / IGNORE_FILE_NAME
        try:
            current = ignore.read_text()
        except FileNotFoundError:
            current = ""
        present = {line.strip() for line in current.splitlines()}
        missing = [line for line in IGNORE_LINES if line not in present]
        if missing:
            prefix = current if not current or current.endswith("\n") else current + "\n"
            write_file_atomic(ignore, (prefix + "\n".join(missing) + "\n").encode())

    def try_lock(self) -> bool:
        """Take the single-writer lock (held until the process exits); False if another holds it."""
        if self._lock_fd is not None:
            return True
        fd = os.open(self.state / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return False
            raise
        self._lock_fd = fd
        return True

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def clean_leftovers(self) -> list[Path]:
        """Remove staging folders and temp links left by a process that died (call with the lock)."""
        removed: list[Path] = []
        for pkg_dir in self._package_state_dirs():
            staging = pkg_dir / "staging"
            if staging.is_dir():
                for entry in staging.iterdir():
                    _remove_tree(entry)
                    removed.append(entry)
            for entry in pkg_dir.glob(".link-*"):
                entry.unlink(missing_ok=True)
                removed.append(entry)
        for entry in self.root.glob(f".{IGNORE_FILE_NAME}.tmp-*"):
            entry.unlink(missing_ok=True)
        return removed

    # ---------------------------------------------------------------- reading

    def _package_state_dirs(self) -> list[Path]:
        if not self.state.is_dir():
            return []
        return sorted(p for p in self.state.iterdir() if p.is_dir() and not p.is_symlink())

    def link_path(self, package: str) -> Path:
        return self.root / package

    def link_target(self, package: str) -> str:
        return f"{STATE_DIR_NAME}/{package}/releases"

    def is_linked(self, package: str) -> bool:
        """True when ``<DAGS_DIR>/<pkg>`` is the sidecar's symlink to an existing release."""
        link = self.link_path(package)
        return link.is_symlink() and link.is_dir()

    def linked_packages(self) -> list[str]:
        """Packages whose ``<DAGS_DIR>/<pkg>`` symlink the sidecar manages."""
        out = []
        for entry in sorted(self.root.iterdir()):
            if entry.is_symlink() and os.readlink(entry).startswith(f"{STATE_DIR_NAME}/{entry.name}/releases/"):
                out.append(entry.name)
        return out

    def current_release(self, package: str) -> LocalRelease | None:
        """The release ``<DAGS_DIR>/<pkg>`` points at, or None (no link, dangling link, no manifest)."""
        link = self.link_path(package)
        if not link.is_symlink():
            if link.exists():
                raise LocalLayoutError(
                    f"{str(link)!r} is not the sidecar's symlink; move it out of DAGS_DIR so the sidecar "
                    f"can manage package {package!r}"
                )
            return None
        target = os.readlink(link)
        if not target.startswith(self.link_target(package) + "/"):
            raise LocalLayoutError(
                f"{str(link)!r} points at {target!r}, not at a sidecar release; remove it so the sidecar can "
                f"manage package {package!r}"
            )
        return self.read_release(self.root / target)

    def read_release(self, path: Path) -> LocalRelease | None:
        try:
            manifest = json.loads((path / MANIFEST_NAME).read_bytes())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        files = manifest.get("files")
        if not isinstance(files, dict):
            return None
        return LocalRelease(path=path, files=dict(files), tree=str(manifest.get("tree", "")), manifest=manifest)

    # ---------------------------------------------------------------- writing

    def new_staging(self, package: str) -> Path:
        staging = self.state / package / "staging" / secrets.token_hex(6)
        staging.mkdir(parents=True)
        return staging

    def commit(self, package: str, staging: Path, tree: str) -> Path:
        """Move a complete staging folder to ``releases/`` under a new name; return its path."""
        releases = self.state / package / "releases"
        releases.mkdir(parents=True, exist_ok=True)
        final = releases / f"{tree[:12]}-{secrets.token_hex(4)}"
        os.rename(staging, final)
        return final

    def switch(self, package: str, release: Path) -> None:
        """Point ``<DAGS_DIR>/<pkg>`` at ``release`` in one rename(2)."""
        link = self.link_path(package)
        if link.exists() and not link.is_symlink():
            raise LocalLayoutError(
                f"{str(link)!r} is a real folder, not the sidecar's symlink; move it out of DAGS_DIR so the "
                f"sidecar can manage package {package!r}"
            )
        self._retire_current(package)
        tmp = self.state / package / f".link-{secrets.token_hex(4)}"
        os.symlink(f"{self.link_target(package)}/{release.name}", tmp)
        try:
            os.replace(tmp, link)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.root)

    def remove_package(self, package: str) -> bool:
        """Unlink ``<DAGS_DIR>/<pkg>`` (its folders go after the grace period); False if not linked."""
        link = self.link_path(package)
        if not link.is_symlink():
            return False
        self._retire_current(package)
        link.unlink()
        _fsync_dir(self.root)
        return True

    def _retire_current(self, package: str) -> None:
        """Stamp the current release folder with now, so GC waits a full grace period from here."""
        link = self.link_path(package)
        if link.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.root / os.readlink(link))

    def quarantine(
        self,
        package: str,
        *,
        staging: Path | None,
        tree: str,
        reason: str,
        report: dict[str, Any],
        metadata: bytes | None,
        keep: int,
    ) -> Path:
        """Move a rejected release (or only its metadata) to ``quarantine/``; keep the newest ``keep``."""
        qdir = self.state / package / "quarantine"
        qdir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = qdir / f"{stamp}-{(tree or 'none')[:12]}-{secrets.token_hex(2)}"
        if staging is not None and staging.is_dir():
            os.rename(staging, dest)
        else:
            dest.mkdir()
        if metadata is not None:
            (dest / "metadata.json").write_bytes(metadata)
        (dest / "REASON.json").write_text(json.dumps({"reason": reason, **report}, indent=2, sort_keys=True) + "\n")
        entries = sorted(p for p in qdir.iterdir() if p.is_dir())
        for old in entries[: max(0, len(entries) - max(keep, 1))]:
            _remove_tree(old)
        return dest

    def discard(self, staging: Path) -> None:
        _remove_tree(staging)

    def gc(self, *, grace_period: float, now: float | None = None) -> list[Path]:
        """Remove release folders that are not current and were retired more than ``grace_period`` ago."""
        now = time.time() if now is None else now
        removed: list[Path] = []
        for pkg_dir in self._package_state_dirs():
            releases = pkg_dir / "releases"
            if not releases.is_dir():
                continue
            link = self.root / pkg_dir.name
            current = os.path.basename(os.readlink(link)) if link.is_symlink() else None
            for entry in releases.iterdir():
                if entry.name == current:
                    continue
                try:
                    retired_at = entry.lstat().st_mtime
                except FileNotFoundError:
                    continue
                if now - retired_at >= grace_period:
                    _remove_tree(entry)
                    removed.append(entry)
        return removed


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)
