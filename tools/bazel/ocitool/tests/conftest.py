"""Fixtures of the ocitool tests: a real registry, a Debian mirror, the real Debian base."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from ocitool_testlib import LOCK, can_build_base, reachable_mirror

from tools.testing.registry import RegistryServer, registry_binary, registry_server


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ocitool-base",
        default=os.environ.get("OCITOOL_TEST_BASE") or None,
        help="a prebuilt Debian base layer (.tar.gz) to use instead of building one "
        "(OCITOOL_TEST_BASE); Bazel passes the repository rule's output",
    )


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[RegistryServer]:
    if registry_binary() is None:
        pytest.skip("docker-registry is not installed (Debian package docker-registry)")
    with registry_server(work_dir=tmp_path / "registry") as server:
        yield server


@pytest.fixture(scope="session")
def debian_mirror() -> str:
    mirror = reachable_mirror()
    if mirror is None:
        pytest.skip("no reachable Debian mirror (set DEBIAN_MIRROR or configure apt sources)")
    return mirror


@pytest.fixture(scope="session")
def debian_base(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Python 3.13 base layer: --ocitool-base if given, else built from the lock."""
    given = request.config.getoption("--ocitool-base")
    if given:
        return Path(given).resolve()
    reason = can_build_base()
    if reason:
        pytest.skip(reason)
    mirror = reachable_mirror()
    if mirror is None:
        pytest.skip("no reachable Debian mirror (set DEBIAN_MIRROR or configure apt sources)")
    from tools.bazel.ocitool.base import build_base

    out = tmp_path_factory.mktemp("base") / "base.tar.gz"
    build_base(
        lock_path=LOCK,
        mirror=mirror,
        out=out,
        check_tarball=False,
        log=lambda line: None,
    )
    return out
