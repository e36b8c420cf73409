"""The job runner: flags, --conf (dag_run.conf), env vars, exit codes, one-line errors, metrics."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from etl_core.jobs import (
    JobContext,
    JobError,
    JobSettings,
    UsageError,
    parse_settings,
    run_job,
)
from pydantic import Field

from file_processing.tests.conftest import last_line, run_module


class _Settings(JobSettings):
    source: str = Field(description="where")
    level: int = Field(6, ge=1, le=9, description="how much")
    dry_run: bool = Field(False, description="plan only")


def _parse(argv: list[str], environ: dict[str, str] | None = None) -> tuple[_Settings, list[str]]:
    return parse_settings(_Settings, argv, prog="job", description="d", environ=environ or {})


def test_explicit_flags_win_over_conf_which_wins_over_env() -> None:
    settings, unknown = _parse(
        ["--conf", '{"source": "s3://conf/", "level": 3, "other": 1}', "--level", "9"],
        {"SOURCE": "s3://env/", "LEVEL": "2", "DRY_RUN": "true"},
    )
    assert settings.source == "s3://conf/"  # conf beats env
    assert settings.level == 9  # flag beats conf
    assert settings.dry_run is True  # env beats default
    assert unknown == ["other"]


def test_conf_accepts_dashed_keys_and_empty_values() -> None:
    settings, _ = _parse(["--conf", '{"dry-run": true}', "--source", "x"])
    assert settings.dry_run is True
    for empty in ("", "{}", "null", "None"):
        assert _parse(["--conf", empty, "--source", "x"])[0].level == 6


def test_bad_conf_values_name_the_conf_key() -> None:
    from etl_core.config import ConfigError

    with pytest.raises(ConfigError, match=r"invalid --conf key: level=12: Input should be less than or equal to 9"):
        _parse(["--conf", '{"level": 12}', "--source", "x"])
    with pytest.raises(ConfigError, match=r"invalid flag: --conf='\[1\]': must be a JSON object"):
        _parse(["--conf", "[1]", "--source", "x"])
    with pytest.raises(ConfigError, match=r"invalid flag: --conf='\{nope': not JSON"):
        _parse(["--conf", "{nope", "--source", "x"])
    with pytest.raises(ConfigError, match=r"required setting: SOURCE is not set \(or pass --source\)"):
        _parse([])


def _run(main, argv: list[str], environ: dict[str, str] | None = None) -> int:
    return run_job(
        package="file_processing",
        job="unit",
        settings_cls=_Settings,
        main=main,
        argv=argv,
        description="unit",
        environ=environ or {},
    )


def test_exit_codes_and_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    def ok(settings: _Settings, ctx: JobContext) -> None:
        ctx.gauge("unit_value", "a value").set(1)

    def fails(settings: _Settings, ctx: JobContext) -> None:
        raise JobError(f"cannot copy {settings.source!r}: disk full")

    def misuse(settings: _Settings, ctx: JobContext) -> None:
        raise UsageError("--a and --b exclude each other")

    def crashes(settings: _Settings, ctx: JobContext) -> None:
        raise KeyError("boom")

    assert _run(ok, ["--source", "x"]) == 0
    assert _run(fails, ["--source", "s3://b/k"]) == 1
    assert last_line(capsys.readouterr().err) == (
        "python -m file_processing.jobs.unit: error: cannot copy 's3://b/k': disk full"
    )
    assert _run(misuse, ["--source", "x"]) == 2
    assert "error: --a and --b exclude each other" in last_line(capsys.readouterr().err)
    assert _run(crashes, ["--source", "x"]) == 1
    err = capsys.readouterr().err
    assert last_line(err) == "python -m file_processing.jobs.unit: error: KeyError: 'boom'"
    assert '"traceback"' in err  # the crash keeps its traceback, in the JSON log line
    assert _run(ok, ["--source", "x", "--level", "0"]) == 2
    assert "invalid flag: --level='0'" in last_line(capsys.readouterr().err)


def test_metrics_go_to_the_textfile_even_when_the_job_fails(tmp_path: Path) -> None:
    def fails(settings: _Settings, ctx: JobContext) -> None:
        ctx.gauge("unit_rows", "rows").set(42)
        raise JobError("bad input")

    prom = tmp_path / "unit.prom"
    assert _run(fails, ["--source", "x", "--metrics-file", str(prom)]) == 1
    text = prom.read_text()
    assert "etl_unit_rows 42.0" in text
    assert 'etl_job_runs_total{job="file_processing_unit",status="error"} 1.0' in text


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _Receiver.received.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Receiver.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_metrics_are_pushed_with_the_job_and_grouping_key(gateway: str) -> None:
    def ok(settings: _Settings, ctx: JobContext) -> None:
        ctx.grouping_key["dataset"] = "orders"
        ctx.gauge("unit_rows", "rows").set(7)

    assert _run(ok, ["--source", "x"], {"PUSHGATEWAY_URL": gateway}) == 0
    method, path, body = _Receiver.received[-1]
    assert (method, path) == ("PUT", "/metrics/job/file_processing_unit/dataset/orders")
    assert b"etl_unit_rows 7.0" in body


def test_unreachable_pushgateway_fails_the_run(capsys: pytest.CaptureFixture[str]) -> None:
    from tools.testing.servers import free_port

    def ok(settings: _Settings, ctx: JobContext) -> None:
        pass

    assert _run(ok, ["--source", "x", "--pushgateway", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "Pushgateway" in last_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "module",
    ["list_files", "copy_files", "move_files", "checksum", "compress", "decompress", "convert", "validate", "profile"],
)
def test_every_job_has_help(module: str) -> None:
    result = run_module(f"file_processing.jobs.{module}", "--help")
    assert result.returncode == 0, result.stderr
    assert "--conf JSON" in result.stdout
    assert "--metrics-file" in result.stdout


def test_job_module_reports_usage_errors_in_one_line(tmp_path: Path) -> None:
    result = run_module("file_processing.jobs.compress", "--source", str(tmp_path), "--level", "12")
    assert result.returncode == 2
    assert last_line(result.stderr) == (
        "python -m file_processing.jobs.compress: error: invalid flag: --level='12': "
        "Input should be less than or equal to 9"
    )
    assert "Traceback" not in result.stderr
    result = run_module("file_processing.jobs.list_files", "--conf", json.dumps({"source": str(tmp_path / "no")}))
    assert result.returncode == 1
    assert last_line(result.stderr).endswith(f"error: no such file or directory: {str(tmp_path / 'no')!r}")
