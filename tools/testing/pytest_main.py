"""Entry point of every ``py_pytest_test``: runs pytest on the test files Bazel passes in.

Bazel owns test selection and sharding; pytest only runs and reports. Results go to the XML
file Bazel asks for (``XML_OUTPUT_FILE``) so they show up in the test log and BEP.

Each run gets its own pytest base folder under /tmp (short paths: podman's sockets and the
demo's state live there), never the shared ``/tmp/pytest-of-<user>``, whose clean-up of "old"
sessions would delete the folders of a test running at the same time. The folder is removed at
the end, after unmounting anything a killed process left mounted in it (podman's overlay storage
of a demo the test SIGKILLed). A passed test's ``tmp_path`` goes as soon as the test ends
(``tmp_path_retention_policy=failed``): a demo's state folder holds over a GiB of podman
storage, and a file of such tests would otherwise keep every one of them until the session ends.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


def _mounts_under(folder: Path) -> list[str]:
    """Mount points at or below ``folder``, deepest first (from /proc/self/mountinfo)."""
    prefix = str(folder)
    try:
        rows = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    points = []
    for row in rows:
        # field 5 is the mount point, with spaces etc. as octal escapes
        point = row.split(" ")[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def _remove(folder: Path) -> None:
    for point in _mounts_under(folder):
        subprocess.run(["umount", "--lazy", point], check=False, capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    args = ["-p", "no:cacheprovider", "-q", "-ra", "-o", "tmp_path_retention_policy=failed"]
    xml = os.environ.get("XML_OUTPUT_FILE")
    if xml:
        args.append(f"--junitxml={xml}")
    test_filter = os.environ.get("TESTBRIDGE_TEST_ONLY")
    if test_filter:
        args += ["-k", test_filter]
    args += sys.argv[1:]
    basetemp = None
    if not any(a.startswith("--basetemp") for a in args):
        basetemp = Path(tempfile.mkdtemp(prefix="pytest-", dir="/tmp"))
        args.append(f"--basetemp={basetemp}")
    try:
        code = pytest.main(args)
    finally:
        if basetemp is not None:
            _remove(basetemp)
    return 0 if code == pytest.ExitCode.OK else int(code)


if __name__ == "__main__":
    sys.exit(main())
