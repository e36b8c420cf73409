"""Read a release bundle (``<env>/<pkg>/releases/<id>.tar``) as a stream and keep its files, verified.

The one implementation of the bundle checks of docs/store-layout.md. Two readers use it: the
sidecar's stager (a cold start or a big change of the current release) and the versioned DAG
bundle (``airflow/etl_dag_bundle/``: every version it materialises, old ones included).

One GET, read by sidecar.tarstream (64 KiB reads, never the whole tar in memory, and never a
header bigger than storecontract.limits.PAX_HEADER_MAX_BYTES: ``tarfile`` buffers a pax or GNU
long-name header whole before any check), every byte hashed on the way:

- a member must be a regular file whose name is exactly a ``dags[*].file`` of the metadata, once;
  anything else (``../`` or absolute names, links, devices, unlisted or repeated names, a size
  that differs from the metadata or exceeds ``max_file_bytes``) ends the use of the bundle;
- each wanted member is written under the local name taken from the metadata (never the
  member's name) and its sha256 checked against ``dags[*].sha256``; members not wanted are
  skipped (their bytes still hashed);
- at the end the tar's own size and sha256 must equal ``release.bundle``.

A problem is returned, not raised: the caller decides (the sidecar fetches the rest one by one,
the DAG bundle refuses the version). Files written before the problem matched their sha256 and
stay valid.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Collection
from pathlib import Path
from typing import BinaryIO

from sidecar.errors import LocalDiskError, ObjectNotFoundError, ReleaseRejectedError
from sidecar.localfs import create_file, local_writes
from sidecar.metadata import PackageMetadata
from sidecar.store import CHUNK_BYTES, Store
from sidecar.tarstream import TarFormatError, TarReader
from tools.bazel.storecontract import DagEntry, PackageKeys

__all__ = ["BundleRead", "read_bundle"]

FileCheck = Callable[[DagEntry, Path], None]
"""Called with each written, sha256-verified file; raises ReleaseRejectedError to reject the release."""


@dataclasses.dataclass(frozen=True)
class BundleRead:
    """What one read of a release bundle gave."""

    written: frozenset[str]
    """Local names (``DagEntry.name``) written to ``dest`` and verified against their sha256."""
    size: int
    """Bytes read from the tar."""
    opened: bool
    """Whether the GET was answered (one request counted)."""
    problem: str | None
    """Why the bundle could not be used whole, naming its address; None when every check passed."""


class _BadBundle(Exception):
    """The bundle breaks the store contract at this point."""


class _HashingReader:
    """Counts and hashes every byte tarfile reads from the stream."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.size = 0
        self._digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size if size is not None and size >= 0 else CHUNK_BYTES)
        self.size += len(data)
        self._digest.update(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK_BYTES):
            pass

    @property
    def sha256(self) -> str:
        return self._digest.hexdigest()


def read_bundle(
    store: Store,
    env: str,
    meta: PackageMetadata,
    *,
    wanted: Collection[DagEntry],
    dest: Path,
    max_file_bytes: int,
    check: FileCheck | None = None,
) -> BundleRead:
    """Stream ``meta.bundle`` once and write the ``wanted`` files it holds into ``dest``, verified.

    ``meta`` must have a bundle. A ReleaseRejectedError from ``check`` propagates (the file it
    rejected stays in ``dest`` for the caller's quarantine); every other failure is ``problem``.
    """
    assert meta.bundle is not None
    bundle = meta.bundle
    key = PackageKeys(env, meta.package).prefix + bundle.key
    address = store.address(key)
    listed = {dag.file: dag for dag in meta.dags}
    want = {dag.file for dag in wanted}
    done: set[str] = set()
    reader: _HashingReader | None = None
    problem: str | None = None
    current: Path | None = None
    try:
        with store.open_read(key, max_bytes=bundle.size) as raw:
            reader = _HashingReader(raw)
            seen: set[str] = set()
            tar = TarReader(reader)
            for member in tar:
                dag = listed.get(member.name)
                if not member.regular:
                    raise _BadBundle(f"member {member.name!r} is not a regular file ({member.kind})")
                if dag is None:
                    raise _BadBundle(f"member {member.name!r} is not a file listed in metadata.json")
                if member.name in seen:
                    raise _BadBundle(f"member {member.name!r} appears twice")
                seen.add(member.name)
                if member.size > max_file_bytes or member.size != dag.size:
                    raise _BadBundle(f"member {member.name!r} has {member.size} bytes, metadata.json says {dag.size}")
                if member.name not in want:
                    continue  # not needed (e.g. reused locally): the reader skips its data, still hashed
                current = dest / dag.name  # a name from metadata.json, never the member's
                digest = hashlib.sha256()
                with local_writes(current):
                    current.unlink(missing_ok=True)
                with local_writes(current), create_file(current) as out:
                    while chunk := tar.read_data(CHUNK_BYTES):
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != dag.sha256:
                    raise _BadBundle(
                        f"member {member.name!r} has sha256 {digest.hexdigest()}, metadata.json says {dag.sha256}"
                    )
                if check is not None:
                    check(dag, current)
                done.add(dag.name)
                current = None
            reader.drain()
        if reader.size != bundle.size or reader.sha256 != bundle.sha256:
            problem = (
                f"the tar has {reader.size} bytes and sha256 {reader.sha256}, metadata.json says "
                f"{bundle.size} and {bundle.sha256}"
            )
        elif len(done) < len(want):
            problem = f"{len(want) - len(done)} of the files to fetch are not in it"
    except ReleaseRejectedError:
        raise  # the rejected file stays for the caller's quarantine
    except LocalDiskError:
        if current is not None:
            current.unlink(missing_ok=True)
        raise
    except (_BadBundle, TarFormatError) as exc:
        problem = str(exc)
    except ObjectNotFoundError:
        problem = "it does not exist"
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"
    if current is not None:
        current.unlink(missing_ok=True)
    return BundleRead(
        written=frozenset(done),
        size=reader.size if reader is not None else 0,
        opened=reader is not None,
        problem=f"{address!r}: {problem}" if problem else None,
    )
