"""Publish one package: image first, then its DAGs, metadata.json last, then prune.

Order of one publish (every step before 5 only reads the store):

1. GET ``<ENV>/<pkg>/metadata.json`` (its sha256s and ETag) and plan; with ``--repair`` also
   list ``dags/`` and compare every live object with the bytes it should hold
2. refuse a mass delete; if this release introduces dag_ids that the package's current
   metadata.json does not list, read the other packages' metadata.json and refuse collisions
3. ``--dry-run`` stops here
4. image: push the OCI layout (or, with --no-push, verify the digest is in the registry);
   nothing changed: stop (zero writes)
5. PUT the new and changed DAG files to their live ``dags/<dag_id>.py`` keys
6. PUT ``releases/<id>.tar`` (the bundle: every DAG file of the release), then
   ``releases/<id>.json`` (the release's metadata.json), both If-None-Match: *
7. PUT ``metadata.json`` with If-Match on the ETag read in step 1 (If-None-Match: * for a
   first publish): the commit point. Another publish of the package that committed since
   step 1 makes it fail: ConcurrentPublishError, "retry"
8. prune live DAG files the release no longer has (and a REMOVED marker, when reviving a
   decommissioned package)

No lock: the conditional commit decides between two concurrent publishes of one package. A
publish that fails before its commit (including the loser of such a race) re-reads
metadata.json and puts every live key it wrote back to what the committed release holds (from
that release's bundle; new keys are deleted), so metadata.json and its files agree again. Until
then a reader can see live bytes that differ from metadata.json; the sidecar verifies every
file's sha256 and takes such a file from the release's immutable bundle instead (README,
"Consistency").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from functools import partial
from pathlib import Path
from typing import Any

from tools.bazel.publisher.build import BuildOutput, DagFile, check_syntax
from tools.bazel.publisher.collisions import check_collisions
from tools.bazel.publisher.errors import (
    EXPECTED,
    ConcurrentPublishError,
    MassDeleteError,
    OutsidePrefixError,
    PreconditionFailedError,
    PublishError,
    ReleaseNotFoundError,
    StoreError,
    UsageError,
)
from tools.bazel.publisher.events import Event, EventSink, ignore_events
from tools.bazel.publisher.image import ImageOutcome, ImageRegistry, ensure_image
from tools.bazel.publisher.plan import CurrentState, Plan, check_mass_delete, make_plan, read_state
from tools.bazel.publisher.store import Store
from tools.bazel.storecontract import (
    BundleError,
    PackageKeys,
    bundle_file,
    canonical_json,
    dag_file,
    make_release_id,
    parse_metadata,
    read_bundle,
    release_time,
    validate_release_id,
    with_release,
    write_bundle,
)
from tools.bazel.storecontract.limits import (
    bundle_size_bound,
    check_metadata_document,
)

__all__ = [
    "PublishOptions",
    "PublishResult",
    "ReleaseDraft",
    "decommission_package",
    "draft_release",
    "publish_build",
    "rollback_release",
]

Clock = Callable[[], dt.datetime]


@dataclasses.dataclass(frozen=True, kw_only=True)
class PublishOptions:
    """How to publish (the flags that are not about where)."""

    dry_run: bool = False
    push: bool = True
    allow_mass_delete: bool = False
    image_tag: str | None = None
    repository: str | None = None  # registry prefix; <prefix>/<package> must be what the DAGs pin
    jobs: int = 8
    repair: bool = False  # also list dags/ and fix live objects that differ from metadata.json


@dataclasses.dataclass(kw_only=True)
class PublishResult:
    """What a publish or rollback did (or, for a dry run, would do)."""

    action: str  # publish | rollback
    outcome: str  # published | noop | dry-run | repaired
    env: str
    package: str
    location: str  # address of <ENV>/<pkg>/
    plan: Plan
    release_id: str | None
    previous_release_id: str | None
    rollback_of: str | None
    image: ImageOutcome | None
    image_repository: str
    writes: dict[str, int]
    warnings: list[str]
    duration_seconds: float
    dag_sizes: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "ok": True,
            "action": self.action,
            "outcome": self.outcome,
            "env": self.env,
            "package": self.package,
            "location": self.location,
            "release": {
                "id": self.release_id,
                "previous": self.previous_release_id,
                "rollback_of": self.rollback_of,
            },
            "image": {
                "repository": self.image_repository,
                "digest_before": plan.digest_before,
                "digest_after": plan.digest_after,
                "pushed": bool(self.image and self.image.pushed),
                "verified": self.image is not None,
                "tags": list(self.image.tags) if self.image else [],
            },
            "dags": {
                "added": list(plan.added),
                "changed": list(plan.changed),
                "removed": list(plan.removed),
                "unchanged": list(plan.unchanged),
                "repaired": list(plan.repair),
            },
            "writes": dict(self.writes),
            "warnings": list(self.warnings),
            "duration_seconds": round(self.duration_seconds, 3),
        }


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Desired:
    build: dict[str, Any]
    dags: Mapping[str, DagFile]
    layout: Path | None
    push: bool
    rollback_of: str | None


class _Run:
    """One publish or rollback run against one store."""

    def __init__(
        self,
        *,
        action: str,
        store: Store,
        keys: PackageKeys,
        desired: _Desired,
        registry: ImageRegistry,
        options: PublishOptions,
        on_event: EventSink,
        clock: Clock,
    ) -> None:
        self.action = action
        self.store = store
        self.keys = keys
        self.desired = desired
        self.registry = registry
        self.options = options
        self.emit = on_event
        self.clock = clock
        self.writes = {"put": 0, "copy": 0, "delete": 0}
        self.warnings: list[str] = []
        self._mutex = threading.Lock()

    # -- small helpers ---------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        self.emit(Event("warning", message))

    def _count(self, kind: str) -> None:
        with self._mutex:
            self.writes[kind] += 1

    def _writable(self, key: str) -> str:
        if not self.keys.owns(key):
            raise OutsidePrefixError(
                f"refusing to write {key!r}: package {self.keys.package!r} may only write under {self.keys.prefix!r}"
            )
        return key

    def _put(self, key: str, data: bytes, **conditions: Any) -> str:
        etag = self.store.put(self._writable(key), data, **conditions)
        self._count("put")
        self.emit(Event("put", f"put    {self.store.address(key)}", key=key, size=len(data)))
        return etag

    def _copy(self, src: str, dst: str, *, src_etag: str | None = None) -> None:
        self.store.copy(src, self._writable(dst), src_etag=src_etag)
        self._count("copy")
        self.emit(Event("copy", f"copy   {self.store.address(dst)}  (from {src})", key=dst))

    def _delete(self, key: str) -> None:
        self.store.delete(self._writable(key))
        self._count("delete")
        self.emit(Event("delete", f"delete {self.store.address(key)}", key=key))

    def _parallel(self, tasks: Mapping[str, Callable[[], object]]) -> tuple[list[str], list[tuple[str, Exception]]]:
        """Run tasks on a thread pool; return (succeeded names, [(name, error)])."""
        done: list[str] = []
        failed: list[tuple[str, Exception]] = []
        if not tasks:
            return done, failed
        if len(tasks) == 1:  # no pool for one request
            ((name, fn),) = tasks.items()
            try:
                fn()
            except Exception as exc:
                return done, [(name, exc)]
            return [name], failed
        with ThreadPoolExecutor(max_workers=max(1, min(self.options.jobs, len(tasks)))) as pool:
            futures = {pool.submit(fn): name for name, fn in tasks.items()}
            for future in as_completed(futures):
                error = future.exception()
                if error is None:
                    done.append(futures[future])
                elif isinstance(error, Exception):
                    failed.append((futures[future], error))
                else:  # pragma: no cover - BaseException from a worker
                    raise error
        failed.sort(key=lambda item: item[0])
        return sorted(done), failed

    def _result(
        self,
        outcome: str,
        plan: Plan,
        state: CurrentState,
        *,
        release_id: str | None,
        image: ImageOutcome | None,
        started: float,
    ) -> PublishResult:
        return PublishResult(
            action=self.action,
            outcome=outcome,
            env=self.keys.env,
            package=self.keys.package,
            location=self.store.address(self.keys.prefix),
            plan=plan,
            release_id=release_id,
            previous_release_id=state.release_id,
            rollback_of=self.desired.rollback_of,
            image=image,
            image_repository=str(self.desired.build["image"]["repository"]),
            writes=dict(self.writes),
            warnings=list(self.warnings),
            duration_seconds=time.monotonic() - started,
            dag_sizes={d: len(f.data) for d, f in self.desired.dags.items()},
        )

    # -- the run ---------------------------------------------------------------------------

    def execute(self) -> PublishResult:
        started = time.monotonic()
        build, dags = self.desired.build, self.desired.dags
        repair = self.options.repair
        state = read_state(
            self.store, self.keys, list_live=repair, replace_unreadable=repair and self.action == "publish"
        )
        if state.unreadable is not None:
            self._warn(f"replacing a metadata.json that cannot be read: {state.unreadable}")  # names the file
        for key in state.ignored_keys:
            self._warn(f"ignoring {self.store.address(key)}: not a <dag_id>.py DAG file")
        plan = make_plan(self.store, state, build=build, dags=dags, env=self.keys.env)
        self.emit(Event("plan", _plan_line(plan)))
        check_mass_delete(plan, state, keys=self.keys, allow=self.options.allow_mass_delete)
        self._check_limits(build, dags)
        introduced = _introduced_ids(state, dags)
        if introduced and (not plan.noop or self.options.dry_run):
            # Only ids the package does not own yet can collide: the env-wide uniqueness invariant
            # holds because every publish that introduces an id checks it against all other
            # packages; re-publishing ids already in our metadata.json cannot create a collision,
            # so that publish reads nothing of the other packages.
            check_collisions(self.store, keys=self.keys, dag_ids=introduced, jobs=self.options.jobs)
        if self.options.dry_run:
            return self._result("dry-run", plan, state, release_id=None, image=None, started=started)

        image = ensure_image(
            self.registry,
            repository=str(build["image"]["repository"]),
            digest=str(build["image"]["digest"]),
            layout=self.desired.layout,
            tags=[self.options.image_tag] if self.options.image_tag and self.desired.push else [],
            push=self.desired.push,
        )
        self.emit(Event("image", f"image  {image.reference} {'pushed' if image.pushed else 'verified'}"))
        if self.options.image_tag and not image.pushed:
            self._warn(f"tag {self.options.image_tag!r} not applied: the image was verified, not pushed")
        if plan.noop:
            return self._result("noop", plan, state, release_id=None, image=image, started=started)
        if plan.maintenance_only:
            self._maintain(plan)
            return self._result("repaired", plan, state, release_id=state.release_id, image=image, started=started)
        release_id = self._release(plan, state)
        return self._result("published", plan, state, release_id=release_id, image=image, started=started)

    def _check_limits(self, build: Mapping[str, Any], dags: Mapping[str, DagFile]) -> None:
        """Refuse what the sidecar would refuse (storecontract.limits, one definition for both):
        the metadata.json this publish writes, with the largest release block it can have."""
        probe = {
            "id": "00000000T000000Z-00000000",
            "previous": "00000000T000000Z-00000000",
            "rollback_of": "00000000T000000Z-00000000",
            "published_at": "0000-00-00T00:00:00Z",
            "image_tag": self.options.image_tag,
            "bundle": {"key": bundle_file("00000000T000000Z-00000000"), "sha256": "0" * 64, "size": 10**15},
        }
        check_metadata_document(
            canonical_json(with_release(build, env=self.keys.env, release=probe)),
            where=self.store.address(self.keys.metadata),
            dag_sizes=[len(f.data) for f in dags.values()],
        )

    def _maintain(self, plan: Plan) -> None:
        """metadata.json is already right: rewrite bad live files and prune strays only."""
        dags = self.desired.dags
        _, failed = self._parallel({d: partial(self._put, self.keys.dag(d), dags[d].data) for d in plan.to_live})
        if failed:
            raise failed[0][1]
        self._prune(plan)

    def _release(self, plan: Plan, state: CurrentState) -> str:
        dags = self.desired.dags
        draft = draft_release(
            self.desired.build,
            {d: f.data for d, f in dags.items()},
            env=self.keys.env,
            previous=state.release_id,
            now=self.clock(),
            image_tag=self.options.image_tag,
            rollback_of=self.desired.rollback_of,
        )
        release_id, document, bundle = draft.release_id, draft.document, draft.bundle
        check_metadata_document(document, where=self.store.address(self.keys.metadata))
        bound = bundle_size_bound([len(f.data) for f in dags.values()])
        if len(bundle) > bound:  # the sidecar would not read it: a bug of write_bundle, never of the input
            raise AssertionError(f"bundle of {len(bundle)} bytes over storecontract.limits.bundle_size_bound {bound}")

        written: list[str] = []
        touched_live: list[str] = []
        try:
            done, failed = self._parallel({d: partial(self._put, self.keys.dag(d), dags[d].data) for d in plan.to_live})
            touched_live.extend(done)
            if failed:
                raise failed[0][1]
            for key, data in (
                (self.keys.release_bundle(release_id), bundle),
                (self.keys.release_metadata(release_id), document),
            ):
                self._put(key, data, if_none_match=True)  # the .json only once its .tar is stored
                written.append(key)
            self._commit(document, release_id, state)
        except PreconditionFailedError as exc:  # a release id or bundle another publish created first
            note = self._undo(touched_live, written)
            raise ConcurrentPublishError(
                f"another publish of package {self.keys.package!r} wrote the same release meanwhile ({exc}); "
                f"{note}; retry the publish"
            ) from exc
        except EXPECTED as exc:
            note = self._undo(touched_live, written)
            raise type(exc)(f"{exc}; {note}") from exc
        self._prune(plan, drop_marker=state.decommissioned or state.removed_marker)
        return release_id

    def _commit(self, document: bytes, release_id: str, state: CurrentState) -> None:
        key = self.keys.metadata
        try:
            if state.metadata_etag is None:
                self._put(key, document, if_none_match=True)
            else:
                self._put(key, document, if_match=state.metadata_etag)
        except StoreError as exc:
            # A lost response can hide a successful write: look before declaring failure.
            try:
                stored = self.store.get(key)
                committed = (
                    stored is not None
                    and parse_metadata(stored.data, where=key, package=self.keys.package).release_id == release_id
                )
            except EXPECTED:
                committed = False
            if committed:
                self._warn(f"the commit of {self.store.address(key)} reported {exc}, but it is in place")
                self.emit(Event("commit", f"commit {self.store.address(key)} -> {release_id}", key=key))
                return
            if isinstance(exc, PreconditionFailedError):
                raise ConcurrentPublishError(
                    f"{self.store.address(key)} was changed by another writer during this publish "
                    f"(conditional write rejected); retry the publish"
                ) from exc
            raise
        self.emit(Event("commit", f"commit {self.store.address(key)} -> {release_id}", key=key))

    def _committed_files(self, state: CurrentState) -> dict[str, bytes]:
        """The DAG files of the committed release, from its bundle."""
        assert state.metadata is not None and state.metadata.release is not None
        release = state.metadata.release
        if release.bundle is None:
            raise ReleaseNotFoundError(f"{self.store.address(self.keys.metadata)}: {release.bundle_problem}")
        key = self.keys.release_bundle(release.id)
        obj = self.store.get(key)
        if obj is None:
            raise ReleaseNotFoundError(f"{self.store.address(key)} is missing")
        return read_bundle(obj.data, where=self.store.address(key), dags=state.metadata.dags)

    def _undo(self, touched_live: list[str], written: list[str]) -> str:
        """Put back the live keys written before a failed commit; drop the unfinished release.

        The live keys are put back to what the *committed* release holds, read again now: when the
        commit lost to another publish of the package, that is the other publish's release, not
        the one this publish started from.
        """
        unrestored: list[str] = []
        try:
            current = read_state(self.store, self.keys)
            committed = current.metadata.sha256s if current.metadata else {}
            where = f"release {current.release_id}" if current.release_id else "no release (first publish)"
            files: dict[str, bytes] | None = None
            for dag_id in touched_live:
                try:
                    if dag_id in committed and current.release_id is not None:
                        if files is None:
                            files = self._committed_files(current)
                        self.store.put(self.keys.dag(dag_id), files[dag_id])
                    else:
                        self.store.delete(self.keys.dag(dag_id))
                    self.emit(Event("restore", f"restore {self.store.address(self.keys.dag(dag_id))}"))
                except EXPECTED:
                    unrestored.append(dag_id)
        except EXPECTED as exc:
            where = f"a release this publish could not read back ({exc})"
            unrestored = list(touched_live)
        for key in reversed(written):
            try:
                self.store.delete(key)
            except PublishError:
                self._warn(
                    f"could not remove {self.store.address(key)} of the unfinished release (an orphan: harmless)"
                )
        note = f"nothing was committed by this publish: metadata.json points to {where}"
        if unrestored:
            note += (
                f"; live files NOT restored (readers verify sha256s and use the release bundle; "
                f"re-run with --repair to fix them): {', '.join(unrestored)}"
            )
        elif touched_live:
            note += f"; live files restored: {', '.join(touched_live)}"
        return note

    def _prune(self, plan: Plan, *, drop_marker: bool = False) -> None:
        tasks: dict[str, Callable[[], object]] = {d: partial(self._delete, self.keys.dag(d)) for d in plan.removed}
        if drop_marker:  # the package is live again
            tasks[self.keys.removed_marker] = partial(self._delete, self.keys.removed_marker)
        _, failed = self._parallel(tasks)
        if failed:
            raise StoreError(
                f"the release is live, but pruning failed for {', '.join(n for n, _ in failed)} "
                f"({failed[0][1]}); re-run the publish to finish pruning"
            )


@dataclasses.dataclass(frozen=True)
class ReleaseDraft:
    """A release as a publish writes it: its id, its ``metadata.json`` and its bundle tar."""

    release_id: str
    document: bytes
    bundle: bytes


def draft_release(
    build: Mapping[str, Any],
    dags: Mapping[str, bytes],
    *,
    env: str,
    previous: str | None,
    now: dt.datetime,
    image_tag: str | None = None,
    rollback_of: str | None = None,
) -> ReleaseDraft:
    """The next release after ``previous`` of the build ``build`` with DAG files ``dags``.

    Its id is stamped ``now``, or one second after ``previous`` when that is later (release ids
    sort by time, and a second publish within the same second must sort after the first). Writes
    nothing: a publish validates the document, then stores the bundle, ``releases/<id>.json`` and,
    last, ``metadata.json``.
    """
    stamp = now if previous is None else max(now, release_time(previous) + dt.timedelta(seconds=1))
    release_id = make_release_id(stamp, build)
    bundle = write_bundle(dict(dags))
    info: dict[str, Any] = {
        "id": release_id,
        "previous": previous,
        "published_at": _iso(now),
        "image_tag": image_tag,
        "bundle": {"key": bundle_file(release_id), "sha256": hashlib.sha256(bundle).hexdigest(), "size": len(bundle)},
    }
    if rollback_of is not None:
        info["rollback_of"] = rollback_of
    return ReleaseDraft(release_id, canonical_json(with_release(build, env=env, release=info)), bundle)


def _introduced_ids(state: CurrentState, dags: Mapping[str, DagFile]) -> list[str]:
    """dag_ids of this release that the package's current metadata.json does not list.

    A decommissioned package owns nothing (another package may have taken its ids since), so
    then every id counts as introduced; so does every id of a first publish.
    """
    owned = set(state.metadata.sha256s) if state.metadata is not None and not state.owns_nothing else set()
    return sorted(set(dags) - owned)


def _plan_line(plan: Plan) -> str:
    parts = [
        f"{len(plan.added)} added",
        f"{len(plan.changed)} changed",
        f"{len(plan.removed)} removed",
        f"{len(plan.unchanged)} unchanged",
    ]
    if plan.repair:
        parts.append(f"{len(plan.repair)} to repair")
    before = plan.digest_before or "none"
    return f"plan   {', '.join(parts)}; image {before} -> {plan.digest_after}"


def _check_repository(options: PublishOptions, rendered: str, package: str) -> None:
    """``--repository``/``IMAGE_REPOSITORY`` is the registry prefix the DAGs must pin ``<prefix>/<package>`` under."""
    if options.repository is None:
        return
    prefix = options.repository.rstrip("/")
    if f"{prefix}/{package}" != rendered:
        built = rendered.removesuffix(f"/{package}")
        if prefix == rendered:
            raise UsageError(
                f"invalid flag: --repository/IMAGE_REPOSITORY {options.repository!r} is the package's repository; "
                f"it means the registry prefix: set it to {built!r} (images live at <prefix>/<package>)"
            )
        raise UsageError(
            f"invalid flag: --repository/IMAGE_REPOSITORY {options.repository!r} (the registry prefix): "
            f"the DAGs pin {rendered!r} (metadata.json image.repository), built with "
            f"--//tools/bazel:image_repository={built}; rebuild with "
            f"--//tools/bazel:image_repository={prefix}, or unset IMAGE_REPOSITORY"
        )


def publish_build(
    build: BuildOutput,
    *,
    store: Store,
    env: str,
    registry: ImageRegistry,
    image_layout: Path | None,
    options: PublishOptions = PublishOptions(),
    on_event: EventSink = ignore_events,
    clock: Clock = _utcnow,
) -> PublishResult:
    """Publish the build output of one package to ``<env>/<package>/`` in ``store``."""
    keys = PackageKeys(env=env, package=build.package)
    _check_repository(options, build.image_repository, build.package)
    desired = _Desired(build=build.metadata, dags=build.dags, layout=image_layout, push=options.push, rollback_of=None)
    return _Run(
        action="publish",
        store=store,
        keys=keys,
        desired=desired,
        registry=registry,
        options=options,
        on_event=on_event,
        clock=clock,
    ).execute()


def load_release(store: Store, keys: PackageKeys, release_id: str) -> tuple[dict[str, Any], dict[str, DagFile]]:
    """Read a stored release (``releases/<id>.json`` and its bundle) and check every file's sha256.

    The .json and the .tar are fetched in parallel (the bundle key follows from the release id;
    the ``release.bundle.key`` read from the .json must name that same key).
    """
    meta_key = keys.release_metadata(validate_release_id(release_id))
    bundle_key = keys.release_bundle(release_id)
    with ThreadPoolExecutor(max_workers=2) as pool:
        meta_future = pool.submit(store.get, meta_key)
        bundle_future = pool.submit(store.get, bundle_key)
        obj, tar = meta_future.result(), bundle_future.result()
    if obj is None:
        raise ReleaseNotFoundError(
            f"release {release_id!r} of package {keys.package!r} in env {keys.env!r} is not stored "
            f"({store.address(meta_key)}); see --list-releases"
        )
    where = store.address(meta_key)
    meta = parse_metadata(obj.data, where=where, package=keys.package, env=keys.env)
    if meta.release is None or meta.release.id != release_id:
        raise ReleaseNotFoundError(f"{where} describes release {meta.release_id!r}, not {release_id!r}")
    block = meta.release.bundle
    if block is None:
        raise ReleaseNotFoundError(f"{where}: {meta.release.bundle_problem}")
    if tar is None:
        raise ReleaseNotFoundError(f"release {release_id!r} is incomplete: {store.address(bundle_key)} is missing")
    sha = hashlib.sha256(tar.data).hexdigest()
    if sha != block.sha256 or len(tar.data) != block.size:
        raise ReleaseNotFoundError(
            f"release {release_id!r} is damaged: {store.address(bundle_key)} has sha256 {sha!r} and "
            f"{len(tar.data)} bytes, its metadata says {block.sha256!r} and {block.size!r}"
        )
    try:
        files = read_bundle(tar.data, where=store.address(bundle_key), dags=meta.dags)
    except BundleError as exc:
        raise ReleaseNotFoundError(f"release {release_id!r} is damaged: {exc}; roll back to another release") from exc
    dags = {
        dag_id: DagFile(dag_id=dag_id, data=data, origin=f"{store.address(bundle_key)}:{dag_file(dag_id)}")
        for dag_id, data in files.items()
    }
    return meta.build, dags


def rollback_release(
    release_id: str,
    *,
    store: Store,
    env: str,
    package: str,
    registry: ImageRegistry,
    options: PublishOptions = PublishOptions(),
    on_event: EventSink = ignore_events,
    clock: Clock = _utcnow,
) -> PublishResult:
    """Republish a stored release as a new release (same order and checks as a publish).

    The image is only verified (an old image cannot be rebuilt here): it must still be in
    the registry.
    """
    keys = PackageKeys(env=env, package=package)
    build, dags = load_release(store, keys, release_id)
    for dag in dags.values():
        check_syntax(dag)
    _check_repository(options, str(build["image"]["repository"]), package)
    desired = _Desired(build=build, dags=dags, layout=None, push=False, rollback_of=release_id)
    return _Run(
        action="rollback",
        store=store,
        keys=keys,
        desired=desired,
        registry=registry,
        options=options,
        on_event=on_event,
        clock=clock,
    ).execute()


def decommission_package(
    *,
    store: Store,
    env: str,
    package: str,
    allow_mass_delete: bool,
    on_event: EventSink = ignore_events,
    clock: Clock = _utcnow,
) -> dict[str, Any]:
    """``--decommission``: take the package out of Airflow, keeping its releases.

    metadata.json gets a ``decommissioned`` block (If-Match, so a concurrent publish is not
    overwritten), then the ``REMOVED`` marker is written: the sidecar removes the package's DAGs
    when it sees the marker, and the package owns no dag_id any more. Live files and releases
    stay (``--rollback`` or a new publish brings the package back and deletes the marker).
    Removing every DAG of a package is a mass delete: it needs ``allow_mass_delete``.
    """
    keys = PackageKeys(env=env, package=package)
    state = read_state(store, keys)
    where = store.address(keys.metadata)
    if state.metadata is None:
        raise UsageError(
            f"invalid flag: --decommission: package {package!r} is not published in env {env!r} "
            f"({where} does not exist)"
        )
    count = len(state.metadata.dags)
    if not allow_mass_delete:
        raise MassDeleteError(
            f"refusing to decommission package {package!r} in env {env!r}: it removes all {count} of its DAGs "
            "from Airflow; pass --allow-mass-delete if this is intended"
        )
    now = _iso(clock())
    document = dict(state.metadata.document)
    if not state.decommissioned:
        document["decommissioned"] = {"at": now, "release": state.release_id}
        try:
            store.put(keys.metadata, canonical_json(document), if_match=state.metadata_etag)
        except PreconditionFailedError as exc:
            raise ConcurrentPublishError(
                f"{where} was changed by a publish of package {package!r} while decommissioning it "
                "(conditional write rejected); nothing was decommissioned: retry"
            ) from exc
        on_event(Event("commit", f"commit {where} -> decommissioned", key=keys.metadata))
    marker = (
        json.dumps({"decommissioned_at": document["decommissioned"]["at"], "release": state.release_id}, sort_keys=True)
        + "\n"
    )
    store.put(keys.removed_marker, marker.encode("utf-8"))
    on_event(Event("put", f"put    {store.address(keys.removed_marker)}", key=keys.removed_marker))
    return {
        "ok": True,
        "action": "decommission",
        "env": env,
        "package": package,
        "location": store.address(keys.prefix),
        "release": {"id": state.release_id},
        "dags": [entry.dag_id for entry in state.metadata.dags],
        "decommissioned_at": document["decommissioned"]["at"],
    }
