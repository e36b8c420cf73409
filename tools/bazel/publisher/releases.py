"""``--list-releases``: the stored releases of one package, newest last."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tools.bazel.publisher.store import Store
from tools.bazel.storecontract import Metadata, MetadataError, PackageKeys, parse_metadata

__all__ = ["ReleaseInfo", "list_releases"]


@dataclasses.dataclass(frozen=True)
class ReleaseInfo:
    """One stored release as --list-releases shows it."""

    id: str
    published_at: str | None
    image_digest: str | None
    image_tag: str | None
    dag_count: int | None
    previous: str | None
    rollback_of: str | None
    current: bool
    committed: bool  # on the chain of ``previous`` links from the current release
    problem: str | None = None  # why the release's metadata could not be read

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def list_releases(store: Store, keys: PackageKeys, *, jobs: int = 8) -> list[ReleaseInfo]:
    """Read every ``releases/<id>.json`` of the package (one listing, one GET each).

    A release is listed only if its .json exists: a bundle without one is an orphan of a publish
    that failed before writing it.
    """
    meta_keys: dict[str, str] = {}
    for info in store.iter_objects(keys.releases_prefix):
        release_id = keys.release_id_of_metadata_key(info.key)
        if release_id is not None:
            meta_keys[release_id] = info.key
    ids = sorted(meta_keys)
    current_obj = store.get(keys.metadata)
    current_id = None
    if current_obj is not None:
        try:
            current_id = parse_metadata(
                current_obj.data, where=store.address(keys.metadata), package=keys.package, env=keys.env
            ).release_id
        except MetadataError:
            pass  # a damaged metadata.json: no release is current, the stored ones are still listed

    def load(release_id: str) -> tuple[str, Metadata | None, str | None]:
        key = meta_keys[release_id]
        obj = store.get(key)
        if obj is None:
            return release_id, None, "metadata deleted while listing"
        try:
            return (
                release_id,
                parse_metadata(obj.data, where=store.address(key), package=keys.package, env=keys.env),
                None,
            )
        except MetadataError as exc:
            return release_id, None, str(exc)

    loaded: dict[str, tuple[Metadata | None, str | None]] = {}
    if ids:
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(ids)))) as pool:
            for release_id, meta, problem in pool.map(load, ids):
                loaded[release_id] = (meta, problem)

    chain: set[str] = set()
    cursor = current_id
    while cursor is not None and cursor not in chain and cursor in loaded:
        chain.add(cursor)
        meta = loaded[cursor][0]
        cursor = meta.release.previous if meta and meta.release else None

    out: list[ReleaseInfo] = []
    for release_id in ids:
        meta, problem = loaded[release_id]
        release = meta.document.get("release", {}) if meta else {}
        out.append(
            ReleaseInfo(
                id=release_id,
                published_at=release.get("published_at"),
                image_digest=meta.image.digest if meta else None,
                image_tag=release.get("image_tag"),
                dag_count=len(meta.dags) if meta else None,
                previous=release.get("previous"),
                rollback_of=release.get("rollback_of"),
                current=release_id == current_id,
                committed=release_id in chain,
                problem=problem,
            )
        )
    return out
