"""Settings: each one a flag that mirrors an environment variable, validated at start-up.

A flag given on the command line wins over its environment variable, which wins over the default.
Errors raise ConfigError as one line: ``invalid flag: --x='v' (X): why`` or ``required flag: ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sidecar.errors import ConfigError
from sidecar.store import parse_store_url
from tools.bazel.storecontract import StoreUrl
from tools.bazel.storecontract.names import NAME_RE

__all__ = ["FLAGS", "Settings", "build_parser", "parse_settings", "stop_grace"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    """Validated settings of one sidecar process."""

    dag_bucket: str
    store: StoreUrl
    env: str = "dev"
    dags_dir: Path = Path("/opt/airflow/dags")
    sync_interval: float = 60.0
    packages: frozenset[str] | None = None
    once: bool = False
    metrics_port: int = 9108
    metrics_host: str = "0.0.0.0"
    max_file_bytes: int = 5 * 1024 * 1024
    failure_threshold: int = 3
    grace_period: float = 300.0
    concurrency: int = 16
    retries: int = 4
    retry_backoff: float = 0.5
    timeout: float = 10.0
    quarantine_keep: int = 5
    log_level: str = "info"

    def for_log(self) -> dict[str, Any]:
        """Settings for the start-up log line (nothing here is secret; credentials are never read)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "store"}
        out["dags_dir"] = str(self.dags_dir)
        out["packages"] = sorted(self.packages) if self.packages is not None else None
        return out


def stop_grace(timeout: float) -> float:
    """The sidecar's grace period: most seconds from SIGTERM to exit with ``--timeout`` (README, "Stopping").

    Waits and retries end at once; a request in flight may still connect, then read, for ``timeout``
    each; 2 s more for the status server's shutdown (it polls every 0.5 s) and the interpreter's exit.
    """
    return 2 * timeout + 2.0


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if not value > 0:
        raise ValueError("must be greater than 0")
    return value


def _non_negative_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("must be a number of seconds") from None
    if value < 0:
        raise ValueError("must be 0 or more")
    return value


def _int_range(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if value < low or (high is not None and value > high):
            raise ValueError(f"must be between {low} and {high}" if high is not None else f"must be {low} or more")
        return value

    return parse


def _env_name(raw: str) -> str:
    if not NAME_RE.fullmatch(raw):
        raise ValueError(f"must match {NAME_RE.pattern} (e.g. dev, staging, prod)")
    return raw


def _packages(raw: str) -> frozenset[str] | None:
    names = [p.strip() for p in raw.split(",") if p.strip()]
    if not names:
        return None
    for name in names:
        if not NAME_RE.fullmatch(name):
            raise ValueError(f"package name {name!r} must match {NAME_RE.pattern}")
    return frozenset(names)


def _bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _log_level(raw: str) -> str:
    low = raw.lower()
    if low not in ("debug", "info", "warning", "error"):
        raise ValueError("must be debug, info, warning or error")
    return low


def _dag_bucket(raw: str) -> str:
    return raw  # checked by parse_store_url (the store contract's rule), which words its own message


@dataclasses.dataclass(frozen=True)
class _Flag:
    dest: str
    env: str
    default: str | None
    parse: Callable[[str], Any]
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.dest.replace("_", "-")


FLAGS: tuple[_Flag, ...] = (
    _Flag(
        "dag_bucket",
        "DAG_BUCKET",
        None,
        _dag_bucket,
        "the DAG store: s3://<bucket> or file:///<absolute dir> (required)",
    ),
    _Flag("env", "ENV", "dev", _env_name, "environment prefix in the store"),
    _Flag("dags_dir", "DAGS_DIR", "/opt/airflow/dags", str, "Airflow's dags folder, written only by this sidecar"),
    _Flag("sync_interval", "SYNC_INTERVAL", "60", _positive_float, "seconds between the starts of two sync cycles"),
    _Flag("packages", "PACKAGES", "", _packages, "comma-separated allow-list of packages (empty: all)"),
    _Flag(
        "once",
        "SYNC_ONCE",
        "false",
        _bool,
        "sync once and exit 0, or 1 if the store could not be read (init-container mode)",
    ),
    _Flag(
        "metrics_port",
        "METRICS_PORT",
        "9108",
        _int_range(0, 65535),
        "port of /healthz, /readyz and /metrics (0 disables the server)",
    ),
    _Flag("metrics_host", "METRICS_HOST", "0.0.0.0", str, "address the status server binds"),
    _Flag(
        "max_file_bytes",
        "MAX_FILE_BYTES",
        str(5 * 1024 * 1024),
        _int_range(1),
        "largest DAG file accepted; a release with a bigger one is rejected",
    ),
    _Flag(
        "failure_threshold",
        "FAILURE_THRESHOLD",
        "3",
        _int_range(1),
        "consecutive failed cycles before /healthz turns 503",
    ),
    _Flag(
        "grace_period",
        "GRACE_PERIOD",
        "300",
        _non_negative_float,
        "seconds a retired release folder stays on disk for readers still using it",
    ),
    _Flag("concurrency", "SYNC_CONCURRENCY", "16", _int_range(1, 256), "parallel downloads per package"),
    _Flag("retries", "SYNC_RETRIES", "4", _int_range(0, 20), "retries of a failed store request"),
    _Flag(
        "retry_backoff",
        "SYNC_RETRY_BACKOFF",
        "0.5",
        _non_negative_float,
        "seconds before the first retry; doubles on each retry (capped at 10 s), with jitter",
    ),
    _Flag("timeout", "SYNC_TIMEOUT", "10", _positive_float, "connect and read timeout of one store request"),
    _Flag("quarantine_keep", "QUARANTINE_KEEP", "5", _int_range(1), "rejected releases kept per package"),
    _Flag("log_level", "LOG_LEVEL", "info", _log_level, "debug, info, warning or error"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sidecar",
        description="Mirror the DAG store's <ENV>/<pkg>/ prefixes into DAGS_DIR, atomically per package. "
        "Every flag can also be set through the environment variable named in its help.",
    )
    for spec in FLAGS:
        default = f"default {spec.default!r}" if spec.default not in (None, "") else "no default"
        if spec.dest == "once":
            parser.add_argument(
                spec.flag,
                dest=spec.dest,
                action="store_const",
                const="true",
                default=None,
                help=f"{spec.help} [env {spec.env}]",
            )
            continue
        parser.add_argument(
            spec.flag, dest=spec.dest, default=None, metavar=spec.env, help=f"{spec.help} [env {spec.env}; {default}]"
        )
    return parser


def parse_settings(argv: Sequence[str] | None, environ: Mapping[str, str]) -> Settings:
    """Parse flags, fall back to environment variables and defaults, validate everything.

    argparse usage errors exit 2 through SystemExit; invalid values raise ConfigError.
    """
    ns = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    for spec in FLAGS:
        raw = getattr(ns, spec.dest)
        source = spec.flag
        if raw is None and environ.get(spec.env, "") != "":
            raw, source = environ[spec.env], spec.env
        if raw is None:
            raw = spec.default
        if raw is None:
            raise ConfigError(f"required flag: {spec.flag} (or {spec.env}): {spec.help}")
        try:
            values[spec.dest] = spec.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"invalid flag: {spec.flag}={raw!r} (from {source}): {exc}") from None
    store = parse_store_url(values["dag_bucket"])
    values["dags_dir"] = Path(values["dags_dir"]).absolute()
    return Settings(store=store, **values)
