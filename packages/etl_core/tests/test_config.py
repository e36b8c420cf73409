"""Settings from env vars and flags: defaults, validation errors that name the variable, secrets."""

from __future__ import annotations

import argparse

import pytest
from pydantic import Field, SecretStr, ValidationError

from etl_core.config import (
    ConfigError,
    PlatformSettings,
    Settings,
    add_arguments,
    env_name,
    flag_name,
    from_args,
)


class SyncSettings(PlatformSettings):
    """A service's own settings on top of the platform's."""

    sync_interval: float = Field(60.0, gt=0, description="seconds between two syncs")
    once: bool = Field(False, description="sync once and exit")
    api_token: SecretStr | None = Field(None, description="token for the registry")


class PrefixedSettings(Settings):
    model_config = Settings.model_config | {"env_prefix": "PUBLISH_"}

    dry_run: bool = False
    parallelism: int = Field(4, ge=1)


def test_platform_defaults_and_the_package_prefix() -> None:
    s = PlatformSettings.from_env({"PACKAGE_NAME": "file_processing"})
    assert s.env == "dev"
    assert s.package_name == "file_processing"
    assert s.image_tag is None and s.dag_bucket is None
    assert s.dag_prefix == "dev/file_processing/"


def test_all_platform_variables_are_read() -> None:
    s = PlatformSettings.from_env(
        {
            "ENV": "prod",
            "PACKAGE_NAME": "data_pipeline",
            "IMAGE_TAG": "v1.2.3",
            "DAG_BUCKET": "s3://etl-dags/",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:5000",
            "UNRELATED": "ignored",
        }
    )
    assert (s.env, s.image_tag, s.dag_bucket) == ("prod", "v1.2.3", "s3://etl-dags")
    assert s.aws_endpoint_url == "http://127.0.0.1:5000"
    assert s.dag_prefix == "prod/data_pipeline/"


def test_names_are_case_insensitive_and_empty_means_unset() -> None:
    s = PlatformSettings.from_env({"package_name": "obs", "ENV": "", "IMAGE_TAG": ""})
    assert (s.package_name, s.env, s.image_tag) == ("obs", "dev", None)


def test_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENV", "staging")
    monkeypatch.setenv("PACKAGE_NAME", "observability")
    monkeypatch.setenv("DAG_BUCKET", "file:///srv/dags")
    s = PlatformSettings.from_env()
    assert (s.env, s.package_name, s.dag_bucket) == ("staging", "observability", "file:///srv/dags")


def test_a_given_mapping_ignores_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PACKAGE_NAME", "from_process")
    s = PlatformSettings.from_env({"PACKAGE_NAME": "from_mapping"})
    assert s.package_name == "from_mapping"
    with pytest.raises(ConfigError, match="required setting: PACKAGE_NAME is not set"):
        PlatformSettings.from_env({})


def test_missing_required_variable_is_named_with_its_flag() -> None:
    with pytest.raises(ConfigError, match=r"^required setting: PACKAGE_NAME is not set \(or pass --package-name\)$"):
        PlatformSettings.from_env({"ENV": "dev"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ENV": "Prod!"}, r"^invalid setting: ENV='Prod!': Value error, must match \^\[a-z\]"),
        ({"DAG_BUCKET": "ftp://x"}, r"^invalid setting: DAG_BUCKET='ftp://x': .*must be s3://<bucket> or file:///"),
        ({"DAG_BUCKET": "s3://"}, r"^invalid setting: DAG_BUCKET='s3://': .*has no bucket name"),
        ({"AWS_ENDPOINT_URL": "localhost:5000"}, r"^invalid setting: AWS_ENDPOINT_URL='localhost:5000': .*http://"),
    ],
)
def test_invalid_values_are_quoted_with_their_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PlatformSettings.from_env({"PACKAGE_NAME": "pkg", **env})


def test_every_problem_is_reported_on_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        SyncSettings.from_env({"ENV": "BAD", "SYNC_INTERVAL": "soon"})
    text = str(info.value)
    assert "\n" not in text
    assert text.split("; ") == [
        (
            "invalid setting: ENV='BAD': Value error, must match ^[a-z][a-z0-9_-]{0,62}$ "
            "(lower-case letters, digits, '_' or '-')"
        ),
        "required setting: PACKAGE_NAME is not set (or pass --package-name)",
        "invalid setting: SYNC_INTERVAL='soon': Input should be a valid number, unable to parse string as a number",
    ]
    assert info.value.__cause__ is None  # no pydantic traceback chained for CLIs to print


def test_overrides_win_over_the_environment_and_none_means_not_given() -> None:
    env = {"PACKAGE_NAME": "pkg", "SYNC_INTERVAL": "30"}
    s = SyncSettings.from_env(env, sync_interval=5, image_tag=None)
    assert s.sync_interval == 5.0
    assert SyncSettings.from_env(env).sync_interval == 30.0


def test_invalid_override_is_reported_as_a_flag() -> None:
    with pytest.raises(ConfigError, match=r"^invalid flag: --sync-interval=-1: Input should be greater than 0$"):
        SyncSettings.from_env({"PACKAGE_NAME": "pkg"}, sync_interval=-1)


def test_flags_mirror_env_vars_and_win_over_them() -> None:
    parser = argparse.ArgumentParser(prog="sidecar")
    add_arguments(parser, SyncSettings)
    env = {"PACKAGE_NAME": "pkg", "SYNC_INTERVAL": "30", "ENV": "prod"}

    args = parser.parse_args(["--sync-interval", "2.5", "--once"])
    s = from_args(SyncSettings, args, env)
    assert (s.sync_interval, s.once, s.env) == (2.5, True, "prod")

    s = from_args(SyncSettings, parser.parse_args([]), env)
    assert (s.sync_interval, s.once) == (30.0, False)

    s = from_args(SyncSettings, parser.parse_args(["--no-once"]), {**env, "ONCE": "true"})
    assert s.once is False

    with pytest.raises(ConfigError, match=r"invalid flag: --sync-interval='never'"):
        from_args(SyncSettings, parser.parse_args(["--sync-interval", "never"]), env)


def test_flag_help_names_the_env_var_and_default() -> None:
    parser = argparse.ArgumentParser(prog="sidecar")
    add_arguments(parser, SyncSettings)
    help_text = " ".join(parser.format_help().split())
    assert "--sync-interval SYNC_INTERVAL seconds between two syncs. (env SYNC_INTERVAL; default 60.0)" in help_text
    assert "--package-name PACKAGE_NAME name of the package this process belongs to. (env PACKAGE_NAME; required)" in (
        help_text
    )
    assert "--once, --no-once sync once and exit. (env ONCE; default False)" in help_text
    assert "(env API_TOKEN)" in help_text


def test_env_prefix_is_part_of_every_name() -> None:
    assert env_name(PrefixedSettings, "dry_run") == "PUBLISH_DRY_RUN"
    assert flag_name("dry_run") == "--dry-run"
    s = PrefixedSettings.from_env({"PUBLISH_DRY_RUN": "1", "DRY_RUN": "0"})
    assert s.dry_run is True
    with pytest.raises(ConfigError, match=r"^invalid setting: PUBLISH_PARALLELISM='0': Input should be greater"):
        PrefixedSettings.from_env({"PUBLISH_PARALLELISM": "0"})


def test_secrets_are_hidden_in_dumps_and_errors() -> None:
    s = SyncSettings.from_env({"PACKAGE_NAME": "pkg", "API_TOKEN": "tok-123"})
    assert s.api_token is not None and s.api_token.get_secret_value() == "tok-123"
    dumped = s.redacted()
    assert dumped["api_token"] == "***"
    assert dumped["package_name"] == "pkg"
    assert dumped["sync_interval"] == 60.0
    assert "tok-123" not in repr(s)

    class Strict(Settings):
        db_password: SecretStr = Field(min_length=8)

    with pytest.raises(ConfigError) as info:
        Strict.from_env({"DB_PASSWORD": "short"})
    assert "short" not in str(info.value)
    assert str(info.value).startswith("invalid setting: DB_PASSWORD='***': ")


def test_settings_are_immutable() -> None:
    s = PlatformSettings.from_env({"PACKAGE_NAME": "pkg"})
    with pytest.raises(ValidationError, match="frozen"):
        s.env = "prod"  # type: ignore[misc]


def test_list_fields_take_json_and_bad_json_names_the_variable() -> None:
    class Tagged(Settings):
        tags: list[str] = Field(default_factory=list)

    assert Tagged.from_env({"TAGS": '["etl", "daily"]'}).tags == ["etl", "daily"]
    with pytest.raises(ConfigError, match=r"""^invalid setting: TAGS='etl,daily': not valid JSON \(give lists"""):
        Tagged.from_env({"TAGS": "etl,daily"})
