"""Writing the dags folder: fixed file modes, local disk errors named as such, and no symlink following.

- **Modes.** Airflow reads the folder as another user than the sidecar (in the chart, uid 50000 vs
  65532), so what the sidecar writes must be readable by others whatever its umask: files are
  0644 and folders 0755, set with fchmod/chmod after creation (the mode given to open/mkdir is
  masked by the umask; under umask 077 it gave 0600 files Airflow could not read).
- **Disk errors.** A write that fails in the dags folder (ENOSPC, EDQUOT, EROFS, ...) raises
  LocalDiskError naming the path and the free space of its volume, never as a store error
  ("cannot read s3://...") from inside a download.
- **No links followed.** Code that runs in the same pod (a DAG parsed by the dag-processor) can
  write the shared volume; a symlink planted at ``.sidecar/<pkg>/releases`` would make a GC that
  follows links empty its target. Removal walks the tree with ``O_NOFOLLOW`` folder descriptors and refuses a link.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sidecar.errors import LocalDiskError, LocalLayoutError

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "UnsafePathError",
    "create_file",
    "disk_error",
    "local_writes",
    "make_dir",
    "open_dir_nofollow",
    "remove_entry",
]

FILE_MODE = 0o644
DIR_MODE = 0o755
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NAMED = {errno.ENOSPC: "ENOSPC", errno.EDQUOT: "EDQUOT", errno.EROFS: "EROFS"}
DISK_ERRNOS = (*_NAMED.values(), "other")
"""Values of the ``errno`` label of ``etl_sidecar_local_disk_errors_total``."""


class UnsafePathError(LocalLayoutError):
    """A folder the sidecar manages is a symlink (or not a folder): it is never followed."""


def _free(path: Path) -> str:
    for candidate in (path, *path.parents):
        try:
            usage = shutil.disk_usage(candidate)
        except OSError:
            continue
        return f"{usage.free / 1048576:.1f} MiB free of {usage.total / 1048576:.1f} MiB"
    return "free space unknown"


def disk_error(exc: OSError, path: Path) -> LocalDiskError:
    """A LocalDiskError for ``exc`` raised while writing ``path`` in the dags folder."""
    name = _NAMED.get(exc.errno or 0) or (errno.errorcode.get(exc.errno or 0, "EIO"))
    what = {
        "ENOSPC": "no space left on the dags folder's volume",
        "EDQUOT": "the disk quota of the dags folder's volume is exhausted",
        "EROFS": "the dags folder's volume is read-only",
    }.get(name, f"writing the dags folder failed: {exc.strerror or exc}")
    return LocalDiskError(
        f"{what} ({name}) writing {str(path)!r}: {_free(path)}; the live release is kept: free space or "
        "enlarge the volume (the pod's emptyDir sizeLimit)",
        path=str(path),
        errno_name=name if name in _NAMED.values() else "other",
    )


@contextlib.contextmanager
def local_writes(path: Path) -> Iterator[None]:
    """Turn an OSError raised by writes under ``path`` into LocalDiskError."""
    try:
        yield
    except OSError as exc:
        raise disk_error(exc, path) from exc


def create_file(path: Path) -> BinaryIO:
    """A new file at ``path`` (never an existing one, never through a link), mode 0644 whatever the umask."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "wb")
    except BaseException:
        os.close(fd)
        raise


def make_dir(path: Path, *, exist_ok: bool = False) -> None:
    """mkdir ``path`` with mode 0755 whatever the umask; an existing one must be a real folder."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        if not exist_ok:
            raise
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode):
            kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a folder"
            raise UnsafePathError(
                f"{str(path)!r} is {kind}; the sidecar never follows links in its own folder: remove it"
            ) from None
        return
    os.chmod(path, DIR_MODE)


def open_dir_nofollow(root: Path, *parts: str) -> int:
    """A descriptor of the folder ``root/parts...``; ``root`` may be a link, nothing below it may.

    Raises UnsafePathError naming the first component that is a symlink or not a folder,
    FileNotFoundError when one is missing.
    """
    fd = os.open(root, _DIR_FLAGS)
    path = Path(root)
    try:
        for part in parts:
            path = path / part
            try:
                nfd = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                try:
                    target = os.readlink(part, dir_fd=fd)
                    kind = f"a symlink to {target!r}"
                except OSError:
                    kind = "not a folder"
                raise UnsafePathError(
                    f"{str(path)!r} is {kind}; the sidecar never follows links in its own folder: remove it"
                ) from None
            os.close(fd)
            fd = nfd
    except BaseException:
        os.close(fd)
        raise
    return fd


def remove_entry(dir_fd: int, name: str) -> None:
    """Remove ``name`` in the folder ``dir_fd``: a folder tree without following any link, else unlink."""
    st = os.lstat(name, dir_fd=dir_fd)
    if stat.S_ISDIR(st.st_mode):
        # rmtree with dir_fd walks by descriptors (shutil.rmtree.avoids_symlink_attacks on Linux)
        shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)
