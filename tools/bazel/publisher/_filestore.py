"""The local-folder implementation of Store (``file:///dir``), same key layout as S3.

Every write goes to a temp file in the target's directory and is renamed into place, so a
reader never sees a partial file. Conditional writes take an exclusive ``flock`` on the
target's directory around the check and the rename, which makes them atomic between
processes on one machine (the only place a local store is shared). ETags are the sha256 hex
of the content.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tools.bazel.publisher.errors import PreconditionFailedError, StoreError
from tools.bazel.publisher.store import ObjectInfo, StoredObject

__all__ = ["FileStore"]

_TMP_SUFFIX = ".tmp"


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(_TMP_SUFFIX)


def _make_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents as 0755, whatever the umask.

    A store's readers (the sidecar) may run as another user; with a umask such as 077 a plain
    mkdir would lock them out of the folders, as it would of 0600 files (objects are 0644).
    """
    missing = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o755)
        except FileExistsError:  # a concurrent writer made it
            continue
        os.chmod(path, 0o755)  # mkdir's mode is masked by the umask


class FileStore:
    """DAG store in a local folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.abspath(root))
        self.url = self.root.as_uri()

    def address(self, key: str) -> str:
        return f"{self.url}/{key}"

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if "\x00" in key or "\\" in key or any(p in ("", ".", "..") for p in parts):
            raise StoreError(f"unsafe local store key {key!r}")
        path = self.root.joinpath(*parts)
        if os.path.commonpath([self.root, os.path.abspath(path)]) != str(self.root):
            raise StoreError(f"unsafe local store key {key!r}: outside {str(self.root)!r}")
        return path

    @contextlib.contextmanager
    def _dir_lock(self, directory: Path) -> Iterator[None]:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    @staticmethod
    def _sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def iter_objects(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.root / prefix.rstrip("/") if prefix else self.root
        if not base.is_dir():
            return
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in filenames:
                if _is_temp(name):
                    continue
                full = Path(dirpath) / name
                key = full.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    found.append(key)
        for key in sorted(found):
            path = self.root / key
            try:
                sha = self._sha(path)
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            yield ObjectInfo(key=key, size=size, etag=sha, sha256=sha)

    def list_dirs(self, prefix: str) -> list[str]:
        base = self.root / prefix.rstrip("/")
        if not base.is_dir():
            return []
        return sorted(entry.name for entry in os.scandir(base) if entry.is_dir())

    def get(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StoreError(f"reading {self.address(key)!r}: {exc}") from exc
        return StoredObject(key=key, data=data, etag=hashlib.sha256(data).hexdigest())

    def head(self, key: str) -> ObjectInfo | None:
        obj = self.get(key)
        if obj is None:
            return None
        return ObjectInfo(key=key, size=len(obj.data), etag=obj.etag, sha256=obj.etag)

    def put(self, key: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        path = self._path(key)
        for attempt in range(3):  # a concurrent delete may remove an empty parent in between
            try:
                _make_dirs(path.parent)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
                break
            except FileNotFoundError as exc:
                if attempt == 2:
                    raise StoreError(f"writing {self.address(key)!r}: {exc}") from exc
            except OSError as exc:
                raise StoreError(f"writing {self.address(key)!r}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o644)
            with self._dir_lock(path.parent):
                if if_match is not None or if_none_match:
                    current = self.get(key)
                    if if_none_match and current is not None:
                        raise PreconditionFailedError(
                            f"writing {self.address(key)!r}: precondition failed (it already exists)"
                        )
                    if if_match is not None and (current is None or current.etag != if_match):
                        raise PreconditionFailedError(
                            f"writing {self.address(key)!r}: precondition failed (it was changed or removed)"
                        )
                os.replace(tmp, path)
        except PreconditionFailedError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StoreError(f"writing {self.address(key)!r}: {exc}") from exc
        return hashlib.sha256(data).hexdigest()

    def copy(self, src: str, dst: str, *, src_etag: str | None = None) -> str:
        obj = self.get(src)
        if obj is None:
            raise StoreError(f"copying {self.address(src)!r}: it does not exist")
        if src_etag is not None and obj.etag != src_etag:
            raise PreconditionFailedError(f"copying {self.address(src)!r}: it changed since it was checked")
        return self.put(dst, obj.data)

    def _remove_empty_parents(self, directory: Path) -> None:
        """Remove now-empty directories up to (not including) the root, like S3 "folders"."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        path = self._path(key)
        if not path.parent.is_dir():
            if if_match is not None:
                raise PreconditionFailedError(f"deleting {self.address(key)!r}: precondition failed (it is gone)")
            return
        try:
            with self._dir_lock(path.parent):
                if if_match is not None:
                    current = self.get(key)
                    if current is None or current.etag != if_match:
                        raise PreconditionFailedError(
                            f"deleting {self.address(key)!r}: precondition failed (it was changed or removed)"
                        )
                os.unlink(path)
            self._remove_empty_parents(path.parent)
        except FileNotFoundError:
            if if_match is not None:
                raise PreconditionFailedError(
                    f"deleting {self.address(key)!r}: precondition failed (it is gone)"
                ) from None
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            raise StoreError(f"deleting {self.address(key)!r}: {exc}") from exc
