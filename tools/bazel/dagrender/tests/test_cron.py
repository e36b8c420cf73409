"""The schedule validator: presets, five-field cron, and agreement with Airflow's croniter."""

from __future__ import annotations

import pytest
from croniter import croniter

from tools.bazel.dagrender.cron import PRESETS, validate_schedule

VALID = [
    "0 3 * * *",
    "*/15 * * * *",
    "0 0 1 */3 *",
    "0 9-17 * * mon-fri",
    "0 9-17/2 * * MON-FRI",
    "30 2 1,15 jan,jul *",
    "0 0 * * 7",
    "0 0 * * 0-6",
    "5 4 31 12 sun",
]
INVALID = {
    "0 24 * * *": r"hour '24' is outside 0-23",
    "60 * * * *": r"minute '60' is outside 0-59",
    "0 0 0 * *": r"day of month '0' is outside 1-31",
    "0 0 * 13 *": r"month '13' is outside 1-12",
    "0 0 * * 8": r"day of week '8' is outside 0-7",
    "0 0 * * funday": r"day of week 'funday' is not a number or a name",
    "0 5-1 * * *": r"hour range '5-1' runs backwards",
    "*/0 * * * *": r"minute step '0' must be between 1 and 59",
    "0 0 L * *": r"day of month 'L' is not a number",
    "0 0 * * 1#2": r"day of week item '1#2' is not",
    "0 0 ? * *": r"day of month item '\?' is not",
    "0 3 * *": r"has 4 fields; a cron expression has 5",
    "0 0 3 * * *": r"has 6 fields",
    "0 0 * jan-foo *": r"month 'foo' is not a number or a name",
    "1,,2 * * * *": r"minute item '' is not",
}


@pytest.mark.parametrize("expression", VALID)
def test_valid_cron(expression: str) -> None:
    assert validate_schedule(expression) == expression
    assert croniter.is_valid(expression), "croniter (Airflow's parser) must accept what we accept"


@pytest.mark.parametrize(("expression", "message"), sorted(INVALID.items()))
def test_invalid_cron(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_schedule(expression)


# Backwards ranges ('5-1') are left out on purpose: croniter wraps them around, we reject them as
# ambiguous, which is stricter and therefore safe.
@pytest.mark.parametrize("expression", ["0 24 * * *", "60 * * * *", "0 0 0 * *", "0 0 * 13 *", "0 0 * * 8"])
def test_croniter_also_rejects(expression: str) -> None:
    assert not croniter.is_valid(expression)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets(preset: str) -> None:
    assert validate_schedule(preset) == preset


def test_continuous_is_not_offered() -> None:
    with pytest.raises(ValueError, match=r"'@continuous' is not a supported preset"):
        validate_schedule("@continuous")
