"""Read a layer blob once: its digests, its file list and the wheel metadata found in it."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import posixpath
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

from tools.bazel.ocitool.errors import ImageInputError

__all__ = ["DistInfo", "FileInfo", "LayerScan", "scan_layer"]


@dataclasses.dataclass(frozen=True)
class FileInfo:
    """One tar member as the listing shows it."""

    path: str  # no leading "./" or "/"; directories without trailing "/"
    type: str  # "-" file, "d" dir, "l" symlink, "h" hardlink, "c"/"b"/"p" special
    mode: int
    uid: int
    gid: int
    size: int
    target: str = ""


@dataclasses.dataclass(frozen=True)
class DistInfo:
    """An installed Python distribution (``*.dist-info``) found in a layer."""

    directory: str  # image path of the .dist-info directory
    metadata: bytes
    record: bytes | None


@dataclasses.dataclass
class LayerScan:
    """Digests and contents of one layer blob."""

    path: Path
    compressed: bool
    blob_digest: str  # sha256 of the file as it is (gzip or plain tar)
    blob_size: int
    diff_id: str  # sha256 of the uncompressed tar
    files: list[FileInfo]
    dists: list[DistInfo]


class _HashingReader:
    """Reads from ``raw`` while hashing what was read."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def readable(self) -> bool:
        return True

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


_TYPES = {
    tarfile.REGTYPE: "-",
    tarfile.AREGTYPE: "-",
    tarfile.DIRTYPE: "d",
    tarfile.SYMTYPE: "l",
    tarfile.LNKTYPE: "h",
    tarfile.CHRTYPE: "c",
    tarfile.BLKTYPE: "b",
    tarfile.FIFOTYPE: "p",
    tarfile.CONTTYPE: "-",
}


def clean_member_name(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


def is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def scan_layer(path: str | os.PathLike[str], *, want_dists: bool = True) -> LayerScan:
    """Hash and list a layer blob (``.tar.gz`` or plain ``.tar``) in one streaming pass."""
    path = Path(path)
    if not path.is_file():
        raise ImageInputError(f"layer {str(path)!r} does not exist or is not a file")
    compressed = is_gzip(path)
    files: list[FileInfo] = []
    wanted: dict[str, dict[str, bytes]] = {}
    with open(path, "rb") as fh:
        outer = _HashingReader(fh)
        inner: _HashingReader
        gz: gzip.GzipFile | None = None
        if compressed:
            gz = gzip.GzipFile(fileobj=outer, mode="rb")  # type: ignore[call-overload]
            inner = _HashingReader(gz)  # type: ignore[arg-type]
        else:
            inner = outer
        try:
            with tarfile.open(fileobj=inner, mode="r|") as tar:  # type: ignore[call-overload]
                for member in tar:
                    name = clean_member_name(member.name)
                    if not name:
                        continue
                    files.append(
                        FileInfo(
                            path=name,
                            type=_TYPES.get(member.type, "?"),
                            mode=member.mode & 0o7777,
                            uid=member.uid,
                            gid=member.gid,
                            size=member.size if member.isreg() else 0,
                            target=clean_member_name(member.linkname) if member.islnk() else member.linkname,
                        )
                    )
                    if want_dists and member.isreg():
                        parent, base = posixpath.split(name)
                        if parent.endswith(".dist-info") and base in (
                            "METADATA",
                            "RECORD",
                        ):
                            stream = tar.extractfile(member)
                            if stream is not None:
                                wanted.setdefault(parent, {})[base] = stream.read()
            inner.drain()
            if gz is not None:
                outer.drain()
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise ImageInputError(f"layer {str(path)!r} is not a readable tar or tar.gz: {exc}") from None
    dists = [
        DistInfo(directory="/" + d, metadata=parts["METADATA"], record=parts.get("RECORD"))
        for d, parts in sorted(wanted.items())
        if "METADATA" in parts
    ]
    return LayerScan(
        path=path,
        compressed=compressed,
        blob_digest="sha256:" + outer.sha256.hexdigest(),
        blob_size=outer.size,
        diff_id="sha256:" + inner.sha256.hexdigest(),
        files=files,
        dists=dists,
    )
