"""Deterministic tar and gzip writers with hand-written headers.

The output depends only on the entries given: no host user names, no timestamps from the file
system, no gzip file name or mtime. Headers are POSIX ustar; a PAX extended header is added only
when a value does not fit (long or non-ASCII names and link targets, files of 8 GiB or more).
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from typing import BinaryIO

__all__ = ["BLOCK", "GzipWriter", "HashingWriter", "TarWriter"]

BLOCK = 512
RECORD = 20 * BLOCK  # what GNU tar and Python's tarfile pad archives to

REGTYPE = b"0"
LNKTYPE = b"1"
SYMTYPE = b"2"
DIRTYPE = b"5"
XHDTYPE = b"x"


class HashingWriter:
    """A write-only stream that hashes (sha256) and counts what goes through it to ``sink``."""

    def __init__(self, sink: BinaryIO | None) -> None:
        self._sink = sink
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        if self._sink is not None:
            self._sink.write(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


class GzipWriter:
    """Gzip (RFC 1952) without file name and with mtime 0, at a fixed compression level.

    ``raw`` hashes the uncompressed bytes (the layer's diff_id), ``out`` the compressed bytes
    (the blob digest).
    """

    def __init__(self, sink: BinaryIO, *, level: int = 6) -> None:
        if not 1 <= level <= 9:
            raise ValueError(f"gzip level {level!r} must be 1..9")
        self.out = HashingWriter(sink)
        self.raw = HashingWriter(None)
        self._crc = 0
        self._z = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_DEFAULT_STRATEGY)
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        # magic, CM=deflate, FLG=0, MTIME=0, XFL, OS=255 (unknown)
        self.out.write(b"\x1f\x8b\x08\x00" + b"\x00\x00\x00\x00" + bytes([xfl, 255]))

    def write(self, data: bytes) -> int:
        if data:
            self.raw.write(data)
            self._crc = zlib.crc32(data, self._crc)
            chunk = self._z.compress(data)
            if chunk:
                self.out.write(chunk)
        return len(data)

    def close(self) -> None:
        self.out.write(self._z.flush(zlib.Z_FINISH))
        self.out.write(struct.pack("<II", self._crc & 0xFFFFFFFF, self.raw.size & 0xFFFFFFFF))


def _octal(value: int, width: int) -> bytes:
    """Zero-padded octal digits followed by NUL, ``width`` bytes in all."""
    text = format(value, "o").rjust(width - 1, "0")
    if len(text) > width - 1:
        raise ValueError(f"value {value!r} does not fit a {width}-byte tar field")
    return text.encode("ascii") + b"\0"


def _field(data: bytes, width: int) -> bytes:
    return data.ljust(width, b"\0")


def _pax_records(records: dict[str, str]) -> bytes:
    out = b""
    for key in sorted(records):
        body = f" {key}={records[key]}\n".encode()
        length = len(body) + 1
        while len(str(length)) + len(body) != length:
            length = len(str(length)) + len(body)
        out += str(length).encode("ascii") + body
    return out


def _fits(value: str, width: int) -> bool:
    return value.isascii() and len(value) <= width


class TarWriter:
    """Writes tar entries to a binary stream, in the order they are added."""

    def __init__(self, sink: GzipWriter | HashingWriter | BinaryIO) -> None:
        self._out = sink
        self.written = 0

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self.written += len(data)

    def _header(
        self,
        *,
        name: str,
        typeflag: bytes,
        mode: int,
        uid: int,
        gid: int,
        size: int,
        mtime: int,
        linkname: str = "",
    ) -> None:
        pax: dict[str, str] = {}
        if not _fits(name, 100):
            pax["path"] = name
            name = name.encode("ascii", "replace")[:100].decode("ascii")
        if not _fits(linkname, 100):
            pax["linkpath"] = linkname
            linkname = linkname.encode("ascii", "replace")[:100].decode("ascii")
        if size >= 8**11:
            pax["size"] = str(size)
        if pax:
            data = _pax_records(pax)
            base = name.rstrip("/").rsplit("/", 1)[-1] or "entry"
            self._raw_header(
                name=("PaxHeaders/" + base)[:100],
                typeflag=XHDTYPE,
                mode=0o644,
                uid=0,
                gid=0,
                size=len(data),
                mtime=mtime,
                linkname="",
            )
            self._write_data(data)
        self._raw_header(
            name=name,
            typeflag=typeflag,
            mode=mode,
            uid=uid,
            gid=gid,
            size=0 if size >= 8**11 else size,
            mtime=mtime,
            linkname=linkname,
        )

    def _raw_header(
        self,
        *,
        name: str,
        typeflag: bytes,
        mode: int,
        uid: int,
        gid: int,
        size: int,
        mtime: int,
        linkname: str,
    ) -> None:
        parts = [
            _field(name.encode("ascii"), 100),
            _octal(mode, 8),
            _octal(uid, 8),
            _octal(gid, 8),
            _octal(size, 12),
            _octal(mtime, 12),
            b" " * 8,  # checksum placeholder
            typeflag,
            _field(linkname.encode("ascii"), 100),
            b"ustar\x00",
            b"00",
            _field(b"", 32),  # uname: empty on purpose
            _field(b"", 32),  # gname
            _octal(0, 8),  # devmajor
            _octal(0, 8),  # devminor
            _field(b"", 155),  # prefix: unused, long names go to PAX
        ]
        header = b"".join(parts).ljust(BLOCK, b"\0")
        checksum = sum(header)
        header = header[:148] + format(checksum, "06o").encode("ascii") + b"\0 " + header[156:]
        self._write(header)

    def _write_data(self, data: bytes) -> None:
        self._write(data)
        pad = -len(data) % BLOCK
        if pad:
            self._write(b"\0" * pad)

    def add_dir(self, name: str, *, mode: int, mtime: int, uid: int = 0, gid: int = 0) -> None:
        self._header(
            name=name.rstrip("/") + "/",
            typeflag=DIRTYPE,
            mode=mode,
            uid=uid,
            gid=gid,
            size=0,
            mtime=mtime,
        )

    def add_symlink(self, name: str, target: str, *, mtime: int, uid: int = 0, gid: int = 0) -> None:
        self._link(SYMTYPE, name, target, mode=0o777, mtime=mtime, uid=uid, gid=gid)

    def add_hardlink(self, name: str, target: str, *, mode: int, mtime: int, uid: int = 0, gid: int = 0) -> None:
        self._link(LNKTYPE, name, target, mode=mode, mtime=mtime, uid=uid, gid=gid)

    def _link(self, typeflag: bytes, name: str, target: str, *, mode: int, mtime: int, uid: int, gid: int) -> None:
        self._header(name=name, typeflag=typeflag, mode=mode, uid=uid, gid=gid, size=0, mtime=mtime, linkname=target)

    def add_file_bytes(self, name: str, data: bytes, *, mode: int, mtime: int, uid: int = 0, gid: int = 0) -> None:
        self.add_file_stream(name, io.BytesIO(data), len(data), mode=mode, mtime=mtime, uid=uid, gid=gid)

    def add_file_stream(
        self,
        name: str,
        stream: BinaryIO,
        size: int,
        *,
        mode: int,
        mtime: int,
        uid: int = 0,
        gid: int = 0,
    ) -> None:
        """Copy exactly ``size`` bytes from ``stream``; fails if the file changed size meanwhile."""
        self._header(
            name=name,
            typeflag=REGTYPE,
            mode=mode,
            uid=uid,
            gid=gid,
            size=size,
            mtime=mtime,
        )
        left = size
        while left:
            chunk = stream.read(min(left, 1 << 20))
            if not chunk:
                raise OSError(f"file for tar entry {name!r} shrank while it was read")
            self._write(chunk)
            left -= len(chunk)
        if stream.read(1):
            raise OSError(f"file for tar entry {name!r} grew while it was read")
        pad = -size % BLOCK
        if pad:
            self._write(b"\0" * pad)

    def close(self) -> None:
        """Write the end-of-archive marker and pad the archive to a whole record."""
        end = b"\0" * (2 * BLOCK)
        total = self.written + len(end)
        self._write(end + b"\0" * (-total % RECORD))
