"""metadata.json: what the build writes and the publisher stores is checked by one validator."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
from typing import Any

import pytest

from tools.bazel.storecontract import (
    SCHEMA_VERSION,
    MetadataError,
    build_part,
    canonical_json,
    dag_entry,
    make_release_id,
    parse_metadata,
    release_time,
    validate_document,
    with_release,
    write_bundle,
)
from tools.bazel.storecontract import build_document as contract_build_document

DIGEST = "sha256:" + "ab" * 32
RELEASE = "20261127T042000Z-3f2a9c1d"
FILES = {"fp_daily": b"DAG = 1\n", "fp_hourly": b"DAG = 2\n"}


def build_document() -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "package": "file_processing",
        "image": {
            "repository": "registry.example.com/etl/file_processing",
            "digest": DIGEST,
            "reference": f"registry.example.com/etl/file_processing@{DIGEST}",
        },
        "revision": None,
        "dags": [
            {
                "dag_id": d,
                "file": f"dags/{d}.py",
                "sha256": hashlib.sha256(b).hexdigest(),
                "size": len(b),
                "schedule": "@daily",
                "tasks": ["run"],
            }
            for d, b in sorted(FILES.items())
        ],
    }


def published_document() -> dict[str, Any]:
    tar = write_bundle(FILES)
    return with_release(
        build_document(),
        env="dev",
        release={
            "id": RELEASE,
            "previous": None,
            "published_at": "2026-11-27T04:20:00Z",
            "image_tag": None,
            "bundle": {"key": f"releases/{RELEASE}.tar", "sha256": hashlib.sha256(tar).hexdigest(), "size": len(tar)},
        },
    )


def test_a_build_document_is_valid() -> None:
    meta = validate_document(build_document(), where="out/metadata.json", package="file_processing")
    assert meta.release is None and meta.env is None
    assert [d.dag_id for d in meta.dags] == ["fp_daily", "fp_hourly"]
    assert meta.dags[0].name == "fp_daily.py"
    assert meta.sha256s["fp_daily"] == hashlib.sha256(b"DAG = 1\n").hexdigest()
    assert meta.image.digest == DIGEST


def test_a_published_document_round_trips_through_its_canonical_bytes() -> None:
    document = published_document()
    data = canonical_json(document)
    assert data.endswith(b"}\n") and b'\n  "dags": [' in data
    meta = parse_metadata(data, where="s3://b/dev/file_processing/metadata.json", package="file_processing", env="dev")
    assert meta.release_id == RELEASE
    assert meta.release is not None and meta.release.bundle is not None and meta.release.bundle_problem is None
    assert meta.release.bundle.key == f"releases/{RELEASE}.tar"
    assert meta.build == build_document()
    assert build_part(document) == build_document()


def _broken(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(published_document())
    change(document)
    return document


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(schema_version=2), r"schema_version 2 is not 1$"),
        (lambda d: d.update(package="data_pipeline"), r"package 'data_pipeline' is not 'file_processing'$"),
        (lambda d: d.update(package="../x"), r"invalid package '\.\./x'"),
        (lambda d: d.update(env="prod"), r"env 'prod' is not 'dev'$"),
        (lambda d: d.update(env=None), r"invalid env None"),
        (lambda d: d.pop("image"), r"'image' must be an object with repository, digest and reference$"),
        (lambda d: d["image"].update(digest="sha256:x"), r"image\.digest 'sha256:x' is not sha256:<64 hex>$"),
        (lambda d: d["image"].update(reference="other"), r"image\.reference 'other' is not registry"),
        (lambda d: d.update(dags=[]), r"'dags' must be a non-empty list$"),
        (lambda d: d["dags"].append("x"), r"dags\[2\] must be an object$"),
        (lambda d: d["dags"][0].update(dag_id="../../prod/x"), r"invalid dag_id '\.\./\.\./prod/x'"),
        (
            lambda d: d["dags"][0].update(file="dags/../../x.py"),
            r"dag 'fp_daily': file 'dags/\.\./\.\./x\.py' must be 'dags/fp_daily\.py'$",
        ),
        (
            lambda d: d["dags"][0].update(sha256="A" * 64),
            r"dag 'fp_daily': sha256 'AAA.*' is not 64 lowercase hex digits$",
        ),
        (lambda d: d["dags"][0].pop("size"), r"dag 'fp_daily': size None is not a number of bytes$"),
        (lambda d: d["dags"][0].update(size=True), r"dag 'fp_daily': size True is not a number of bytes$"),
        (lambda d: d["dags"].reverse(), r"dag_id 'fp_daily' is out of order \('dags' is sorted by dag_id\)$"),
        (lambda d: d["dags"].__setitem__(1, d["dags"][0]), r"dag_id 'fp_daily' is listed twice$"),
        (lambda d: d["release"].update(id="r1"), r"release: invalid release id 'r1'"),
        (lambda d: d["release"].update(previous="latest"), r"release: invalid release id 'latest'"),
        (lambda d: d.update(release=[]), r"'release' must be an object, got list$"),
        (lambda d: d.update(decommissioned=True), r"'decommissioned' must be an object, got bool$"),
    ],
)
def test_broken_documents_are_refused_naming_the_field(change: Any, message: str) -> None:
    with pytest.raises(MetadataError, match=r"^s3://b/dev/file_processing/metadata\.json: " + message.lstrip("^")):
        validate_document(
            _broken(change), where="s3://b/dev/file_processing/metadata.json", package="file_processing", env="dev"
        )


@pytest.mark.parametrize("data", [b"\xff", b"{", b"[]"])
def test_bytes_that_are_not_an_object_are_refused(data: bytes) -> None:
    with pytest.raises(MetadataError, match=r"^m\.json: (not valid UTF-8 JSON|top level must be an object)"):
        parse_metadata(data, where="m.json")


@pytest.mark.parametrize(
    ("bundle", "problem"),
    [
        (None, "release.bundle is missing"),
        ("x", "release.bundle must be an object, got str"),
        (
            {"key": "releases/other.tar", "sha256": "a" * 64, "size": 10240},
            f"release.bundle.key 'releases/other.tar' must be 'releases/{RELEASE}.tar'",
        ),
        (
            {"key": f"releases/{RELEASE}.tar", "sha256": "x", "size": 10240},
            "release.bundle.sha256 'x' is not 64 lowercase hex digits",
        ),
        (
            {"key": f"releases/{RELEASE}.tar", "sha256": "a" * 64, "size": 0},
            "release.bundle.size 0 is not a number of bytes",
        ),
    ],
)
def test_a_bad_bundle_block_is_reported_not_fatal(bundle: Any, problem: str) -> None:
    # Readers can still verify every file one by one: the block is an optimisation for them.
    document = published_document()
    document["release"]["bundle"] = bundle
    meta = validate_document(document, where="m.json")
    assert meta.release is not None and meta.release.bundle is None
    assert meta.release.bundle_problem == problem


def test_release_ids_sort_by_time_and_name_the_content() -> None:
    when = dt.datetime(2026, 11, 27, 4, 20, tzinfo=dt.UTC)
    build = build_document()
    release_id = make_release_id(when, build)
    assert release_id == "20261127T042000Z-" + hashlib.sha256(canonical_json(build)).hexdigest()[:8]
    assert release_time(release_id) == when
    assert make_release_id(when + dt.timedelta(seconds=1), build) > release_id


def test_canonical_json_is_sorted_utf8_with_a_trailing_newline() -> None:
    assert canonical_json({"b": "é", "a": 1}) == '{\n  "a": 1,\n  "b": "é"\n}\n'.encode()
    assert json.loads(canonical_json(published_document())) == published_document()


def test_build_document_sorts_its_dags_and_refuses_what_breaks_the_contract() -> None:
    entries = [
        dag_entry(d, data, schedule="@daily", tasks=["run"], resources={"run": {}})
        for d, data in reversed(FILES.items())
    ]
    doc = contract_build_document(
        package="file_processing",
        repository="r.example/etl/file_processing",
        digest=DIGEST,
        revision=None,
        dags=entries,
    )
    assert [d["dag_id"] for d in doc["dags"]] == sorted(FILES)
    assert doc["dags"][0]["file"] == "dags/fp_daily.py"
    assert doc["dags"][0]["sha256"] == hashlib.sha256(FILES["fp_daily"]).hexdigest()
    assert doc["dags"][0]["size"] == len(FILES["fp_daily"])
    assert doc["image"]["reference"] == f"r.example/etl/file_processing@{DIGEST}"
    assert validate_document(doc, where="x").package == "file_processing"
    with pytest.raises(MetadataError, match="digest"):
        contract_build_document(
            package="file_processing", repository="r.example/etl/x", digest="sha256:xyz", revision=None, dags=entries
        )
    with pytest.raises(MetadataError, match="is listed twice"):
        contract_build_document(
            package="file_processing", repository="r", digest=DIGEST, revision=None, dags=entries + entries[:1]
        )
