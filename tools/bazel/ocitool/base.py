"""Build the Debian Python base layer from a lock, reproducibly, with ``mmdebstrap``.

The lock (JSON) names the root packages (``include``), the full resolved package set with exact
versions and ``.deb`` sha256 (``packages``), and the sha256 of the resulting tarball
(``tarball``). A build:

1. runs ``mmdebstrap --variant=extract`` with every package pinned, ``SOURCE_DATE_EPOCH=0`` and
   dpkg path-excludes for docs, man pages and locales (copyright files are kept); when it fails,
   reads the mirror's Packages index and names each pinned ``name=version`` that is no longer
   served, with the update command to run;
2. checks the downloaded ``.deb`` files against the lock (names, versions, sha256);
3. adds what maintainer scripts would have made: merged-/usr links, ``/etc/passwd`` and
   ``/etc/group`` with root and ``nonroot`` (65532), ``/home/nonroot``, the CA bundle, a dpkg
   status file (for scanners) and, optionally, the stdlib's ``.pyc`` files (unchecked-hash);
4. writes a deterministic ``tar.gz`` and compares its sha256 with the lock.

``--update-lock`` resolves the root packages afresh on the mirror (apt, through mmdebstrap),
builds, and rewrites the lock.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tools.bazel.ocitool._version import __version__
from tools.bazel.ocitool.debian import parse_control, served_versions
from tools.bazel.ocitool.errors import (
    BaseBuildError,
    LockMismatchError,
    PackageNotServedError,
    UsageError,
)
from tools.bazel.ocitool.layer import write_layer
from tools.bazel.ocitool.rootfs import contents_from_root

__all__ = ["DEFAULT_INCLUDE", "BaseResult", "build_base", "load_lock"]

DEFAULT_INCLUDE = (
    "base-files",
    "python3.13-minimal",
    "libpython3.13-stdlib",
    "ca-certificates",
    "tzdata",
    "libstdc++6",
    "libgcc-s1",
    "zlib1g",
)
PATH_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/lintian/*",
)
MERGED_USR = ("bin", "lib", "lib64", "sbin")
REMOVE = (
    "etc/hostname",
    "etc/resolv.conf",
    "etc/machine-id",
    "etc/apt",
    "var/lib/apt",
    "var/cache/apt",
    "var/log/apt",
    "var/cache/debconf",
    "var/cache/ldconfig",
)
NONROOT_UID = 65532
PASSWD = (
    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    f"nonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:/home/nonroot:/usr/sbin/nologin\n"
)
GROUP = f"root:x:0:\nnonroot:x:{NONROOT_UID}:\n"
NSSWITCH = (
    "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\nprotocols: files\nservices: files\n"
)


@dataclasses.dataclass(frozen=True)
class BaseResult:
    """What ``build_base`` wrote and how it compares with the lock."""

    out: Path
    sha256: str
    size: int
    packages: list[dict[str, str]]
    lock_updated: bool


def load_lock(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        lock = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"invalid flag: --packages {str(path)!r} does not exist") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"invalid flag: --packages {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(lock, dict) or not isinstance(lock.get("include", list(DEFAULT_INCLUDE)), list):
        raise UsageError(f"invalid flag: --packages {str(path)!r} must be an object with an 'include' list")
    return lock


def _write_lock(path: Path, lock: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(lock, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _check_served(lock: dict[str, Any], mirror: str, suite: str, arch: str, update_command: str) -> None:
    served = served_versions(mirror, suite, arch)
    missing = [p for p in lock.get("packages", []) if (p["name"], p["version"]) not in served]
    if missing:
        listed = ", ".join(f"{p['name']}={p['version']}" for p in missing)
        raise PackageNotServedError(
            f"Debian mirror {mirror!r} ({suite}/{arch}) no longer serves {listed}: "
            f"re-pin the base with `{update_command}` and commit the new lock"
        )
    changed = [
        p for p in lock.get("packages", []) if p.get("sha256") and served[(p["name"], p["version"])] != p["sha256"]
    ]
    if changed:
        listed = ", ".join(f"{p['name']}={p['version']}" for p in changed)
        raise LockMismatchError(
            f"Debian mirror {mirror!r} serves {listed} with a different sha256 than the lock: "
            f"check the mirror, then re-pin with `{update_command}`"
        )


def _run(cmd: Sequence[str], *, env: dict[str, str] | None = None, what: str) -> str:
    try:
        proc = subprocess.run(list(cmd), capture_output=True, text=True, env=env, check=False)
    except FileNotFoundError:
        raise BaseBuildError(f"{what}: {cmd[0]!r} is not installed (Debian package {Path(cmd[0]).name})") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-8:]
        raise BaseBuildError(f"{what} failed (exit {proc.returncode}): {' | '.join(tail)!r}")
    return proc.stdout


def _deb_info(deb_dir: Path) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(lock entries, full control stanzas) of the .debs mmdebstrap downloaded."""
    entries, stanzas = [], []
    for deb in sorted(deb_dir.glob("*.deb")):
        control = next(parse_control(_run(["dpkg-deb", "-f", str(deb)], what=f"reading {deb.name}")))
        entries.append(
            {
                "name": control["Package"],
                "version": control["Version"],
                "architecture": control.get("Architecture", ""),
                "sha256": _sha256_file(deb),
            }
        )
        stanzas.append(control)
    entries.sort(key=lambda e: e["name"])
    stanzas.sort(key=lambda s: s["Package"])
    return entries, stanzas


def _dpkg_status(stanzas: list[dict[str, str]]) -> str:
    blocks = []
    for control in stanzas:
        lines = [f"Package: {control['Package']}", "Status: install ok installed"]
        for key, value in control.items():
            if key not in ("Package", "Status"):
                lines.append(f"{key}: {value}")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _ca_bundle(root: Path) -> bytes:
    """What update-ca-certificates would write: every shipped certificate, sorted, concatenated."""
    share = root / "usr/share/ca-certificates"
    certs = sorted(share.rglob("*.crt")) if share.is_dir() else []
    out = b""
    for cert in certs:
        data = cert.read_bytes()
        out += data if data.endswith(b"\n") else data + b"\n"
    return out


def _finish_root(root: Path, stanzas: list[dict[str, str]], *, compile_pyc: bool) -> None:
    if compile_pyc:
        python = root / "usr/bin/python3.13"
        if python.exists():
            if os.geteuid() != 0:
                raise BaseBuildError(
                    "compiling the stdlib .pyc files needs chroot (run as root), or pass --no-compile-pyc"
                )
            env = {
                "PATH": "/usr/bin:/bin",
                "PYTHONHASHSEED": "0",
                "LC_ALL": "C.UTF-8",
                "SOURCE_DATE_EPOCH": "0",
            }
            _run(
                [
                    shutil.which("chroot") or "/usr/sbin/chroot", str(root), "/usr/bin/python3.13", "-m", "compileall", "-q", "-j", "1",
                    "--invalidation-mode", "unchecked-hash", "/usr/lib/python3.13",
                ],
                env=env,
                what="compiling the stdlib .pyc files in the base root",
            )  # fmt: skip
    for rel in REMOVE:
        _remove(root / rel)
    for directory in ("dev", "tmp", "var/log", "run", "proc", "sys"):
        target = root / directory
        if target.is_dir():
            for child in target.iterdir():
                _remove(child)
    for name in MERGED_USR:
        alias, real = root / name, root / "usr" / name
        real.mkdir(parents=True, exist_ok=True)
        if alias.is_dir() and not alias.is_symlink():
            for child in sorted(alias.iterdir()):
                dest = real / child.name
                if dest.exists() or dest.is_symlink():
                    raise BaseBuildError(
                        f"merged-/usr conflict: both /{name}/{child.name} and /usr/{name}/{child.name}"
                    )
                shutil.move(str(child), str(dest))
            alias.rmdir()
        if not alias.is_symlink():
            alias.symlink_to(f"usr/{name}")
    etc = root / "etc"
    (etc / "passwd").write_text(PASSWD)
    (etc / "group").write_text(GROUP)
    (etc / "nsswitch.conf").write_text(NSSWITCH)
    for rel, mode, uid in (
        ("root", 0o700, 0),
        ("home/nonroot", 0o700, NONROOT_UID),
        ("tmp", 0o1777, 0),
    ):
        path = root / rel
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(path, uid, uid)
        path.chmod(mode)
    bundle = _ca_bundle(root)
    if bundle:
        certs = etc / "ssl/certs"
        certs.mkdir(parents=True, exist_ok=True)
        (certs / "ca-certificates.crt").write_bytes(bundle)
    dpkg = root / "var/lib/dpkg"
    if dpkg.is_dir():
        shutil.rmtree(dpkg)
    dpkg.mkdir(parents=True)
    (dpkg / "status").write_text(_dpkg_status(stanzas))


def build_base(
    *,
    lock_path: str | os.PathLike[str],
    mirror: str,
    out: str | os.PathLike[str],
    suite: str | None = None,
    update_lock: bool = False,
    compile_pyc: bool = True,
    level: int = 9,
    update_command: str = "python -m tools.bazel.ocitool base --update-lock",
    check_tarball: bool = True,
    mmdebstrap: str = "mmdebstrap",
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> BaseResult:
    """Build the base tarball at ``out`` from the lock; rewrite the lock when ``update_lock``.

    ``check_tarball=False`` checks only the packages, not the tarball's sha256 (which also depends
    on the builder: this module, mmdebstrap, zlib).
    """
    lock_file = Path(lock_path)
    lock = load_lock(lock_file) if lock_file.exists() or not update_lock else {}
    suite = suite or str(lock.get("suite") or "trixie")
    arch = str(lock.get("architecture") or "amd64")
    include = [str(p) for p in lock.get("include") or DEFAULT_INCLUDE]
    if not update_lock:
        if lock.get("suite") and lock["suite"] != suite:
            raise UsageError(
                f"invalid flag: --suite {suite!r} differs from the lock's {lock['suite']!r}: use --update-lock"
            )
        if not lock.get("packages") or not lock.get("tarball", {}).get("sha256"):
            raise UsageError(
                f"invalid flag: --packages {str(lock_file)!r} has no resolved packages: run `{update_command}`"
            )
        wanted = [f"{p['name']}={p['version']}" for p in lock["packages"]]
    else:
        wanted = include
    with tempfile.TemporaryDirectory(prefix="ocitool-base-") as tmp:
        root, debs = Path(tmp) / "root", Path(tmp) / "debs"
        debs.mkdir()
        cmd = [
            mmdebstrap,
            "--variant=extract",
            "--format=directory",
            f"--architectures={arch}",
            "--include=" + ",".join(wanted),
            '--aptopt=Acquire::Check-Valid-Until "false"',
            *(f"--dpkgopt={opt}" for opt in PATH_EXCLUDES),
            f'--extract-hook=cp "$1"/var/cache/apt/archives/*.deb {shlex.quote(str(debs))}/',
            suite,
            str(root),
            mirror,
        ]
        env = dict(os.environ, SOURCE_DATE_EPOCH="0", LC_ALL="C.UTF-8")
        log(f"ocitool base: mmdebstrap --variant=extract {suite} ({len(wanted)} packages)")
        try:
            _run(cmd, env=env, what="mmdebstrap")
        except BaseBuildError:
            if not update_lock:  # say which pinned version is gone, if that is the cause
                log(f"ocitool base: mmdebstrap failed; checking which pinned packages {mirror} still serves")
                _check_served(lock, mirror, suite, arch, update_command)
            raise
        packages, stanzas = _deb_info(debs)
        if not update_lock:
            _compare_packages(lock["packages"], packages, update_command)
        _finish_root(root, stanzas, compile_pyc=compile_pyc)
        contents = contents_from_root(root)
        result = write_layer(contents, out, mtime=0, level=level)
    sha256 = result.digest.split(":", 1)[1]
    log(f"ocitool base: {out} sha256:{sha256} ({result.size} bytes, {len(packages)} packages)")
    if update_lock:
        new_lock = {
            "_comment": f"Generated by `{update_command}`; edit 'include' only, then run it again.",
            "suite": suite,
            "architecture": arch,
            "include": include,
            "compile_pyc": compile_pyc,
            "packages": packages,
            "tarball": {"sha256": sha256, "size": result.size},
        }
        _write_lock(lock_file, new_lock)
        log(f"ocitool base: wrote {lock_file}")
    elif check_tarball:
        expected = lock["tarball"]["sha256"]
        if expected != sha256:
            raise LockMismatchError(
                f"base tarball sha256 {sha256!r} differs from the lock's {expected!r} although every package "
                f"matched: the builder changed (ocitool {__version__}, mmdebstrap or zlib); re-pin with `{update_command}`"
            )
    return BaseResult(
        out=Path(out),
        sha256=sha256,
        size=result.size,
        packages=packages,
        lock_updated=update_lock,
    )


def _compare_packages(locked: list[dict[str, str]], got: list[dict[str, str]], update_command: str) -> None:
    want = {(p["name"], p["version"]): p.get("sha256", "") for p in locked}
    have = {(p["name"], p["version"]): p["sha256"] for p in got}
    extra = sorted(set(have) - set(want))
    missing = sorted(set(want) - set(have))
    bad = sorted(k for k in set(want) & set(have) if want[k] and want[k] != have[k])
    if extra or missing or bad:
        parts = []
        if extra:
            parts.append("apt also pulled " + ", ".join(f"{n}={v}" for n, v in extra))
        if missing:
            parts.append("not installed: " + ", ".join(f"{n}={v}" for n, v in missing))
        if bad:
            parts.append("sha256 differs for " + ", ".join(f"{n}={v}" for n, v in bad))
        raise LockMismatchError(
            f"base packages differ from the lock ({'; '.join(parts)}): re-pin with `{update_command}`"
        )
