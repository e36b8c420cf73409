"""Dataset specs: the packaged ones load; mistakes name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_pipeline.errors import SpecError
from data_pipeline.spec import DATASETS_DIR, load_spec

BASE = """dataset: orders
source: {format: csv}
columns:
  - {name: order_id, type: int64, required: true}
  - {name: amount, type: float64}
"""


def test_packaged_specs_load() -> None:
    names = []
    for path in sorted(DATASETS_DIR.glob("*.yaml")):
        spec = load_spec(path)
        assert spec.dataset == path.stem
        names.append(spec.dataset)
    assert names == ["events", "orders", "orders_enriched"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("dedup: {keys: [id]}\n", r"dedup names column 'id', which is not in columns \(order_id, amount\)"),
        ("transforms:\n  - {filter: 'amount >'}\n", r"transforms\[0\]: 'amount >' is not a valid expression"),
        ("transforms:\n  - {derive: {x: 'os.system(1)'}}\n", r"transforms\[0\]: derive.x: .*unknown function"),
        ("transforms:\n  - {rename: {a: b}, filter: 'true'}\n", r"exactly one of rename, cast, filter, derive"),
        ("max_reject_ratio: 2\n", r"max_reject_ratio: Input should be less than or equal to 1"),
        ("bogus: 1\n", r"bogus: Extra inputs are not permitted"),
    ],
)
def test_bad_specs(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "orders.yaml"
    path.write_text(BASE + extra)
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_bad_column_type_and_missing_spec(tmp_path: Path) -> None:
    path = tmp_path / "orders.yaml"
    path.write_text(BASE.replace("float64", "money"))
    with pytest.raises(SpecError, match=r"orders.yaml: columns\[1\].type: Input should be 'string', 'int64'"):
        load_spec(path)
    with pytest.raises(SpecError, match=r"dataset spec '.*missing.yaml' does not exist: add it or pass --spec"):
        load_spec(tmp_path / "missing.yaml")
