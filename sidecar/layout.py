"""The sidecar's files in DAGS_DIR: versioned release folders and one symlink per package.

```
<DAGS_DIR>/.airflowignore                     hides .sidecar/ from Airflow (glob and regexp syntax)
<DAGS_DIR>/<pkg> -> .sidecar/<pkg>/releases/<tree12>-<nonce>     what Airflow reads
<DAGS_DIR>/.sidecar/lock                      one writer per DAGS_DIR (flock)
<DAGS_DIR>/.sidecar/<pkg>/releases/<dir>/     a complete, verified release; never changed once here
<DAGS_DIR>/.sidecar/<pkg>/staging/<nonce>/    a release being downloaded (removed on restart)
<DAGS_DIR>/.sidecar/<pkg>/quarantine/<dir>/   rejected releases with REASON.json (newest few kept)
<DAGS_DIR>/.sidecar/<pkg>/REJECTED.json       the package's latest release was rejected: etag, reason
<DAGS_DIR>/.sidecar/<pkg>/STAGING.json        a release is being staged (left behind by a process that died)
```

A package switches release by renaming a new symlink over ``<DAGS_DIR>/<pkg>`` (rename(2) is
atomic), so a reader that resolves the link sees the old release or the new one, never a mix.
Retired release folders stay for a grace period so readers that resolved the old link can finish.

Files are written 0644 and folders 0755 whatever the umask, and nothing under ``.sidecar/`` is
followed through a symlink (sidecar/localfs.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import json
import os
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sidecar.errors import LocalLayoutError
from sidecar.localfs import (
    FILE_MODE,
    UnsafePathError,
    create_file,
    local_writes,
    make_dir,
    open_dir_nofollow,
    remove_entry,
)

__all__ = [
    "IGNORE_LINES",
    "MANIFEST_NAME",
    "REJECTED_RECORD",
    "STAGING_RECORD",
    "STATE_DIR_NAME",
    "DagsDir",
    "LocalRelease",
]

STATE_DIR_NAME = ".sidecar"
MANIFEST_NAME = ".release.json"
IGNORE_FILE_NAME = ".airflowignore"
REJECTED_RECORD = "REJECTED.json"
STAGING_RECORD = "STAGING.json"
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

    @property
    def dag_ids(self) -> frozenset[str]:
        """The dag_ids this release owns in the dags folder (older manifests: its file names)."""
        ids = self.manifest.get("dag_ids")
        if isinstance(ids, list) and all(isinstance(i, str) for i in ids):
            return frozenset(ids)
        return frozenset(name.removesuffix(".py") for name in self.files)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file_atomic(path: Path, data: bytes, *, fsync: bool = True) -> None:
    """Write ``data`` to a temp file beside ``path`` (mode 0644) and rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    try:
        with local_writes(path):
            with create_file(tmp) as out:
                out.write(data)
                if fsync:
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
        with local_writes(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            make_dir(self.state, exist_ok=True)
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
        fd = os.open(self.state / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
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

    def clean_leftovers(self, *, on_refused: Callable[[str], None] | None = None) -> list[Path]:
        """Remove staging folders and temp links left by a process that died (call with the lock)."""
        removed: list[Path] = []
        for pkg_dir in self._package_state_dirs():
            removed += self._remove_children(pkg_dir.name, "staging", keep=lambda _n, _st: False, on_refused=on_refused)
            removed += self._remove_children(
                pkg_dir.name,
                None,
                keep=lambda n, _st: not (n.startswith(".link-") or ".tmp-" in n),
                on_refused=on_refused,
                files_only=True,
            )
        for entry in self.root.glob(f".{IGNORE_FILE_NAME}.tmp-*"):
            entry.unlink(missing_ok=True)
        return removed

    def _remove_children(
        self,
        package: str,
        sub: str | None,
        *,
        keep: Callable[[str, os.stat_result], bool],
        on_refused: Callable[[str], None] | None,
        files_only: bool = False,
    ) -> list[Path]:
        """Remove the entries of ``.sidecar/<pkg>[/<sub>]`` that ``keep(name, lstat)`` refuses, by descriptors.

        A symlink in place of ``<pkg>`` or ``<sub>`` is never followed: ``on_refused`` gets the
        message and nothing is removed there.
        """
        parts = (package,) if sub is None else (package, sub)
        base = self.state.joinpath(*parts)
        try:
            fd = open_dir_nofollow(self.state, *parts)
        except FileNotFoundError:
            return []
        except UnsafePathError as exc:
            if on_refused is not None:
                on_refused(str(exc))
            return []
        removed: list[Path] = []
        try:
            with os.scandir(fd) as entries:
                names = sorted(e.name for e in entries)
            for name in names:
                try:
                    st = os.lstat(name, dir_fd=fd)
                except FileNotFoundError:
                    continue
                if keep(name, st) or (files_only and stat.S_ISDIR(st.st_mode)):
                    continue
                with contextlib.suppress(FileNotFoundError):
                    remove_entry(fd, name)
                    removed.append(base / name)
        finally:
            os.close(fd)
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

    def package_dir(self, package: str, *sub: str) -> Path:
        """``.sidecar/<pkg>[/<sub>...]``, created 0755; each part must be a real folder, never a link."""
        path = self.state
        with local_writes(path):
            for part in (package, *sub):
                path = path / part
                make_dir(path, exist_ok=True)
        return path

    def new_staging(self, package: str) -> Path:
        staging = self.package_dir(package, "staging") / secrets.token_hex(6)
        with local_writes(staging):
            make_dir(staging)
        return staging

    def commit(self, package: str, staging: Path, tree: str) -> Path:
        """Move a complete staging folder to ``releases/`` under a new name; return its path."""
        releases = self.package_dir(package, "releases")
        final = releases / f"{tree[:12]}-{secrets.token_hex(4)}"
        with local_writes(final):
            os.rename(staging, final)
        return final

    # ---------------------------------------------------------------- records

    def read_record(self, package: str, name: str) -> dict[str, Any] | None:
        """``.sidecar/<pkg>/<name>`` (REJECTED.json, STAGING.json) as a dict, or None (absent, unreadable)."""
        path = self.state / package / name
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                return None
            doc = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def write_record(self, package: str, name: str, doc: dict[str, Any], *, fsync: bool = False) -> None:
        """Replace ``.sidecar/<pkg>/<name>`` atomically (a process kill, the case it is for, keeps the page cache)."""
        path = self.package_dir(package) / name
        write_file_atomic(path, (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode(), fsync=fsync)

    def remove_record(self, package: str, name: str) -> None:
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            (self.state / package / name).unlink()

    def recorded_packages(self, name: str) -> list[str]:
        """Packages that have the record ``name``."""
        return [p.name for p in self._package_state_dirs() if (p / name).is_file() and not (p / name).is_symlink()]

    def switch(self, package: str, release: Path) -> None:
        """Point ``<DAGS_DIR>/<pkg>`` at ``release`` in one rename(2)."""
        link = self.link_path(package)
        if link.exists() and not link.is_symlink():
            raise LocalLayoutError(
                f"{str(link)!r} is a real folder, not the sidecar's symlink; move it out of DAGS_DIR so the "
                f"sidecar can manage package {package!r}"
            )
        self._retire_current(package)
        tmp = self.package_dir(package) / f".link-{secrets.token_hex(4)}"
        with local_writes(link):
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
                os.utime(self.root / os.readlink(link), follow_symlinks=False)

    def quarantine(
        self,
        package: str,
        *,
        staging: Path | None,
        tree: str,
        reason: str,
        report: dict[str, Any],
        metadata: bytes | Path | None,
        keep: int,
    ) -> Path:
        """Move a rejected release (or only its metadata) to ``quarantine/``; keep the newest ``keep``.

        ``metadata``: the bytes of metadata.json, or the path of a file holding them (moved in).
        """
        qdir = self.package_dir(package, "quarantine")
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = qdir / f"{stamp}-{(tree or 'none')[:12]}-{secrets.token_hex(2)}"
        with local_writes(dest):
            if staging is not None and staging.is_dir() and not staging.is_symlink():
                os.rename(staging, dest)
            else:
                make_dir(dest)
            if isinstance(metadata, Path):
                os.rename(metadata, dest / "metadata.json")
            elif metadata is not None:
                with create_file(dest / "metadata.json") as out:
                    out.write(metadata)
            with create_file(dest / "REASON.json") as out:
                out.write((json.dumps({"reason": reason, **report}, indent=2, sort_keys=True) + "\n").encode())
        names = sorted(p.name for p in qdir.iterdir() if p.is_dir() and not p.is_symlink())
        old = set(names[: max(0, len(names) - max(keep, 1))])
        self._remove_children(package, "quarantine", keep=lambda n, _st: n not in old, on_refused=None)
        return dest

    def discard(self, staging: Path) -> None:
        _remove_tree(staging)

    def gc(
        self,
        *,
        grace_period: float,
        now: float | None = None,
        on_refused: Callable[[str], None] | None = None,
    ) -> list[Path]:
        """Remove release folders that are not current and were retired more than ``grace_period`` ago.

        Walks ``.sidecar/<pkg>/releases/`` by folder descriptors opened with O_NOFOLLOW: a symlink
        planted there is refused (``on_refused`` gets the message), never emptied through.
        """
        now = time.time() if now is None else now
        removed: list[Path] = []
        for pkg_dir in self._package_state_dirs():
            link = self.root / pkg_dir.name
            current = os.path.basename(os.readlink(link)) if link.is_symlink() else None

            def keep(name: str, st: os.stat_result, current: str | None = current) -> bool:
                return name == current or now - st.st_mtime < grace_period

            removed += self._remove_children(pkg_dir.name, "releases", keep=keep, on_refused=on_refused)
        return removed


def _remove_tree(path: Path) -> None:
    """Remove ``path`` (a folder tree the sidecar made, or a file or link) without following links in it."""
    try:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        remove_entry(fd, path.name)
    except OSError:
        pass
    finally:
        os.close(fd)
