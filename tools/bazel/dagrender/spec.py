"""The DAG spec model (``packages/<pkg>/dags/<dag_id>.yaml``): field-level validation only.

Rules that need more than one field, or facts from outside the file (the file name, the package's
job modules), live in ``checks.py`` so that their errors can name an exact field path.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)

from tools.bazel.dagrender.cron import PRESETS, validate_schedule
from tools.bazel.dagrender.durations import DURATION_RE, parse_duration
from tools.bazel.dagrender.names import (
    CONFIG_KEY_RE,
    DAG_ID_RE,
    DNS1123_LABEL_RE,
    DNS1123_SUBDOMAIN_RE,
    ENV_NAME_RE,
    MODULE_RE,
    PARAM_NAME_RE,
    TASK_ID_RE,
)
from tools.bazel.dagrender.quantities import QUANTITY_RE, parse_quantity
from tools.bazel.dagrender.templating import check_template

__all__ = [
    "UNION_TAGS",
    "ConfigMapEnvFrom",
    "ConfigMapKeyRef",
    "DagSpec",
    "EnvFrom",
    "EnvValue",
    "ResourceList",
    "Resources",
    "SecretEnvFrom",
    "SecretKeyRef",
    "TaskDefaults",
    "TaskSpec",
]


def _matches(pattern: str, what: str, advice: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid {what}; {advice}")
        return value

    return AfterValidator(check)


def _number_to_str(value: Any) -> Any:
    # YAML reads `cpu: 1` as an int; a quantity is a string in Kubernetes, so accept plain numbers.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _duration(value: str) -> str:
    parse_duration(value)
    return value


def _start_date(value: Any) -> Any:
    # YAML reads an unquoted date as a date and an unquoted timestamp as a datetime; a quoted one
    # stays a string. All become a UTC datetime (a date means midnight UTC).
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value) if "T" in value else dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date; write e.g. 2026-01-01 or 2026-01-01T03:00:00Z") from None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() != dt.timedelta(0):
            raise ValueError(f"'{value.isoformat()}' is not in UTC; write the time in UTC with a 'Z' suffix")
        return value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise ValueError(f"must be a date such as 2026-01-01, got {value!r} ({type(value).__name__})")


def _param_value(value: Any) -> Any:
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, list):
        return [_param_value(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _param_value(item) for key, item in value.items()}
    raise ValueError(f"{value!r} ({type(value).__name__}) is not a JSON value; quote dates and times in YAML")


def _cpu(value: str) -> str:
    parse_quantity(value, kind="cpu")
    return value


def _memory(value: str) -> str:
    parse_quantity(value, kind="memory")
    return value


def _template(value: str) -> str:
    check_template(value)
    return value


def _unique_strings(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)
    return values


Duration = Annotated[
    str,
    AfterValidator(_duration),
    Field(
        json_schema_extra={"pattern": DURATION_RE},
        description="Compact duration: digits with units d, h, m, s in that order, e.g. '30m', '2h', '1h30m'.",
        examples=["30m", "2h", "1h30m"],
    ),
]
Template = Annotated[
    str,
    AfterValidator(_template),
    Field(
        description="A string that may use Airflow Jinja templating with the context names dag_run, params, "
        "run_id, macros, task_instance_key_str, e.g. \"{{ dag_run.conf.get('date') or params.date }}\"."
    ),
]
DagId = Annotated[
    str,
    _matches(
        DAG_ID_RE, "dag_id", "use letters, digits, '_', '.', '-' (first character not '.' or '-', no '..'), at most 250"
    ),
    Field(json_schema_extra={"pattern": DAG_ID_RE}),
]
TaskId = Annotated[
    str,
    _matches(TASK_ID_RE, "task_id", "use letters, digits, '_', '.', '-' (first character not '.' or '-'), at most 250"),
    Field(json_schema_extra={"pattern": TASK_ID_RE}),
]
Namespace = Annotated[
    str,
    _matches(
        DNS1123_LABEL_RE,
        "Kubernetes namespace",
        "use a DNS-1123 label: lowercase letters, digits and '-', alphanumeric at both ends, at most 63",
    ),
    Field(json_schema_extra={"pattern": DNS1123_LABEL_RE}, description="Kubernetes namespace of the task's pod."),
]
ServiceAccount = Annotated[
    str,
    _matches(DNS1123_SUBDOMAIN_RE, "service account name", "use lowercase letters, digits, '-' and '.'"),
    Field(json_schema_extra={"pattern": DNS1123_SUBDOMAIN_RE}),
]
EnvName = Annotated[
    str,
    _matches(ENV_NAME_RE, "environment variable name", "use letters, digits and '_', not starting with a digit"),
]
ParamName = Annotated[
    str,
    _matches(PARAM_NAME_RE, "param name", "use letters, digits and '_', not starting with a digit"),
]
CpuQuantity = Annotated[
    str,
    BeforeValidator(_number_to_str),
    AfterValidator(_cpu),
    Field(json_schema_extra={"pattern": QUANTITY_RE}, examples=["500m", "2"]),
]
MemoryQuantity = Annotated[
    str,
    BeforeValidator(_number_to_str),
    AfterValidator(_memory),
    Field(json_schema_extra={"pattern": QUANTITY_RE}, examples=["512Mi", "2Gi"]),
]
ParamValue = Annotated[
    Any,
    AfterValidator(_param_value),
    WithJsonSchema({"description": "Any JSON value: the param's default."}),
]
Schedule = Annotated[
    str,
    AfterValidator(validate_schedule),
    Field(
        description=f"A 5-field cron expression or one of {', '.join(PRESETS)}; null for manual runs only.",
        examples=["0 3 * * *", "@daily"],
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ResourceList(_Model):
    """CPU and memory quantities in Kubernetes syntax."""

    cpu: CpuQuantity | None = Field(default=None, description="CPU cores, e.g. '500m' or '2'.")
    memory: MemoryQuantity | None = Field(default=None, description="Memory bytes, e.g. '512Mi' or '2Gi'.")


class Resources(_Model):
    """Container resources; a task needs requests.cpu, requests.memory and limits.memory."""

    requests: ResourceList | None = None
    limits: ResourceList | None = None


KubeObjectName = Annotated[
    str,
    _matches(
        DNS1123_SUBDOMAIN_RE,
        "Kubernetes object name",
        "use a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', alphanumeric at both ends",
    ),
    Field(json_schema_extra={"pattern": DNS1123_SUBDOMAIN_RE}),
]
ConfigKey = Annotated[
    str,
    _matches(CONFIG_KEY_RE, "Secret or ConfigMap key", "use letters, digits, '-', '_' and '.'"),
    Field(json_schema_extra={"pattern": CONFIG_KEY_RE}, description="A key of the object's data."),
]
EnvPrefix = Annotated[
    str,
    _matches(ENV_NAME_RE, "environment variable prefix", "use letters, digits and '_', not starting with a digit"),
    Field(json_schema_extra={"pattern": ENV_NAME_RE}, description="Put before every key to make the variable name."),
]


class SecretKeyRef(_Model):
    """One key of a Kubernetes Secret of the package (valueFrom.secretKeyRef); the value never enters the DAG."""

    secret: KubeObjectName = Field(description="Secret name; must start with the package's name in DNS form and '-'.")
    key: ConfigKey
    optional: bool = Field(
        default=False, description="Start the pod without the variable when the object or the key is missing."
    )


class ConfigMapKeyRef(_Model):
    """One key of a Kubernetes ConfigMap (valueFrom.configMapKeyRef)."""

    config_map: KubeObjectName = Field(description="ConfigMap name.")
    key: ConfigKey
    optional: bool = Field(
        default=False, description="Start the pod without the variable when the object or the key is missing."
    )


class SecretEnvFrom(_Model):
    """Every key of a Kubernetes Secret of the package as a variable (envFrom.secretRef)."""

    secret: KubeObjectName = Field(description="Secret name; must start with the package's name in DNS form and '-'.")
    prefix: EnvPrefix | None = None
    optional: bool = Field(default=False, description="Start the pod when the Secret does not exist.")


class ConfigMapEnvFrom(_Model):
    """Every key of a Kubernetes ConfigMap as a variable (envFrom.configMapRef)."""

    config_map: KubeObjectName = Field(description="ConfigMap name.")
    prefix: EnvPrefix | None = None
    optional: bool = Field(default=False, description="Start the pod when the ConfigMap does not exist.")


# Tags of the env value and env_from unions. Pydantic puts a union member's tag in an error's
# location; loader.py drops these from the field path it shows. '<' cannot start a field, an env
# var or a param name, so a tag never hides a real part of the path.
_TEMPLATE_TAG: Final = "<template>"
_SECRET_TAG: Final = "<secret>"
_CONFIG_MAP_TAG: Final = "<config_map>"
UNION_TAGS: Final = frozenset({_TEMPLATE_TAG, _SECRET_TAG, _CONFIG_MAP_TAG})
ENV_VALUE_SHAPE: Final = "env_value_shape"
ENV_FROM_SHAPE: Final = "env_from_shape"


def _source_kind(value: Any) -> str | None:
    """Which object a mapping describes: by its 'secret' or 'config_map' key (not both)."""
    if isinstance(value, (SecretKeyRef, SecretEnvFrom)):
        return _SECRET_TAG
    if isinstance(value, (ConfigMapKeyRef, ConfigMapEnvFrom)):
        return _CONFIG_MAP_TAG
    if isinstance(value, dict) and ("secret" in value) != ("config_map" in value):
        return _SECRET_TAG if "secret" in value else _CONFIG_MAP_TAG
    return None


def _env_value_kind(value: Any) -> str | None:
    # A scalar goes to the template member, whose error asks to quote it in YAML.
    if value is None or isinstance(value, (str, bool, int, float)):
        return _TEMPLATE_TAG
    return _source_kind(value)


EnvValue = Annotated[
    Annotated[Template, Tag(_TEMPLATE_TAG)]
    | Annotated[SecretKeyRef, Tag(_SECRET_TAG)]
    | Annotated[ConfigMapKeyRef, Tag(_CONFIG_MAP_TAG)],
    Discriminator(
        _env_value_kind,
        custom_error_type=ENV_VALUE_SHAPE,
        custom_error_message="must be a template string, {secret: <name>, key: <key>} or {config_map: <name>, key: <key>}",
    ),
    Field(description="A string (Jinja templates allowed), or a key of a Secret or of a ConfigMap."),
]
EnvFrom = Annotated[
    Annotated[SecretEnvFrom, Tag(_SECRET_TAG)] | Annotated[ConfigMapEnvFrom, Tag(_CONFIG_MAP_TAG)],
    Discriminator(
        _source_kind,
        custom_error_type=ENV_FROM_SHAPE,
        custom_error_message="must be {secret: <name>} or {config_map: <name>}, each with optional prefix and optional",
    ),
]
_ENV_DOC: Final = (
    "Environment variables: NAME: a string (templates allowed), {secret: <name>, key: <key>} or "
    "{config_map: <name>, key: <key>}."
)
_ENV_FROM_DOC: Final = (
    "Secrets and ConfigMaps whose every key becomes a variable, after the platform ConfigMap 'etl-platform'."
)


class TaskDefaults(_Model):
    """Values every task inherits unless it sets its own (env is merged key by key, task wins; env_from is joined)."""

    namespace: Namespace | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    service_account: ServiceAccount | None = None
    retries: Annotated[int, Field(ge=0, le=100)] | None = None
    retry_delay: Duration | None = None
    execution_timeout: Duration | None = None
    resources: Resources | None = None
    env: dict[EnvName, EnvValue] = Field(default_factory=dict, description=_ENV_DOC)
    env_from: list[EnvFrom] = Field(default_factory=list, description=_ENV_FROM_DOC)


class TaskSpec(_Model):
    """One KubernetesPodOperator task running ``python3.13 -m <job>`` in the package image."""

    task_id: TaskId
    job: Annotated[
        str,
        _matches(MODULE_RE, "module name", "write a dotted module path such as 'file_processing.jobs.profile'"),
        Field(description="Module inside the package image run as `python3.13 -m <job>`."),
    ]
    arguments: list[Template] = Field(default_factory=list, description="Arguments after `-m <job>`.")
    env: dict[EnvName, EnvValue] = Field(
        default_factory=dict, description=_ENV_DOC + " Merged with defaults.env; the task's value wins."
    )
    env_from: list[EnvFrom] = Field(
        default_factory=list, description=_ENV_FROM_DOC + " Appended to defaults.env_from; duplicates dropped."
    )
    upstream: Annotated[list[TaskId], AfterValidator(_unique_strings)] = Field(
        default_factory=list, description="task_ids that must finish before this task starts."
    )
    namespace: Namespace | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        default=None, description="Default IfNotPresent (the image is pinned by digest)."
    )
    service_account: ServiceAccount | None = None
    retries: Annotated[int, Field(ge=0, le=100)] | None = Field(default=None, description="Default 1.")
    retry_delay: Duration | None = Field(default=None, description="Default '5m'.")
    execution_timeout: Duration | None = Field(default=None, description="Default: no timeout.")
    sla: Duration | None = Field(
        default=None,
        description="Deadline for the DAG run, counted from when it is queued; rendered as an Airflow "
        "DeadlineAlert named after the task. Needs the DAG's sla_callback.",
    )
    resources: Resources | None = None


class DagSpec(_Model):
    """A DAG spec: one file `dags/<dag_id>.yaml` rendered to one Airflow DAG file."""

    model_config = ConfigDict(title="DAG spec", extra="forbid", strict=True, frozen=True)

    dag_id: DagId = Field(description="Must equal the spec file's name without '.yaml'.")
    description: str = ""
    schedule: Schedule | None = Field(description="Cron, preset, or null (manual/triggered runs only).")
    start_date: Annotated[
        dt.datetime,
        BeforeValidator(_start_date),
        WithJsonSchema({"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]}),
    ] = Field(description="A date (midnight UTC) or a UTC datetime such as 2026-01-01T03:00:00Z.")
    catchup: bool = False
    tags: Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], AfterValidator(_unique_strings)] = Field(
        default_factory=list
    )
    owner: Annotated[str, Field(min_length=1)]
    params: dict[ParamName, ParamValue] = Field(
        default_factory=dict, description="DAG params with their defaults, usable as {{ params.<name> }}."
    )
    sla_callback: (
        Annotated[
            str,
            _matches(MODULE_RE, "callable path", "write a dotted path such as 'etl_alerts.deadlines.notify'"),
        ]
        | None
    ) = Field(
        default=None,
        description="Dotted path of an async callable, importable on the triggerer, called when a task's "
        "sla deadline is missed (kwargs: dag_id, task_id, sla).",
    )
    defaults: TaskDefaults = Field(default_factory=TaskDefaults)
    tasks: Annotated[list[TaskSpec], Field(min_length=1)]
