"""File operations on local paths and S3: list, copy, move, checksum, gzip and gunzip.

Every operation takes a *source* that is one file or a directory / key prefix (all files under
it, optionally filtered by a glob), so one task can handle a whole landing folder. Copies keep the
relative layout under the destination. Re-running an operation is safe: a destination that
already has the same bytes is skipped, and a move deletes a source only after its copy checked out.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import shutil
import zlib
from collections.abc import Iterable
from pathlib import Path

from etl_core import storage
from etl_core.storage import FileInfo

from .errors import ChecksumMismatch, ConversionError, StorageError, TargetExists

__all__ = [
    "IF_EXISTS",
    "ChecksumEntry",
    "Transfer",
    "TransferReport",
    "checksum_files",
    "compress_files",
    "decompress_files",
    "format_manifest",
    "list_source",
    "parse_manifest",
    "plan",
    "transfer_files",
    "verify_manifest",
]

IF_EXISTS = ("overwrite", "skip", "fail")
_CHUNK = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Transfer:
    """One file to process: where it is and where its result goes."""

    source: FileInfo
    dest: str
    rel: str  # path relative to the source root (the file name for a single-file source)


@dataclasses.dataclass
class TransferReport:
    """What an operation did, for logs and metrics."""

    done: list[Transfer] = dataclasses.field(default_factory=list)
    skipped: list[Transfer] = dataclasses.field(default_factory=list)
    bytes_in: int = 0
    bytes_out: int = 0

    @property
    def files(self) -> int:
        return len(self.done) + len(self.skipped)


def list_source(source: str, *, pattern: str | None = None, recursive: bool = True) -> list[FileInfo]:
    """The files a source names (see :func:`etl_core.storage.list_files`)."""
    return storage.list_files(source, pattern=pattern, recursive=recursive)


def _is_single_file(source: str, files: list[FileInfo]) -> bool:
    return len(files) == 1 and files[0].url.rstrip("/") == _normalise(source)


def _normalise(url: str) -> str:
    url = url.removeprefix("file://")
    return url.rstrip("/") or "/"


def _dest_is_folder(dest: str) -> bool:
    if dest.endswith("/"):
        return True
    if storage.is_s3(dest):
        return False
    return Path(_normalise(dest)).is_dir()


def plan(
    source: str,
    dest: str | None,
    *,
    pattern: str | None = None,
    recursive: bool = True,
    rename: tuple[str, str] | None = None,
) -> list[Transfer]:
    """Pair every source file with its destination.

    A single-file source goes to ``dest`` itself, or into it when ``dest`` is a folder (ends with
    ``/`` or is an existing directory). A folder source keeps each file's relative path under
    ``dest``. ``dest=None`` means "beside the source" (used with ``rename``, e.g. adding ``.gz``).
    ``rename=(old_suffix, new_suffix)`` changes each destination name's suffix.
    """
    single, files = _relative_files(source, pattern=pattern, recursive=recursive)
    out: list[Transfer] = []
    for info, rel in files:
        name = info.name
        if rename is not None:
            old, new = rename
            name = (name[: -len(old)] if old and name.endswith(old) else name) + new
        if dest is None:
            target = storage.join(storage.parent(info.url), name)
        elif single:
            target = storage.join(dest, name) if _dest_is_folder(dest) else _normalise(dest)
        else:
            rel_parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
            target = storage.join(dest, rel_parent, name)
        out.append(Transfer(source=info, dest=target, rel=rel))
    return out


def _relative_files(source: str, *, pattern: str | None, recursive: bool) -> tuple[bool, list[tuple[FileInfo, str]]]:
    """(source is one file, [(file, path relative to the source root)]); a file's own rel is its name."""
    files = list_source(source, pattern=pattern, recursive=recursive)
    if _is_single_file(source, files):
        return True, [(files[0], files[0].name)]
    root = _normalise(source)
    return False, [(info, info.url[len(root) :].lstrip("/")) for info in files]


def _same_content(src: FileInfo, dest: str) -> bool:
    """True when ``dest`` exists with the same size and SHA-256 as ``src``."""
    try:
        existing = storage.stat(dest)
    except StorageError:
        return False
    if existing.size != src.size:
        return False
    return storage.digest(src.url) == storage.digest(dest)


def transfer_files(
    transfers: Iterable[Transfer],
    *,
    if_exists: str = "overwrite",
    delete_source: bool = False,
) -> TransferReport:
    """Copy (or, with ``delete_source``, move) each planned file.

    ``if_exists``: ``overwrite`` replaces a different destination, ``skip`` leaves any existing one,
    ``fail`` raises :class:`TargetExists`. A destination with identical bytes is always skipped.
    A moved source is deleted only after the destination's size was checked.
    """
    if if_exists not in IF_EXISTS:
        raise ValueError(f"if_exists must be one of {IF_EXISTS}, got {if_exists!r}")
    report = TransferReport()
    for item in transfers:
        if _normalise(item.source.url) == _normalise(item.dest):
            raise StorageError(f"source and destination are the same: {item.dest!r}")
        exists = storage.exists(item.dest)
        if exists and _same_content(item.source, item.dest):
            report.skipped.append(item)
        elif exists and if_exists == "skip":
            report.skipped.append(item)
            continue
        elif exists and if_exists == "fail":
            raise TargetExists(f"destination {item.dest!r} exists: pass --if-exists overwrite or skip")
        else:
            storage.copy(item.source.url, item.dest)
            written = storage.stat(item.dest)
            if written.size != item.source.size:
                raise StorageError(
                    f"copy of {item.source.url!r} to {item.dest!r} wrote {written.size} bytes, "
                    f"expected {item.source.size}: the source changed during the copy; run again"
                )
            report.done.append(item)
            report.bytes_in += item.source.size
            report.bytes_out += written.size
        if delete_source:
            storage.delete(item.source.url)
    return report


# --- checksums -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ChecksumEntry:
    name: str  # path relative to the source root, '/'-separated
    digest: str
    size: int


def checksum_files(
    source: str, *, pattern: str | None = None, recursive: bool = True, algorithm: str = "sha256"
) -> list[ChecksumEntry]:
    """Digest of every file under ``source``, sorted by relative name."""
    _, files = _relative_files(source, pattern=pattern, recursive=recursive)
    entries = [
        ChecksumEntry(name=rel, digest=storage.digest(info.url, algorithm), size=info.size) for info, rel in files
    ]
    return sorted(entries, key=lambda e: e.name)


def format_manifest(entries: Iterable[ChecksumEntry]) -> str:
    """``sha256sum`` format (``<hex>  <name>`` per line), so ``sha256sum -c`` can check it too."""
    return "".join(f"{entry.digest}  {entry.name}\n" for entry in entries)


def parse_manifest(text: str, *, where: str) -> dict[str, str]:
    """``{name: digest}`` from a ``sha256sum``-format manifest; raises :class:`ChecksumMismatch`."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        digest, sep, name = line.partition("  ")
        if not sep:
            digest, sep, name = line.partition(" *")  # binary-mode marker of sha256sum
        digest = digest.strip().lower()
        if not sep or not name or not digest or any(c not in "0123456789abcdef" for c in digest):
            raise ChecksumMismatch(f"{where}:{number}: not a '<hex digest>  <name>' line: {line[:120]!r}")
        out[name.strip()] = digest
    return out


def verify_manifest(
    source: str, manifest: dict[str, str], *, algorithm: str = "sha256"
) -> tuple[list[str], list[str], list[str]]:
    """Check files under ``source`` against ``manifest``: returns (ok, mismatched, missing) names."""
    ok: list[str] = []
    bad: list[str] = []
    missing: list[str] = []
    for name, expected in sorted(manifest.items()):
        url = storage.join(source, name) if not _is_file_source(source) else _normalise(source)
        try:
            actual = storage.digest(url, algorithm)
        except StorageError:
            missing.append(name)
            continue
        (ok if actual == expected else bad).append(name)
    return ok, bad, missing


def _is_file_source(source: str) -> bool:
    if storage.is_s3(source):
        return not source.endswith("/") and storage.exists(source)
    return Path(_normalise(source)).is_file()


# --- gzip ----------------------------------------------------------------------------------------


def _gzip_into(src: Path, dst: Path, level: int) -> None:
    # mtime=0 and no file name in the header: the same input always gives the same bytes.
    with (
        open(src, "rb") as raw_in,
        open(dst, "wb") as raw_out,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw_out, compresslevel=level, mtime=0) as out,
    ):
        shutil.copyfileobj(raw_in, out, _CHUNK)


def _gunzip_into(src: Path, dst: Path, label: str) -> None:
    try:
        with gzip.open(src, "rb") as raw_in, open(dst, "wb") as out:
            shutil.copyfileobj(raw_in, out, _CHUNK)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise ConversionError(f"{label!r} is not a valid gzip file: {exc}; check the upstream export") from exc


def _convert_each(
    transfers: list[Transfer], convert: str, *, level: int, delete_source: bool, if_exists: str
) -> TransferReport:
    report = TransferReport()
    for item in transfers:
        if storage.exists(item.dest):
            if if_exists == "fail":
                raise TargetExists(f"destination {item.dest!r} exists: pass --if-exists overwrite or skip")
            if if_exists == "skip":
                report.skipped.append(item)
                if delete_source:
                    storage.delete(item.source.url)
                continue
        with storage.local_input(item.source.url) as src, storage.staged_output(item.dest) as dst:
            if convert == "gzip":
                _gzip_into(src, dst, level)
            else:
                _gunzip_into(src, dst, item.source.url)
            size = dst.stat().st_size
        report.done.append(item)
        report.bytes_in += item.source.size
        report.bytes_out += size
        if delete_source:
            storage.delete(item.source.url)
    return report


def compress_files(
    source: str,
    dest: str | None = None,
    *,
    pattern: str | None = None,
    recursive: bool = True,
    level: int = 6,
    delete_source: bool = False,
    if_exists: str = "overwrite",
) -> TransferReport:
    """gzip each file (``x`` -> ``x.gz``); files already ending in ``.gz`` are left alone."""
    if not 1 <= level <= 9:
        raise ValueError(f"gzip level must be 1..9, got {level!r}")
    transfers = [
        t
        for t in plan(source, dest, pattern=pattern, recursive=recursive, rename=("", ".gz"))
        if not t.source.name.endswith(".gz")
    ]
    return _convert_each(transfers, "gzip", level=level, delete_source=delete_source, if_exists=if_exists)


def decompress_files(
    source: str,
    dest: str | None = None,
    *,
    pattern: str | None = "*.gz",
    recursive: bool = True,
    delete_source: bool = False,
    if_exists: str = "overwrite",
) -> TransferReport:
    """gunzip each ``*.gz`` file (``x.gz`` -> ``x``); a corrupt file raises :class:`ConversionError`."""
    transfers = plan(source, dest, pattern=pattern, recursive=recursive, rename=(".gz", ""))
    return _convert_each(transfers, "gunzip", level=0, delete_source=delete_source, if_exists=if_exists)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
