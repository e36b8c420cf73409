"""Release bundles: ``<ENV>/<pkg>/releases/<release_id>.tar`` (docs/store-layout.md).

One uncompressed POSIX tar (pax format: dag ids can make member names longer than ustar's
100 bytes) per release. Its members are exactly the release's DAG files at their metadata paths,
``dags/<dag_id>.py``, and the bytes are deterministic: members sorted by name, regular files
only, mtime 0, uid/gid 0, empty uname/gname, mode 0644. The same DAG files always give the same
tar bytes, so a rollback's bundle has the sha256 of the bundle it restores.

``tarfile`` is imported inside the functions: only a publish that writes a release needs it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from collections.abc import Mapping

from publisher.errors import ReleaseNotFoundError
from publisher.keys import PackageKeys

__all__ = ["Bundle", "make_bundle", "read_bundle"]


@dataclasses.dataclass(frozen=True)
class Bundle:
    """The tar bytes of one release and the ``release.bundle`` block that describes them."""

    data: bytes
    key: str  # relative to <ENV>/<pkg>/: releases/<release_id>.tar

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def block(self) -> dict[str, object]:
        """``release.bundle`` of metadata.json: key, sha256 and size of the tar."""
        return {"key": self.key, "sha256": self.sha256, "size": len(self.data)}


def make_bundle(release_id: str, files: Mapping[str, bytes]) -> Bundle:
    """The deterministic tar of ``files`` (dag_id -> bytes) for release ``release_id``."""
    import tarfile

    out = io.BytesIO()
    members = sorted((PackageKeys.dag_file(dag_id), data) for dag_id, data in files.items())
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
    return Bundle(data=out.getvalue(), key=PackageKeys.bundle_file(release_id))


def read_bundle(data: bytes, *, where: str, expected: Mapping[str, str]) -> dict[str, bytes]:
    """The DAG files of a bundle (dag_id -> bytes), checked against ``expected`` (dag_id -> sha256).

    Raises ReleaseNotFoundError naming ``where`` if the tar is unreadable, holds anything but
    ``dags/<dag_id>.py`` regular files, or its files differ from ``expected``.
    """
    import tarfile

    wanted = {PackageKeys.dag_file(dag_id): dag_id for dag_id in expected}
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                dag_id = wanted.get(info.name)
                if dag_id is None or not info.isreg() or dag_id in files:
                    raise ReleaseNotFoundError(
                        f"{where} is damaged: unexpected member {info.name!r} (the release's metadata "
                        f"lists {len(expected)} DAG files); roll back to another release"
                    )
                extracted = tar.extractfile(info)
                files[dag_id] = extracted.read() if extracted is not None else b""
    except tarfile.TarError as exc:
        raise ReleaseNotFoundError(f"{where} is damaged: not a readable tar ({exc}); roll back to another release") from exc
    missing = sorted(set(expected) - set(files))
    if missing:
        raise ReleaseNotFoundError(f"{where} is damaged: it lacks {', '.join(PackageKeys.dag_file(d) for d in missing)}")
    for dag_id, sha in sorted(expected.items()):
        actual = hashlib.sha256(files[dag_id]).hexdigest()
        if actual != sha:
            raise ReleaseNotFoundError(
                f"{where} is damaged: {PackageKeys.dag_file(dag_id)} has sha256 {actual!r}, its metadata says {sha!r}"
            )
    return files
