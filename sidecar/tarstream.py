"""A streaming reader for release bundles that never buffers more than one small header.

Why not ``tarfile``: it reads a pax extended header or a GNU long-name record whole into memory
before the caller sees any member, so one bundle with a 100 MiB pax header took the sidecar to
516 MiB. A bundle is exactly what docs/store-layout.md says the publisher writes (POSIX ustar
headers; a pax ``x`` header, with one ``path`` record, only before a member whose name is longer
than 100 bytes; regular files; two zero blocks at the end), so this reader accepts that and nothing
else: every other header type (GNU ``L``/``K`` long names, global ``g`` headers, links, devices,
folders) is refused from its 512-byte header, before its data is read, and a pax header larger
than PAX_HEADER_MAX_BYTES is refused from its size field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Protocol

from tools.bazel.storecontract.limits import PAX_HEADER_MAX_BYTES

__all__ = ["BLOCK", "Member", "TarFormatError", "TarReader"]

BLOCK = 512
_REGULAR = (b"0", b"\x00")
_TYPES = {
    b"1": "a hard link",
    b"2": "a symlink",
    b"3": "a character device",
    b"4": "a block device",
    b"5": "a folder",
    b"6": "a FIFO",
    b"7": "a contiguous file",
}
_REFUSED = {
    b"L": "a GNU long-name header (typeflag 'L')",
    b"K": "a GNU long-link header (typeflag 'K')",
    b"g": "a pax global header (typeflag 'g')",
}


class Readable(Protocol):
    def read(self, size: int = -1) -> bytes: ...


class TarFormatError(Exception):
    """The stream is not a bundle as the publisher writes it (one line: what, and at which byte)."""


@dataclasses.dataclass(frozen=True)
class Member:
    """One header: ``name`` (a pax ``path`` applied), ``size`` of its data, ``regular`` or ``kind``."""

    name: str
    size: int
    offset: int
    regular: bool
    kind: str


def _octal(field: bytes, what: str, offset: int) -> int:
    text = field.rstrip(b"\x00 ").lstrip(b" ")
    if field[:1] and field[0] & 0x80:
        raise TarFormatError(f"header at byte {offset}: {what} is base-256 encoded (a bundle never needs it)")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarFormatError(f"header at byte {offset}: {what} {field!r} is not an octal number") from None


def _name(field: bytes, offset: int) -> str:
    raw = field.split(b"\x00", 1)[0]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise TarFormatError(f"header at byte {offset}: the name is not UTF-8") from None


def _pax_path(data: bytes, offset: int) -> str:
    """The ``path`` of a pax extended header's records (``<len> path=<value>\\n``); no other key."""
    path: str | None = None
    pos = 0
    while pos < len(data) and data[pos : pos + 1] != b"\x00":
        space = data.find(b" ", pos)
        if space < 0:
            raise TarFormatError(f"pax header at byte {offset}: a record has no length")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarFormatError(
                f"pax header at byte {offset}: record length {data[pos:space]!r} is not a number"
            ) from None
        record = data[pos : pos + length]
        if length <= space - pos or len(record) != length or not record.endswith(b"\n"):
            raise TarFormatError(f"pax header at byte {offset}: a record is cut off")
        key, eq, value = record[space - pos + 1 : -1].partition(b"=")
        if not eq or key != b"path":
            raise TarFormatError(
                f"pax header at byte {offset}: record {key.decode(errors='replace')!r} is not "
                "allowed (a bundle's pax headers hold one 'path' record)"
            )
        try:
            path = value.decode("utf-8")
        except UnicodeDecodeError:
            raise TarFormatError(f"pax header at byte {offset}: the path is not UTF-8") from None
        pos += length
    if path is None:
        raise TarFormatError(f"pax header at byte {offset}: no 'path' record")
    return path


class TarReader:
    """Iterates the members of a tar read sequentially from ``src``; read each member's data with
    ``read_data`` before the next iteration (what is not read is skipped, still read from ``src``)."""

    def __init__(self, src: Readable) -> None:
        self._src = src
        self.offset = 0
        self._left = 0  # data bytes of the current member not yet read
        self._pad = 0

    def _read_exact(self, size: int, what: str) -> bytes:
        parts: list[bytes] = []
        want = size
        while want:
            chunk = self._src.read(min(want, 65536))
            if not chunk:
                raise TarFormatError(f"the tar ends inside {what} (at byte {self.offset + size - want})")
            parts.append(chunk)
            want -= len(chunk)
        self.offset += size
        return b"".join(parts)

    def read_data(self, size: int = 65536) -> bytes:
        """Up to ``size`` bytes of the current member's data; b'' at its end."""
        if not self._left:
            return b""
        data = self._read_exact(min(size, self._left), "a member's data")
        self._left -= len(data)
        return data

    def _skip_rest(self) -> None:
        while self._left:
            self.read_data()
        if self._pad:
            self._read_exact(self._pad, "padding")
            self._pad = 0

    def __iter__(self) -> Iterator[Member]:
        pax_path: str | None = None
        while True:
            self._skip_rest()
            at = self.offset
            header = self._read_exact(BLOCK, "a header")
            if header == b"\x00" * BLOCK:
                if pax_path is not None:
                    raise TarFormatError(f"pax header before byte {at} applies to no member")
                return  # end of archive; the caller reads (and hashes) the rest
            stored = _octal(header[148:156], "checksum", at)
            unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
            if stored != unsigned:
                raise TarFormatError(f"header at byte {at}: checksum {stored} should be {unsigned} (not a tar?)")
            if header[257:263] != b"ustar\x00":
                raise TarFormatError(f"header at byte {at}: magic {header[257:265]!r} is not POSIX ustar")
            typeflag = header[156:157]
            size = _octal(header[124:136], "size", at)
            name = _name(header[0:100], at)
            prefix = _name(header[345:500], at)
            if prefix:
                name = f"{prefix}/{name}"
            if typeflag in _REFUSED:
                raise TarFormatError(
                    f"header at byte {at}: {_REFUSED[typeflag]} of {size} bytes; bundles hold "
                    "regular files and pax 'x' headers only"
                )
            if typeflag == b"x":
                if pax_path is not None:
                    raise TarFormatError(f"header at byte {at}: two pax headers in a row")
                if size > PAX_HEADER_MAX_BYTES:
                    raise TarFormatError(
                        f"header at byte {at}: a pax header of {size} bytes, more than the "
                        f"{PAX_HEADER_MAX_BYTES} a bundle member needs "
                        "(storecontract/limits.py PAX_HEADER_MAX_BYTES)"
                    )
                data = self._read_exact(size, "a pax header")
                pad = -size % BLOCK
                if pad:
                    self._read_exact(pad, "padding")
                pax_path = _pax_path(data, at)
                continue
            if pax_path is not None:
                name, pax_path = pax_path, None
            regular = typeflag in _REGULAR
            kind = "a regular file" if regular else _TYPES.get(typeflag, f"typeflag {typeflag!r}")
            # links, devices and folders carry no data in a tar, whatever their size field says
            self._left = size if regular else 0
            self._pad = -size % BLOCK if regular else 0
            yield Member(name=name, size=size, offset=at, regular=regular, kind=kind)
