"""Files on local disk or in S3 behind one small API: list, stat, read, publish atomically, copy.

A location is a string: ``s3://bucket/key`` (through :mod:`etl_core.s3`, which honours
``AWS_ENDPOINT_URL``), ``file:///abs/path`` or a plain path. Writers never expose a partial file:
local files are written to a temp file in the target directory and renamed into place; an S3
object appears whole when its PUT (or multipart upload) completes. boto3 is imported only when an
``s3://`` location is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fnmatch
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from etl_core.errors import NotFoundError, StorageError

if TYPE_CHECKING:
    from etl_core.s3 import S3

__all__ = [
    "FileInfo",
    "NotFoundError",
    "StorageError",
    "basename",
    "copy",
    "delete",
    "digest",
    "exists",
    "is_s3",
    "join",
    "list_files",
    "list_folders",
    "local_input",
    "parent",
    "read_bytes",
    "reset_clients",
    "staged_output",
    "stat",
    "upload_file",
    "write_bytes",
]

_CHUNK = 1024 * 1024
_s3_client: S3 | None = None


@dataclasses.dataclass(frozen=True, order=True)
class FileInfo:
    """One file or object: where it is, its size, when it last changed and (S3) its ETag."""

    url: str
    size: int
    modified: dt.datetime
    etag: str | None = None

    @property
    def name(self) -> str:
        return basename(self.url)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "size": self.size,
            "modified": self.modified.isoformat().replace("+00:00", "Z"),
            "etag": self.etag,
        }


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


def _s3() -> S3:
    global _s3_client
    if _s3_client is None:
        from etl_core.s3 import S3

        _s3_client = S3()
    return _s3_client


def reset_clients() -> None:
    """Forget the cached S3 client (tests that change ``AWS_ENDPOINT_URL`` call this)."""
    global _s3_client
    _s3_client = None


def _path(url: str) -> Path:
    if url.startswith("file://"):
        url = url[len("file://") :]
        if not url.startswith("/"):
            raise StorageError(f"invalid file URL {('file://' + url)!r}: use file:///absolute/path")
    if "://" in url:
        raise StorageError(f"unsupported location {url!r}: use s3://bucket/key, file:///path or a local path")
    return Path(url)


def join(base: str, *parts: str) -> str:
    """``base`` with ``parts`` appended as path segments (``join("s3://b/x", "y.csv")``)."""
    out = base.rstrip("/") if base not in {"/", "s3://"} else base
    for part in parts:
        part = part.strip("/")
        if part:
            out = f"{out}/{part}" if not out.endswith("/") else out + part
    return out


def parent(url: str) -> str:
    """The directory or prefix holding ``url`` (no trailing slash)."""
    trimmed = url.rstrip("/")
    if is_s3(trimmed):
        head, _, _ = trimmed.rpartition("/")
        return head if len(head) > len("s3:/") else trimmed
    return str(_path(trimmed).parent)


def basename(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)


def _local_info(path: Path) -> FileInfo:
    st = path.stat()
    return FileInfo(url=str(path), size=st.st_size, modified=_utc(st.st_mtime))


def _s3_info(obj: Any) -> FileInfo:
    modified = obj.last_modified or dt.datetime.fromtimestamp(0, tz=dt.UTC)
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=dt.UTC)
    return FileInfo(url=str(obj.url), size=obj.size, modified=modified.astimezone(dt.UTC), etag=obj.etag)


def _hidden(rel: str) -> bool:
    # Temp files of writers in progress (".name.xyz.tmp") and folders such as ".staging".
    return any(segment.startswith(".") for segment in rel.split("/"))


def _matches(rel: str, pattern: str | None) -> bool:
    if pattern is None:
        return True
    target = rel if "/" in pattern else rel.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(target, pattern)


def list_files(url: str, *, pattern: str | None = None, recursive: bool = True) -> list[FileInfo]:
    """Files at ``url``: the file itself, or those under a directory / key prefix, sorted by URL.

    ``pattern`` is a glob matched against the name (or against the path relative to ``url`` when
    it contains a ``/``). Hidden entries (a segment starting with ``.``) are skipped: they are
    writers' temp files. Raises :class:`NotFoundError` when nothing exists at ``url``.
    """
    if is_s3(url):
        return _list_s3(url, pattern=pattern, recursive=recursive)
    root = _path(url)
    if root.is_file():
        return [_local_info(root)]
    if not root.is_dir():
        raise NotFoundError(f"no such file or directory: {str(root)!r}")
    found: list[FileInfo] = []
    walker = root.rglob("*") if recursive else root.glob("*")
    for path in walker:
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not _hidden(rel) and _matches(rel, pattern):
            found.append(_local_info(path))
    return sorted(found)


def _list_s3(url: str, *, pattern: str | None, recursive: bool) -> list[FileInfo]:
    from etl_core.s3 import parse_s3_url

    base = parse_s3_url(url)
    client = _s3()
    if base.key and not base.key.endswith("/"):
        with contextlib.suppress(_s3_not_found()):
            return [_s3_info(client.head(url))]
    prefix = base.key.rstrip("/") + "/" if base.key else ""
    found: list[FileInfo] = []
    for obj in client.list(f"s3://{base.bucket}/{prefix}"):
        rel = obj.url.key[len(prefix) :]
        if not rel or rel.endswith("/") or _hidden(rel):
            continue
        if not recursive and "/" in rel:
            continue
        if _matches(rel, pattern):
            found.append(_s3_info(obj))
    if not found and not _s3_prefix_exists(f"s3://{base.bucket}/{prefix}"):
        raise NotFoundError(f"nothing at {url!r}: no object with that key and no objects under that prefix")
    return sorted(found)


def list_folders(url: str) -> list[str]:
    """Names of the folders (S3: common prefixes) directly under ``url``, sorted."""
    if is_s3(url):
        from etl_core.s3 import parse_s3_url

        base = parse_s3_url(url)
        prefix = base.key.rstrip("/") + "/" if base.key else ""
        names = [p.key[len(prefix) :].rstrip("/") for p in _s3().list_prefixes(f"s3://{base.bucket}/{prefix}")]
        return sorted(n for n in names if n and not n.startswith("."))
    root = _path(url)
    if not root.is_dir():
        raise NotFoundError(f"no such directory: {str(root)!r}")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _s3_prefix_exists(url: str) -> bool:
    return any(True for _ in _s3().list(url, page_size=1))


def _s3_not_found() -> type[Exception]:
    """etl_core's S3 "not found" error class (imported lazily, with boto3)."""
    from etl_core.s3 import NotFound

    return NotFound


def stat(url: str) -> FileInfo:
    """Size and modification time of one file; raises :class:`NotFoundError`."""
    if is_s3(url):
        try:
            return _s3_info(_s3().head(url))
        except _s3_not_found() as exc:
            raise NotFoundError(f"no such object: {url!r}") from exc
    path = _path(url)
    if not path.is_file():
        raise NotFoundError(f"no such file: {str(path)!r}")
    return _local_info(path)


def exists(url: str) -> bool:
    try:
        stat(url)
    except NotFoundError:
        return False
    return True


def read_bytes(url: str) -> bytes:
    """The whole content of a (small) file; raises :class:`NotFoundError`."""
    if is_s3(url):
        try:
            return _s3().get(url).data
        except _s3_not_found() as exc:
            raise NotFoundError(f"no such object: {url!r}") from exc
    path = _path(url)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFoundError(f"no such file: {str(path)!r}") from None
    except OSError as exc:
        raise StorageError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc


def _atomic_local_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = ""
    finally:
        if tmp:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_bytes(url: str, data: bytes, *, content_type: str | None = None) -> None:
    """Write ``data`` to ``url`` so that readers see the old content or the new, never a part."""
    if is_s3(url):
        _s3().put(url, data, content_type=content_type)
        return
    try:
        _atomic_local_write(_path(url), lambda handle: handle.write(data))
    except OSError as exc:
        raise StorageError(f"cannot write {url!r}: {exc.strerror or exc}") from exc


def upload_file(path: Path, url: str) -> None:
    """Publish a local file at ``url`` atomically (S3 upload, or copy to a temp file + rename)."""
    if is_s3(url):
        _s3().upload_file(path, url)
        return
    target = _path(url)
    if target.resolve() == path.resolve():
        return

    def copy_into(handle: Any) -> None:
        with open(path, "rb") as source:
            shutil.copyfileobj(source, handle, _CHUNK)

    try:
        _atomic_local_write(target, copy_into)
    except OSError as exc:
        raise StorageError(f"cannot write {url!r}: {exc.strerror or exc}") from exc


def _tempdir(url: str) -> tempfile.TemporaryDirectory[str]:
    # Local targets stage next to the target (same filesystem: the final rename is atomic).
    if not is_s3(url):
        target_dir = _path(url).parent
        target_dir.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(prefix=".staging-", dir=target_dir)
    return tempfile.TemporaryDirectory(prefix="etl-")


@contextlib.contextmanager
def local_input(url: str) -> Iterator[Path]:
    """A local path with the content of ``url``: the file itself, or a temp download of the object."""
    if not is_s3(url):
        path = _path(url)
        if not path.is_file():
            raise NotFoundError(f"no such file: {str(path)!r}")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="etl-in-") as tmp:
        local = Path(tmp) / (basename(url) or "object")
        try:
            _s3().download_file(url, local)
        except _s3_not_found() as exc:
            raise NotFoundError(f"no such object: {url!r}") from exc
        yield local


@contextlib.contextmanager
def staged_output(url: str) -> Iterator[Path]:
    """A local temp path to write; when the block ends without error it is published at ``url``.

    On an error nothing is published and the temp file is removed.
    """
    with _tempdir(url) as tmp:
        local = Path(tmp) / (basename(url) or "output")
        yield local
        if not local.exists():
            raise StorageError(f"nothing was written for {url!r}")
        if is_s3(url):
            _s3().upload_file(local, url)
        else:
            target = _path(url)
            os.chmod(local, 0o644)
            os.replace(local, target)


def copy(src: str, dst: str) -> None:
    """Copy one file between any two locations (S3 to S3 is a server-side copy)."""
    if is_s3(src) and is_s3(dst):
        try:
            _s3().copy(src, dst)
        except _s3_not_found() as exc:
            raise NotFoundError(f"no such object: {src!r}") from exc
        return
    with local_input(src) as path:
        upload_file(path, dst)


def delete(url: str) -> None:
    """Remove a file or object (no error when it is already gone)."""
    if is_s3(url):
        _s3().delete(url)
        return
    with contextlib.suppress(FileNotFoundError):
        _path(url).unlink()


def digest(url: str, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, streamed."""
    try:
        hasher = hashlib.new(algorithm)
    except ValueError:
        raise StorageError(f"unknown hash algorithm {algorithm!r}: use sha256, sha1 or md5") from None
    with local_input(url) as path, open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()
