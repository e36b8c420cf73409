"""One package's releases on local disk, materialised from the DAG store and verified.

```
<base_dir>/current -> followed/<release_id>-<nonce>    what the dag-processor parses (version None)
<base_dir>/followed/<release_id>-<nonce>/             releases ``current`` pointed at; retired ones
                                                      are removed after the grace period
<base_dir>/versions/<release_id>/                     a pinned version (task runner, callbacks);
                                                      Airflow's stale-bundle clean-up removes unused ones
<base_dir>/staging/<nonce>/                           a release being materialised (private)
```

``<base_dir>`` is Airflow's ``<dag_bundle_storage_path>/<bundle name>``. Every release folder
holds ``<dag_id>.py`` for each DAG of the release, the release's ``metadata.json`` as
``.metadata.json`` and ``.release.json`` (release id, metadata ETag, file -> sha256). Folders
are filled in ``staging/`` and moved into place with one rename, and never change once there;
``current`` switches by renaming a new symlink over it. Airflow's dags-folder discovery reads
``*.py`` only, so the two dot-files never reach its parser.

What is read from the store (docs/store-layout.md), through the sidecar's read-only client:

- ``refresh``: one GET of ``<env>/<pkg>/metadata.json`` with ``If-None-Match`` (304 when
  nothing was published: one request), then, for a new release, one GET of its bundle
  ``releases/<id>.tar``;
- a pinned version not on disk: ``releases/<id>.json`` and ``releases/<id>.tar`` (two GETs),
  none at all when ``current`` is that release (its files are linked).

Bundles are checked by ``sidecar.release_bundle.read_bundle``, the sidecar's own code: every
member a listed regular file with the sha256 and size of its ``dags[*]`` entry, and the tar's
sha256 and size those of ``release.bundle``. Files that did not change since the release on
disk are hard-linked from it instead of written (their tar members are still hashed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from etl_dag_bundle.errors import BundleConfigError, ReleaseUnavailableError
from sidecar.errors import MetadataError, ObjectNotFoundError, OversizedObjectError, StoreError
from sidecar.layout import write_file_atomic
from sidecar.metadata import PackageMetadata, parse_metadata
from sidecar.release_bundle import read_bundle
from sidecar.stage import file_sha256
from sidecar.store import Store
from tools.bazel.storecontract import METADATA_NAME, NAME_RE
from tools.bazel.storecontract.limits import METADATA_MAX_BYTES  # the store's limit, as the sidecar

__all__ = [
    "CURRENT_LINK",
    "MANIFEST_NAME",
    "METADATA_COPY_NAME",
    "REMOVED_SUFFIX",
    "VERSION_RE",
    "LocalRelease",
    "PackageReleases",
    "check_name",
]

log = logging.getLogger(__name__)

CURRENT_LINK = "current"
MANIFEST_NAME = ".release.json"
METADATA_COPY_NAME = ".metadata.json"
REMOVED_SUFFIX = ".removed"
"""A decommissioned package is served as an empty folder whose version is ``<release id>.removed``."""
VERSION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,127}", re.ASCII)
"""A release id (the publisher's ``YYYYMMDDTHHMMSSZ-<8 hex>``, or any id the store contract allows)."""


@dataclasses.dataclass(frozen=True)
class LocalRelease:
    """A complete release folder and what its manifest says."""

    path: Path
    version: str
    etag: str | None
    files: dict[str, str]
    """Local file name -> sha256."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_tree(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


class PackageReleases:
    """The releases of ``<env>/<package>`` under ``base_dir``. Callers hold the bundle's lock for writes."""

    def __init__(
        self, *, store: Store, env: str, package: str, base_dir: Path, max_file_bytes: int, grace_period: float
    ) -> None:
        self.store = store
        self.env = env
        self.package = package
        self.base_dir = base_dir
        self.max_file_bytes = max_file_bytes
        self.grace_period = grace_period
        self._trusted: set[Path] = set()  # release folders re-hashed by this process

    # ------------------------------------------------------------------ paths

    @property
    def current_link(self) -> Path:
        return self.base_dir / CURRENT_LINK

    def version_path(self, version: str) -> Path:
        """``<base_dir>/versions/<version>``: Airflow's ``get_bundle_version_path`` for this bundle."""
        return self.base_dir / "versions" / version

    def address(self, key: str) -> str:
        return self.store.address(f"{self.env}/{self.package}/{key}")

    # ------------------------------------------------------------------ reading local state

    def read(self, path: Path) -> LocalRelease | None:
        """The release folder at ``path`` (following a symlink), or None if missing or incomplete."""
        try:
            manifest = json.loads((path / MANIFEST_NAME).read_bytes())
        except (FileNotFoundError, NotADirectoryError, ValueError):
            return None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            return None
        version = manifest.get("version")
        if not isinstance(version, str):
            return None
        return LocalRelease(
            path=path, version=version, etag=manifest.get("metadata_etag"), files=dict(manifest["files"])
        )

    def current(self) -> LocalRelease | None:
        link = self.current_link
        if not link.is_symlink():
            return None
        return self.read(self.base_dir / os.readlink(link))

    def pinned(self, version: str) -> LocalRelease | None:
        """``versions/<version>`` if it is complete and its files still have their sha256 (checked once)."""
        found = self.read(self.version_path(version))
        if found is None or found.version != version:
            return None
        return found if self.trusted(found) else None

    def trusted(self, release: LocalRelease) -> bool:
        """Whether the folder's ``*.py`` files are exactly its manifest's, by sha256 (once per process)."""
        if release.path in self._trusted:
            return True
        try:
            on_disk = {p.name for p in release.path.iterdir() if p.name.endswith(".py")}
            ok = on_disk == set(release.files) and all(
                file_sha256(release.path / name) == sha for name, sha in release.files.items()
            )
        except OSError:
            ok = False
        if ok:
            self._trusted.add(release.path)
        else:
            log.warning("local release changed on disk, not used: package=%s dir=%s", self.package, release.path)
        return ok

    # ------------------------------------------------------------------ reading the store

    def fetch_metadata(self, if_none_match: str | None) -> tuple[bytes, str] | None:
        """``<env>/<pkg>/metadata.json`` (bytes, ETag); None for 304 (unchanged since ``if_none_match``)."""
        try:
            obj = self.store.get_metadata(
                self.env, self.package, if_none_match=if_none_match, max_bytes=METADATA_MAX_BYTES
            )
        except ObjectNotFoundError as exc:
            raise ReleaseUnavailableError(
                f"{self.address(METADATA_NAME)!r} does not exist; publish the package "
                f"(bazel run //packages/{self.package}:publish) or remove its bundle from dag_bundle_config_list"
            ) from exc
        except (StoreError, OversizedObjectError) as exc:
            raise ReleaseUnavailableError(f"cannot read package {self.package!r}: {exc}") from exc
        return None if obj is None else (obj.data, obj.etag)

    def parse(self, data: bytes, key: str) -> tuple[PackageMetadata, str, dict[str, Any]]:
        """(metadata, version, version data) of the bytes of a ``metadata.json`` read from ``key``."""
        address = self.address(key)
        try:
            meta = parse_metadata(data, package=self.package, env=self.env, address=address)
        except MetadataError as exc:
            raise ReleaseUnavailableError(str(exc)) from exc
        if not meta.release_id:  # else a contract release id (parse_metadata checked it)
            raise ReleaseUnavailableError(
                f"{address!r}: release.id {meta.release_id!r} is missing or not a release id; publish the "
                "package with the publisher (it writes release.id)"
            )
        doc = json.loads(data)  # parse_metadata succeeded: a JSON object
        version = meta.release_id
        if isinstance(doc.get("decommissioned"), dict):
            version += REMOVED_SUFFIX
        image = doc.get("image") if isinstance(doc.get("image"), dict) else {}
        release = meta.release or {}
        data_block = {
            "package": self.package,
            "image": image.get("reference") or image.get("digest"),
            "published_at": release.get("published_at"),
            "rollback_of": release.get("rollback_of"),
        }
        return meta, version, {k: v for k, v in data_block.items() if v is not None}

    # ------------------------------------------------------------------ writing

    def refresh(self) -> tuple[str, bool]:
        """Follow ``metadata.json``: (the current version, whether ``current`` switched)."""
        cur = self.current()
        if cur is not None and not self.trusted(cur):
            cur = None  # changed on disk: fetch the release again, whatever the ETag says
        got = self.fetch_metadata(cur.etag if cur is not None else None)
        if got is None:
            assert cur is not None
            return cur.version, False  # 304: nothing was published since
        data, etag = got
        meta, version, _ = self.parse(data, METADATA_NAME)
        if cur is not None and cur.version == version:
            self._write_manifest(cur.path, version=version, etag=etag, files=cur.files)  # new ETag, same release
            return version, False
        target = self.materialise(
            meta,
            version=version,
            metadata=data,
            etag=etag,
            into=self.base_dir / "followed",
            name=f"{version}-{secrets.token_hex(4)}",
        )
        self._trusted.add(target)  # every file was just verified
        self._switch(target)
        log.info("bundle switched: package=%s version=%s dir=%s", self.package, version, target)
        return version, True

    def ensure_pinned(self, version: str) -> LocalRelease:
        """``versions/<version>``, materialised from the store when it is not on disk yet."""
        found = self.pinned(version)
        if found is not None:
            return found
        path = self.version_path(version)
        if path.exists():  # incomplete or changed on disk: replaced by a fresh copy
            aside = self.base_dir / "staging" / f"invalid-{secrets.token_hex(4)}"
            aside.parent.mkdir(parents=True, exist_ok=True)
            os.rename(path, aside)
            _remove_tree(aside)
        release_id = version.removesuffix(REMOVED_SUFFIX)
        cur = self.current()
        if cur is not None and cur.version == version and self.trusted(cur):
            data = (cur.path / METADATA_COPY_NAME).read_bytes()
            etag = cur.etag
        else:
            data, etag = self._fetch_release_json(release_id), None
        meta, got_version, _ = self.parse(data, f"releases/{release_id}.json")
        if got_version.removesuffix(REMOVED_SUFFIX) != release_id:
            raise ReleaseUnavailableError(
                f"{self.address(f'releases/{release_id}.json')!r} holds release {meta.release_id!r}, not "
                f"{release_id!r}; the store is inconsistent: check the publisher's releases"
            )
        self.materialise(meta, version=version, metadata=data, etag=etag, into=path.parent, name=version)
        result = self.read(path)
        assert result is not None
        self._trusted.add(path)
        log.info("bundle version materialised: package=%s version=%s dir=%s", self.package, version, path)
        return result

    def _fetch_release_json(self, release_id: str) -> bytes:
        key = f"releases/{release_id}.json"
        staging = self._new_staging()
        try:
            try:
                self.store.download(
                    f"{self.env}/{self.package}/{key}", staging / "release.json", max_bytes=METADATA_MAX_BYTES
                )
            except ObjectNotFoundError as exc:
                raise ReleaseUnavailableError(
                    f"{self.address(key)!r} does not exist: release {release_id!r} was never published for "
                    f"package {self.package!r} (or its releases were deleted); list them with "
                    f"`bazel run //packages/{self.package}:publish -- --list-releases`"
                ) from exc
            except (StoreError, OversizedObjectError) as exc:
                raise ReleaseUnavailableError(f"cannot read release {release_id!r}: {exc}") from exc
            return (staging / "release.json").read_bytes()
        finally:
            _remove_tree(staging)

    def materialise(
        self, meta: PackageMetadata, *, version: str, metadata: bytes, etag: str | None, into: Path, name: str
    ) -> Path:
        """Fill a staging folder with the release, verified, and move it to ``into/name``."""
        removed = version.endswith(REMOVED_SUFFIX)
        dags = () if removed else meta.dags
        for dag in dags:
            if dag.size > self.max_file_bytes:
                raise ReleaseUnavailableError(
                    f"{self.address(dag.file)!r} is {dag.size} bytes, more than max_file_bytes={self.max_file_bytes}; "
                    "keep DAG files small or raise max_file_bytes in the bundle's kwargs"
                )
        staging = self._new_staging()
        try:
            reuse = self._reuse_map()
            wanted = []
            for dag in dags:
                src = reuse.get(dag.sha256)
                if src is None:
                    wanted.append(dag)
                    continue
                try:
                    os.link(src, staging / dag.name)
                except OSError:
                    shutil.copyfile(src, staging / dag.name)
            if wanted:
                if meta.bundle is None:
                    raise ReleaseUnavailableError(
                        f"release {meta.release_id!r} of package {self.package!r} has no release.bundle "
                        f"({meta.bundle_problem or 'published before bundles'}); publish the package again, or roll "
                        "back to a release with a bundle"
                    )
                got = read_bundle(
                    self.store, self.env, meta, wanted=wanted, dest=staging, max_file_bytes=self.max_file_bytes
                )
                if got.problem is not None:
                    raise ReleaseUnavailableError(
                        f"release {meta.release_id!r} of package {self.package!r} cannot be verified: {got.problem}; "
                        "republish or roll back the package"
                    )
            write_file_atomic(staging / METADATA_COPY_NAME, metadata)
            self._write_manifest(staging, version=version, etag=etag, files={d.name: d.sha256 for d in dags})
            into.mkdir(parents=True, exist_ok=True)
            target = into / name
            os.rename(staging, target)
            _fsync_dir(into)
            return target
        finally:
            if staging.exists():
                _remove_tree(staging)

    def _reuse_map(self) -> dict[str, Path]:
        """sha256 -> a verified local file with that content (from ``current``)."""
        cur = self.current()
        if cur is None or not self.trusted(cur):
            return {}
        return {sha: cur.path / name for name, sha in cur.files.items()}

    def _new_staging(self) -> Path:
        staging = self.base_dir / "staging" / secrets.token_hex(6)
        staging.mkdir(parents=True)
        return staging

    def _write_manifest(self, folder: Path, *, version: str, etag: str | None, files: dict[str, str]) -> None:
        manifest = {
            "package": self.package,
            "env": self.env,
            "version": version,
            "metadata_etag": etag,
            "store": str(self.store.location),
            "files": files,
            "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_file_atomic(folder / MANIFEST_NAME, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())

    def _switch(self, target: Path) -> None:
        """Point ``current`` at ``target`` in one rename(2); stamp the folder it left for the grace period."""
        link = self.current_link
        if link.exists() and not link.is_symlink():
            raise ReleaseUnavailableError(
                f"{str(link)!r} is not the bundle's symlink; remove it so the bundle can manage package "
                f"{self.package!r}"
            )
        if link.is_symlink():
            with contextlib.suppress(FileNotFoundError):
                os.utime(self.base_dir / os.readlink(link))
        tmp = self.base_dir / f".link-{secrets.token_hex(4)}"
        os.symlink(os.path.relpath(target, self.base_dir), tmp)
        try:
            os.replace(tmp, link)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.base_dir)

    def clean(self, *, now: float | None = None) -> list[Path]:
        """Remove followed folders retired more than the grace period ago, and staging left by a dead process.

        Staging folders are removed only when older than the grace period too: another process may
        be filling one right now (the bundle's lock serialises writers, not this clean-up).
        """
        now = time.time() if now is None else now
        removed: list[Path] = []
        link = self.current_link
        current = os.path.basename(os.readlink(link)) if link.is_symlink() else None
        for folder in ("followed", "staging"):
            parent = self.base_dir / folder
            if not parent.is_dir():
                continue
            for entry in parent.iterdir():
                if folder == "followed" and entry.name == current:
                    continue
                try:
                    age = now - entry.lstat().st_mtime
                except FileNotFoundError:
                    continue
                if age >= self.grace_period:
                    _remove_tree(entry)
                    removed.append(entry)
        for entry in self.base_dir.glob(".link-*"):
            entry.unlink(missing_ok=True)
        return removed


def check_name(kind: str, value: object) -> str:
    """An env or package name of the store contract, or BundleConfigError naming it."""
    if not isinstance(value, str) or not NAME_RE.fullmatch(value):
        raise BundleConfigError(f"invalid {kind} {value!r}: must match {NAME_RE.pattern} (docs/store-layout.md)")
    return value
