"""The global dag_id uniqueness guard: read the other packages' metadata.json in the same env.

Called only for the dag_ids a release *introduces* (not in the package's current metadata.json;
see publish.py): every publish that introduces an id checks it against all other packages, so
the env-wide invariant holds, and re-publishing ids a package already owns cannot create a
collision. A publish that introduces nothing therefore reads no other package.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from tools.bazel.publisher.errors import DagIdCollisionError
from tools.bazel.publisher.store import Store
from tools.bazel.storecontract import NAME_RE, PackageKeys, env_prefix, package_metadata_key, parse_metadata

__all__ = ["check_collisions", "read_owners"]


def read_owners(store: Store, *, env: str, exclude: str, jobs: int = 8) -> dict[str, dict[str, str]]:
    """package -> {dag_id: metadata address} for every other package published in ``env``."""
    names = [n for n in store.list_dirs(env_prefix(env)) if n != exclude and NAME_RE.fullmatch(n)]

    def load(name: str) -> tuple[str, dict[str, str]]:
        key = package_metadata_key(env, name)
        obj = store.get(key)
        if obj is None:
            return name, {}
        meta = parse_metadata(obj.data, where=store.address(key), package=name, env=env)
        if meta.decommissioned:  # --decommission freed its dag ids
            return name, {}
        return name, {entry.dag_id: store.address(key) for entry in meta.dags}

    if not names:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(names)))) as pool:
        return {name: owned for name, owned in pool.map(load, names) if owned}


def check_collisions(store: Store, *, keys: PackageKeys, dag_ids: Iterable[str], jobs: int = 8) -> None:
    """Raise DagIdCollisionError if another live package in the env owns one of ``dag_ids``
    (the ids this release introduces)."""
    ours = set(dag_ids)
    clashes: list[str] = []
    for other, owned in sorted(read_owners(store, env=keys.env, exclude=keys.package, jobs=jobs).items()):
        common = sorted(ours & set(owned))
        if not common:
            continue
        if store.head(PackageKeys(env=keys.env, package=other).removed_marker) is not None:
            continue  # its REMOVED marker frees its dag ids
        clashes.extend(f"dag_id {d!r} is owned by package {other!r} ({owned[d]})" for d in common)
    if clashes:
        raise DagIdCollisionError(
            f"package {keys.package!r} cannot publish in env {keys.env!r}: {'; '.join(clashes)}; "
            "dag ids must be globally unique: rename the DAG or remove it from the other package first"
        )
