"""metadata.json: the store-layout schema (v1, no env/release), file hashes, determinism."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from helpers import (
    DIGEST_FILE,
    GOLDEN,
    GOOD_SPECS,
    PACKAGE,
    REPOSITORY,
    display_path,
    render_all,
)

from tools.bazel.dagrender.cli import main

UPDATE = os.environ.get("DAGRENDER_UPDATE_GOLDEN") == "1"


def _metadata(tmp_path: Path, *extra: str, dags_dir: Path | None = None, out_name: str = "metadata.json") -> Path:
    dags_dir = dags_dir or tmp_path / "dags"
    if not dags_dir.exists():
        render_all(dags_dir)
    out = tmp_path / out_name
    argv = ["metadata", f"--package={PACKAGE}", f"--repository={REPOSITORY}", f"--digest-file={DIGEST_FILE}"]
    for spec in reversed(GOOD_SPECS):  # reversed on purpose: the output must be sorted anyway
        argv += ["--dag", str(spec), str(dags_dir / f"{spec.stem}.py")]
    assert main([*argv, *extra, f"--out={out}"]) == 0
    return out


def test_metadata_document(tmp_path: Path) -> None:
    out = _metadata(tmp_path)
    doc = json.loads(out.read_text())
    digest = DIGEST_FILE.read_text().strip()
    assert doc["schema_version"] == 1
    assert doc["package"] == PACKAGE
    assert doc["image"] == {
        "repository": f"{REPOSITORY}/{PACKAGE}",
        "digest": digest,
        "reference": f"{REPOSITORY}/{PACKAGE}@{digest}",
    }
    assert doc["revision"] is None
    assert "env" not in doc and "release" not in doc
    assert [d["dag_id"] for d in doc["dags"]] == sorted(spec.stem for spec in GOOD_SPECS)
    for entry in doc["dags"]:
        data = (tmp_path / "dags" / f"{entry['dag_id']}.py").read_bytes()
        assert entry["file"] == f"dags/{entry['dag_id']}.py"
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size"] == len(data)
    daily = next(d for d in doc["dags"] if d["dag_id"] == "file_processing_daily_profile")
    assert daily["schedule"] == "0 3 * * *"
    assert daily["tasks"] == ["profile", "validate", "publish-report"]
    assert daily["resources"]["validate"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "1Gi"},
    }
    manual = next(d for d in doc["dags"] if d["dag_id"] == "file_processing_manual_backfill")
    assert manual["schedule"] is None


def test_metadata_format_is_sorted_indented_and_golden(tmp_path: Path) -> None:
    out = _metadata(tmp_path)
    text = out.read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    golden = GOLDEN / "metadata.json"
    if UPDATE:
        golden.write_text(text)
    assert text == golden.read_text()


def test_metadata_is_deterministic(tmp_path: Path) -> None:
    first = _metadata(tmp_path, out_name="a.json").read_bytes()
    second = _metadata(tmp_path, out_name="b.json").read_bytes()
    assert first == second


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("3f2a9c1d\n", "3f2a9c1d"),
        ("BUILD_HOST x\nSTABLE_GIT_COMMIT 0123abc\nSTABLE_OTHER y\n", "0123abc"),
        ("BUILD_HOST x\nBUILD_USER y\n", None),
        ("", None),
    ],
)
def test_revision_only_when_stamped(tmp_path: Path, content: str, expected: str | None) -> None:
    revision = tmp_path / "status.txt"
    revision.write_text(content)
    out = _metadata(tmp_path, f"--revision-file={revision}")
    assert json.loads(out.read_text())["revision"] == expected


def test_rendered_file_for_another_image_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dags = tmp_path / "dags"
    render_all(dags)
    stale = dags / "file_processing_hourly_sync.py"
    stale.write_text(stale.read_text().replace("3f2a9c1d0b7e", "000000000000"))
    out = tmp_path / "metadata.json"
    argv = ["metadata", f"--package={PACKAGE}", f"--repository={REPOSITORY}", f"--digest-file={DIGEST_FILE}"]
    spec = next(s for s in GOOD_SPECS if s.stem == "file_processing_hourly_sync")
    assert main([*argv, "--dag", str(spec), str(stale), f"--out={out}"]) == 1
    assert "does not pin 'registry.example.com/etl/file_processing@sha256:3f2a9c1d" in capsys.readouterr().err
    assert not out.exists()


def test_rendered_file_name_must_match_dag_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dags = tmp_path / "dags"
    render_all(dags)
    spec = next(s for s in GOOD_SPECS if s.stem == "file_processing_hourly_sync")
    argv = ["metadata", f"--package={PACKAGE}", f"--repository={REPOSITORY}", f"--digest-file={DIGEST_FILE}"]
    other = dags / "file_processing_daily_profile.py"
    assert main([*argv, "--dag", str(spec), str(other), f"--out={tmp_path / 'm.json'}"]) == 1
    err = capsys.readouterr().err
    assert "does not belong to dag_id 'file_processing_hourly_sync'" in err
    assert display_path(spec) not in err
