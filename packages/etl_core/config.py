"""Settings read from the environment (pydantic-settings), validated at start-up, with flags to match.

Each package declares its settings once, as a subclass of :class:`Settings`; a field ``foo_bar``
is read from the env var ``FOO_BAR`` and can be given as the flag ``--foo-bar``::

    class SyncSettings(PlatformSettings):
        sync_interval: float = Field(60.0, gt=0, description="seconds between two syncs")

    parser = argparse.ArgumentParser()
    add_arguments(parser, SyncSettings)
    settings = from_args(SyncSettings, parser.parse_args())   # flags win over env vars

A bad or missing value raises :class:`ConfigError` with one line naming the variable (and the flag
when one was given), e.g. ``invalid setting: SYNC_INTERVAL='soon': Input should be a valid number``.
"""

from __future__ import annotations

import argparse
import contextvars
import os
import re
import typing
from collections.abc import Mapping
from typing import Any, Self

from pydantic import Field, SecretBytes, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from etl_core.errors import EtlCoreError
from etl_core.logs import REDACTED, is_secret_key, redact

__all__ = [
    "NAME_PATTERN",
    "ConfigError",
    "PlatformSettings",
    "Settings",
    "add_arguments",
    "env_name",
    "flag_name",
    "from_args",
]

# ENV and package names as in docs/store-layout.md.
NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
_NAME_RE = re.compile(NAME_PATTERN)


_environ_override: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "etl_core_settings_environ", default=None
)


class ConfigError(EtlCoreError):
    """Settings are missing or invalid; the message names each env var (and flag) at fault."""


class _MappingEnvSource(EnvSettingsSource):
    """The env-var source, reading a given mapping instead of ``os.environ``."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = dict(environ)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        out: dict[str, str | None] = {}
        for key, value in self._environ.items():
            if self.env_ignore_empty and value == "":
                continue
            name = key if self.case_sensitive else key.lower()
            out[name] = None if self.env_parse_none_str is not None and value == self.env_parse_none_str else value
        return out


class Settings(BaseSettings):
    """Base class of every package's settings: env vars named like the fields, upper-cased.

    Empty env vars count as unset, unknown env vars are ignored, and instances are immutable.
    Construct with :meth:`from_env` (or :func:`from_args`) to get :class:`ConfigError` instead
    of pydantic's multi-line ``ValidationError``.
    """

    model_config = SettingsConfigDict(
        env_prefix="",
        case_sensitive=False,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _environ_override.get()
        if environ is not None:
            env_settings = _MappingEnvSource(settings_cls, environ)
        # No .env files: the environment is the single source besides explicit values.
        return init_settings, env_settings, file_secret_settings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, /, **overrides: Any) -> Self:
        """Read settings from ``environ`` (default ``os.environ``); ``overrides`` win over it.

        Overrides whose value is ``None`` are ignored, so parsed flags can be passed as they are.
        Raises :class:`ConfigError` naming every bad or missing variable.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        token = _environ_override.set(environ)
        try:
            return cls(**given)
        except ValidationError as exc:
            raise ConfigError(_describe(cls, exc, flags=set(given))) from None
        except SettingsError as exc:  # a list/dict/model field whose env value is not JSON
            raise ConfigError(_describe_parse_error(cls, exc, environ)) from None
        finally:
            _environ_override.reset(token)

    def redacted(self) -> dict[str, Any]:
        """The settings as a JSON-able dict for a start-up log line, with secrets as ``"***"``."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr | SecretBytes):
                out[name] = REDACTED if value.get_secret_value() else ""
            else:
                out[name] = redact(self.model_dump(mode="json", include={name})[name], key=name)
        return out


def env_name(settings_cls: type[BaseSettings], field: str) -> str:
    """The env var that sets ``field`` (its string validation alias, or prefix + name, upper-cased)."""
    info = settings_cls.model_fields[field]
    alias = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
    if alias:
        return alias.upper()
    prefix = settings_cls.model_config.get("env_prefix") or ""
    return f"{prefix}{field}".upper()


def flag_name(field: str) -> str:
    """The command-line flag for ``field``: ``sync_interval`` -> ``--sync-interval``."""
    return "--" + field.replace("_", "-")


def _field_for_loc(settings_cls: type[BaseSettings], loc: tuple[Any, ...]) -> str | None:
    if not loc:
        return None
    head = str(loc[0])
    if head in settings_cls.model_fields:
        return head
    for name, info in settings_cls.model_fields.items():
        aliases = {info.alias, info.validation_alias if isinstance(info.validation_alias, str) else None}
        if head in aliases or head.lower() in {a.lower() for a in aliases if a}:
            return name
    return None


def _describe(settings_cls: type[BaseSettings], exc: ValidationError, *, flags: set[str]) -> str:
    problems: list[str] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        field = _field_for_loc(settings_cls, loc)
        msg = str(err.get("msg", "invalid value"))
        if field is None:  # a model-level validator: no single variable to blame
            problems.append(f"invalid settings for {settings_cls.__name__}: {msg}")
            continue
        var = env_name(settings_cls, field)
        sub = "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in loc[1:])
        if err.get("type") == "missing":
            problems.append(f"required setting: {var} is not set (or pass {flag_name(field)})")
            continue
        raw = err.get("input")
        shown = REDACTED if _is_secret_field(settings_cls, field) else raw
        if field in flags:
            problems.append(f"invalid flag: {flag_name(field)}{sub}={shown!r}: {msg}")
        else:
            problems.append(f"invalid setting: {var}{sub}={shown!r}: {msg}")
    return "; ".join(problems)


_PARSE_ERROR_FIELD = re.compile(r'field "([^"]+)"')


def _describe_parse_error(
    settings_cls: type[BaseSettings], exc: SettingsError, environ: Mapping[str, str] | None
) -> str:
    found = _PARSE_ERROR_FIELD.search(str(exc))
    field = found.group(1) if found else None
    if field is None or field not in settings_cls.model_fields:
        return f"invalid settings for {settings_cls.__name__}: {exc}"
    var = env_name(settings_cls, field)
    env = dict(os.environ if environ is None else environ)
    raw = next((v for k, v in env.items() if k.upper() == var), None)
    shown = REDACTED if _is_secret_field(settings_cls, field) else raw
    return f'invalid setting: {var}={shown!r}: not valid JSON (give lists and dicts as JSON, e.g. \'["a", "b"]\')'


def _is_secret_field(settings_cls: type[BaseSettings], field: str) -> bool:
    annotation = settings_cls.model_fields[field].annotation
    args = typing.get_args(annotation) or (annotation,)
    return is_secret_key(field) or any(a in (SecretStr, SecretBytes) for a in args)


def add_arguments(parser: argparse.ArgumentParser, settings_cls: type[Settings]) -> None:
    """Add one flag per field of ``settings_cls`` (``--sync-interval`` for ``sync_interval``).

    Flags default to ``None`` so that :func:`from_args` can tell "not given" from a value; the
    help text shows the env var and the default. Boolean fields get ``--x/--no-x``.
    """
    for name, info in settings_cls.model_fields.items():
        var = env_name(settings_cls, name)
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if info.is_required():
            tail = f"env {var}; required"
        elif _is_secret_field(settings_cls, name):
            tail = f"env {var}"
        else:
            tail = f"env {var}; default {default!r}"
        help_text = f"{info.description}. ({tail})" if info.description else f"({tail})"
        if info.annotation is bool:
            parser.add_argument(
                flag_name(name), dest=name, default=None, action=argparse.BooleanOptionalAction, help=help_text
            )
        else:
            parser.add_argument(flag_name(name), dest=name, default=None, metavar=var, help=help_text)


def from_args[S: "Settings"](
    settings_cls: type[S], args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> S:
    """Settings from parsed flags (given flags win) and the environment; raises :class:`ConfigError`."""
    given = {name: getattr(args, name) for name in settings_cls.model_fields if getattr(args, name, None) is not None}
    return settings_cls.from_env(environ, **given)


class PlatformSettings(Settings):
    """The platform's shared variables (ENV, PACKAGE_NAME, IMAGE_TAG, DAG_BUCKET, AWS_ENDPOINT_URL).

    Subclass it to add a package's own settings. ``dag_prefix`` is the package's key prefix in the
    DAG store, ``<ENV>/<PACKAGE_NAME>/`` (see docs/store-layout.md).
    """

    env: str = Field("dev", description="deployment environment, the first key level in the DAG store")
    package_name: str = Field(description="name of the package this process belongs to")
    image_tag: str | None = Field(None, description="human-readable image tag (DAGs always pin the digest)")
    dag_bucket: str | None = Field(None, description="DAG store: s3://<bucket>[/prefix] or file:///<dir>")
    aws_endpoint_url: str | None = Field(None, description="S3 API endpoint (e.g. a local moto server)")

    @field_validator("env", "package_name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(f"must match {NAME_PATTERN} (lower-case letters, digits, '_' or '-')")
        return value

    @field_validator("dag_bucket")
    @classmethod
    def _check_bucket(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.startswith("s3://"):
            if not value[len("s3://") :].split("/", 1)[0]:
                raise ValueError("s3:// URL has no bucket name: use s3://<bucket>")
            return value.rstrip("/")
        if value.startswith("file:///"):
            return value.rstrip("/") if value != "file:///" else value
        raise ValueError("must be s3://<bucket> or file:///<absolute dir>")

    @field_validator("aws_endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @property
    def dag_prefix(self) -> str:
        """``<env>/<package_name>/``: the only key prefix this package may write in the DAG store."""
        return f"{self.env}/{self.package_name}/"
