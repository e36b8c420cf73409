"""Every package image, pushed to a real registry and run with podman: each job answers --help,
and a real job (file_processing's checksum) runs end to end against a moto S3 server.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.testing.containers import PodmanUnavailable, podman, run_container
from tools.testing.registry import RegistryServer, registry_server
from tools.testing.servers import moto_server

ROOT = Path(__file__).parents[3]  # _main in runfiles
# Every ETL package (//packages:etl_packages, derived from the folders under packages/).
PACKAGES = tuple((ROOT / "packages" / "etl_packages.txt").read_text().split())


@pytest.fixture(scope="module")
def registry() -> Iterator[RegistryServer]:
    with registry_server() as server:
        yield server


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    work = tmp_path_factory.mktemp("podman")
    try:
        ctx = podman(work)
        cmd = ctx.__enter__()
    except PodmanUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield cmd
    finally:
        ctx.__exit__(None, None, None)


def _pull(pkg: str, registry: RegistryServer, pod: list[str]) -> str:
    from tools.bazel.ocitool.push import push_layout

    digest = (ROOT / "packages" / pkg / "image.digest").read_text().strip()
    repo = registry.repository(f"etl/{pkg}")
    assert push_layout(ROOT / "packages" / pkg / "image", repo, []).manifest_digest == digest
    ref = f"{repo}@{digest}"
    subprocess.run([*pod, "pull", "--tls-verify=false", f"docker://{ref}"], check=True, capture_output=True)
    return ref


@pytest.mark.parametrize("pkg", PACKAGES)
def test_every_job_answers_help(pkg: str, registry: RegistryServer, pod: list[str]) -> None:
    ref = _pull(pkg, registry, pod)
    jobs = (ROOT / "packages" / pkg / f"{pkg}.jobs.txt").read_text().split()
    assert jobs, f"no jobs found for {pkg}"
    for job in jobs:
        run = run_container([*pod, "run", "--rm", "--network", "none", ref, job, "--help"])
        assert run.returncode == 0, f"{job}: {run.stderr}"
        assert f"usage: python -m {job}" in run.stdout or f"usage: {job}" in run.stdout


def test_checksum_job_runs_against_s3(registry: RegistryServer, pod: list[str], tmp_path: Path) -> None:
    ref = _pull("file_processing", registry, pod)
    with moto_server(log_dir=tmp_path) as moto:
        s3 = moto.client()
        s3.create_bucket(Bucket="landing-zone")
        files = {"landing/a.csv": b"id,v\n1,2\n", "landing/b.csv": b"id,v\n3,4\n5,6\n"}
        for key, body in files.items():
            s3.put_object(Bucket="landing-zone", Key=key, Body=body)
        env = [f"-e={k}={v}" for k, v in moto.env().items()]
        run = run_container(
            [
                *pod,
                "run",
                "--rm",
                "--network",
                "host",
                *env,
                ref,
                "file_processing.jobs.checksum",
                "--source",
                "s3://landing-zone/landing/",
            ],
        )
        assert run.returncode == 0, run.stderr
        lines = sorted(line for line in run.stdout.splitlines() if line.strip())
        expected = sorted(f"{hashlib.sha256(body).hexdigest()}  {key.split('/', 1)[1]}" for key, body in files.items())
        assert lines == expected
