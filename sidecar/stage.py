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
import shutil
import threading
import time
from pathlib import Path

from sidecar.errors import (
    ObjectNotFoundError,
    OversizedObjectError,
    ReleaseRejectedError,
)
from sidecar.layout import MANIFEST_NAME, DagsDir
from sidecar.localfs import FILE_MODE, create_file, local_writes
from sidecar.metadata import PackageMetadata
from sidecar.release_bundle import read_bundle
from sidecar.store import CHUNK_BYTES, Store
from tools.bazel.storecontract import DagEntry, PackageKeys

__all__ = ["BUNDLE_MIN_FILES", "REJECT_REASONS", "StageResult", "Stager", "file_sha256", "wants_bundle"]

BUNDLE_MIN_FILES = 8
"""The bundle is streamed when MORE than this many files must be downloaded..."""
BUNDLE_MIN_SHARE = 0.25
"""...and they are more than this share of the release's files (else most of the tar is waste)."""

REJECT_REASONS = (
    "invalid_metadata",
    "metadata_too_large",
    "metadata_too_complex",
    "empty_release",
    "oversized",
    "missing_file",
    "size_mismatch",
    "hash_mismatch",
    "syntax_error",
    "dag_id_conflict",
    "staging_crashed",
)
"""Why a release is rejected (the ``reason`` label of etl_sidecar_rejected_releases_total); README "Failure behaviour"."""


@dataclasses.dataclass(frozen=True)
class StageResult:
    """A committed release folder and what it took to build it."""

    release_dir: Path
    fetched_objects: int
    fetched_bytes: int
    reused: int
    bundle: str = "unused"
    """``unused`` (few files to fetch, or no bundle in metadata.json), ``used``, or ``fallback``."""
    bundle_problem: str | None = None
    """Why the bundle was not (fully) used; those files were fetched one by one."""
    live_mismatches: tuple[str, ...] = ()
    """Live ``dags/`` files whose bytes differed from metadata.json; taken from the release's bundle."""


def wants_bundle(to_fetch: int, total: int) -> bool:
    """Whether one GET of the release's bundle beats ``to_fetch`` GETs of single files.

    A bundle holds every file of the release, also those reused locally: it pays off when many
    requests are saved (more than BUNDLE_MIN_FILES) and at most about 3 of 4 bytes read are
    unneeded (more than BUNDLE_MIN_SHARE of the files change). A cold start always uses it
    (for more than 8 files); a release that changes a handful of files fetches just those.
    """
    return to_fetch > BUNDLE_MIN_FILES and to_fetch > BUNDLE_MIN_SHARE * total


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
        with local_writes(dest):
            shutil.copyfile(src, dest)
            os.chmod(dest, FILE_MODE)


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
            if dag.size > self._max_file_bytes:
                raise ReleaseRejectedError(
                    "oversized",
                    f"{self._address(meta.package, dag)!r} is {dag.size} bytes, larger than "
                    f"--max-file-bytes={self._max_file_bytes}; keep DAG files small or raise the limit",
                )

    def _address(self, package: str, dag: DagEntry) -> str:
        return self._store.address(PackageKeys(self._env, package).dag(dag.dag_id))

    def stage(self, meta: PackageMetadata, *, staging: Path, metadata_etag: str, reuse: dict[str, Path]) -> StageResult:
        """Fill ``staging`` with the release, verify it, and commit it under ``releases/``.

        ``reuse`` maps sha256 -> a verified local file with that content (from the current release).
        Raises ReleaseRejectedError for a bad release, StoreError when the store cannot be read;
        in both cases ``staging`` is left for the caller to quarantine or discard.
        """
        package = meta.package
        self.check_sizes(meta)
        to_fetch: list[DagEntry] = []
        reused = 0
        for dag in meta.dags:
            src = reuse.get(dag.sha256)
            if src is not None:
                _link_or_copy(src, staging / dag.name)
                reused += 1
            else:
                to_fetch.append(dag)
        bundle_state, problem = "unused", None
        fetched_bytes = fetched_objects = 0
        if wants_bundle(len(to_fetch), len(meta.dags)):
            if meta.bundle is not None:
                done, fetched_bytes, fetched_objects, problem = self._fetch_bundle(meta, to_fetch, staging)
                to_fetch = [dag for dag in to_fetch if dag.name not in done]
                bundle_state = "fallback" if problem else "used"
            elif meta.bundle_problem:  # malformed or absent: the store was damaged
                problem, bundle_state = meta.bundle_problem, "fallback"
        mismatches: list[str] = []
        more_bytes, more_objects = self._fetch_all(
            meta, to_fetch, staging, bundle_ok=bundle_state != "fallback", mismatches=mismatches
        )
        fetched_bytes += more_bytes
        fetched_objects += more_objects
        manifest = {
            "package": package,
            "env": self._env,
            "tree": meta.tree,
            "release": meta.release,
            "metadata_etag": metadata_etag,
            "store": str(self._store.location),
            "staged_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": {dag.name: dag.sha256 for dag in meta.dags},
            "dag_ids": sorted(meta.dag_ids),
        }
        with local_writes(staging / MANIFEST_NAME), create_file(staging / MANIFEST_NAME) as out:
            out.write((json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
        release_dir = self._dags_dir.commit(package, staging, meta.tree)
        return StageResult(
            release_dir=release_dir,
            fetched_objects=fetched_objects,
            fetched_bytes=fetched_bytes,
            reused=reused,
            bundle=bundle_state,
            bundle_problem=problem,
            live_mismatches=tuple(sorted(mismatches)),
        )

    def _fetch_bundle(
        self, meta: PackageMetadata, wanted: list[DagEntry], staging: Path
    ) -> tuple[set[str], int, int, str | None]:
        """Stream the release bundle once and keep the ``wanted`` files it holds, verified and compiled.

        Returns (local names written and verified, bytes read, objects opened, problem or None).
        The checks are sidecar.release_bundle's; any problem with the bundle ends its use and the
        caller fetches what is left one by one, and those files decide. Every kept file matched its
        sha256 in metadata.json, so it is kept whatever happens to the rest. A kept file that does
        not compile rejects the release (ReleaseRejectedError).
        """
        read = read_bundle(
            self._store,
            self._env,
            meta,
            wanted=wanted,
            dest=staging,
            max_file_bytes=self._max_file_bytes,
            check=lambda dag, path: self._compile(meta, dag, path),
        )
        return set(read.written), read.size, int(read.opened), read.problem

    def _fetch_all(
        self, meta: PackageMetadata, dags: list[DagEntry], staging: Path, *, bundle_ok: bool, mismatches: list[str]
    ) -> tuple[int, int]:
        """Fetch ``dags`` in parallel into ``staging``; (bytes, objects) downloaded.

        ``bundle_ok``: a file whose live key does not match may be taken from the bundle (false
        once the bundle was found bad in this staging). Files taken from the release's bundle
        that way are appended to ``mismatches``.
        """
        if not dags:
            return 0, 0
        abort = threading.Event()

        def job(dag: DagEntry) -> tuple[int, int]:
            if abort.is_set():
                return 0, 0
            return self._fetch_one(meta, dag, staging, bundle_ok, mismatches)

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

    def _fetch_one(
        self, meta: PackageMetadata, dag: DagEntry, staging: Path, bundle_ok: bool, mismatches: list[str]
    ) -> tuple[int, int]:
        package = meta.package
        dest = staging / dag.name
        try:
            size = self._fetch_verified(package, PackageKeys(self._env, package).dag(dag.dag_id), dag, dest)
        except ReleaseRejectedError as exc:
            # The publisher writes new bytes to the live dags/ keys just before it commits the new
            # metadata.json; the release's bundle never changes. Take the file from it.
            if exc.reason == "oversized" or meta.bundle is None or not bundle_ok:
                raise
            done, read, opened, _problem = self._fetch_bundle(meta, [dag], staging)
            if dag.name not in done:
                raise exc from None
            mismatches.append(dag.file)
            return read, 1 + opened
        self._compile(meta, dag, dest)
        return size, 1

    def _compile(self, meta: PackageMetadata, dag: DagEntry, dest: Path) -> None:
        """Reject the release if ``dest`` (the verified bytes of ``dag``) does not compile."""
        package = meta.package
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

    def _fetch_verified(self, package: str, key: str, dag: DagEntry, dest: Path) -> int:
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
        if got.size != dag.size:
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
