"""Rules that span fields or need outside facts; turns a ``DagSpec`` into a ``ResolvedDag``.

A resolved task has every default applied, so the renderer and the metadata writer read one
value per setting and never re-implement the inheritance rules.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection
from pathlib import PurePath
from typing import Any

from tools.bazel.dagrender.durations import parse_duration
from tools.bazel.dagrender.errors import SpecError
from tools.bazel.dagrender.loader import field_path
from tools.bazel.dagrender.names import package_dns_name, secret_prefix, service_account_belongs
from tools.bazel.dagrender.quantities import parse_quantity
from tools.bazel.dagrender.spec import (
    DagSpec,
    EnvFrom,
    EnvValue,
    ResourceList,
    Resources,
    SecretEnvFrom,
    SecretKeyRef,
    TaskDefaults,
    TaskSpec,
)

__all__ = ["ResolvedDag", "ResolvedTask", "resolve"]

DEFAULT_RETRIES = 1
DEFAULT_RETRY_DELAY = "5m"
DEFAULT_PULL_POLICY = "IfNotPresent"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResolvedTask:
    """One task with all defaults applied; durations in seconds."""

    task_id: str
    job: str
    arguments: tuple[str, ...]
    env: tuple[tuple[str, EnvValue], ...]
    env_from: tuple[EnvFrom, ...]
    upstream: tuple[str, ...]
    namespace: str
    image_pull_policy: str
    service_account: str | None
    retries: int
    retry_delay: int
    execution_timeout: int | None
    sla: str | None
    resources: dict[str, dict[str, str]]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ResolvedDag:
    """The spec plus its resolved tasks, in spec order."""

    spec: DagSpec
    tasks: tuple[ResolvedTask, ...]


def _resource_dict(resources: Resources) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for kind in ("requests", "limits"):
        block: ResourceList | None = getattr(resources, kind)
        if block is None:
            continue
        values = {name: getattr(block, name) for name in ("cpu", "memory") if getattr(block, name) is not None}
        if values:
            out[kind] = values
    return out


def _check_resources(display: str, where: str, resources: dict[str, dict[str, str]]) -> None:
    for kind, name in (("requests", "cpu"), ("requests", "memory"), ("limits", "memory")):
        if name not in resources.get(kind, {}):
            raise SpecError(
                display,
                f"{where}.resources.{kind}.{name}",
                "required: every task needs requests.cpu, requests.memory and limits.memory "
                "(set them on the task or in defaults.resources)",
            )
    for name in ("cpu", "memory"):
        request = resources.get("requests", {}).get(name)
        limit = resources.get("limits", {}).get(name)
        if request is None or limit is None:
            continue
        if parse_quantity(request, kind=name) > parse_quantity(limit, kind=name):
            raise SpecError(
                display,
                f"{where}.resources.requests.{name}",
                f"request {request!r} is more than the limit {limit!r}; raise the limit or lower the request",
            )


def _secret_names(where: str, block: TaskDefaults | TaskSpec) -> list[tuple[str, str]]:
    """(field path, Secret name) of every Secret that ``block`` (defaults or a task) names."""
    found = [
        (f"{where}.env.{name}.secret", value.secret)
        for name, value in block.env.items()
        if isinstance(value, SecretKeyRef)
    ]
    found += [
        (f"{where}.env_from[{index}].secret", source.secret)
        for index, source in enumerate(block.env_from)
        if isinstance(source, SecretEnvFrom)
    ]
    return found


def _check_secret_names(spec: DagSpec, display: str, package: str) -> None:
    """Refuse a Secret that is not the package's own (named '<package in DNS form>-...')."""
    prefix = secret_prefix(package)
    named = _secret_names("defaults", spec.defaults)
    for index, task in enumerate(spec.tasks):
        named += _secret_names(f"tasks[{index}]", task)
    for field, name in named:
        if not name.startswith(prefix):
            raise SpecError(
                display,
                field,
                f"Secret {name!r} does not belong to package {package!r}: a package may use only Secrets "
                f"whose names start with its name in DNS form and '-', here {prefix!r} (any pod in the "
                "namespace may read any Secret there, so names tie Secrets to packages); use a Secret named "
                f"with that prefix, e.g. {prefix + name!r}",
            )


def _check_service_accounts(spec: DagSpec, display: str, package: str) -> None:
    """Refuse a service account that is not the package's own (its DNS name, or that plus '-...')."""
    named = [("defaults.service_account", spec.defaults.service_account)]
    named += [(f"tasks[{index}].service_account", task.service_account) for index, task in enumerate(spec.tasks)]
    own = package_dns_name(package)
    for field, name in named:
        if name is not None and not service_account_belongs(name, package):
            raise SpecError(
                display,
                field,
                f"service account {name!r} does not belong to package {package!r}: a package's pods run only "
                f"as the account named after it in DNS form, {own!r}, or one starting with {own + '-'!r} "
                "(the account carries the package's cloud role; the cluster's admission policy refuses "
                f"any other pairing of image and account); use {own!r}",
            )


def _non_finite(value: Any, loc: tuple[int | str, ...]) -> tuple[tuple[int | str, ...], float] | None:
    """(location, number) of the first NaN or infinity inside a param value, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return loc, value
    items: list[tuple[int | str, Any]] = []
    if isinstance(value, list):
        items = list(enumerate(value))
    elif isinstance(value, dict):
        items = list(value.items())
    for key, item in items:
        hit = _non_finite(item, (*loc, key))
        if hit is not None:
            return hit
    return None


def _check_params_finite(spec: DagSpec, display: str) -> None:
    """Refuse .nan, .inf and -.inf anywhere in params: JSON has no such numbers, and the DAG file
    would have to spell them as names (``nan``) that fail at import."""
    for name, value in spec.params.items():
        hit = _non_finite(value, ("params", name))
        if hit is not None:
            loc, number = hit
            spelled = ".nan" if math.isnan(number) else (".inf" if number > 0 else "-.inf")
            raise SpecError(
                display,
                field_path(loc),
                f"{spelled} is not a finite number; params are JSON values and JSON has no NaN or "
                "infinity: use null, a finite number or a string",
            )


def _find_cycle(tasks: list[TaskSpec]) -> list[str] | None:
    """Return one dependency cycle as task ids (first repeated at the end), or None."""
    upstream = {task.task_id: list(task.upstream) for task in tasks}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for parent in upstream[node]:
            if state.get(parent) == 1:
                return [*path[path.index(parent) :], parent]
            if parent not in state:
                found = visit(parent)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for task in tasks:
        if task.task_id not in state:
            found = visit(task.task_id)
            if found:
                return found
    return None


def _resolve_task(spec: DagSpec, index: int, task: TaskSpec, display: str) -> ResolvedTask:
    where = f"tasks[{index}]"
    defaults = spec.defaults
    namespace = task.namespace or defaults.namespace
    if namespace is None:
        raise SpecError(display, f"{where}.namespace", "required: set it on the task or in defaults.namespace")
    resources_spec = task.resources or defaults.resources
    resources = _resource_dict(resources_spec) if resources_spec is not None else {}
    _check_resources(display, where, resources)
    if task.sla is not None and spec.sla_callback is None:
        raise SpecError(
            display,
            "sla_callback",
            f"required because task {task.task_id!r} sets sla; give the dotted path of the async "
            "callable the triggerer calls when the deadline is missed",
        )
    retries = task.retries if task.retries is not None else defaults.retries
    retry_delay = task.retry_delay or defaults.retry_delay or DEFAULT_RETRY_DELAY
    timeout = task.execution_timeout or defaults.execution_timeout
    env = {**defaults.env, **task.env}
    # Kubernetes reads envFrom in order (a later source wins a shared key); a repeat adds nothing.
    env_from = tuple(dict.fromkeys([*defaults.env_from, *task.env_from]))
    return ResolvedTask(
        task_id=task.task_id,
        job=task.job,
        arguments=tuple(task.arguments),
        env=tuple(env.items()),
        env_from=env_from,
        upstream=tuple(task.upstream),
        namespace=namespace,
        image_pull_policy=task.image_pull_policy or defaults.image_pull_policy or DEFAULT_PULL_POLICY,
        service_account=task.service_account or defaults.service_account,
        retries=retries if retries is not None else DEFAULT_RETRIES,
        retry_delay=parse_duration(retry_delay),
        execution_timeout=parse_duration(timeout) if timeout else None,
        sla=task.sla,
        resources=resources,
    )


def resolve(
    spec: DagSpec,
    *,
    spec_path: str,
    package: str,
    entrypoints: Collection[str] | None,
) -> ResolvedDag:
    """Check the cross-field rules and apply defaults; ``entrypoints=None`` skips the job check.

    ``spec_path`` is the path shown in errors; its file name must be ``<dag_id>.yaml``.
    ``package`` is the package that owns the spec (e.g. ``file_processing``): the spec may use
    only its Secrets.
    """
    display = spec_path
    stem = PurePath(spec_path).name.removesuffix(".yaml").removesuffix(".yml")
    if spec.dag_id != stem:
        raise SpecError(
            display,
            "dag_id",
            f"{spec.dag_id!r} must equal the file name {stem!r}; rename the file to "
            f"{spec.dag_id}.yaml or set dag_id: {stem}",
        )
    seen: dict[str, int] = {}
    for index, task in enumerate(spec.tasks):
        if task.task_id in seen:
            raise SpecError(
                display,
                f"tasks[{index}].task_id",
                f"duplicate task_id {task.task_id!r} (also tasks[{seen[task.task_id]}]); task ids must be unique",
            )
        seen[task.task_id] = index
    _check_secret_names(spec, display, package)
    _check_service_accounts(spec, display, package)
    _check_params_finite(spec, display)
    for index, task in enumerate(spec.tasks):
        for position, parent in enumerate(task.upstream):
            if parent not in seen:
                known = ", ".join(sorted(seen))
                raise SpecError(
                    display,
                    f"tasks[{index}].upstream[{position}]",
                    f"task {task.task_id!r} depends on unknown task {parent!r} (tasks: {known})",
                )
            if parent == task.task_id:
                raise SpecError(
                    display, f"tasks[{index}].upstream[{position}]", f"task {task.task_id!r} depends on itself"
                )
    cycle = _find_cycle(list(spec.tasks))
    if cycle is not None:
        first = seen[cycle[0]]
        raise SpecError(
            display,
            f"tasks[{first}].upstream",
            "dependency cycle " + " -> ".join(repr(node) for node in reversed(cycle)) + "; remove one of these edges",
        )
    if entrypoints is not None:
        available = set(entrypoints)
        for index, task in enumerate(spec.tasks):
            if task.job not in available:
                listing = ", ".join(sorted(available)) or "none"
                raise SpecError(
                    display,
                    f"tasks[{index}].job",
                    f"{task.job!r} is not a module of this package (modules: {listing}); "
                    "add the module to the package or fix the name",
                )
    tasks = tuple(_resolve_task(spec, index, task, display) for index, task in enumerate(spec.tasks))
    return ResolvedDag(spec=spec, tasks=tasks)
