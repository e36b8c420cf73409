"""Render one resolved DAG spec to the Airflow DAG file (a jinja2 template, byte-stable output)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from tools.bazel.dagrender.checks import ResolvedDag
from tools.bazel.dagrender.durations import parse_duration
from tools.bazel.dagrender.errors import InputFileError
from tools.bazel.dagrender.image import ImageRef
from tools.bazel.dagrender.names import label_value
from tools.bazel.dagrender.pyliteral import py_literal
from tools.bazel.dagrender.spec import (
    ConfigMapEnvFrom,
    ConfigMapKeyRef,
    EnvFrom,
    EnvValue,
    SecretEnvFrom,
    SecretKeyRef,
)

__all__ = ["LABEL_PREFIX", "PLATFORM_CONFIG_MAP", "RUN_AS_USER", "render_dag"]

LABEL_PREFIX = "etl.platform"
RUN_AS_USER = 65532
# The platform ConfigMap, first in every task pod's envFrom and required: the cluster's endpoints
# (PUSHGATEWAY_URL, AIRFLOW_URL, SIDECAR_URL, and where needed AWS_ENDPOINT_URL, AWS_REGION), so
# that no spec hard-codes them. The cluster provides it in each task namespace.
PLATFORM_CONFIG_MAP = "etl-platform"
_TEMPLATE = Path(__file__).parent / "templates" / "dag.py.jinja"
# PEP 263: a comment on line 1 or 2 matching this sets the file's encoding (the tokenizer's rule).
_CODING_DECLARATION = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)", re.ASCII)


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["py"] = py_literal
    return env.from_string(_TEMPLATE.read_text(encoding="utf-8"))


def _env_var(name: str, value: EnvValue) -> str:
    """Python source of one ``k8s.V1EnvVar``: a plain (templatable) value or a Secret/ConfigMap key."""
    if isinstance(value, str):
        return f"k8s.V1EnvVar(name={py_literal(name)}, value={py_literal(value)})"
    optional = ", optional=True" if value.optional else ""
    if isinstance(value, SecretKeyRef):
        ref = (
            f"secret_key_ref=k8s.V1SecretKeySelector(name={py_literal(value.secret)}, "
            f"key={py_literal(value.key)}{optional})"
        )
    elif isinstance(value, ConfigMapKeyRef):
        ref = (
            f"config_map_key_ref=k8s.V1ConfigMapKeySelector(name={py_literal(value.config_map)}, "
            f"key={py_literal(value.key)}{optional})"
        )
    else:  # pragma: no cover - the spec model admits no other kind
        raise TypeError(f"unknown env value {value!r}")
    return f"k8s.V1EnvVar(name={py_literal(name)}, value_from=k8s.V1EnvVarSource({ref}))"


def _env_from(source: EnvFrom) -> str:
    """Python source of one ``k8s.V1EnvFromSource``."""
    optional = ", optional=True" if source.optional else ""
    prefix = f", prefix={py_literal(source.prefix)}" if source.prefix is not None else ""
    if isinstance(source, SecretEnvFrom):
        ref = f"secret_ref=k8s.V1SecretEnvSource(name={py_literal(source.secret)}{optional})"
    elif isinstance(source, ConfigMapEnvFrom):
        ref = f"config_map_ref=k8s.V1ConfigMapEnvSource(name={py_literal(source.config_map)}{optional})"
    else:  # pragma: no cover - the spec model admits no other kind
        raise TypeError(f"unknown env_from source {source!r}")
    return f"k8s.V1EnvFromSource({ref}{prefix})"


def _task_env_from(sources: tuple[EnvFrom, ...]) -> list[str]:
    """The platform ConfigMap first, then the spec's sources (a repeat of the platform one dropped)."""
    platform = ConfigMapEnvFrom(config_map=PLATFORM_CONFIG_MAP)
    return [_env_from(platform)] + [_env_from(source) for source in sources if source != platform]


def _single_line(what: str, value: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise InputFileError(f"{what} {value!r} must be a single line")
    return value


def render_dag(resolved: ResolvedDag, *, image: ImageRef, spec_path: str, target: str) -> str:
    """Return the DAG file's text; the same inputs always give the same bytes."""
    spec = resolved.spec
    labels = [
        ("app.kubernetes.io/name", image.package),
        ("app.kubernetes.io/managed-by", "airflow"),
        (f"{LABEL_PREFIX}/package", image.package),
        (f"{LABEL_PREFIX}/dag-id", label_value(spec.dag_id)),
        (f"{LABEL_PREFIX}/image-digest", image.short_digest),
    ]
    annotations = [
        (f"{LABEL_PREFIX}/package", image.package),
        (f"{LABEL_PREFIX}/dag-id", spec.dag_id),
        (f"{LABEL_PREFIX}/image", image.reference),
        (f"{LABEL_PREFIX}/image-digest", image.digest),
        (f"{LABEL_PREFIX}/spec", spec_path),
        (f"{LABEL_PREFIX}/target", target),
    ]
    tasks: list[dict[str, Any]] = []
    deadlines: list[dict[str, Any]] = []
    edges: list[str] = []
    for task in resolved.tasks:
        tasks.append(
            {
                "task_id": task.task_id,
                "job": task.job,
                "arguments": list(task.arguments),
                "env": [_env_var(name, value) for name, value in task.env],
                "env_from": _task_env_from(task.env_from),
                "namespace": task.namespace,
                "service_account": task.service_account,
                "image_pull_policy": task.image_pull_policy,
                "resources": [
                    (kind, task.resources[kind]) for kind in ("requests", "limits") if kind in task.resources
                ],
                "retries": task.retries,
                "retry_delay": task.retry_delay,
                "execution_timeout": task.execution_timeout,
            }
        )
        if task.sla is not None:
            deadlines.append(
                {
                    "name": f"{task.task_id} sla",
                    "seconds": parse_duration(task.sla),
                    "callback": spec.sla_callback,
                    "kwargs": {"dag_id": spec.dag_id, "task_id": task.task_id, "sla": task.sla},
                }
            )
        if task.upstream:
            # Tasks live in the dict `tasks`, keyed by task_id: a task_id never becomes a Python
            # name, so `dict`, `DAG` or `k8s` cannot shadow what the file itself uses.
            parents = [f"tasks[{py_literal(parent)}]" for parent in task.upstream]
            left = parents[0] if len(parents) == 1 else "[" + ", ".join(parents) + "]"
            edges.append(f"{left} >> tasks[{py_literal(task.task_id)}]")
    start = spec.start_date
    start_date = (
        f"datetime({start.year}, {start.month}, {start.day}, tzinfo=UTC)"
        if (start.hour, start.minute, start.second, start.microsecond) == (0, 0, 0, 0)
        else f"datetime({start.year}, {start.month}, {start.day}, {start.hour}, {start.minute}, "
        f"{start.second}, {start.microsecond}, tzinfo=UTC)"
    )
    text = _template().render(
        spec_path=_single_line("spec path", spec_path),
        target=_single_line("target", target),
        image=image.reference,
        labels=labels,
        annotations=annotations,
        uid=RUN_AS_USER,
        dag={
            "dag_id": spec.dag_id,
            "description": spec.description,
            "schedule": spec.schedule,
            "catchup": spec.catchup,
            "tags": list(spec.tags),
            "owner": spec.owner,
            "params": dict(spec.params),
        },
        start_date=start_date,
        deadlines=deadlines,
        tasks=tasks,
        edges=edges,
    )
    # The template keeps spec and target off lines 1-2; checked on every render so that an edit of
    # the template cannot bring back a file that Python reads with another encoding, or cannot read.
    for number, line in enumerate(text.splitlines()[:2], start=1):
        if _CODING_DECLARATION.match(line):
            raise InputFileError(f"rendered line {number} {line!r} reads as a PEP 263 coding declaration")
    return text
