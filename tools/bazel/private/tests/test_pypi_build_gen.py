"""The @pypi BUILD generator on a synthetic site-packages: files, markers, extras, cycles."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import pypi_build_gen as gen


def _dist(site: Path, name: str, version: str, requires: list[str], files: list[str]) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(meta) + "\n")
    rows = []
    for f in files:
        path = site / f
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")
        rows.append(f"{f},sha256=abc,6")
    rows.append(f"{info.name}/METADATA,,")
    rows.append("../../bin/tool,,")
    (info / "RECORD").write_text("\n".join(rows) + "\n")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    s = tmp_path / "site-packages"
    _dist(
        s,
        "Moto",
        "5.0",
        ["boto3", "flask ; extra == 'server'", "pywin32 ; sys_platform == 'win32'"],
        ["moto/__init__.py"],
    )
    _dist(s, "boto3", "1.0", [], ["boto3/__init__.py", "boto3/data/x.json"])
    _dist(s, "Flask", "3.0", ["werkzeug[watchdog]>=3"], ["flask/__init__.py"])
    _dist(s, "Werkzeug", "3.0", ["watchdog ; extra == 'watchdog'"], ["werkzeug/__init__.py"])
    _dist(s, "watchdog", "4.0", [], ["watchdog/__init__.py"])
    _dist(s, "apache-airflow", "3.3.2", ["apache-airflow-core==3.3.2"], ["airflow/__init__.py"])
    _dist(s, "apache-airflow-core", "3.3.2", ["apache-airflow-task-sdk"], ["airflow/core.py"])
    _dist(s, "apache-airflow-task-sdk", "1.0", ["apache-airflow-core"], ["airflow/sdk/__init__.py"])
    return s


def test_extras_from_requirements_and_dependents_are_followed(site: Path, tmp_path: Path) -> None:
    req = tmp_path / "requirements.in"
    req.write_text("moto[server]\napache-airflow==3.3.2\n")
    dists = gen.read_dists(site)
    warnings = gen.resolve_deps(dists, gen.requested_extras(req))
    assert dists["moto"].deps == {"boto3", "flask"}  # server extra on; win32-only dep off
    assert dists["werkzeug"].deps == {"watchdog"}  # werkzeug[watchdog] asked for by flask
    assert warnings == []


def test_without_the_extra_its_dependencies_are_not_linked(site: Path, tmp_path: Path) -> None:
    req = tmp_path / "requirements.in"
    req.write_text("moto\n")
    dists = gen.read_dists(site)
    gen.resolve_deps(dists, gen.requested_extras(req))
    assert dists["moto"].deps == {"boto3"}


def test_files_come_from_record_with_metadata_and_without_scripts(site: Path) -> None:
    dists = gen.read_dists(site)
    # dist-info stays: importlib.metadata (entry points, versions) needs it at run time
    assert dists["boto3"].files == ["boto3/__init__.py", "boto3/data/x.json", "boto3-1.0.dist-info/METADATA"]


def test_cycles_become_one_library_with_aliases(site: Path, tmp_path: Path) -> None:
    req = tmp_path / "requirements.in"
    req.write_text("apache-airflow\n")
    dists = gen.read_dists(site)
    gen.resolve_deps(dists, gen.requested_extras(req))
    build = gen.render(dists, [])
    assert 'name = "_cycle_apache_airflow_core"' in build
    assert 'alias(name = "apache_airflow_task_sdk", actual = ":_cycle_apache_airflow_core")' in build
    # apache-airflow depends on the cycle, it is not part of it
    assert 'alias(name = "apache_airflow",' not in build
    assert '":_cycle_apache_airflow_core"' in build.split('name = "apache_airflow",')[1].split(")")[0]


def test_requirement_missing_from_the_lock_is_an_error(site: Path, tmp_path: Path) -> None:
    req = tmp_path / "requirements.in"
    req.write_text("pandas\n")
    out = tmp_path / "BUILD.bazel"
    code = gen.main(["--site", str(site), "--requirements", str(req), "--lock", "lock.txt", "--out", str(out)])
    assert code == 1
    assert not out.exists()


_WEBAPP = [
    "webapp/__init__.py",
    "webapp/ui/dist/index.html",
    "webapp/ui/dist/.vite/manifest.json",
    "webapp/ui/dist/assets/index-1a2b.js",
    "webapp/ui/dist/login/index.html",  # inside the outer root: covered by its link
    "webapp/templates/index.html",  # beside Python: a package folder, not built assets
    "webapp/templates/render.py",
]


def test_a_folder_of_built_web_assets_is_one_data_entry(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _dist(site, "webapp", "1.0", [], _WEBAPP)
    dists = gen.read_dists(site)
    assert dists["webapp"].web_roots == ["webapp/ui/dist"]
    build = gen.render(dists, [])
    data = build.split("data = [")[1].split("]")[0]
    assert '"site-packages/webapp/ui/dist",' in data
    assert "ui/dist/" not in build  # no file under it is linked on its own
    assert '"site-packages/webapp/templates/index.html",' in data


def test_a_folder_with_files_the_wheel_does_not_own_stays_file_by_file(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    _dist(site, "webapp", "1.0", [], _WEBAPP)
    (site / "webapp/ui/dist/assets/generated.js").write_text("// not in RECORD\n")
    dists = gen.read_dists(site)
    assert dists["webapp"].web_roots == ["webapp/ui/dist/login"]  # the inner folder still qualifies
    assert '"site-packages/webapp/ui/dist/assets/index-1a2b.js",' in gen.render(dists, [])
