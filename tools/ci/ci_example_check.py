"""Run the commands of the CI example, docs/ci/package-pipeline.github.yml, against local servers.

    ./bazelw run //tools/ci:ci_example_check [-- --package observability]     (.ci/run runs it)

The `affected` job, then the `publish` job for one package: every `run:` step runs with bash
(`-eo pipefail`, as GitHub's runner does) in the work tree, with the workflow's, the job's and the
step's `env:`; `uses:` steps are skipped (the work tree is the checkout). Only the outside world is
local, each part real:

    S3                    a moto server; the runner's AWS credentials point at it, and the bucket
                          DAG_BUCKET names is created there
    the registry          a docker-registry stands in for the host the workflow names
                          (registry.example.com), wherever that host appears
    remote cache          nginx WebDAV for vars.BAZEL_REMOTE_CACHE_URL
    github.*              github.sha is HEAD, github.event.before the first commit (so every
                          package is affected; the workflow checks out with fetch-depth 0 too)

A `${{ }}` expression in a `run:` or `env:` that this check does not define fails it, so the
example cannot use what the check does not give it. It is not a Bazel test: the steps run Bazel in
this work tree (`./bazelw` inside the toolchain root is `bazel`), as the runner would.

After the jobs it checks what the pipeline must leave: the `affected` output lists the package, the
plan is JSON with nothing written, the image is in the registry at IMAGE_REPOSITORY/<package> by
its digest and by the tag IMAGE_TAG, and <ENV>/<package>/metadata.json in the bucket and every DAG
file pin that image. Exit 0 when all holds, 1 with one `ci_example_check: FAILED: ...` line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import yaml

from tools.testing.registry import registry_server
from tools.testing.remote_cache import remote_cache_server
from tools.testing.servers import moto_server

WORKFLOW = "docs/ci/package-pipeline.github.yml"
EXAMPLE_REGISTRY = "registry.example.com"
_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
# This program's own `bazel run` environment, which the runner's steps must not inherit.
_OWN_ENV = frozenset(
    {
        "RUNFILES_DIR",
        "RUNFILES_MANIFEST_FILE",
        "RUNFILES_MANIFEST_ONLY",
        "JAVA_RUNFILES",
        "PYTHON_RUNFILES",
        "PYTHONPATH",
        "BUILD_WORKSPACE_DIRECTORY",
        "BUILD_WORKING_DIRECTORY",
    }
)
_OCI_ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"


class CheckFailed(Exception):
    """The CI example did not run, or did not leave what a pipeline run must leave."""


def substitute(text: str, values: Mapping[str, str], where: str) -> str:
    """Replace every ``${{ expr }}`` with its value; an expression without one fails the check."""

    def one(match: re.Match[str]) -> str:
        expr = match.group(1)
        if expr not in values:
            raise CheckFailed(
                f"{where}: ${{{{ {expr} }}}} has no value in this check; use one of "
                f"{', '.join(sorted(values))}, or give it one in tools/ci/ci_example_check.py"
            )
        return values[expr]

    return _EXPR.sub(one, text)


def _env_block(block: Mapping[str, Any] | None, values: Mapping[str, str], where: str) -> dict[str, str]:
    return {str(k): substitute(str(v), values, f"{where}.env.{k}") for k, v in (block or {}).items()}


def run_job(
    workflow: Mapping[str, Any],
    job_name: str,
    *,
    ws: Path,
    values: Mapping[str, str],
    base_env: Mapping[str, str],
    local: Mapping[str, str],
) -> list[str]:
    """Run the ``run:`` steps of one job in ``ws``; return each step's stdout. ``local`` maps
    outside hosts (the example registry) to local ones in env values and scripts."""

    def localize(text: str) -> str:
        for outside, inside in local.items():
            text = text.replace(outside, inside)
        return text

    job = workflow["jobs"][job_name]
    env = dict(base_env)
    env.update({k: localize(v) for k, v in _env_block(workflow.get("env"), values, "workflow").items()})
    env.update({k: localize(v) for k, v in _env_block(job.get("env"), values, f"jobs.{job_name}").items()})
    outputs = []
    for i, step in enumerate(job["steps"]):
        if "run" not in step:
            continue
        where = f"jobs.{job_name}.steps[{i}] ({step.get('name') or step.get('id') or 'run'})"
        script = localize(substitute(step["run"], values, where))
        step_env = dict(env)
        step_env.update({k: localize(v) for k, v in _env_block(step.get("env"), values, where).items()})
        print(f"ci_example_check: {where}: {script.strip()}", flush=True)
        proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=ws,
            env=step_env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        out = []
        for line in proc.stdout:
            sys.stdout.write(line)
            out.append(line)
        if proc.wait() != 0:
            raise CheckFailed(f"{where} exited {proc.returncode}")
        outputs.append("".join(out))
    return outputs


def _git(ws: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=ws, check=True, capture_output=True, text=True).stdout.strip()


def _manifest_digest(registry_url: str, name: str, reference: str) -> str:
    request = urllib.request.Request(
        f"{registry_url}/v2/{name}/manifests/{reference}", method="HEAD", headers={"Accept": _OCI_ACCEPT}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(response.headers["Docker-Content-Digest"])
    except urllib.error.HTTPError as exc:
        raise CheckFailed(
            f"{registry_url}/v2/{name}/manifests/{reference}: HTTP {exc.code}: the image is not "
            "in the registry the workflow names"
        ) from exc


def check(ws: Path, package: str, work: Path) -> None:
    workflow = yaml.safe_load((ws / WORKFLOW).read_text())
    first_commit = _git(ws, "rev-list", "--max-parents=0", "HEAD").splitlines()[-1]
    head = _git(ws, "rev-parse", "HEAD")
    with contextlib.ExitStack() as stack:
        moto = stack.enter_context(moto_server(log_dir=work))
        registry = stack.enter_context(registry_server(work_dir=work / "registry"))
        cache_url = stack.enter_context(remote_cache_server(work / "remote-cache"))
        publish_env = workflow["jobs"]["publish"].get("env", {})
        bucket_url = str(publish_env.get("DAG_BUCKET", ""))
        if not bucket_url.startswith("s3://"):
            raise CheckFailed(f"jobs.publish.env.DAG_BUCKET {bucket_url!r}: this check expects s3://<bucket>")
        bucket = bucket_url.removeprefix("s3://").split("/", 1)[0]
        s3 = boto3.client("s3", endpoint_url=moto.endpoint_url, **_boto_credentials(moto.env()))
        s3.create_bucket(Bucket=bucket)

        github_output = work / "github_output"
        github_output.touch()
        values = {
            "github.sha": head,
            "github.event.before": first_commit,
            "vars.BAZEL_REMOTE_CACHE_URL": cache_url,
            "matrix.package": package,
        }
        base_env = {k: v for k, v in os.environ.items() if k not in _OWN_ENV}
        base_env.update(moto.env())
        base_env["GITHUB_OUTPUT"] = str(github_output)
        for name in ("ENV", "PACKAGE_NAME", "IMAGE_TAG", "DAG_BUCKET", "IMAGE_REPOSITORY"):
            base_env.pop(name, None)  # only what the workflow sets
        local = {EXAMPLE_REGISTRY: registry.host}

        run_job(workflow, "affected", ws=ws, values=values, base_env=base_env, local=local)
        listed = _github_output(github_output).get("packages", "")
        try:
            packages = json.loads(listed)
        except json.JSONDecodeError as exc:
            raise CheckFailed(
                f"jobs.affected: output packages={listed!r} is not JSON (the matrix needs a list)"
            ) from exc
        if package not in packages:
            raise CheckFailed(
                f"jobs.affected: output packages={listed!r} does not list {package!r} "
                f"(changes since the first commit {first_commit[:12]} should affect every package)"
            )

        plan, _publish = run_job(workflow, "publish", ws=ws, values=values, base_env=base_env, local=local)[-2:]
        try:
            planned = json.loads(plan)
        except json.JSONDecodeError as exc:
            raise CheckFailed(f"jobs.publish: the plan step printed no JSON: {plan[-300:]!r}") from exc
        if planned.get("outcome") != "dry-run" or planned.get("package") != package:
            raise CheckFailed(f"jobs.publish: the plan step's JSON is not a dry run of {package!r}: {plan[-300:]!r}")

        job_env = _env_block(publish_env, values, "jobs.publish")
        prefix = job_env["IMAGE_REPOSITORY"].replace(EXAMPLE_REGISTRY, registry.host)
        env_name = job_env.get("ENV", "dev")
        repository = f"{prefix}/{package}"
        name = repository.removeprefix(registry.host + "/")
        meta_key = f"{env_name}/{package}/metadata.json"
        try:
            meta = json.loads(s3.get_object(Bucket=bucket, Key=meta_key)["Body"].read())
        except s3.exceptions.NoSuchKey as exc:
            raise CheckFailed(f"s3://{bucket}/{meta_key} is missing after the publish job") from exc
        image = meta["image"]
        if image["repository"] != repository:
            raise CheckFailed(
                f"s3://{bucket}/{meta_key}: image.repository {image['repository']!r} is not "
                f"IMAGE_REPOSITORY/<package> = {repository!r}"
            )
        by_digest = _manifest_digest(registry.url, name, image["digest"])
        by_tag = _manifest_digest(registry.url, name, job_env["IMAGE_TAG"])
        if not by_digest == by_tag == image["digest"]:
            raise CheckFailed(f"{repository}: tag {job_env['IMAGE_TAG']} is {by_tag}, the DAGs pin {image['digest']}")
        reference = f"{repository}@{image['digest']}"
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{env_name}/{package}/dags/")
        keys = [o["Key"] for o in listing.get("Contents", []) if o["Key"].endswith(".py")]
        if not keys:
            raise CheckFailed(f"s3://{bucket}/{env_name}/{package}/dags/ has no DAG files after the publish job")
        for key in keys:
            if reference not in s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode():
                raise CheckFailed(f"s3://{bucket}/{key} does not pin {reference}")
        print(
            f"ci_example_check: ok: affected listed {package}; planned; pushed {reference} (tag "
            f"{job_env['IMAGE_TAG'][:12]}); s3://{bucket}/{env_name}/{package}/ has metadata.json and "
            f"{len(keys)} DAG file(s) pinning it",
            flush=True,
        )


def _boto_credentials(env: Mapping[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_DEFAULT_REGION"],
    }


def _github_output(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ci_example_check", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--package", default="observability", help="the matrix package (default observability)")
    args = parser.parse_args(argv)
    ws_env = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not ws_env:
        print("ci_example_check: error: run it with `./bazelw run //tools/ci:ci_example_check`", file=sys.stderr)
        return 2
    ws = Path(ws_env)
    if not (ws / "packages" / args.package / "BUILD.bazel").is_file():
        print(
            f"ci_example_check: error: invalid flag: --package {args.package!r}: no packages/{args.package}/BUILD.bazel",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="ci-example-") as tmp:
        try:
            check(ws, args.package, Path(tmp))
        except CheckFailed as exc:
            print(f"ci_example_check: FAILED: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
