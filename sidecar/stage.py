"""Stage one release of a package: fetch changed files, reuse unchanged ones, verify all of it.

A release is staged in a private folder. Every file must match the sha256 (and size) metadata.json
lists for it and must compile; the first failure rejects the release whole (ReleaseRejectedError
with a reason from REJECT_REASONS), and the caller quarantines it. Nothing here touches what
Airflow reads: the caller switches the package to the staged folder only when staging succeeded.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

from sidecar.errors import (
    ObjectNotFoundError,
    OversizedObjectError,
    ReleaseRejectedError,
    StoreError,
)
from sidecar.layout import MANIFEST_NAME, DagsDir
from sidecar.metadata import DagFile, PackageMetadata
from sidecar.store import CHUNK_BYTES, Store

__all__ = ["REJECT_REASONS", "StageResult", "Stager", "file_sha256"]

REJECT_REASONS = (
    "invalid_metadata",
    "empty_release",
    "oversized",
    "missing_file",
    "size_mismatch",
    "hash_mismatch",
    "syntax_error",
)
_RELEASE_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,127}$")


@dataclasses.dataclass(frozen=True)
class StageResult:
    """A committed release folder and what it took to build it."""

    release_dir: Path
    fetched_objects: int
    fetched_bytes: int
    reused: int


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while chunk := src.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


class Stager:
    """Builds release folders for one store and one dags folder."""

    def __init__(
        self,
        *,
        store: Store,
        dags_dir: DagsDir,
        env: str,
        max_file_bytes: int,
        concurrency: int,
    ) -> None:
        self._store = store
        self._dags_dir = dags_dir
        self._env = env
        self._max_file_bytes = max_file_bytes
        self._concurrency = max(1, concurrency)

    def check_sizes(self, meta: PackageMetadata) -> None:
        """Reject before any download when metadata.json already says a file is too big."""
        for dag in meta.dags:
            if dag.size is not None and dag.size > self._max_file_bytes:
                raise ReleaseRejectedError(
                    "oversized",
                    f"{self._address(meta.package, dag)!r} is {dag.size} bytes, larger than "
                    f"--max-file-bytes={self._max_file_bytes}; keep DAG files small or raise the limit",
                )

    def _address(self, package: str, dag: DagFile) -> str:
        return self._store.address(f"{self._env}/{package}/{dag.file}")

    def stage(self, meta: PackageMetadata, *, staging: Path, metadata_etag: str, reuse: dict[str, Path]) -> StageResult:
        """Fill ``staging`` with the release, verify it, and commit it under ``releases/``.

        ``reuse`` maps sha256 -> a verified local file with that content (from the current release).
        Raises ReleaseRejectedError for a bad release, StoreError when the store cannot be read;
        in both cases ``staging`` is left for the caller to quarantine or discard.
        """
        package = meta.package
        self.check_sizes(meta)
        to_fetch: list[DagFile] = []
        reused = 0
        for dag in meta.dags:
            src = reuse.get(dag.sha256)
            if src is not None:
                _link_or_copy(src, staging / dag.name)
                reused += 1
            else:
                to_fetch.append(dag)
        fetched_bytes, fetched_objects = self._fetch_all(meta, to_fetch, staging)
        manifest = {
            "package": package,
            "env": self._env,
            "tree": meta.tree,
            "release": meta.release,
            "metadata_etag": metadata_etag,
            "store": str(self._store.location),
            "staged_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": {dag.name: dag.sha256 for dag in meta.dags},
        }
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        release_dir = self._dags_dir.commit(package, staging, meta.tree)
        return StageResult(
            release_dir=release_dir, fetched_objects=fetched_objects, fetched_bytes=fetched_bytes, reused=reused
        )

    def _fetch_all(self, meta: PackageMetadata, dags: list[DagFile], staging: Path) -> tuple[int, int]:
        """Fetch ``dags`` in parallel into ``staging``; (bytes, objects) downloaded."""
        if not dags:
            return 0, 0
        abort = threading.Event()

        def job(dag: DagFile) -> tuple[int, int]:
            if abort.is_set():
                return 0, 0
            return self._fetch_one(meta, dag, staging)

        total = objects = 0
        with concurrent.futures.ThreadPoolExecutor(
            max_workers=min(self._concurrency, len(dags)), thread_name_prefix="fetch"
        ) as pool:
            futures = [pool.submit(job, dag) for dag in dags]
            try:
                for future in concurrent.futures.as_completed(futures):
                    size, count = future.result()
                    total += size
                    objects += count
            except BaseException:
                abort.set()
                for future in futures:
                    future.cancel()
                raise
        return total, objects

    def _fetch_one(self, meta: PackageMetadata, dag: DagFile, staging: Path) -> tuple[int, int]:
        package = meta.package
        dest = staging / dag.name
        objects = 1
        try:
            size = self._fetch_verified(package, f"{self._env}/{package}/{dag.file}", dag, dest)
        except ReleaseRejectedError as exc:
            # The publisher copies new bytes to the live dags/ keys just before it commits the new
            # metadata.json; the release's own copy under releases/<id>/ never changes. Try it.
            if exc.reason == "oversized" or not meta.release_id or not _RELEASE_ID_RE.match(meta.release_id):
                raise
            copy_key = f"{self._env}/{package}/releases/{meta.release_id}/{dag.file}"
            try:
                size = self._fetch_verified(package, copy_key, dag, dest)
            except (ReleaseRejectedError, StoreError):
                raise exc from None
            objects = 2
        source = dest.read_bytes()
        display = str(self._dags_dir.link_path(package) / dag.name)
        address = self._address(package, dag)
        try:
            compile(source, display, "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise ReleaseRejectedError(
                "syntax_error",
                f"{address!r} does not compile: {exc.msg} (line {exc.lineno}); fix the DAG and publish again",
            ) from exc
        except ValueError as exc:  # e.g. null bytes
            raise ReleaseRejectedError(
                "syntax_error", f"{address!r} does not compile: {exc}; fix the DAG and publish again"
            ) from exc
        return size, objects

    def _fetch_verified(self, package: str, key: str, dag: DagFile, dest: Path) -> int:
        """Download ``key`` to ``dest`` and check it against the metadata entry ``dag``."""
        address = self._store.address(key)
        try:
            got = self._store.download(key, dest, max_bytes=self._max_file_bytes)
        except OversizedObjectError as exc:
            raise ReleaseRejectedError("oversized", str(exc)) from exc
        except ObjectNotFoundError as exc:
            raise ReleaseRejectedError(
                "missing_file", f"{address!r} is listed in metadata.json but does not exist; republish the package"
            ) from exc
        if dag.size is not None and got.size != dag.size:
            raise ReleaseRejectedError(
                "size_mismatch",
                f"{address!r} has {got.size} bytes but metadata.json says {dag.size}; republish the package",
            )
        if got.sha256 != dag.sha256:
            raise ReleaseRejectedError(
                "hash_mismatch",
                f"{address!r} has sha256 {got.sha256} but metadata.json says {dag.sha256}; republish the package",
            )
        return got.size
