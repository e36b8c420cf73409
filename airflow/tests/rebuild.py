"""A package's build again with a new image digest, made with the tools the Bazel rules run
(`ocitool image`, `dagrender render` and `dagrender metadata`): what a real rebuild of the
package's image gives the publisher. Used by //airflow:test_e2e and //airflow:test_bundle_versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["rebuild_with_new_image"]

ROOT = Path(__file__).parent.parent.parent  # the workspace root (runfiles _main under Bazel)


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}


def _run(args: list[str], *, cwd: Path) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=_child_env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, f"{args[:3]} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def rebuild_with_new_image(build_dir: Path, package: str, out: Path, *, label: str) -> str:
    """The package's build again, with an image that differs by one config label (a new digest).

    The same tools as the Bazel rules: `ocitool image` on the built image, `dagrender render` of
    every spec and `dagrender metadata`, with the rule's arguments. Returns the new digest.
    """
    built = build_dir / "packages" / package
    out.mkdir(parents=True)
    _run(
        [
            "-m",
            "tools.bazel.ocitool",
            "image",
            "--base",
            str(built / "image"),
            "--label",
            label,
            "--out",
            str(out / "image"),
            "--digest-out",
            str(out / "image.digest"),
        ],
        cwd=ROOT,
    )
    digest = (out / "image.digest").read_text().strip()
    repository = json.loads((built / "metadata.json").read_text())["image"]["repository"].rpartition("/")[0]
    specs = sorted((ROOT / "packages" / package / "dags").glob("*.yaml"))
    assert specs, f"no DAG specs under packages/{package}/dags in the runfiles"
    (out / "dags").mkdir()
    dag_args: list[str] = []
    for spec in specs:
        dag_id, rel = spec.stem, str(spec.relative_to(ROOT))
        rendered = out / "dags" / f"{dag_id}.py"
        _run(
            [
                "-m",
                "tools.bazel.dagrender",
                "render",
                "--spec",
                rel,
                "--package",
                package,
                "--repository",
                repository,
                "--digest-file",
                str(out / "image.digest"),
                "--target",
                f"//packages/{package}:dag.{dag_id}",
                "--entrypoints",
                str(built / f"{package}.jobs.txt"),
                "--out",
                str(rendered),
            ],
            cwd=ROOT,
        )
        dag_args += ["--dag", rel, str(rendered)]
    _run(
        [
            "-m",
            "tools.bazel.dagrender",
            "metadata",
            "--package",
            package,
            "--repository",
            repository,
            "--digest-file",
            str(out / "image.digest"),
            *dag_args,
            "--out",
            str(out / "metadata.json"),
        ],
        cwd=ROOT,
    )
    return digest
