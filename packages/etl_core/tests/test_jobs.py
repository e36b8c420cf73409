"""etl_core.jobs: settings precedence, exit codes and the one-line error of a failed job."""

from __future__ import annotations

import pytest
from pydantic import Field

from etl_core.config import ConfigError
from etl_core.errors import NotFoundError
from etl_core.jobs import JobContext, JobError, JobSettings, UsageError, parse_settings, run_job


class _Settings(JobSettings):
    source: str = Field(description="where to read")
    level: int = Field(6, ge=1, le=9, description="how much")


def test_flags_beat_conf_which_beats_env_and_unknown_conf_keys_are_reported() -> None:
    settings, unknown = parse_settings(
        _Settings,
        ["--conf", '{"source": "s3://conf/", "level": 3, "extra": 1}', "--level", "9"],
        prog="job",
        description="d",
        environ={"SOURCE": "s3://env/", "LEVEL": "2"},
    )
    assert (settings.source, settings.level, unknown) == ("s3://conf/", 9, ["extra"])


def test_bad_conf_value_names_the_conf_key() -> None:
    with pytest.raises(ConfigError, match=r"invalid --conf key: level"):
        parse_settings(_Settings, ["--conf", '{"source": "x", "level": 42}'], prog="job", description="d", environ={})


@pytest.mark.parametrize(
    ("error", "code", "line"),
    [
        (None, 0, None),
        (JobError("disk full"), 1, "python -m pkg.jobs.unit: error: disk full"),
        (NotFoundError("no such object: 's3://b/k'"), 1, "python -m pkg.jobs.unit: error: no such object: 's3://b/k'"),
        (UsageError("--a and --b conflict"), 2, "python -m pkg.jobs.unit: error: --a and --b conflict"),
        (KeyError("boom"), 1, "python -m pkg.jobs.unit: error: KeyError: 'boom'"),
    ],
)
def test_exit_codes_and_error_line(
    error: Exception | None, code: int, line: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str] = []

    def main(settings: _Settings, ctx: JobContext) -> None:
        seen.append(f"{ctx.job_label}:{settings.source}")
        if error is not None:
            raise error

    assert (
        run_job(
            package="pkg",
            job="unit",
            settings_cls=_Settings,
            main=main,
            description="d",
            argv=["--source", "s3://b/k"],
            environ={},
        )
        == code
    )
    assert seen == ["pkg_unit:s3://b/k"]
    err_lines = [ln for ln in capsys.readouterr().err.splitlines() if ln and not ln.startswith("{")]
    assert err_lines == ([line] if line else [])


def test_missing_required_setting_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = run_job(
        package="pkg", job="unit", settings_cls=_Settings, main=lambda s, c: None, description="d", argv=[], environ={}
    )
    assert code == 2
    assert "python -m pkg.jobs.unit: error:" in capsys.readouterr().err
