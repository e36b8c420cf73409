"""The image runs: pushed to the real registry and started with podman (runc), and unpacked into
a bubblewrap (or unshare + chroot) sandbox from the image's own config. Proves the base has what
the job needs (Python 3.13, ssl, sqlite3) and that the job runs as the non-root user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ocitool_testlib import write_tree

from tools.bazel.ocitool.errors import UsageError
from tools.bazel.ocitool.image import ImageOptions, ImageResult, build_image, read_layout
from tools.bazel.ocitool.layer import LayerContents, write_layer
from tools.bazel.ocitool.push import push_layout
from tools.bazel.ocitool.pyc import compile_pyc, interpreter_info
from tools.testing.registry import RegistryServer

JOB = '''\
"""A tiny job: greets, touches ssl and sqlite3, reports who and where it runs."""
import argparse
import os
import sqlite3
import ssl


def main(argv=None):
    parser = argparse.ArgumentParser(prog="demo.jobs.hello", description="Tiny demo job.")
    parser.add_argument("--name", default="world", help="who to greet")
    args = parser.parse_args(argv)
    answer = sqlite3.connect(":memory:").execute("select 40 + 2").fetchone()[0]
    cas = ssl.create_default_context().cert_store_stats()["x509_ca"]
    print(f"hello {args.name} uid={os.getuid()} cwd={os.getcwd()} sqlite={answer} cas={cas > 100}")


if __name__ == "__main__":
    main()
'''


def _python313() -> str | None:
    """An interpreter that can write .pyc files the image's Python 3.13 accepts."""
    for candidate in (
        os.environ.get("OCITOOL_PYC_PYTHON"),  # e.g. a local python3.13 when tests run on 3.11
        sys.executable,
        shutil.which("python3.13"),
        "/usr/bin/python3.13",
    ):
        if not candidate:
            continue
        try:
            if interpreter_info(candidate)[0] == "3.13":
                return candidate
        except UsageError:
            continue
    return None


@pytest.fixture(scope="module")
def job_image(debian_base: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ImageResult, bool]:
    work = tmp_path_factory.mktemp("job-image")
    src = write_tree(
        work / "src",
        {
            "demo/__init__.py": "",
            "demo/jobs/__init__.py": "",
            "demo/jobs/hello.py": JOB,
        },
    )
    contents = LayerContents()
    contents.add_tree(src, "/app")
    python = _python313()
    if python is not None:
        compile_pyc(contents, python=python, python_version="3.13")
    write_layer(contents, work / "app.tar.gz")
    result = build_image(
        out=work / "layout",
        base=debian_base,
        layers=[work / "app.tar.gz"],
        options=ImageOptions(
            entrypoint=["/usr/bin/python3.13", "-m", "demo.jobs.hello"],
            env=[("PYTHONPATH", "/app"), ("PYTHONUNBUFFERED", "1")],
            user="65532",
            workdir="/app",
        ),
    )
    return work / "layout", result, python is not None


def _unpack(layout: Path, dest: Path) -> dict[str, Any]:
    """Extract the image's layers in order (as a runtime would) and return its config."""
    image = read_layout(layout)
    dest.mkdir(parents=True)
    for desc in image.manifest["layers"]:
        with tarfile.open(image.blob(desc["digest"])) as tar:
            tar.extractall(dest, numeric_owner=True, filter="fully_trusted")
    return dict(image.config["config"])


def _bwrap_works(bwrap: str) -> bool:
    """bwrap needs user namespaces, which the kernel refuses to a chrooted process (the Bazel root)."""
    probe = subprocess.run([bwrap, "--unshare-user", "--ro-bind", "/", "/", "true"], capture_output=True, check=False)
    return probe.returncode == 0


def _sandbox_argv(root: Path, config: dict[str, Any], args: list[str]) -> tuple[list[str], str]:
    env = [str(e) for e in config["Env"]]
    argv = [*config["Entrypoint"], *args]
    uid = str(config["User"])
    bwrap = shutil.which("bwrap")
    if bwrap is not None and _bwrap_works(bwrap):
        cmd = [
            bwrap,
            "--unshare-all",
            "--die-with-parent",
            "--bind",
            str(root),
            "/",
            "--proc",
            "/proc",
        ]
        cmd += [
            "--dev",
            "/dev",
            "--tmpfs",
            "/tmp",
            "--chdir",
            str(config["WorkingDir"]),
        ]
        cmd += ["--unshare-user", "--uid", uid, "--gid", uid, "--clearenv"]
        for item in env:
            key, _, value = item.partition("=")
            cmd += ["--setenv", key, value]
        return [*cmd, "--", *argv], "bwrap"
    unshare, chroot = shutil.which("unshare"), shutil.which("chroot")
    if unshare is None or chroot is None or os.geteuid() != 0:
        pytest.skip("neither bwrap nor root with unshare + chroot is available")
    return [
        unshare,
        "-m",
        "-p",
        "-f",
        chroot,
        f"--userspec={uid}:{uid}",
        str(root),
        "/usr/bin/env",
        "-i",
        *env,
        *argv,
    ], "chroot"


def test_job_runs_in_a_sandbox_from_the_unpacked_image(
    job_image: tuple[Path, ImageResult, bool], tmp_path: Path
) -> None:
    layout, _, has_pyc = job_image
    root = tmp_path / "rootfs"
    config = _unpack(layout, root)
    argv, how = _sandbox_argv(root, config, ["--name", "sandbox"])
    if how == "chroot":
        argv.remove("/usr/bin/env")  # no coreutils in the image: chroot passes env through -i below
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={"PATH": "/usr/bin"},
    )
    assert proc.returncode == 0, f"{how}: {proc.stderr}"
    assert proc.stdout.startswith("hello sandbox uid=65532 ")
    assert "sqlite=42 cas=True" in proc.stdout
    if how == "bwrap":
        assert "cwd=/app " in proc.stdout
    help_proc = subprocess.run(
        _sandbox_argv(root, config, ["--help"])[0],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert help_proc.returncode == 0 and "usage: demo.jobs.hello" in help_proc.stdout
    if has_pyc and how == "bwrap":
        verbose = _sandbox_argv(
            root,
            {
                **config,
                "Entrypoint": ["/usr/bin/python3.13", "-v", "-m", "demo.jobs.hello"],
            },
            [],
        )[0]
        out = subprocess.run(verbose, capture_output=True, text=True, check=False, timeout=120)
        assert "code object from '/app/demo/jobs/__pycache__/hello.cpython-313.pyc'" in out.stderr


def _podman(tmp_path: Path) -> list[str]:
    if shutil.which("podman") is None or shutil.which("runc") is None:
        pytest.skip("podman or runc is not installed (Debian packages podman, runc)")
    if os.geteuid() != 0:
        pytest.skip("the podman test runs rootful podman (root needed)")
    conf = tmp_path / "containers.conf"
    conf.write_text(
        "[containers]\n"
        'default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
    )
    os.environ["CONTAINERS_CONF"] = str(conf)
    # podman refuses a runroot path longer than 50 characters: keep it short, under /tmp
    runroot = tempfile.mkdtemp(prefix="podman-run-", dir="/tmp")
    return ["podman", "--root", str(tmp_path / "storage"), "--runroot", runroot]


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[list[str]]:
    old = os.environ.get("CONTAINERS_CONF")
    cmd = _podman(tmp_path)
    try:
        yield cmd
    finally:
        subprocess.run(
            [*cmd, "system", "reset", "--force"],
            capture_output=True,
            check=False,
            timeout=120,
        )
        shutil.rmtree(cmd[-1], ignore_errors=True)
        if old is None:
            os.environ.pop("CONTAINERS_CONF", None)
        else:
            os.environ["CONTAINERS_CONF"] = old


def test_pushed_image_runs_with_podman(
    job_image: tuple[Path, ImageResult, bool],
    registry: RegistryServer,
    podman: list[str],
) -> None:
    layout, result, _ = job_image
    pushed = push_layout(layout, registry.repository("etl/demo"), ["dev"], log=lambda line: None)
    ref = pushed.reference
    pull = subprocess.run(
        [*podman, "pull", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert pull.returncode == 0, pull.stderr
    inspect = subprocess.run(
        [*podman, "image", "inspect", ref],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(inspect.stdout)[0]["Digest"] == result.manifest_digest
    run = subprocess.run(
        [*podman, "run", "--rm", "--network", "none", ref, "--name", "podman"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "hello podman uid=65532 cwd=/app sqlite=42 cas=True"
    helped = subprocess.run(
        [*podman, "run", "--rm", "--network", "none", ref, "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert helped.returncode == 0 and "usage: demo.jobs.hello" in helped.stdout
