"""The command line: flags mirror env vars, one clear line on failure, exit codes, JSON output."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.bazel.publisher.cli import main
from tools.bazel.publisher.tests.helpers import (
    BuildPaths,
    FakeRegistry,
    Harness,
    dag_source,
    write_build,
)

PKG = "file_processing"
ROOT = Path(__file__).resolve().parents[4]


def rule_args(build: BuildPaths) -> list[str]:
    """What the Bazel rule passes before the user's flags."""
    return [
        "--package",
        build.package,
        "--dags-dir",
        str(build.dags_dir),
        "--image-layout",
        str(build.layout),
        "--image-digest-file",
        str(build.digest_file),
    ]


def run_main(argv: list[str], environ: dict[str, str], registry: FakeRegistry | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, environ=environ, registry=registry or FakeRegistry(), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def run_cli(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m tools.bazel.publisher`` in a fresh process, from an unrelated working directory."""
    full = {k: v for k, v in os.environ.items() if k not in ("ENV", "DAG_BUCKET", "PACKAGE_NAME", "IMAGE_TAG")}
    full.update(env)
    full["PYTHONPATH"] = os.pathsep.join([str(ROOT), *sys.path])
    return subprocess.run(
        [sys.executable, "-m", "tools.bazel.publisher", *argv],
        capture_output=True,
        text=True,
        env=full,
        cwd="/",
        timeout=120,
        check=False,
    )


def test_publish_through_main_with_env_vars_and_json_output(harness: Harness, tmp_path: Path) -> None:
    build = write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a"), "fp_b": dag_source("fp_b")})
    environ = {**os.environ, "ENV": "staging", "DAG_BUCKET": harness.url, "IMAGE_TAG": "v1.2.3"}
    registry = FakeRegistry()

    code, out, err = run_main([*rule_args(build), "--output", "json"], environ, registry)

    assert code == 0, err
    doc = json.loads(out)
    assert doc["ok"] is True and doc["outcome"] == "published" and doc["env"] == "staging"
    assert doc["dags"]["added"] == ["fp_a", "fp_b"]
    assert doc["image"]["pushed"] is True and doc["image"]["tags"] == ["v1.2.3"]
    assert doc["location"].endswith("/staging/file_processing/")
    assert harness.metadata("staging", PKG)["release"]["image_tag"] == "v1.2.3"  # type: ignore[index]
    progress = err.splitlines()
    assert any(line.startswith("publish: put    ") and "releases/" in line for line in progress)
    assert any(line.startswith("publish: commit ") for line in progress)

    # The flag wins over the env var; the text summary has a table.
    code, out, err = run_main(
        [*rule_args(build), "--env", "staging", "--bucket", harness.url], {"ENV": "nope"}, registry
    )
    assert code == 0, err
    assert "outcome   nothing to do: release " in out
    assert re.search(r"^fp_a +unchanged +\d+ B$", out, re.MULTILINE), out
    assert "writes    0 put, 0 copy, 0 delete" in out


def test_default_store_is_under_the_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    build = write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a")})
    code, out, err = run_main(rule_args(build), {"BUILD_WORKSPACE_DIRECTORY": str(workspace)})
    assert code == 0, err
    assert (workspace / ".etl/dag-store/dev/file_processing/dags/fp_a.py").read_bytes() == build.files["fp_a"]
    assert f"-> {(workspace / '.etl/dag-store').as_uri()}/dev/file_processing/" in out


def test_no_store_and_no_workspace_is_a_usage_error(tmp_path: Path) -> None:
    build = write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a")})
    code, out, err = run_main(rule_args(build), {})
    assert code == 2 and out == ""
    assert err == (
        "publish: error: required flag: --bucket/DAG_BUCKET is not set and BUILD_WORKSPACE_DIRECTORY is unknown "
        "(not started by `bazel run`); set DAG_BUCKET=s3://<bucket> or DAG_BUCKET=file:///<dir>\n"
    )


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--env", "../prod"], {}, r"invalid flag: invalid env '\.\./prod': it contains '/'"),
        ([], {"ENV": "%2e%2e"}, r"invalid flag: invalid env '%2e%2e': it contains '%'"),
        (
            ["--bucket", "s3://bucket/prefix"],
            {},
            r"--bucket/DAG_BUCKET 's3://bucket/prefix': give the bucket only \(s3://<bucket>\): keys start with <ENV>/",
        ),
        (["--bucket", "file://relative/dir"], {}, r"must be an absolute path"),
        (["--bucket", "gs://x"], {}, r"--bucket/DAG_BUCKET 'gs://x': must be s3://<bucket> or file:///<absolute dir>$"),
        (
            ["--env", "dev-"],
            {},
            r"invalid env 'dev-': it must be 1-63 of a-z, 0-9, '_', '-', starting with a letter, "
            r"ending with a letter or digit$",
        ),
        (["--rollback", "../x"], {}, r"invalid release id '\.\./x'"),
        (["--tag", "v1 2"], {}, r"--tag/IMAGE_TAG 'v1 2'"),
        (["--list-releases", "--rollback", "20261127T042000Z-3f2a9c1d"], {}, r"not allowed with argument"),
        (["--smoke", "fp_a", "--dry-run"], {}, r"--smoke cannot be combined with --dry-run"),
        (["--jobs", "0"], {}, r"--jobs 0: must be 1\.\.64"),
        (["--bogus"], {}, r"unrecognized arguments: --bogus"),
        ([], {"PACKAGE_NAME": "data_pipeline"}, r"PACKAGE_NAME='data_pipeline' but this target publishes"),
        # A trailing newline (an env file or a `$(cat ...)` gone wrong) is refused in every name.
        ([], {"ENV": "dev\n"}, r"invalid flag: invalid env 'dev\\n': it contains whitespace or control characters"),
        (
            ["--bucket", "s3://bucket\n"],
            {},
            r"--bucket/DAG_BUCKET 's3://bucket\\n': contains control characters \(a newline or a tab\?\)",
        ),
        (["--bucket", "file:///tmp/st\tore"], {}, r"'file:///tmp/st\\tore': contains control characters"),
        (["--tag", "v1\n"], {}, r"--tag/IMAGE_TAG 'v1\\n': must match"),
        (
            ["--repository", "registry.example.com/etl/file_processing\n"],
            {},
            r"'registry.example.com/etl/file_processing\\n'",
        ),
        (["--rollback", "20261127T042000Z-3f2a9c1d\n"], {}, r"invalid release id '20261127T042000Z-3f2a9c1d\\n'"),
        (["--smoke", "fp_a\n"], {}, r"invalid dag_id 'fp_a\\n'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, argv: list[str], environ: dict[str, str], message: str
) -> None:
    build = write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a")})
    code, _, err = run_main([*rule_args(build), *argv], {"DAG_BUCKET": (tmp_path / "s").as_uri(), **environ})
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("publish: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "s").exists()


def test_subprocess_failure_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = write_build(tmp_path, PKG, {"fp_a": "def broken(:\n"})
    store = tmp_path / "store"
    proc = run_cli([*rule_args(bad), "--output", "json"], {"DAG_BUCKET": store.as_uri()})
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("publish: error: ") and "fp_a.py: line 1: " in proc.stderr
    assert json.loads(proc.stdout) == {
        "ok": False,
        "error": proc.stderr.strip()[len("publish: error: ") :],
        "exit_code": 1,
    }
    assert not store.exists()


def test_a_stored_metadata_json_that_breaks_the_contract_is_one_line_and_exit_1(tmp_path: Path) -> None:
    # storecontract's MetadataError is not a PublishError: the CLI still reports it as one line.
    store = tmp_path / "store"
    meta = store / "dev" / PKG / "metadata.json"
    meta.parent.mkdir(parents=True)
    meta.write_text('{"schema_version": 2}\n')
    build = write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a")})
    code, out, err = run_main([*rule_args(build), "--output", "json"], {"DAG_BUCKET": store.as_uri()})
    assert code == 1
    assert err == (
        f"publish: error: {meta.as_uri()}: schema_version 2 is not 1; a publish does not overwrite a "
        "metadata.json it cannot read: re-run with --repair to replace it with this build's release "
        "(releases/ keeps the earlier ones)\n"
    )
    assert json.loads(out) == {"ok": False, "error": err.strip()[len("publish: error: ") :], "exit_code": 1}


def test_subprocess_dry_run_and_list_releases(tmp_path: Path) -> None:
    store = tmp_path / "store"
    build = write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a", 1), "fp_b": dag_source("fp_b")})
    code, _, err = run_main(rule_args(build), {"DAG_BUCKET": store.as_uri()})
    assert code == 0, err
    changed = write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a", 2), "fp_c": dag_source("fp_c")})
    before = sorted(p.relative_to(store).as_posix() for p in store.rglob("*"))

    dry = run_cli([*rule_args(changed), "--dry-run"], {"DAG_BUCKET": store.as_uri()})
    assert dry.returncode == 0, dry.stderr
    assert "outcome   dry run: nothing was written" in dry.stdout
    assert "total     2 DAGs: 1 added, 1 changed, 1 removed, 0 unchanged" in dry.stdout
    lines = {line.split()[0]: line.split()[1] for line in dry.stdout.splitlines() if line.startswith("fp_")}
    assert lines == {"fp_a": "changed", "fp_b": "removed", "fp_c": "added"}
    assert sorted(p.relative_to(store).as_posix() for p in store.rglob("*")) == before

    listed = run_cli(["--package", PKG, "--list-releases", "--output", "json"], {"DAG_BUCKET": store.as_uri()})
    assert listed.returncode == 0, listed.stderr
    releases = json.loads(listed.stdout)["releases"]
    assert len(releases) == 1 and releases[0]["current"] is True and releases[0]["dag_count"] == 2
    text = run_cli(["--package", PKG, "--list-releases"], {"DAG_BUCKET": store.as_uri()})
    assert text.stdout.splitlines()[0].startswith("releases of file://")
    assert text.stdout.splitlines()[2].startswith("*  " + releases[0]["id"])


def test_rollback_through_main(tmp_path: Path) -> None:
    store = tmp_path / "store"
    registry = FakeRegistry()
    env = {"DAG_BUCKET": store.as_uri()}
    v1 = write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a", 1)})
    assert run_main([*rule_args(v1), "--output", "json"], env, registry)[0] == 0
    first = json.loads((store / "dev" / PKG / "metadata.json").read_text())["release"]["id"]
    v2 = write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a", 2)})
    assert run_main(rule_args(v2), env, registry)[0] == 0

    code, out, err = run_main(["--package", PKG, "--rollback", first], env, registry)

    assert code == 0, err
    assert f"(rollback to {first})" in out
    assert (store / "dev" / PKG / "dags" / "fp_a.py").read_bytes() == v1.files["fp_a"]


def test_decommission_needs_allow_mass_delete_and_prints_what_happens(harness: Harness, tmp_path: Path) -> None:
    build = write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a"), "fp_b": dag_source("fp_b")})
    environ = {**os.environ, "DAG_BUCKET": harness.url}
    assert run_main(rule_args(build), environ)[0] == 0

    code, out, err = run_main(["--package", PKG, "--decommission"], environ)
    assert code == 1 and out == ""
    assert err == (
        f"publish: error: refusing to decommission package '{PKG}' in env 'dev': it removes all 2 of "
        "its DAGs from Airflow; pass --allow-mass-delete if this is intended\n"
    )
    assert harness.read(f"dev/{PKG}/REMOVED") is None

    code, out, err = run_main(["--package", PKG, "--decommission", "--allow-mass-delete"], environ)
    assert code == 0, err
    assert out.startswith(f"decommissioned {PKG} in env dev (") and "2 DAGs leave Airflow" in out
    assert harness.read(f"dev/{PKG}/REMOVED") is not None

    code, out, err = run_main(["--package", "observability", "--decommission", "--allow-mass-delete"], environ)
    assert code == 2 and "package 'observability' is not published in env 'dev'" in err


def test_repair_flag_rewrites_a_drifted_live_file(harness: Harness, tmp_path: Path) -> None:
    build = write_build(tmp_path, PKG, {"fp_a": dag_source("fp_a"), "fp_b": dag_source("fp_b")})
    environ = {**os.environ, "DAG_BUCKET": harness.url}
    assert run_main(rule_args(build), environ)[0] == 0
    harness.store().put(f"dev/{PKG}/dags/fp_a.py", b"tampered = True\n")

    code, out, err = run_main([*rule_args(build), "--output", "json"], environ)
    assert code == 0, err
    assert json.loads(out)["outcome"] == "noop"  # a plain publish reads metadata.json only

    code, out, err = run_main([*rule_args(build), "--repair", "--output", "json"], environ)
    assert code == 0, err
    doc = json.loads(out)
    assert doc["outcome"] == "repaired" and doc["dags"]["repaired"] == ["fp_a"]
    assert harness.read(f"dev/{PKG}/dags/fp_a.py") == dag_source("fp_a").encode()
