"""Read a package's ``metadata.json`` with the store contract's model (``storecontract.metadata``).

The bytes are bounded before they are parsed (storecontract/limits.py: size, then shape counted
without building anything), and ``json.loads`` drops what the sync does not use as it goes: a DAG
entry's ``tasks``/``resources`` never stay alive past their own entry. What is left is checked by
``storecontract.validate_document``, the rule the renderer and the publisher apply to what they
write, then by the release limits (``check_release_sizes``). The sidecar keeps, per release, what
the sync needs: the contract's DAG entries and bundle reference, the release block's known string
fields, and a digest of the file set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from typing import Any

from sidecar.errors import MetadataError
from tools.bazel.storecontract import SCHEMA_VERSION, BundleRef, DagEntry, validate_document
from tools.bazel.storecontract import MetadataError as ContractMetadataError
from tools.bazel.storecontract.limits import (
    LimitError,
    bundle_size_bound,
    check_json_shape,
    check_metadata_bytes,
    check_release_sizes,
)

__all__ = ["PUBLISHED_AT_RE", "PackageMetadata", "parse_metadata", "tree_digest"]

PUBLISHED_AT_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z", re.ASCII)
_RELEASE_FIELDS = ("id", "previous", "published_at", "image_tag", "rollback_of")
"""The ``release`` block's fields the sidecar keeps (strings); ``bundle`` is the contract's BundleRef."""


@dataclasses.dataclass(frozen=True)
class PackageMetadata:
    """The parts of metadata.json the sync uses; ``tree`` identifies the set of files by content."""

    package: str
    dags: tuple[DagEntry, ...]
    release_id: str | None
    release: dict[str, Any] | None
    tree: str
    bundle: BundleRef | None = None
    bundle_problem: str | None = None
    """Why ``release.bundle`` is present but unusable (the files are then fetched one by one)."""
    published_at: str | None = None
    """``release.published_at`` when it is a UTC time ``YYYY-MM-DDTHH:MM:SSZ`` (dag_id ties go to the earliest)."""

    @property
    def dag_ids(self) -> frozenset[str]:
        return frozenset(d.dag_id for d in self.dags)


def tree_digest(files: dict[str, str]) -> str:
    """sha256 over the sorted ``name -> sha256`` pairs: equal for equal file sets, whatever the release."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]}\n".encode())
    return digest.hexdigest()


def _fail(address: str, what: str) -> MetadataError:
    return MetadataError(f"{address!r}: {what}; the publisher must write schema version {SCHEMA_VERSION}")


def _slim(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` of json.loads: a DAG entry keeps only what the sync uses.

    Objects are built innermost first, so a dropped ``tasks``/``resources`` subtree is freed as
    soon as its entry is built: a package's DAG list costs a few fields per DAG, not its whole
    parsed document (2,000 two-task entries: 90,000 values).
    """
    doc = dict(pairs)
    if "dag_id" in doc and "sha256" in doc:
        return {k: doc[k] for k in ("dag_id", "file", "sha256", "size") if k in doc}
    return doc


def parse_metadata(data: bytes, *, package: str, env: str, address: str) -> PackageMetadata:
    """Check ``data`` (the bytes of metadata.json at ``address``) and return what the sync needs.

    Raises MetadataError naming the address and the bad field; its ``reason`` is
    ``metadata_too_large`` or ``metadata_too_complex`` for a document over a limit of
    storecontract/limits.py (size and shape checked before anything is parsed), ``empty_release``
    for a document that lists no DAGs, else ``invalid_metadata``.
    """
    try:
        check_metadata_bytes(len(data), where=address)
        check_json_shape(data, where=address)
    except LimitError as exc:
        raise MetadataError(str(exc), reason=exc.kind) from None
    try:
        doc = json.loads(data, object_pairs_hook=_slim)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise _fail(address, f"not valid JSON ({exc})") from exc
    if isinstance(doc, dict) and doc.get("schema_version") != SCHEMA_VERSION:
        raise MetadataError(
            f"{address!r}: schema_version {doc.get('schema_version')!r} is not supported (this sidecar reads "
            f"{SCHEMA_VERSION}); upgrade the sidecar or republish"
        )
    if isinstance(doc, dict) and doc.get("dags") == []:
        raise MetadataError(
            f"{address!r} lists no DAGs; an empty release never wipes local DAGs: the publisher writes "
            "a REMOVED marker to remove a package",
            reason="empty_release",
        )
    try:
        checked = validate_document(doc, where=address, package=package, env=env)
        check_release_sizes([entry.size for entry in checked.dags], where=address)
    except ContractMetadataError as exc:
        raise _fail(address, exc.problem or str(exc)) from None
    except LimitError as exc:
        raise MetadataError(str(exc), reason=exc.kind) from None
    raw_release = doc.get("release")
    release: dict[str, Any] | None = None
    if isinstance(raw_release, dict):
        release = {}
        for key in _RELEASE_FIELDS:
            value = raw_release.get(key)
            if value is not None and not isinstance(value, str):
                raise _fail(address, f"release.{key} {value!r} must be a string")
            if key in raw_release:
                release[key] = value
    bundle, problem = _bundle(raw_release, checked.release, checked.dags)
    if release is not None and bundle is not None:
        release["bundle"] = bundle.block()
    published = release.get("published_at") if release else None
    return PackageMetadata(
        package=package,
        dags=checked.dags,
        release_id=checked.release_id,
        release=release,
        tree=tree_digest({d.name: d.sha256 for d in checked.dags}),
        bundle=bundle,
        bundle_problem=problem,
        published_at=published if published and PUBLISHED_AT_RE.fullmatch(published) else None,
    )


def _bundle(raw_release: Any, release: Any, dags: tuple[DagEntry, ...]) -> tuple[BundleRef | None, str | None]:
    """``release.bundle`` is only an optimisation: a bad or absent one (the publisher always writes
    one) is reported, never fatal; the files are then fetched one by one.

    The contract checks its key (``releases/<release.id>.tar``), sha256 and size; its size may
    also not exceed what a tar of the listed files can take (limits.bundle_size_bound): the sidecar
    reads a bundle to its end to check its sha256, so an unbounded size was an unbounded read.
    """
    if release is None or not isinstance(raw_release, dict):
        return None, None
    if release.bundle is None:
        return None, release.bundle_problem
    bundle: BundleRef = release.bundle
    if bundle.size < 1024:
        return None, f"release.bundle.size {bundle.size!r} must be the tar's size in bytes"
    bound = bundle_size_bound([d.size for d in dags])
    if bundle.size > bound:
        return None, (
            f"release.bundle.size {bundle.size} is more than the {bound} bytes a tar of its {len(dags)} listed "
            "files can take (storecontract/limits.py bundle_size_bound)"
        )
    return bundle, None
