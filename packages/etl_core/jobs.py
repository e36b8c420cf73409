"""How every ETL job runs: flags, ``dag_run.conf``, settings, logs, metrics, exit code.

A job module declares its settings once, as a :class:`JobSettings` subclass (each field is a flag
``--foo-bar`` and an env var ``FOO_BAR``), and a ``main(settings, ctx)`` function::

    class Settings(JobSettings):
        source: str = Field(description="file or prefix to read, local or s3://")

    def main(settings: Settings, ctx: JobContext) -> None: ...

    if __name__ == "__main__":
        run_job(package="file_processing", job="checksum", settings_cls=Settings, main=main)

Values come from, strongest first: explicit flags, the ``--conf`` JSON object (Airflow passes
``{{ dag_run.conf | tojson }}``), env vars, then defaults. Exit codes: 0 success, 1 runtime failure,
2 usage error; a failure prints one line ``<prog>: error: <message>`` on stderr after its JSON log.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from etl_core import logs, metrics
from etl_core.config import ConfigError, Settings, add_arguments, flag_name
from etl_core.errors import EtlCoreError

__all__ = ["JobContext", "JobError", "JobSettings", "UsageError", "parse_settings", "run_job"]


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class JobError(Exception):
    """A job failed for a reason it can state in one line (exit code 1)."""


class UsageError(JobError):
    """Settings that cannot work together, found after parsing (exit code 2)."""


class JobSettings(Settings):
    """Settings every job has: where its metrics go and how much it logs."""

    model_config = SettingsConfigDict(populate_by_name=True)

    metrics_file: str | None = Field(
        None, description="write the run's metrics to this file (Prometheus text format, node-exporter textfile)"
    )
    pushgateway: str | None = Field(
        None,
        validation_alias="PUSHGATEWAY_URL",
        description="push the run's metrics to this Pushgateway, e.g. http://pushgateway:9091",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")


@dataclasses.dataclass
class JobContext:
    """What a job's ``main`` gets besides its settings."""

    package: str
    job: str
    registry: Any  # prometheus_client.CollectorRegistry
    log: logs.EventLogger
    run: metrics.JobRun
    grouping_key: dict[str, str] = dataclasses.field(default_factory=dict)
    _metrics: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def job_label(self) -> str:
        """``<package>_<job>``: the ``job`` label of the run's metrics and the Pushgateway group."""
        return f"{self.package}_{self.job}"

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Any:
        """The gauge ``etl_<name>`` in this run's registry (created on first use)."""
        if name not in self._metrics:
            self._metrics[name] = metrics.gauge(name, documentation, labelnames, registry=self.registry)
        return self._metrics[name]

    def noop(self) -> None:
        """Mark the run as having had nothing to do (``status="noop"`` in the job metrics)."""
        self.run.status = "noop"


def _parse_conf(text: str | None) -> dict[str, Any]:
    if text is None or not text.strip() or text.strip() in {"None", "null"}:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"invalid flag: --conf={text[:200]!r}: not JSON ({exc.msg}); pass a JSON object") from None
    if not isinstance(value, dict):
        raise ConfigError(f'invalid flag: --conf={text[:200]!r}: must be a JSON object such as {{"run_date": ...}}')
    return {str(key).replace("-", "_"): item for key, item in value.items()}


def parse_settings[S: "JobSettings"](
    settings_cls: type[S],
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    environ: Mapping[str, str] | None = None,
) -> tuple[S, list[str]]:
    """Parse flags and ``--conf`` into settings; return them and the conf keys no setting uses.

    argparse exits with code 2 on malformed flags; other bad values raise :class:`ConfigError`.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="Every flag can also be set by its env var or by a key of --conf (flags win over --conf, "
        "--conf over env vars).",
    )
    parser.add_argument(
        "--conf",
        default=None,
        metavar="JSON",
        help='dag_run.conf as a JSON object; keys are flag names with \'_\' (e.g. {"run_date": "2026-11-26"})',
    )
    add_arguments(parser, settings_cls)
    args = parser.parse_args(argv)
    conf = _parse_conf(args.conf)
    fields = settings_cls.model_fields
    explicit = {name: getattr(args, name) for name in fields if getattr(args, name, None) is not None}
    from_conf = {key: value for key, value in conf.items() if key in fields and key not in explicit}
    unknown = sorted(key for key in conf if key not in fields)
    try:
        settings = settings_cls.from_env(environ, **{**from_conf, **explicit})
    except ConfigError as exc:
        message = str(exc)
        for key in from_conf:
            message = message.replace(f"invalid flag: {flag_name(key)}", f"invalid --conf key: {key}")
        raise ConfigError(message) from None
    return settings, unknown


def _deliver_metrics(settings: JobSettings, ctx: JobContext) -> None:
    if settings.metrics_file:
        metrics.write_textfile(settings.metrics_file, ctx.registry)
    if settings.pushgateway:
        metrics.push(settings.pushgateway, job=ctx.job_label, registry=ctx.registry, grouping_key=ctx.grouping_key)


def _fail(prog: str, message: str) -> None:
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"{prog}: error: {first}", file=sys.stderr, flush=True)


def run_job[S: "JobSettings"](
    *,
    package: str,
    job: str,
    settings_cls: type[S],
    main: Callable[[S, JobContext], None],
    description: str,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    version: str = "0.1.0",
) -> int:
    """Run one job and return its exit code (0, 1 or 2); ``python -m`` callers pass it to sys.exit."""
    prog = f"python -m {package}.jobs.{job}"
    try:
        settings, unknown = parse_settings(settings_cls, argv, prog=prog, description=description, environ=environ)
        logs.configure(level=settings.log_level, service=package, job=job, version=version)
    except (ConfigError, logs.LogConfigError) as exc:
        _fail(prog, str(exc))
        return EXIT_USAGE
    log = logs.get_logger(f"{package}.jobs.{job}")
    log.info("job.start", settings=settings.redacted(), pid=os.getpid())
    if unknown:
        log.warning("job.conf_ignored", keys=unknown, hint="these dag_run.conf keys are not settings of this job")
    registry = metrics.new_registry()
    code = EXIT_OK
    failure: str | None = None
    started = time.monotonic()
    ctx: JobContext | None = None
    try:
        with metrics.track_job(f"{package}_{job}", registry=registry) as run:
            ctx = JobContext(package=package, job=job, registry=registry, log=log, run=run)
            main(settings, ctx)
    except UsageError as exc:
        code, failure = EXIT_USAGE, str(exc)
        log.error("job.usage_error", error=failure)
    except (JobError, EtlCoreError) as exc:
        code, failure = EXIT_FAILED, str(exc)
        log.error("job.failed", error=failure, error_type=type(exc).__name__)
    except Exception as exc:  # a bug or an unforeseen failure: keep the traceback in the log
        code, failure = EXIT_FAILED, f"{type(exc).__name__}: {exc}"
        log.exception("job.crashed", error_type=type(exc).__name__)
    if ctx is not None:
        try:
            _deliver_metrics(settings, ctx)
        except EtlCoreError as exc:
            log.error("job.metrics_failed", error=str(exc))
            if failure is None:
                code, failure = EXIT_FAILED, str(exc)
    log.info("job.end", exit_code=code, seconds=round(time.monotonic() - started, 3))
    if failure is not None:
        _fail(prog, failure)
    return code
