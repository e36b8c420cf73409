"""Layer contents and the deterministic writer that turns them into a ``.tar.gz`` layer blob.

Contents come from a JSON manifest (``{"path_in_image": ..., "src": ...}`` entries), from whole
trees on disk (a site-packages directory, a Bazel runfiles tree; symlinks are followed and their
content copied) or from code. The tar is sorted by path (parents before children), every entry
has mtime ``SOURCE_DATE_EPOCH`` (or 0), uid/gid 0 and empty user/group names, and files get mode
0755 when any exec bit is set on the source, else 0644. Missing parent directories are added
with mode 0755.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import posixpath
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from tools.bazel.ocitool._tario import GzipWriter, TarWriter
from tools.bazel.ocitool.errors import LayerInputError, UsageError

__all__ = [
    "Entry",
    "LayerContents",
    "LayerResult",
    "default_mtime",
    "load_manifest",
    "normalize_image_path",
    "write_layer",
]

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
DEFAULT_GZIP_LEVEL = 6

Kind = Literal["file", "dir", "symlink", "hardlink"]


def default_mtime() -> int:
    """SOURCE_DATE_EPOCH when set (an integer), else 0."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not value:
        return 0
    try:
        mtime = int(value)
    except ValueError:
        raise UsageError(f"invalid SOURCE_DATE_EPOCH: {value!r} is not an integer") from None
    if mtime < 0:
        raise UsageError(f"invalid SOURCE_DATE_EPOCH: {value!r} is negative")
    return mtime


def normalize_image_path(path: str) -> str:
    """``/app/x/`` -> ``app/x``; rejects empty paths and ``..`` components."""
    if not isinstance(path, str) or not path.strip("/"):
        raise LayerInputError(f"image path {path!r} is empty or the root itself")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerInputError(f"image path {path!r} must not contain '..'")
    return "/".join(parts)


def _mode_from_source(st_mode: int) -> int:
    return 0o755 if st_mode & 0o111 else 0o644


@dataclasses.dataclass(frozen=True)
class Entry:
    """One tar entry. ``path`` is relative to the image root, without leading or trailing '/'."""

    path: str
    kind: Kind
    mode: int
    src: Path | None = None
    data: bytes | None = None
    target: str = ""
    uid: int = 0
    gid: int = 0
    origin: str = ""  # where the entry came from, for error messages

    def size(self) -> int:
        if self.kind != "file":
            return 0
        if self.data is not None:
            return len(self.data)
        assert self.src is not None
        return os.stat(self.src).st_size

    def read_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.src is not None
        return self.src.read_bytes()


def sort_key(path: str) -> tuple[str, ...]:
    return tuple(path.split("/"))


class LayerContents:
    """A set of entries keyed by image path; conflicting additions raise LayerInputError."""

    def __init__(self) -> None:
        self._entries: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, path: str) -> bool:
        return normalize_image_path(path) in self._entries

    def get(self, path: str) -> Entry | None:
        return self._entries.get(normalize_image_path(path))

    def entries(self) -> list[Entry]:
        """All entries plus implicit parent directories, sorted parents-first."""
        out = dict(self._entries)
        for path in list(self._entries):
            parent = posixpath.dirname(path)
            while parent:
                existing = out.get(parent)
                if existing is None:
                    out[parent] = Entry(path=parent, kind="dir", mode=0o755, origin="implicit parent")
                elif existing.kind != "dir":
                    raise LayerInputError(
                        f"image path {'/' + parent!r} is a {existing.kind} (from {existing.origin!r}) "
                        f"but {'/' + path!r} needs it to be a directory"
                    )
                parent = posixpath.dirname(parent)
        return [out[p] for p in sorted(out, key=sort_key)]

    def add(self, entry: Entry) -> None:
        old = self._entries.get(entry.path)
        if old is not None and not _same(old, entry):
            raise LayerInputError(
                f"image path {'/' + entry.path!r} is given twice, by {old.origin!r} and by "
                f"{entry.origin!r} with different content: keep one of them"
            )
        self._entries[entry.path] = entry

    def add_file(self, path: str, src: str | os.PathLike[str], *, mode: int | None = None) -> None:
        src_path = Path(src)
        try:
            st = os.stat(src_path)  # follows symlinks: we copy content
        except FileNotFoundError:
            raise LayerInputError(f"source file {str(src)!r} for {path!r} does not exist") from None
        if stat.S_ISDIR(st.st_mode):
            self.add_tree(src_path, path)
            return
        if not stat.S_ISREG(st.st_mode):
            raise LayerInputError(f"source {str(src)!r} for {path!r} is not a regular file")
        self.add(
            Entry(
                path=normalize_image_path(path),
                kind="file",
                mode=_mode_from_source(st.st_mode) if mode is None else mode,
                src=src_path,
                origin=str(src),
            )
        )

    def add_bytes(self, path: str, data: bytes, *, mode: int = 0o644, origin: str = "inline") -> None:
        self.add(
            Entry(
                path=normalize_image_path(path),
                kind="file",
                mode=mode,
                data=data,
                origin=origin,
            )
        )

    def add_dir(
        self,
        path: str,
        *,
        mode: int = 0o755,
        uid: int = 0,
        gid: int = 0,
        origin: str = "",
    ) -> None:
        self.add(
            Entry(
                path=normalize_image_path(path),
                kind="dir",
                mode=mode,
                uid=uid,
                gid=gid,
                origin=origin or path,
            )
        )

    def add_symlink(self, path: str, target: str, *, origin: str = "") -> None:
        if not target:
            raise LayerInputError(f"symlink {path!r} has an empty target")
        self.add(
            Entry(
                path=normalize_image_path(path),
                kind="symlink",
                mode=0o777,
                target=target,
                origin=origin or path,
            )
        )

    def add_tree(
        self,
        src_dir: str | os.PathLike[str],
        prefix: str,
        *,
        excludes: Iterable[str] = (),
    ) -> int:
        """Add everything below ``src_dir`` at ``prefix``, following symlinks; returns files added.

        ``excludes`` are fnmatch patterns tested against the path relative to ``src_dir`` and
        against each path component (so ``__pycache__`` drops those directories everywhere).
        """
        root = Path(src_dir)
        if not root.is_dir():
            raise LayerInputError(f"tree {str(src_dir)!r} for {prefix!r} is not a directory")
        patterns = list(excludes)
        image_prefix = normalize_image_path(prefix)
        self.add_dir(image_prefix, origin=str(root))
        count = 0
        for rel, full, is_dir in _walk(root, patterns):
            image_path = image_prefix + "/" + rel
            if is_dir:
                self.add(Entry(path=image_path, kind="dir", mode=0o755, origin=str(full)))
                continue
            try:
                st = os.stat(full)
            except FileNotFoundError:
                raise LayerInputError(f"{str(full)!r} in tree {str(src_dir)!r} is a broken symlink") from None
            self.add(
                Entry(
                    path=image_path,
                    kind="file",
                    mode=_mode_from_source(st.st_mode),
                    src=full,
                    origin=str(full),
                )
            )
            count += 1
        return count


def _same(a: Entry, b: Entry) -> bool:
    if (a.kind, a.mode, a.target, a.uid, a.gid) != (
        b.kind,
        b.mode,
        b.target,
        b.uid,
        b.gid,
    ):
        return False
    if a.kind != "file":
        return True
    if a.src is not None and b.src is not None and os.path.realpath(a.src) == os.path.realpath(b.src):
        return True
    return a.size() == b.size() and a.read_bytes() == b.read_bytes()


def _excluded(rel: str, patterns: list[str]) -> bool:
    if not patterns:
        return False
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def _walk(root: Path, patterns: list[str]) -> Iterator[tuple[str, Path, bool]]:
    """(relative path, real path on disk, is_dir) below ``root``, following symlinked dirs."""
    stack: list[tuple[str, Path, frozenset[str]]] = [("", root, frozenset({os.path.realpath(root)}))]
    while stack:
        rel_dir, directory, seen = stack.pop()
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            raise LayerInputError(f"cannot list {str(directory)!r}: {exc.strerror}") from None
        for name in names:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if _excluded(rel, patterns):
                continue
            full = directory / name
            if full.is_dir():  # follows symlinks
                real = os.path.realpath(full)
                if real in seen:
                    raise LayerInputError(f"symlink loop at {str(full)!r} (points back to {real!r})")
                yield rel, full, True
                stack.append((rel, full, seen | {real}))
            else:
                yield rel, full, False


def _parse_mode(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
    elif isinstance(value, str):
        try:
            mode = int(value, 8)
        except ValueError:
            raise LayerInputError(f"{where}: mode {value!r} is not an octal number like '0755'") from None
    else:
        raise LayerInputError(f"{where}: mode {value!r} must be an octal string like '0755'")
    if not 0 <= mode <= 0o7777:
        raise LayerInputError(f"{where}: mode {value!r} is out of range")
    return mode


def load_manifest(path: str | os.PathLike[str], contents: LayerContents | None = None) -> LayerContents:
    """Read a layer manifest: a JSON list (or ``{"entries": [...]}``) of entries.

    Entry forms (``mode`` optional, octal string):
      ``{"path_in_image": "/app/x.py", "src": "pkg/x.py"}``     file (or a directory: whole tree)
      ``{"path_in_image": "/app/VERSION", "content": "1.0\\n"}`` inline text
      ``{"path_in_image": "/app/data", "type": "dir"}``         directory
      ``{"path_in_image": "/app/cur", "type": "symlink", "target": "v1"}``
    Relative ``src`` paths are taken from the current directory (Bazel's execroot).
    """
    contents = contents if contents is not None else LayerContents()
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LayerInputError(f"layer manifest {str(path)!r} does not exist") from None
    except json.JSONDecodeError as exc:
        raise LayerInputError(f"layer manifest {str(path)!r} is not valid JSON: {exc}") from None
    items = raw.get("entries") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise LayerInputError(f"layer manifest {str(path)!r} must be a list of entries or {{'entries': [...]}}")
    for index, item in enumerate(items):
        where = f"{path}: entry {index}"
        if not isinstance(item, dict) or not isinstance(item.get("path_in_image"), str):
            raise LayerInputError(f"{where}: {item!r} needs a string 'path_in_image'")
        dest = item["path_in_image"]
        kind = item.get("type", "file")
        mode = _parse_mode(item.get("mode"), where)
        if kind == "dir":
            contents.add_dir(dest, mode=0o755 if mode is None else mode, origin=where)
        elif kind == "symlink":
            target = item.get("target")
            if not isinstance(target, str):
                raise LayerInputError(f"{where}: symlink {dest!r} needs a string 'target'")
            contents.add_symlink(dest, target, origin=where)
        elif kind == "file":
            if isinstance(item.get("content"), str):
                contents.add_bytes(
                    dest,
                    item["content"].encode("utf-8"),
                    mode=0o644 if mode is None else mode,
                    origin=where,
                )
            elif isinstance(item.get("src"), str):
                contents.add_file(dest, item["src"], mode=mode)
            else:
                raise LayerInputError(f"{where}: file {dest!r} needs 'src' (a path) or 'content' (text)")
        else:
            raise LayerInputError(f"{where}: type {kind!r} must be one of 'file', 'dir', 'symlink'")
    return contents


@dataclasses.dataclass(frozen=True)
class LayerResult:
    """What ``write_layer`` wrote: the blob's digest and size, and the uncompressed diff_id."""

    path: Path
    digest: str
    size: int
    diff_id: str
    entries: int

    def descriptor(self) -> dict[str, Any]:
        return {
            "mediaType": LAYER_MEDIA_TYPE,
            "digest": self.digest,
            "size": self.size,
            "diff_id": self.diff_id,
        }


def write_tar(contents: LayerContents, sink: Any, *, mtime: int) -> int:
    """Write the sorted entries as a tar stream to ``sink``; returns the entry count."""
    tar = TarWriter(sink)
    entries = contents.entries()
    for entry in entries:
        if entry.kind == "dir":
            tar.add_dir(entry.path, mode=entry.mode, mtime=mtime, uid=entry.uid, gid=entry.gid)
        elif entry.kind == "symlink":
            tar.add_symlink(entry.path, entry.target, mtime=mtime, uid=entry.uid, gid=entry.gid)
        elif entry.kind == "hardlink":
            tar.add_hardlink(
                entry.path,
                entry.target,
                mode=entry.mode,
                mtime=mtime,
                uid=entry.uid,
                gid=entry.gid,
            )
        elif entry.data is not None:
            tar.add_file_bytes(
                entry.path,
                entry.data,
                mode=entry.mode,
                mtime=mtime,
                uid=entry.uid,
                gid=entry.gid,
            )
        else:
            assert entry.src is not None
            with open(entry.src, "rb") as stream:
                size = os.fstat(stream.fileno()).st_size
                tar.add_file_stream(
                    entry.path,
                    stream,
                    size,
                    mode=entry.mode,
                    mtime=mtime,
                    uid=entry.uid,
                    gid=entry.gid,
                )
    tar.close()
    return len(entries)


def write_layer(
    contents: LayerContents,
    out: str | os.PathLike[str],
    *,
    mtime: int | None = None,
    level: int = DEFAULT_GZIP_LEVEL,
) -> LayerResult:
    """Write ``contents`` as a gzip-compressed tar to ``out`` (atomically) and return its digests."""
    out_path = Path(out)
    tmp = out_path.with_name(out_path.name + ".tmp")
    mtime = default_mtime() if mtime is None else mtime
    try:
        with open(tmp, "wb") as fh:
            gz = GzipWriter(fh, level=level)
            count = write_tar(contents, gz, mtime=mtime)
            gz.close()
        os.replace(tmp, out_path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return LayerResult(
        path=out_path,
        digest=gz.out.digest,
        size=gz.out.size,
        diff_id=gz.raw.digest,
        entries=count,
    )
