"""The Debian Python base: reproducible from the lock, runs Python, names vanished pins.

These tests need root, mmdebstrap and a reachable Debian mirror (DEBIAN_MIRROR or the host's
apt sources); they skip otherwise. Under Bazel, ``--ocitool-base=PATH`` (or OCITOOL_TEST_BASE)
points at the base the repository rule built, which skips the build here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from ocitool_testlib import LOCK, can_build_base, reachable_mirror

from tools.bazel.ocitool.base import build_base
from tools.bazel.ocitool.errors import PackageNotServedError

CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


def _extract(tarball: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, numeric_owner=True, filter="fully_trusted")
    return dest


def test_base_contents(debian_base: Path) -> None:
    with tarfile.open(debian_base) as tar:
        members = {m.name: m for m in tar.getmembers()}
        passwd = tar.extractfile("etc/passwd").read().decode()  # type: ignore[union-attr]
    for alias in ("bin", "lib", "lib64", "sbin"):
        assert members[alias].issym() and members[alias].linkname == f"usr/{alias}"
    assert "nonroot:x:65532:65532:" in passwd
    assert members["home/nonroot"].uid == 65532 and members["home/nonroot"].mode == 0o700
    assert members["tmp"].mode == 0o1777
    assert members["usr/bin/python3.13"].isreg()
    assert "etc/ssl/certs/ca-certificates.crt" in members
    assert not any(n.startswith("usr/share/man/") and members[n].isreg() for n in members)
    docs = [n for n in members if n.startswith("usr/share/doc/") and members[n].isreg()]
    assert docs and all(n.endswith("/copyright") for n in docs)
    assert not any(n in members for n in ("etc/hostname", "etc/resolv.conf", "etc/apt/sources.list"))
    assert all(m.mtime == 0 and m.uname == "" for m in members.values())
    assert any(n.endswith(".cpython-313.pyc") for n in members)  # stdlib byte-compiled
    status = members["var/lib/dpkg/status"]
    assert status.size > 0


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_base_runs_python_with_ssl_zlib_sqlite(debian_base: Path, tmp_path: Path) -> None:
    root = _extract(debian_base, tmp_path / "root")
    code = (
        "import ssl, zlib, sqlite3, os, pwd, zoneinfo; "
        "n = ssl.create_default_context().cert_store_stats()['x509_ca']; "
        "print(n > 100, zlib.ZLIB_VERSION, sqlite3.sqlite_version, pwd.getpwuid(os.getuid()).pw_name, "
        "zoneinfo.ZoneInfo('Europe/Berlin'))"
    )
    for userspec, user in (("0:0", "root"), ("65532:65532", "nonroot")):
        proc = subprocess.run(
            [
                CHROOT,
                f"--userspec={userspec}",
                str(root),
                "/usr/bin/python3.13",
                "-c",
                code,
            ],
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin", "LANG": "C.UTF-8"},
            check=False,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        words = proc.stdout.split()
        assert words[0] == "True" and words[3] == user and words[4] == "Europe/Berlin"


def test_base_build_is_reproducible(debian_base: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--ocitool-base"):
        pytest.skip("--ocitool-base given: the repository rule checked it against the lock")
    second = build_base(
        lock_path=LOCK,
        mirror=reachable_mirror() or "",
        out=tmp_path / "again.tar.gz",
        log=lambda s: None,
    )
    assert (tmp_path / "again.tar.gz").read_bytes() == debian_base.read_bytes()
    assert second.sha256 == json.loads(LOCK.read_text())["tarball"]["sha256"], (
        "the base is reproducible but differs from base.lock.json: the builder changed; re-run the update"
    )


def test_vanished_pin_is_named_with_the_fix(debian_mirror: str, tmp_path: Path) -> None:
    reason = can_build_base()
    if reason:
        pytest.skip(reason)
    lock = json.loads(LOCK.read_text())
    for pkg in lock["packages"]:
        if pkg["name"] == "zlib1g":
            pkg["version"] = "1:0.0-gone"
    stale = tmp_path / "stale.lock.json"
    stale.write_text(json.dumps(lock))
    with pytest.raises(
        PackageNotServedError,
        match=r"Debian mirror '.*' \(trixie/amd64\) no longer serves zlib1g=1:0.0-gone: "
        r"re-pin the base with `bazel run //:base.update`",
    ):
        build_base(
            lock_path=stale,
            mirror=debian_mirror,
            out=tmp_path / "x.tar.gz",
            update_command="bazel run //:base.update",
            log=lambda s: None,
        )
    assert json.loads(stale.read_text()) == lock  # the lock is never rewritten by a failed build
