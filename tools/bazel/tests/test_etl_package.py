"""etl_package end to end on the `hello` fixture: what the rules wrote, pushed to a real registry,
checked by skopeo, and run with podman; the rendered DAG pins the same digest.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tools.testing.containers import PodmanUnavailable, podman
from tools.testing.registry import registry_server

HERE = Path(__file__).parent
PKG = HERE / "hello"
GOLDEN = HERE / "testdata" / "hello.listing.golden"


def _digest() -> str:
    return (PKG / "image.digest").read_text().strip()


def _repository() -> str:
    """``<--//tools/bazel:image_repository>/hello``: where ``:push`` pushes (``:image.repository``)."""
    return (PKG / "image.repository").read_text().strip()


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def test_listing_matches_golden() -> None:
    listing = (PKG / "image.listing.txt").read_text()
    if os.environ.get("UPDATE_GOLDENS"):
        GOLDEN.write_text(listing)
    assert listing == GOLDEN.read_text(), "image listing changed: rerun with --test_env=UPDATE_GOLDENS=1 and review"


def test_config_runs_the_job_as_nonroot() -> None:
    layout = PKG / "image"
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(_blob(layout, index["manifests"][0]["digest"]))
    config = json.loads(_blob(layout, manifest["config"]["digest"]))["config"]
    assert index["manifests"][0]["digest"] == _digest()
    assert config["User"] == "65532:65532"
    assert config["Entrypoint"] == ["/usr/bin/python3.13", "-m"]
    assert config["Cmd"] == ["hello.jobs.greet"]
    assert config["WorkingDir"] == "/app"
    assert "PYTHONPATH=/app/tools/bazel/tests:/app:/opt/etl/site-packages" in config["Env"]
    assert len(manifest["layers"]) == 3  # base | wheels | app


def test_dag_and_metadata_pin_the_image_digest() -> None:
    digest = _digest()
    repository = _repository()
    assert repository.endswith("/hello")
    dag = (PKG / "dags" / "hello_daily.py").read_text()
    assert f'IMAGE = "{repository}@{digest}"' in dag
    assert dag.splitlines()[2:4] == [
        "# spec: tools/bazel/tests/hello/dags/hello_daily.yaml",
        "# target: //tools/bazel/tests/hello:dag.hello_daily",
    ]
    meta = json.loads((PKG / "metadata.json").read_text())
    assert meta["image"]["digest"] == digest
    assert meta["image"]["repository"] == repository
    assert [d["dag_id"] for d in meta["dags"]] == ["hello_daily"]


def _push_target(*args: str, image_repository: str) -> subprocess.CompletedProcess[str]:
    """``bazel run //tools/bazel/tests/hello:push -- ARGS`` with IMAGE_REPOSITORY set (runfiles cwd)."""
    env = dict(os.environ, IMAGE_REPOSITORY=image_repository)
    return subprocess.run(["sh", str(PKG / "push.sh"), *args], env=env, capture_output=True, text=True, check=False)


def test_push_target_refuses_another_image_repository_prefix() -> None:
    # :push pushes to the build setting's prefix; IMAGE_REPOSITORY is that prefix, never a repository.
    repository = _repository()
    proc = _push_target(image_repository="registry.example.com/etl")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"ocitool push: error: invalid flag: --repository {repository!r} is not under "
        "IMAGE_REPOSITORY='registry.example.com/etl' (the registry prefix); build with "
        "--//tools/bazel:image_repository=registry.example.com/etl or pass --repository "
        "registry.example.com/etl/<name>, or unset IMAGE_REPOSITORY"
    )
    proc = _push_target(image_repository=repository)
    assert proc.returncode == 2, proc.stderr
    assert f"IMAGE_REPOSITORY={repository!r} is this image's repository" in proc.stderr


def test_push_target_pushes_under_the_image_repository_prefix() -> None:
    with registry_server() as registry:
        prefix = registry.repository("etl")
        proc = _push_target("--repository", f"{prefix}/hello", image_repository=prefix)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == f"{prefix}/hello@{_digest()}"


def test_push_skopeo_and_podman_run(tmp_path: Path) -> None:
    from tools.bazel.ocitool.push import push_layout

    with registry_server() as registry:
        repo = registry.repository("etl/hello")
        result = push_layout(PKG / "image", repo, ["t1"])
        assert result.manifest_digest == _digest()
        inspect = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{repo}:t1"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(inspect.stdout)["Digest"] == _digest()
        try:
            ctx = podman(tmp_path)
            cmd = ctx.__enter__()
        except PodmanUnavailable as exc:
            pytest.skip(str(exc))
        try:
            ref = f"{repo}@{_digest()}"
            subprocess.run([*cmd, "pull", "--tls-verify=false", f"docker://{ref}"], check=True, capture_output=True)
            run = subprocess.run(
                [*cmd, "run", "--rm", "--network", "none", ref, "hello.jobs.greet", "--name", "bazel"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert run.returncode == 0, run.stderr
            facts = json.loads(run.stdout)
            assert facts == {
                "cwd": "/app",
                "greeting": "hello bazel",
                "python": facts["python"],
                "uid": 65532,
                "yaml": 1,
            }
            assert facts["python"].startswith("3.13.")
            helped = subprocess.run(
                [*cmd, "run", "--rm", "--network", "none", ref, "hello.jobs.greet", "--help"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert helped.returncode == 0 and "usage: hello.jobs.greet" in helped.stdout
        finally:
            ctx.__exit__(None, None, None)
