"""infra/: IAM documents match the generator and grant only what each role needs; the Helm values
put the sidecar beside every Airflow component that parses DAGs and run it --once before workers.
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[1]  # _main in runfiles
SOURCE_ROOT = Path(os.path.realpath(__file__)).parents[1]
sys.path.insert(0, str(ROOT / "infra" / "iam"))
import generate  # noqa: E402

WRITES = {"s3:PutObject", "s3:DeleteObject"}


def _allowed(doc: dict, action: str, key: str) -> bool:
    arn = f"arn:aws:s3:::${{DAG_BUCKET}}/{key}"
    return any(action in st["Action"] and any(fnmatch.fnmatchcase(arn, r) for r in st["Resource"])
               for st in doc["Statement"] if st["Effect"] == "Allow")


def test_committed_documents_match_the_generator() -> None:
    expected = generate.documents(SOURCE_ROOT)
    committed = {p.name: p.read_text() for p in (ROOT / "infra" / "iam").glob("*.json")}
    assert committed == expected, "infra/iam is stale: run `./bazelw run //infra:iam.update`"
    assert {"publisher-file_processing.json", "publisher-data_pipeline.json", "publisher-observability.json"} <= set(committed)


def test_each_publisher_writes_only_its_own_prefix() -> None:
    pkgs = generate.packages(SOURCE_ROOT)
    for pkg in pkgs:
        doc = json.loads((ROOT / "infra" / "iam" / f"publisher-{pkg}.json").read_text())
        for action in WRITES:
            assert _allowed(doc, action, f"${{ENV}}/{pkg}/dags/x.py")
            assert _allowed(doc, action, f"${{ENV}}/{pkg}/metadata.json")
            for other in pkgs:
                if other != pkg:
                    assert not _allowed(doc, action, f"${{ENV}}/{other}/dags/x.py"), (pkg, other, action)
                    assert not _allowed(doc, action, f"${{ENV}}/{other}/metadata.json"), (pkg, other, action)
            assert not _allowed(doc, action, f"${{ENV}}/{pkg}-evil/dags/x.py")
            assert not _allowed(doc, action, "other-env-root.txt")
        other = next(p for p in pkgs if p != pkg)
        assert _allowed(doc, "s3:GetObject", f"${{ENV}}/{other}/metadata.json")  # the collision check


def test_sidecar_only_reads() -> None:
    doc = json.loads((ROOT / "infra" / "iam" / "sidecar.json").read_text())
    actions = {a for st in doc["Statement"] for a in st["Action"]}
    assert actions == {"s3:GetObject", "s3:ListBucket"}


def test_helm_values_run_the_sidecar_beside_dag_parsers_and_once_in_workers() -> None:
    values = yaml.safe_load((ROOT / "infra" / "airflow_control_plane" / "values.yaml").read_text())
    for component in ("dagProcessor", "scheduler", "triggerer"):
        sidecars = values[component]["extraContainers"]
        assert [c["name"] for c in sidecars] == ["dag-sync"], component
        assert "--once" not in sidecars[0]["args"]
        mounts = {m["mountPath"] for m in sidecars[0]["volumeMounts"]}
        assert "/opt/airflow/dags" in mounts
    inits = values["workers"]["extraInitContainers"]
    assert inits[0]["name"] == "dag-sync-once" and "--once" in inits[0]["args"]
    assert values["config"]["core"]["dags_folder"] == "/opt/airflow/dags"
    interval = int(next(e["value"] for e in values["scheduler"]["extraContainers"][0]["env"] if e["name"] == "SYNC_INTERVAL"))
    assert int(values["config"]["dag_processor"]["refresh_interval"]) >= interval
