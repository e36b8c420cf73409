"""Release bundles, ``<ENV>/<pkg>/releases/<release_id>.tar`` (docs/store-layout.md).

One uncompressed POSIX tar (pax format: a dag_id can make a member name longer than ustar's 100
bytes) whose members are exactly the release's DAG files at their metadata paths
``dags/<dag_id>.py``: regular files only, sorted by name, mtime 0, uid/gid 0, empty uname/gname,
mode 0644. The same files always give the same bytes, so a rollback's bundle has the sha256 of the
bundle it restores.

``tarfile`` is imported inside the functions: a publish that writes no release never loads it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tools.bazel.storecontract.errors import BundleError
from tools.bazel.storecontract.keys import dag_file

if TYPE_CHECKING:
    import tarfile

    from tools.bazel.storecontract.metadata import DagEntry

__all__ = ["check_member", "read_bundle", "write_bundle"]


def write_bundle(files: Mapping[str, bytes]) -> bytes:
    """The deterministic tar of ``files`` (dag_id -> bytes)."""
    import tarfile

    out = io.BytesIO()
    members = sorted((dag_file(dag_id), data) for dag_id, data in files.items())
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.type = tarfile.REGTYPE
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def check_member(info: tarfile.TarInfo, by_file: Mapping[str, DagEntry], seen: set[str]) -> DagEntry:
    """The metadata entry a bundle member holds; raise BundleError if it is anything else.

    A member must be a regular file whose name is a ``dags[*].file`` of the release, not seen
    before, with that entry's size. ``seen`` collects the names checked so far. The entry's
    ``name``, never the member's, is what a reader writes to disk.
    """
    entry = by_file.get(info.name)
    if entry is None or not info.isreg():
        kind = "a regular file" if info.isreg() else "not a regular file"
        raise BundleError(f"member {info.name!r} ({kind}) is not a DAG file listed in metadata.json")
    if info.name in seen:
        raise BundleError(f"member {info.name!r} appears twice")
    if info.size != entry.size:
        raise BundleError(f"member {info.name!r} has {info.size} bytes, metadata.json says {entry.size}")
    seen.add(info.name)
    return entry


def read_bundle(data: bytes, *, where: str, dags: tuple[DagEntry, ...]) -> dict[str, bytes]:
    """The DAG files of a whole bundle in memory (dag_id -> bytes), each checked against ``dags``.

    Raises BundleError ``"<where>: <problem>"`` if the tar is unreadable, holds anything but the
    listed files, lacks one, or a file's bytes differ from its entry.
    """
    import tarfile

    by_file = {entry.file: entry for entry in dags}
    seen: set[str] = set()
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                entry = check_member(info, by_file, seen)
                extracted = tar.extractfile(info)
                content = extracted.read() if extracted is not None else b""
                actual = hashlib.sha256(content).hexdigest()
                if actual != entry.sha256:
                    raise BundleError(f"{entry.file} has sha256 {actual!r}, metadata.json says {entry.sha256!r}")
                files[entry.dag_id] = content
    except tarfile.TarError as exc:
        raise BundleError(
            f"{where}: not a readable tar ({exc})", where=where, problem=f"not a readable tar ({exc})"
        ) from exc
    except BundleError as exc:
        raise BundleError(f"{where}: {exc}", where=where, problem=str(exc)) from None
    missing = [entry.file for entry in dags if entry.dag_id not in files]
    if missing:
        problem = f"it lacks {', '.join(missing)}"
        raise BundleError(f"{where}: {problem}", where=where, problem=problem)
    return files
