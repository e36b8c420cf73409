"""The sidecar's image: pushed to a real registry and run with podman in init-container mode.

The store is a file:// folder mounted read-only; the dags folder is a mounted volume the image's
non-root user writes to; the result on disk is <DAGS_DIR>/<pkg>/<dag_id>.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from sidecar.tests.storekit import FileKit, dag_source
from tools.testing.containers import PodmanUnavailable, podman
from tools.testing.registry import registry_server

LAYOUT = Path(__file__).parent.parent / "image"  # //sidecar:image in runfiles
DIGEST = (Path(__file__).parent.parent / "image.digest").read_text().strip()


def test_image_syncs_once_as_nonroot(tmp_path: Path) -> None:
    from tools.bazel.ocitool.push import push_layout

    kit = FileKit(tmp_path / "store")
    kit.publish("alpha", {"alpha_daily": dag_source("alpha_daily", "r1")})
    dags = tmp_path / "dags"
    dags.mkdir()
    os.chown(dags, 65532, 65532)
    with registry_server() as registry:
        repo = registry.repository("etl/sidecar")
        assert push_layout(LAYOUT, repo, []).manifest_digest == DIGEST
        (tmp_path / "podman").mkdir()
        try:
            ctx = podman(tmp_path / "podman")
            cmd = ctx.__enter__()
        except PodmanUnavailable as exc:
            pytest.skip(str(exc))
        try:
            ref = f"{repo}@{DIGEST}"
            subprocess.run([*cmd, "pull", "--tls-verify=false", f"docker://{ref}"], check=True, capture_output=True)
            run = subprocess.run(
                [
                    *cmd,
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "-v",
                    f"{kit.root}:/store:ro",
                    "-v",
                    f"{dags}:/opt/airflow/dags",
                    "-e",
                    "DAG_BUCKET=file:///store",
                    "-e",
                    "ENV=dev",
                    "-e",
                    "METRICS_PORT=0",
                    ref,
                    "--once",
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            assert run.returncode == 0, run.stderr + run.stdout
            assert (dags / "alpha" / "alpha_daily.py").read_bytes() == dag_source("alpha_daily", "r1")
            assert (dags / ".airflowignore").exists()
            # the S3 side: tools.bazel.s3http (and botocore, for its credential chain) is in the image, boto3 is not
            probe = (
                "import importlib.util; from tools.bazel import s3http as c; "
                "print(c.S3Client('my-dags', max_connections=1).endpoint, "
                "importlib.util.find_spec('boto3') is None)"
            )
            run = subprocess.run(
                [
                    *cmd,
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    "-e",
                    "AWS_ENDPOINT_URL=http://minio:9000",
                    "--entrypoint",
                    "/usr/bin/python3.13",
                    ref,
                    "-c",
                    probe,
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            assert run.returncode == 0, run.stderr + run.stdout
            assert run.stdout.split() == ["http://minio:9000/my-dags/", "True"]
        finally:
            ctx.__exit__(None, None, None)
