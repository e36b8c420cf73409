"""Flags mirror environment variables; bad values fail fast with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.errors import ConfigError
from sidecar.settings import FLAGS, parse_settings
from sidecar.store import parse_store_url


def test_defaults() -> None:
    s = parse_settings(["--dag-bucket", "s3://my-dags"], {})
    assert (s.env, s.dags_dir, s.sync_interval, s.packages, s.once) == (
        "dev",
        Path("/opt/airflow/dags"),
        60.0,
        None,
        False,
    )
    assert (s.store.scheme, s.store.bucket) == ("s3", "my-dags")
    assert s.store.address("dev/x/metadata.json") == "s3://my-dags/dev/x/metadata.json"
    assert s.metrics_port == 9108 and s.failure_threshold == 3 and s.grace_period == 300.0


def test_environment_variables_and_flag_precedence() -> None:
    environ = {
        "DAG_BUCKET": "s3://my-dags/",
        "ENV": "prod",
        "DAGS_DIR": "/data/dags",
        "SYNC_INTERVAL": "15",
        "PACKAGES": "file_processing, observability",
        "SYNC_ONCE": "true",
        "METRICS_PORT": "0",
        "MAX_FILE_BYTES": "1000",
        "FAILURE_THRESHOLD": "5",
        "GRACE_PERIOD": "0",
    }
    s = parse_settings([], environ)
    assert str(s.store) == "s3://my-dags"
    assert s.store.address("prod/x/metadata.json") == "s3://my-dags/prod/x/metadata.json"
    assert (s.env, s.dags_dir, s.sync_interval, s.once, s.metrics_port) == ("prod", Path("/data/dags"), 15.0, True, 0)
    assert s.packages == frozenset({"file_processing", "observability"})
    assert (s.max_file_bytes, s.failure_threshold, s.grace_period) == (1000, 5, 0.0)
    s = parse_settings(["--sync-interval", "2.5", "--env", "dev"], environ)  # a flag wins over its env var
    assert (s.sync_interval, s.env) == (2.5, "dev")


def test_every_flag_has_an_env_var_and_help() -> None:
    assert len({f.env for f in FLAGS}) == len(FLAGS)
    assert all(f.help for f in FLAGS)
    assert {"DAG_BUCKET", "ENV", "DAGS_DIR", "SYNC_INTERVAL", "PACKAGES", "METRICS_PORT"} <= {f.env for f in FLAGS}


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        ([], {}, r"^required flag: --dag-bucket \(or DAG_BUCKET\)"),
        (["--dag-bucket", "s3://b"], {}, r"^invalid flag: --dag-bucket='s3://b': 'b' is not a valid S3 bucket name$"),
        (
            ["--dag-bucket", "gs://x"],
            {},
            r"^invalid flag: --dag-bucket='gs://x': must be s3://<bucket> or file:///<absolute dir>$",
        ),
        (["--dag-bucket", "file://rel/dir"], {}, r"a local store must be an absolute path, file:///<dir>$"),
        (
            [],
            {"DAG_BUCKET": "s3://my-dags/platform/airflow"},
            r"^invalid flag: --dag-bucket='s3://my-dags/platform/airflow': give the bucket only \(s3://<bucket>\): "
            r"keys start with <ENV>/ at the bucket's root$",
        ),
        (
            ["--dag-bucket", "s3://ok-bucket", "--sync-interval", "abc"],
            {},
            r"^invalid flag: --sync-interval='abc' \(from --sync-interval\): must be a number of seconds$",
        ),
        (
            ["--dag-bucket", "s3://ok-bucket"],
            {"SYNC_INTERVAL": "0"},
            r"^invalid flag: --sync-interval='0' \(from SYNC_INTERVAL\): must be greater than 0$",
        ),
        (["--dag-bucket", "s3://ok-bucket", "--env", "Prod"], {}, r"^invalid flag: --env='Prod'"),
        (["--dag-bucket", "s3://ok-bucket", "--packages", "ok,Bad"], {}, r"package name 'Bad' must match"),
        (["--dag-bucket", "s3://ok-bucket", "--metrics-port", "70000"], {}, r"must be between 0 and 65535"),
        (["--dag-bucket", "s3://ok-bucket"], {"SYNC_ONCE": "maybe"}, r"--once='maybe' \(from SYNC_ONCE\)"),
    ],
)
def test_invalid_settings(argv: list[str], environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(argv, environ)


def test_store_urls() -> None:
    loc = parse_store_url("file:///srv/dag-store/")
    assert (loc.scheme, loc.path) == ("file", "/srv/dag-store")
    assert loc.address("dev/p/metadata.json") == "file:///srv/dag-store/dev/p/metadata.json"
    assert str(parse_store_url("s3://bkt/")) == "s3://bkt"
    # one rule for every program (storecontract.parse_dag_bucket): no key prefix inside the bucket
    with pytest.raises(ConfigError, match=r"'s3://bkt/a//b': give the bucket only \(s3://<bucket>\)"):
        parse_store_url("s3://bkt/a//b")
    with pytest.raises(ConfigError, match=r"'s3://bkt/root': give the bucket only \(s3://<bucket>\)"):
        parse_store_url("s3://bkt/root")
    with pytest.raises(ConfigError, match=r"'s3://bucket\\n': contains control characters"):
        parse_store_url("s3://bucket\n")
