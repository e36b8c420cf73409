"""The ``sidecar`` runner of the hostile-input corpus, and the store builder the sidecar benchmark shares.

A case (``cases/sidecar/<name>/case.yaml``) describes a store: its packages and DAG ids, and one
``damage`` from ``DAMAGES`` applied after they are published. Stores are written with the store
contract's own writers (``storecontract``: canonical ``metadata.json``, release ids, the bundle tar),
as the publisher writes them; a damage then edits what the case is about. The real sidecar runs
``--once`` in a child process (``python -m sidecar``), its peak RSS taken from ``wait4``; the outcome
is its exit code, the files it installed, the releases it rejected (from their REJECTED.json),
any bundle fallback, and whether the peak stayed inside the chart's 192Mi memory limit.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tools.bazel.publisher import draft_release
from tools.bazel.storecontract import build_document, canonical_json, dag_entry
from tools.bazel.storecontract.keys import PackageKeys

__all__ = ["CHART_MEMORY_LIMIT", "DAMAGES", "SidecarRun", "build_store", "run_sidecar", "sidecar_outcome"]

CHART_MEMORY_LIMIT = 192 * 1024 * 1024
"""The sidecar container's memory limit in infra/airflow_control_plane/values.yaml (192Mi)."""
ENV = "dev"
REPOSITORY = "registry.example.com/etl"
DIGEST = "sha256:" + hashlib.sha256(b"hostile corpus image").hexdigest()
RUN_RESOURCES = {"run": {"requests": {"cpu": "100m", "memory": "128Mi"}}}
_MIB = 1024 * 1024


def dag_source(package: str, dag_id: str) -> bytes:
    """A small DAG file (the sidecar compiles it; it does not import it)."""
    return (
        f'"""{dag_id} of {package} (hostile corpus)."""\n'
        f"DAG_ID = {dag_id!r}\nPACKAGE = {package!r}\n" + "# padding\n" * 40
    ).encode()


def publish(store: Path, package: str, dag_ids: list[str], *, published_at: str) -> Path:
    """Write one release of ``package`` as the publisher drafts it (its ``draft_release``, dated
    ``published_at`` so the case's ids are fixed), in the publisher's order; return metadata.json's path."""
    keys = PackageKeys(env=ENV, package=package)
    files = {dag_id: dag_source(package, dag_id) for dag_id in sorted(dag_ids)}
    build = build_document(
        package=package,
        repository=f"{REPOSITORY}/{package}",
        digest=DIGEST,
        revision=None,
        dags=[
            dag_entry(d, data, schedule="@daily", tasks=["run"], resources=RUN_RESOURCES) for d, data in files.items()
        ],
    )
    when = dt.datetime.strptime(published_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    draft = draft_release(build, files, env=ENV, previous=None, now=when)
    release_id, document, bundle = draft.release_id, draft.document, draft.bundle
    for key, data in [
        *((keys.dag(d), b) for d, b in files.items()),
        (keys.release_bundle(release_id), bundle),
        (keys.release_metadata(release_id), document),
        (keys.metadata, document),
    ]:
        path = store / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return store / keys.metadata


# ------------------------------------------------------------------------------------ damages


def _document(meta: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(meta.read_bytes())
    return doc


def _write_document(meta: Path, doc: Mapping[str, Any]) -> None:
    meta.write_bytes(canonical_json(doc))


def _bundle_path(meta: Path) -> Path:
    return meta.parent / _document(meta)["release"]["bundle"]["key"]


def _header(name: bytes, size: int, typeflag: bytes) -> bytes:
    """One ustar header block, checksum filled in (what tarfile would write for this entry)."""
    block = bytearray(512)
    block[0 : len(name)] = name
    block[100:108] = b"0000644\x00"
    block[108:116] = block[116:124] = b"0000000\x00"
    block[124:136] = f"{size:011o}\x00".encode()
    block[136:148] = b"00000000000\x00"
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[257:263], block[263:265] = b"ustar\x00", b"00"
    block[148:156] = f"{sum(block):06o}\x00 ".encode()
    return bytes(block)


def _huge_header(meta: Path, params: Mapping[str, Any]) -> None:
    """The bundle starts with a pax ``x`` (or GNU ``L``) header of ``mib`` MiB or ``kib`` KiB, a valid
    tar otherwise, and ``release.bundle`` gives its true size and sha256 (the publisher of a package
    controls both). tarfile read such a header whole first: 100 MiB took the sidecar to 516 MiB.
    """
    size = int(params["mib"]) * _MIB if "mib" in params else int(params["kib"]) * 1024
    typeflag = str(params.get("typeflag", "x")).encode()
    bundle = _bundle_path(meta)
    original = bundle.read_bytes()
    with open(bundle, "wb") as out:
        out.write(_header(b"././@PaxHeader" if typeflag == b"x" else b"././@LongLink", size, typeflag))
        block = b"0" * _MIB
        out.writelines(block for _ in range(size // _MIB))
        out.write(b"0" * (size % _MIB) + b"\x00" * (-size % 512))
        out.write(original)
    digest = hashlib.sha256()
    with open(bundle, "rb") as src:
        while chunk := src.read(_MIB):
            digest.update(chunk)
    doc = _document(meta)
    doc["release"]["bundle"].update(size=bundle.stat().st_size, sha256=digest.hexdigest())
    _write_document(meta, doc)


def _bundle_size(meta: Path, params: Mapping[str, Any]) -> None:
    """``release.bundle.size`` says the tar is ``bytes`` long (the sidecar reads a bundle to its end)."""
    doc = _document(meta)
    doc["release"]["bundle"]["size"] = int(params["bytes"])
    _write_document(meta, doc)


def _metadata_bytes(meta: Path, params: Mapping[str, Any]) -> None:
    """Replace metadata.json with ``mib`` MiB of a JSON ``shape``: nested or flat empty lists, one long string."""
    size = int(float(params["mib"]) * _MIB)
    shape = params["shape"]
    with open(meta, "wb") as out:  # written in pieces: this process stays small (see _LAUNCHER)
        if shape == "nested":
            half = size // 2
            for piece in (b"[", b"]"):
                out.writelines(piece * _MIB for _ in range(half // _MIB))
                out.write(piece * (half % _MIB))
        elif shape == "flat":
            count = (size - 2) // 3
            out.write(b"[[]")
            out.writelines(b",[]" * 65536 for _ in range((count - 1) // 65536))
            out.write(b",[]" * ((count - 1) % 65536) + b"]")
        elif shape == "string":
            doc = _document(meta.parent / "releases" / next(p.name for p in (meta.parent / "releases").glob("*.json")))
            doc["revision"] = "r" * size
            out.write(canonical_json(doc))
        else:
            raise ValueError(f"damage metadata_bytes: unknown shape {shape!r}")


def _dag_id(meta: Path, params: Mapping[str, Any]) -> None:
    """``dags[0].dag_id`` (and its ``file``) become ``value`` (e.g. with a trailing newline)."""
    doc = _document(meta)
    value = str(params["value"])
    doc["dags"][0]["dag_id"] = value
    doc["dags"][0]["file"] = f"dags/{value}.py"
    _write_document(meta, doc)


def _package_name(meta: Path, params: Mapping[str, Any]) -> None:
    """The package's prefix is renamed to ``value`` (e.g. ``file_processing\\n``)."""
    meta.parent.rename(meta.parent.with_name(str(params["value"])))


def _symlink_state(meta: Path, params: Mapping[str, Any], dags: Path, outside: Path) -> None:
    """``.sidecar/<pkg>/<sub>`` of the dags folder is a symlink to a folder outside it holding a file."""
    package = meta.parent.name
    outside.mkdir(parents=True, exist_ok=True)
    precious = outside / "precious"
    precious.write_text("must survive GC\n")
    os.utime(precious, (0, 0))
    os.utime(outside, (0, 0))
    state = dags / ".sidecar" / package
    state.mkdir(parents=True, exist_ok=True)
    (state / str(params["sub"])).symlink_to(outside, target_is_directory=True)


def _crashed_before(meta: Path, params: Mapping[str, Any], dags: Path) -> None:
    """STAGING.json says the process died ``attempts`` times working on this metadata.json (OOM kills)."""
    state = dags / ".sidecar" / meta.parent.name
    state.mkdir(parents=True, exist_ok=True)
    etag = "sha256:" + hashlib.sha256(meta.read_bytes()).hexdigest()  # the file store's ETag
    (state / "STAGING.json").write_text(json.dumps({"metadata_etag": etag, "attempts": int(params["attempts"])}))


Damage = Callable[..., None]
DAMAGES: dict[str, Damage] = {
    "huge_header": _huge_header,
    "bundle_size": _bundle_size,
    "metadata_bytes": _metadata_bytes,
    "dag_id": _dag_id,
    "package_name": _package_name,
    "symlink_state": _symlink_state,
    "crashed_before": _crashed_before,
}
_NEEDS_DAGS = {"symlink_state", "crashed_before"}


def build_store(doc: Mapping[str, Any], root: Path, *, phase: int = 1) -> None:
    """Publish the case's packages of ``phase`` into ``root/store`` and apply their damages."""
    store, dags = root / "store", root / "dags"
    store.mkdir(parents=True, exist_ok=True)
    for i, (package, spec) in enumerate(sorted(doc.get("packages", {}).items())):
        spec = spec or {}
        if int(spec.get("phase", 1)) != phase:
            continue
        meta = publish(
            store,
            package,
            list(spec.get("dags") or [f"{package}_d{n:02d}" for n in range(12)]),
            published_at=str(spec.get("published_at", f"2026-12-0{1 + i}T10:00:00Z")),
        )
        for damage in spec.get("damage", []):
            params = {k: v for k, v in damage.items() if k != "kind"}
            kind = damage["kind"]
            if kind in _NEEDS_DAGS:
                extra: tuple[Path, ...] = (dags, root / "outside") if kind == "symlink_state" else (dags,)
                DAMAGES[kind](meta, params, *extra)
            else:
                DAMAGES[kind](meta, params)


# ------------------------------------------------------------------------------------ running


@dataclasses.dataclass(frozen=True)
class SidecarRun:
    """One ``python -m sidecar --once`` child."""

    code: int
    peak_rss: int
    """Bytes (ru_maxrss of this child alone, from wait4)."""
    events: list[dict[str, Any]]
    seconds: float


_LAUNCHER = (
    "import json, os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execv(sys.executable, [sys.executable, '-m', 'sidecar', '--once'])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    json.dump({'code': os.waitstatus_to_exitcode(status), 'maxrss_kib': usage.ru_maxrss}, out)\n"
)
"""Forks the sidecar from a small interpreter. Linux keeps a process's peak RSS across fork (the
copied address space counts) and exec, so a child forked straight from a test or benchmark
process that once held 100 MiB would report at least that; forked from this launcher, the
sidecar's ru_maxrss is its own (plus the launcher's ~10 MiB at most)."""


def run_sidecar(
    root: Path, *, extra_env: Mapping[str, str] | None = None, dags_volume_kib: int | None = None
) -> SidecarRun:
    """Run the real sidecar once over ``root/store`` into ``root/dags``; its own peak RSS from wait4.

    ``dags_volume_kib``: the dags folder is a tmpfs of that size (a full volume gives ENOSPC),
    mounted in a mount namespace of the child (``unshare -m`` as root, ``unshare -Urm`` otherwise).
    """
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        "DAG_BUCKET": (root / "store").as_uri(),
        "DAGS_DIR": str(root / "dags"),
        "ENV": ENV,
        "METRICS_PORT": "0",
        "GRACE_PERIOD": "0",
        "SYNC_RETRIES": "0",
        **(extra_env or {}),
    }
    started = time.monotonic()
    result = root / "launcher.json"
    argv = [sys.executable, "-c", _LAUNCHER, str(result)]
    if dags_volume_kib is not None:
        (root / "dags").mkdir(parents=True, exist_ok=True)
        # root (Bazel's chroot) takes a mount namespace; anyone else a user namespace too (refused in a chroot)
        argv = [
            "unshare",
            "-m" if os.getuid() == 0 else "-Urm",
            "sh",
            "-c",
            f'mount -t tmpfs -o size={dags_volume_kib}k tmpfs "$DAGS_DIR" && exec "$@"',
            "sh",
            *argv,
        ]
    with open(root / "sidecar.log", "ab") as log:
        subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root, check=True, timeout=600)
    seconds = time.monotonic() - started
    measured = json.loads(result.read_text())
    events = []
    for line in (root / "sidecar.log").read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            event = {"event": "text", "line": line}
        if isinstance(event, dict):
            events.append(event)
    return SidecarRun(
        code=int(measured["code"]), peak_rss=int(measured["maxrss_kib"]) * 1024, events=events, seconds=seconds
    )


def _installed(dags: Path) -> list[str]:
    found = []
    if dags.is_dir():
        for link in sorted(dags.iterdir()):
            if link.is_symlink() and link.is_dir():
                found += [f"{link.name}/{f.name}" for f in sorted(link.iterdir()) if f.suffix == ".py"]
    return found


def _rejected(dags: Path) -> list[str]:
    found = []
    for record in sorted((dags / ".sidecar").glob("*/REJECTED.json")):
        reason = json.loads(record.read_text()).get("reason")
        found.append(f"{record.parent.name} ({reason})")
    return found


def sidecar_outcome(doc: Mapping[str, Any], root: Path) -> tuple[str, list[SidecarRun]]:
    """Build the case's store, run the sidecar (again after each later phase, and ``runs`` times), describe it."""
    runs: list[SidecarRun] = []
    phases = sorted({int((spec or {}).get("phase", 1)) for spec in doc.get("packages", {}).values()} or {1})
    for phase in phases:
        build_store(doc, root, phase=phase)
        for _ in range(int(doc.get("runs", 1)) if phase == phases[-1] else 1):
            volume = doc.get("dags_volume_kib")
            runs.append(run_sidecar(root, dags_volume_kib=int(volume) if volume is not None else None))
    dags = root / "dags"
    installed = _installed(dags)
    if len(installed) > 4:
        per = collections.Counter(f.split("/", 1)[0] for f in installed)
        listing = ", ".join(f"{pkg} ({count} files)" for pkg, count in sorted(per.items()))
    else:
        listing = ", ".join(installed) or "none"
    parts = [f"exit {runs[-1].code}", f"installed: {listing}"]
    rejected = _rejected(dags)
    if rejected:
        parts.append(f"rejected: {', '.join(rejected)}")
    names = {e.get("event") for run in runs for e in run.events}
    for event in (
        "bundle_fallback",
        "rejection_remembered",
        "gc_refused",
        "package_name_invalid",
        "local_disk_error",
        "package_sync_failed",
    ):
        if event in names:
            first = next(e for run in runs for e in run.events if e.get("event") == event)
            detail = first.get("problem") or first.get("error") or first.get("package") or ""
            if event == "local_disk_error":  # the free space and the staging folder's name vary
                detail = (
                    f"{first.get('errno')} writing {re.sub(r'/staging/[0-9a-f]+', '/staging/<nonce>', first['path'])}"
                )
            text = str(detail).replace(str(root), "<work>")
            parts.append(f"{event}: {text if text.isprintable() else repr(text)}")
    if (root / "outside").exists():
        parts.append("outside folder intact" if (root / "outside" / "precious").exists() else "outside folder EMPTIED")
    peak = max(run.peak_rss for run in runs)
    parts.append(
        "peak RSS within 192Mi" if peak <= CHART_MEMORY_LIMIT else f"peak RSS {peak / _MIB:.0f} MiB OVER 192Mi"
    )
    return "; ".join(parts), runs


def clean(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)
