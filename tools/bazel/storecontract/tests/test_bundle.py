"""Release bundles: deterministic bytes; a reader accepts exactly the release's DAG files."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from tools.bazel.storecontract import BundleError, DagEntry, check_member, read_bundle, write_bundle

FILES = {"fp_daily": b"DAG = 1\n", "b" * 120: b"LONG = 1\n"}


def entries(files: dict[str, bytes]) -> tuple[DagEntry, ...]:
    return tuple(
        DagEntry(dag_id=d, file=f"dags/{d}.py", sha256=hashlib.sha256(b).hexdigest(), size=len(b))
        for d, b in sorted(files.items())
    )


def test_the_same_files_give_the_same_bytes() -> None:
    data = write_bundle(FILES)
    assert data == write_bundle(dict(reversed(list(FILES.items()))))
    assert len(data) % 10240 == 0
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(f"dags/{d}.py" for d in FILES)  # a long name survives (pax)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode, m.type) for m in members} == {
        (0, 0, 0, "", "", 0o644, tarfile.REGTYPE)
    }


def test_a_bundle_reads_back_checked() -> None:
    assert read_bundle(write_bundle(FILES), where="s3://b/x.tar", dags=entries(FILES)) == FILES


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return out.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    return info, b""


ONE = {"fp_daily": b"DAG = 1\n"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not a tar" * 200, r"^s3://b/x\.tar: not a readable tar"),
        (
            _tar(_file("../dags/fp_daily.py", ONE["fp_daily"])),
            r"member '\.\./dags/fp_daily\.py' \(a regular file\) is not a DAG file listed in metadata\.json$",
        ),
        (_tar(_link("dags/fp_daily.py")), r"member 'dags/fp_daily\.py' \(not a regular file\) is not a DAG file"),
        (
            _tar(_file("dags/fp_daily.py", ONE["fp_daily"]), _file("dags/fp_daily.py", ONE["fp_daily"])),
            r"member 'dags/fp_daily\.py' appears twice$",
        ),
        (
            _tar(_file("dags/fp_daily.py", b"DAG = 22\n")),
            r"member 'dags/fp_daily\.py' has 9 bytes, metadata\.json says 8$",
        ),
        (
            _tar(_file("dags/fp_daily.py", b"DAG = 2\n")),
            r"dags/fp_daily\.py has sha256 '.*', metadata\.json says '.*'$",
        ),
        (_tar(), r"^s3://b/x\.tar: it lacks dags/fp_daily\.py$"),
    ],
)
def test_a_bad_bundle_is_refused_naming_the_member(data: bytes, message: str) -> None:
    with pytest.raises(BundleError, match=message):
        read_bundle(data, where="s3://b/x.tar", dags=entries(ONE))


def test_check_member_names_the_entry_to_write() -> None:
    dags = {e.file: e for e in entries(ONE)}
    seen: set[str] = set()
    info, _ = _file("dags/fp_daily.py", ONE["fp_daily"])
    assert check_member(info, dags, seen).name == "fp_daily.py"
    assert seen == {"dags/fp_daily.py"}
