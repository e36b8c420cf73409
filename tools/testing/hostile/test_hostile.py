"""The hostile-input corpus: every case in cases/<runner>/<name>/ against the real programs.

Each case is a folder with ``case.yaml`` (``about``, ``expect`` and the runner's inputs, see
README.md) and its input files. The runners call the real command lines in-process, as the
Bazel actions and ``bazel run`` do: dagrender's ``render`` (then a real Airflow 3.3 DagBag imports
what rendered, in a child interpreter) and the publisher's ``main`` (``--dry-run`` against a local
store), and the sidecar's ``python -m sidecar --once`` in a child process over a store written with
the store contract's writers and then damaged (sidecar_runner.py). Every case and its outcome is
printed to the test log.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools.bazel.dagrender.cli import main as dagrender_main
from tools.bazel.publisher.cli import main as publisher_main
from tools.testing.hostile.sidecar_runner import sidecar_outcome

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases"
PROBE = HERE / "airflow_import.py"
REPOSITORY = "registry.example.com/etl"
DIGEST = "sha256:" + hashlib.sha256(b"hostile corpus image").hexdigest()
RENDERS = "renders and imports"
ACCEPTED = "accepted (dry run)"
_JOBS = ("profile", "report", "sync", "validate")


@dataclasses.dataclass(frozen=True)
class Case:
    """One folder of the corpus."""

    runner: str
    name: str
    folder: Path
    doc: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.runner}/{self.name}"

    @property
    def package(self) -> str:
        return str(self.doc.get("package", "file_processing"))


def _load_cases() -> list[Case]:
    cases = []
    for folder in sorted(p for p in CASES.glob("*/*") if p.is_dir()):
        doc = (
            yaml.safe_load((folder / "case.yaml").read_text(encoding="utf-8"))
            if (folder / "case.yaml").exists()
            else {}
        )
        cases.append(Case(runner=folder.parent.name, name=folder.name, folder=folder, doc=doc or {}))
    return cases


ALL = _load_cases()


@contextlib.contextmanager
def _in(folder: Path) -> Iterator[None]:
    """Run with ``folder`` as the working directory, as a Bazel action runs in the exec root."""
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _dagrender(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = dagrender_main(argv)
    return code, err.getvalue()


def _image_args(case: Case, work: Path) -> list[str]:
    digest_file = work / "image.digest"
    digest_file.write_text(DIGEST + "\n")
    return [f"--package={case.package}", f"--repository={REPOSITORY}", f"--digest-file={digest_file}"]


def _entrypoints(case: Case, work: Path) -> Path:
    listing = work / "entrypoints.txt"
    modules = case.doc.get("entrypoints") or [f"{case.package}.jobs.{job}" for job in _JOBS]
    listing.write_text("".join(f"{module}\n" for module in modules))
    return listing


def _render(case: Case, spec: Path, work: Path, out: Path) -> tuple[int, str]:
    """Render ``spec`` as the airflow_dag action does: workspace-relative paths, cwd = ``work``."""
    rel = Path("packages") / case.package / "dags" / spec.name
    (work / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spec, work / rel)
    target = str(case.doc.get("target", f"//packages/{case.package}:dag.{spec.stem}"))
    argv = [
        "render",
        f"--spec={rel}",
        *_image_args(case, work),
        f"--target={target}",
        f"--entrypoints={_entrypoints(case, work)}",
        f"--out={out}",
    ]
    with _in(work):
        return _dagrender(argv)


def run_spec(case: Case, work: Path) -> tuple[str, Path | None]:
    """Render the case's one spec; the outcome is the CLI's error line, or the rendered file."""
    specs = sorted(p for p in case.folder.glob("*.yaml") if p.name != "case.yaml")
    assert len(specs) == 1, f"{case.id}: a spec case holds exactly one spec besides case.yaml, found {specs}"
    out = work / "out" / case.name / f"{specs[0].stem}.py"
    code, err = _render(case, specs[0], work, out)
    if code == 0:
        return RENDERS, out  # "imports" is decided by the Airflow probe over every rendered file
    lines = err.splitlines()
    assert code == 1 and len(lines) == 1, f"{case.id}: exit {code}, stderr {err!r}: expected one line and exit 1"
    assert not out.exists(), f"{case.id}: a failed render wrote {out}"
    return lines[0], None


def run_publish(case: Case, work: Path) -> tuple[str, Path | None]:
    """Build the package's :dags output from the case, then run the publisher with --dry-run."""
    build = Path("bazel-bin") / "packages" / case.package
    dags_dir = build / "dags"
    (work / dags_dir / "dags").mkdir(parents=True)
    metadata_args: list[str] = []
    for spec in sorted((case.folder / "specs").glob("*.yaml")):
        rendered = dags_dir / "dags" / f"{spec.stem}.py"
        code, err = _render(case, spec, work, work / rendered)
        assert code == 0, f"{case.id}: the spec of a publish case must render: {err}"
        metadata_args += ["--dag", f"packages/{case.package}/dags/{spec.name}", str(rendered)]
    # A hand-made or tampered DAG file replaces the rendered one; @IMAGE@ becomes the pinned image
    # (the metadata writer checks every DAG file pins it).
    reference = f"{REPOSITORY}/{case.package}@{DIGEST}".encode()
    for raw in sorted((case.folder / "dags").glob("*.py")):
        (work / dags_dir / "dags" / raw.name).write_bytes(raw.read_bytes().replace(b"@IMAGE@", reference))
    with _in(work):
        code, err = _dagrender(
            ["metadata", *_image_args(case, work), *metadata_args, f"--out={dags_dir / 'metadata.json'}"]
        )
    assert code == 0, f"{case.id}: metadata: {err}"
    store = work / "store"
    if (case.folder / "store").is_dir():
        shutil.copytree(case.folder / "store", store)
    store.mkdir(exist_ok=True)
    argv = [
        f"--package={case.package}",
        f"--dags-dir={dags_dir}",
        f"--image-digest-file={work / 'image.digest'}",
        f"--bucket={store.as_uri()}",
        "--dry-run",
        *case.doc.get("args", []),
    ]
    out, err_io = io.StringIO(), io.StringIO()
    with _in(work):
        code = publisher_main(argv, environ=dict(case.doc.get("environ", {})), stdout=out, stderr=err_io)
    if code == 0:
        return ACCEPTED, None
    errors = [line for line in err_io.getvalue().splitlines() if line.startswith("publish: error: ")]
    assert len(errors) == 1, f"{case.id}: exit {code}, stderr {err_io.getvalue()!r}"
    return f"exit {code}: {errors[0]}".replace(str(work), "<work>"), None


def run_sidecar_case(case: Case, work: Path) -> tuple[str, Path | None]:
    """Build the case's store, run the real sidecar --once over it (a child), describe what it did."""
    outcome, _ = sidecar_outcome(case.doc, work)
    shutil.rmtree(work / "store", ignore_errors=True)  # 100 MiB bundles: free the disk as we go
    return outcome, None


RUNNERS: dict[str, Callable[[Case, Path], tuple[str, Path | None]]] = {
    "spec": run_spec,
    "publish": run_publish,
    "sidecar": run_sidecar_case,
}


def _import_all(rendered: dict[str, Path], tmp: Path) -> dict[str, str]:
    """Import every rendered file in one real Airflow DagBag (child interpreter); case id -> outcome."""
    folder = tmp / "dagbag"
    for case_id, path in rendered.items():
        shutil.copytree(path.parent, folder / case_id.replace("/", "__"))
    home = tmp / "airflow_home"
    home.mkdir()
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
        "PATH": "/usr/bin:/bin",
    }
    request = {"paths": [p for p in sys.path if p], "folder": str(folder)}
    proc = subprocess.run(
        [sys.executable, "-I", str(PROBE), json.dumps(request)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    outcomes = {}
    for case_id, path in rendered.items():
        copied = str(folder / case_id.replace("/", "__") / path.name)
        entry = found.get(copied, {"error": "not loaded by the DagBag"})
        if "error" in entry:
            outcomes[case_id] = f"renders; import fails: {entry['error']}"
        elif entry["dag_ids"] != [path.stem]:
            outcomes[case_id] = f"renders; imports dag_ids {entry['dag_ids']}, not [{path.stem!r}]"
        else:
            outcomes[case_id] = RENDERS
    return outcomes


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    results: dict[str, str] = {}
    rendered: dict[str, Path] = {}
    for case in ALL:
        if case.runner not in RUNNERS:
            continue  # test_every_case_is_well_formed names it
        work = tmp_path_factory.mktemp(case.name)
        outcome, path = RUNNERS[case.runner](case, work)
        results[case.id] = outcome
        if path is not None:
            rendered[case.id] = path
    results.update(_import_all(rendered, tmp_path_factory.mktemp("import")))
    width = max(len(case.id) for case in ALL)
    print(f"\nhostile-input corpus: {len(ALL)} cases ({', '.join(sorted({c.runner for c in ALL}))})")
    for case in ALL:
        got = results.get(case.id, "<no runner>")
        mark = "ok " if got == case.doc.get("expect") else "BAD"
        print(f"{mark} {case.id:<{width}}  {got}")
    return results


def test_every_case_is_well_formed() -> None:
    assert ALL, f"no cases under {CASES}"
    for case in ALL:
        assert case.runner in RUNNERS, f"{case.id}: no runner {case.runner!r} in test_hostile.py (see README.md)"
        assert (case.folder / "case.yaml").exists(), f"{case.id}: case.yaml is missing"
        assert isinstance(case.doc.get("about"), str) and case.doc["about"], f"{case.id}: 'about' is missing"
        assert isinstance(case.doc.get("expect"), str) and case.doc["expect"], f"{case.id}: 'expect' is missing"


@pytest.mark.parametrize("case", ALL, ids=[case.id for case in ALL])
def test_case(outcomes: dict[str, str], case: Case) -> None:
    assert outcomes.get(case.id) == case.doc.get("expect"), case.doc.get("about")
