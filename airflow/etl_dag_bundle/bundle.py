"""``PackageDagBundle``: one package of an env from the DAG store, as a versioned Airflow DAG bundle.

Airflow 3 calls a bundle in two ways (airflow/dag_processing/bundles/base.py):

- the **dag-processor** makes it with ``version=None``, calls ``initialize()`` once and
  ``refresh()`` every ``refresh_interval``, and records ``get_current_version()`` (here the
  package's release id) on the DAG versions it writes; a DAG run stores the version its DAG had
  when the run was created (``dag_run.bundle_version``);
- the **task runner** (and callbacks) make it with the run's version and call ``initialize()``,
  then parse the DAG file under ``path``: ``<storage>/<name>/versions/<release id>/``, the files
  of exactly that release, materialised from ``releases/<id>.tar`` when not on disk yet.

So a run started before a publish finishes with the DAG files (and so the image digests) it
started with, and new runs take the new release. Configure one bundle per package in
``[dag_processor] dag_bundle_config_list`` (``etl_dag_bundle.bundle_config_list`` writes it).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from airflow.dag_processing.bundles.base import BaseDagBundle, BundleVersion

from etl_dag_bundle.errors import BundleConfigError, BundleError
from etl_dag_bundle.local import CURRENT_LINK, METADATA_COPY_NAME, VERSION_RE, PackageReleases, check_name
from sidecar.errors import ConfigError
from sidecar.store import Store, open_store, parse_store_url
from tools.bazel.retrypolicy import RetryPolicy
from tools.bazel.storecontract import StoreUrl

__all__ = ["PackageDagBundle"]

log = logging.getLogger(__name__)

_STORES: dict[tuple[StoreUrl, float, int, float], Store] = {}
_STORES_LOCK = threading.Lock()


def _shared_store(location: StoreUrl, *, timeout: float, retries: int, retry_backoff: float) -> Store:
    """One store client per process and settings: the dag-processor makes one bundle per package,
    and each S3 client holds a botocore session and a connection pool."""
    key = (location, timeout, retries, retry_backoff)
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = open_store(
                location, policy=RetryPolicy(retries=retries, backoff=retry_backoff), timeout=timeout, max_connections=4
            )
            _STORES[key] = store
        return store


class PackageDagBundle(BaseDagBundle):
    """One package of an env from the DAG store; version = the package's release id.

    :param dag_bucket: the store, ``s3://<bucket>`` or ``file:///<dir>`` (the sidecar's ``DAG_BUCKET``)
    :param env: the store's env prefix (``ENV``), e.g. ``prod``
    :param package: the package (default: the bundle's name)
    :param max_file_bytes: a release with a bigger DAG file is refused (default 5 MiB, as the sidecar)
    :param timeout: connect and read timeout of one store request, seconds (default 5)
    :param retries: retries of a failed store request (default 2)
    :param retry_backoff: first retry delay, seconds; doubles (default 0.5)
    :param grace_period: seconds a folder the dag-processor stopped parsing stays for readers (default 300)
    """

    supports_versioning = True

    # timeout 5 s and 2 retries (the sidecar has 10 s and 4): the dag-processor refreshes its
    # bundles one after the other in its main loop, so a store that accepts connections but never
    # answers holds parsing for up to (retries + 1) x 2 x timeout = 30 s per bundle and refresh;
    # a refused connection fails within the backoffs (0.5 + 1 s). The sidecar waits in its own process.
    def __init__(
        self,
        *,
        dag_bucket: str,
        env: str,
        package: str | None = None,
        max_file_bytes: int = 5 * 1024 * 1024,
        timeout: float = 5.0,
        retries: int = 2,
        retry_backoff: float = 0.5,
        grace_period: float = 300.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = f"dag bundle {self.name!r}"
        try:
            location = parse_store_url(dag_bucket)
        except ConfigError as exc:
            raise BundleConfigError(f"{where}: {exc}".replace("--dag-bucket", "dag_bucket")) from None
        self.dag_bucket = dag_bucket
        self.env = check_name(f"{where}: env", env)
        self.package = check_name(f"{where}: package", package if package is not None else self.name)
        if self.version is not None and not VERSION_RE.fullmatch(self.version):
            raise BundleConfigError(
                f"{where}: version {self.version!r} is not a release id (must match {VERSION_RE.pattern})"
            )
        for field, value in (("max_file_bytes", max_file_bytes), ("timeout", timeout), ("grace_period", grace_period)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise BundleConfigError(f"{where}: {field}={value!r} must be a positive number")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise BundleConfigError(f"{where}: retries={retries!r} must be a whole number >= 0")
        self._location = location
        self._timeout, self._retries, self._retry_backoff = float(timeout), retries, float(retry_backoff)
        self._max_file_bytes = int(max_file_bytes)
        self._grace_period = float(grace_period)
        self._releases: PackageReleases | None = None

    @property
    def releases(self) -> PackageReleases:
        """The local releases and the store client, made on first use: never in ``__init__``, which
        Airflow also calls where it only reads the bundle's name (api-server, scheduler)."""
        if self._releases is None:
            store = _shared_store(
                self._location, timeout=self._timeout, retries=self._retries, retry_backoff=self._retry_backoff
            )
            self._releases = PackageReleases(
                store=store,
                env=self.env,
                package=self.package,
                base_dir=self.base_dir,
                max_file_bytes=self._max_file_bytes,
                grace_period=self._grace_period,
            )
        return self._releases

    @property
    def path(self) -> Path:
        if self.version:
            return self.versions_dir / self.version
        return self.base_dir / CURRENT_LINK

    def initialize(self) -> None:
        """A pinned version: on disk and verified (no request when it already is); else follow metadata.json."""
        if self.version:
            if self.releases.pinned(self.version) is None:
                with self.lock():
                    self.releases.ensure_pinned(self.version)
        else:
            self.refresh()
        super().initialize()

    def refresh(self) -> None:
        """One conditional GET of metadata.json; a new release is materialised and switched in whole."""
        if self.version:
            raise BundleConfigError(
                f"dag bundle {self.name!r} is pinned to version {self.version!r}: a pinned version is never refreshed"
            )
        with self.lock():
            self.releases.refresh()
            for path in self.releases.clean():
                log.info("bundle folder removed: package=%s path=%s", self.package, path)

    def get_current_version(self) -> BundleVersion | None:
        """The release id of the files under ``path`` (no request), with the release's image and time."""
        if self.version:
            return BundleVersion(version=self.version)
        current = self.releases.current()
        if current is None:
            return None
        try:
            _, version, extra = self.releases.parse((current.path / METADATA_COPY_NAME).read_bytes(), "metadata.json")
        except (OSError, BundleError):
            return BundleVersion(version=current.version)
        return BundleVersion(version=current.version, data=extra if version == current.version else None)

    def __repr__(self) -> str:
        return (
            f"PackageDagBundle(name={self.name!r}, dag_bucket={self.dag_bucket!r}, env={self.env!r}, "
            f"package={self.package!r}, version={self.version!r})"
        )
