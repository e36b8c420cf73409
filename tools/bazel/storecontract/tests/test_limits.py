"""storecontract.limits: what the publisher refuses to write is what the sidecar refuses to read."""

from __future__ import annotations

import hashlib
import json

import pytest

from tools.bazel.storecontract import canonical_json, write_bundle
from tools.bazel.storecontract.limits import (
    JSON_MAX_CONTAINER_ITEMS,
    JSON_MAX_DEPTH,
    JSON_MAX_STRING_BYTES,
    JSON_MAX_VALUES,
    MAX_DAGS,
    METADATA_MAX_BYTES,
    PAX_HEADER_MAX_BYTES,
    LimitError,
    bundle_size_bound,
    check_json_shape,
    check_metadata_document,
    check_release_sizes,
)


def _document(count: int, tasks: int = 2) -> bytes:
    digest = "sha256:" + "0" * 64
    dags = []
    for i in range(count):
        dag_id = f"file_processing_{i:05d}"
        names = [f"task_{t}" for t in range(tasks)]
        dags.append(
            {
                "dag_id": dag_id,
                "file": f"dags/{dag_id}.py",
                "sha256": "a" * 64,
                "size": 4000,
                "schedule": "0 3 * * *",
                "tasks": names,
                "resources": {
                    n: {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
                    for n in names
                },
            }
        )
    return canonical_json(
        {
            "schema_version": 1,
            "package": "file_processing",
            "revision": None,
            "dags": dags,
            "image": {
                "repository": "registry.example.com/etl/file_processing",
                "digest": digest,
                "reference": f"registry.example.com/etl/file_processing@{digest}",
            },
        }
    )


def test_the_largest_release_the_limits_allow_passes() -> None:
    data = _document(MAX_DAGS)
    assert len(data) <= METADATA_MAX_BYTES
    shape = check_metadata_document(data, where="m.json", dag_sizes=[4000] * MAX_DAGS)
    assert shape.depth <= JSON_MAX_DEPTH and shape.values <= JSON_MAX_VALUES
    assert shape.longest_container == MAX_DAGS


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[" * (JSON_MAX_DEPTH + 1) + b"]" * (JSON_MAX_DEPTH + 1), f"nesting is deeper than {JSON_MAX_DEPTH}"),
        (
            b"[" + b",".join([b"[]"] * (JSON_MAX_CONTAINER_ITEMS + 1)) + b"]",
            f"has more than {JSON_MAX_CONTAINER_ITEMS} items",
        ),
        (
            json.dumps({"revision": "r" * (JSON_MAX_STRING_BYTES + 1)}).encode(),
            f"a string of {JSON_MAX_STRING_BYTES + 1} bytes is longer than {JSON_MAX_STRING_BYTES}",
        ),
        (json.dumps([[0] * 1000] * (JSON_MAX_VALUES // 1000 + 1)).encode(), f"more than {JSON_MAX_VALUES} values"),
    ],
)
def test_shapes_over_a_limit_are_refused_before_parsing(data: bytes, message: str) -> None:
    with pytest.raises(LimitError, match=message) as info:
        check_json_shape(data, where="s3://b/dev/p/metadata.json")
    assert info.value.kind == "metadata_too_complex"
    assert "'s3://b/dev/p/metadata.json'" in str(info.value)


def test_escaped_quotes_do_not_end_a_string() -> None:
    shape = check_json_shape(json.dumps({"a": 'x"[[[[[[[[[[[[[[y'}).encode(), where="m")
    assert shape.depth == 1


def test_size_is_checked_first() -> None:
    with pytest.raises(LimitError, match=f"more than the {METADATA_MAX_BYTES} allowed") as info:
        check_metadata_document(b" " * (METADATA_MAX_BYTES + 1), where="m.json")
    assert info.value.kind == "metadata_too_large"


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ([1] * (MAX_DAGS + 1), f"more than the {MAX_DAGS} a release may have"),
        ([6 * 1024 * 1024], "a DAG file of 6291456 bytes"),
        ([4 * 1024 * 1024] * 40, "bytes of DAG files, more than"),
    ],
)
def test_release_sizes(sizes: list[int], message: str) -> None:
    with pytest.raises(LimitError, match=message):
        check_release_sizes(sizes, where="m.json")


@pytest.mark.parametrize("id_length", [5, 95, 96, 250])
def test_a_bundle_the_contract_writes_is_within_its_bound(id_length: int) -> None:
    """write_bundle's tar (with a pax header for names over 100 bytes) never exceeds bundle_size_bound."""
    files = {("d" * id_length)[:-3] + f"{i:03d}": hashlib.sha256(bytes([i])).digest() * (i * 7) for i in range(30)}
    bundle = write_bundle(files)
    assert len(bundle) <= bundle_size_bound([len(v) for v in files.values()])
    # the pax record for the longest name fits the header cap
    assert len(f"999 path=dags/{'d' * 250}.py\n") <= PAX_HEADER_MAX_BYTES
