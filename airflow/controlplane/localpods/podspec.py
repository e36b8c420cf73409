"""Turn the Kubernetes pod that KubernetesPodOperator builds into one ``podman run`` command line.

The input is the pod in its API form (``ApiClient().sanitize_for_serialization(V1Pod)``: camelCase
keys, what the operator would POST to the API server). Every field the local runtime honours is
mapped to the podman flag with the same effect; a field it cannot honour is refused with its path
(``spec.containers[0].volumeMounts[1]``), never silently dropped. What is mapped, and what podman
cannot enforce, is listed in docs/airflow/local-pod-runtime.md.

Kubernetes rules kept here: ``command`` replaces the image's ENTRYPOINT and ``args`` its CMD;
``env`` wins over ``envFrom``; ``$(VAR)`` in env values, command and args expands to an earlier
variable (``$$(VAR)`` stays literal); container securityContext fields win over the pod's;
requests.cpu becomes CPU shares (1024 per core) and limits.cpu a CFS quota, as the kubelet does.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

__all__ = ["Cluster", "PodmanRun", "UnsupportedPod", "pod_to_podman"]


class UnsupportedPod(ValueError):
    """The pod uses a field the local runtime cannot honour, or references a missing object."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cluster:
    """What a cluster provides to pods, as the local runtime knows it.

    ``config_maps`` and ``secrets`` are keyed ``<namespace>/<name>``. A secret maps each of its
    keys to the name of a podman secret holding the value, so values never appear on a command
    line or in ``podman inspect``. ``injected_secret_env`` is set in every pod (the local stand-in
    for what a cluster's admission webhooks add, e.g. IRSA's AWS credentials): env name -> podman
    secret name.
    """

    config_maps: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    injected_secret_env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    network: str = "host"
    node_name: str = "local"
    pod_ip: str = "127.0.0.1"


@dataclasses.dataclass(frozen=True, kw_only=True)
class PodmanRun:
    """One container, ready to run: ``podman run <args>``; ``empty_dirs`` are created first."""

    name: str
    namespace: str
    image: str
    args: tuple[str, ...]  # everything after `podman run`
    empty_dirs: tuple[str, ...]  # names of emptyDir volumes to create (mount sources are placeholders)
    summary: Mapping[str, Any]  # what was enforced, for the task log

    def argv(self, podman: Sequence[str], empty_dir_paths: Mapping[str, str]) -> list[str]:
        """The full command, with each emptyDir placeholder replaced by its host folder."""
        out = [*podman, "run"]
        for arg in self.args:
            for volume, path in empty_dir_paths.items():
                arg = arg.replace(_placeholder(volume), path)
            out.append(arg)
        return out


# Fields with no local meaning: scheduling and placement (one node), identity handled elsewhere.
_IGNORED_SPEC = {
    "affinity",
    "tolerations",
    "nodeSelector",
    "priorityClassName",
    "schedulerName",
    "restartPolicy",
    "serviceAccountName",
    "serviceAccount",
    "automountServiceAccountToken",
    "imagePullSecrets",
    "terminationGracePeriodSeconds",
    "dnsPolicy",
    "enableServiceLinks",
    "preemptionPolicy",
    "priority",
    "topologySpreadConstraints",
    "nodeName",
}
_HANDLED_SPEC = {
    "containers",
    "securityContext",
    "volumes",
    "hostAliases",
    "hostname",
    "subdomain",
    "activeDeadlineSeconds",
    "initContainers",
    "hostNetwork",
}
_HANDLED_CONTAINER = {
    "name",
    "image",
    "command",
    "args",
    "env",
    "envFrom",
    "resources",
    "securityContext",
    "volumeMounts",
    "imagePullPolicy",
    "workingDir",
    "terminationMessagePolicy",
    "terminationMessagePath",
    "ports",
}
_POD_SECURITY = {
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "supplementalGroups",
    "seccompProfile",
    "fsGroupChangePolicy",
}
_CONTAINER_SECURITY = {
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "privileged",
    "capabilities",
    "seccompProfile",
}
_PULL = {"Always": "always", "IfNotPresent": "missing", "Never": "never"}
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*\Z")


def _placeholder(volume: str) -> str:
    return f"@emptyDir:{volume}@"


def _default_pull(image: str) -> str:
    """Kubernetes' default: Always for an untagged or ``:latest`` image, else IfNotPresent."""
    if "@" in image:
        return "IfNotPresent"
    tag = image.rpartition("/")[2].partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _set(value: Any) -> bool:
    return value not in (None, [], {}, "")


def _refuse_unknown(obj: Mapping[str, Any], allowed: set[str], where: str, what: str) -> None:
    for key, value in obj.items():
        if key not in allowed and _set(value):
            raise UnsupportedPod(f"{where}.{key}: {what} field {key!r} is not supported by the local pod runtime")


def _cpu(value: str, where: str) -> Decimal:
    text = str(value)
    try:
        return Decimal(text[:-1]) / 1000 if text.endswith("m") else Decimal(text)
    except ArithmeticError:
        raise UnsupportedPod(f"{where}: {value!r} is not a CPU quantity") from None


_MEMORY_SUFFIX = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}


def _bytes(value: str, where: str) -> int:
    text = str(value)
    match = re.fullmatch(r"([0-9.]+(?:e[0-9]+)?)([A-Za-z]{0,2})", text)
    if not match or (match.group(2) and match.group(2) not in _MEMORY_SUFFIX):
        raise UnsupportedPod(f"{where}: {value!r} is not a memory quantity")
    try:
        number = Decimal(match.group(1))
    except ArithmeticError:
        raise UnsupportedPod(f"{where}: {value!r} is not a memory quantity") from None
    return int(number * _MEMORY_SUFFIX.get(match.group(2), 1))


def _expand(text: str, env: Mapping[str, str | None]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: defined variables expand, others stay as written."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        if name in env:
            value = env[name]
            if value is None:
                raise UnsupportedPod(
                    f"$({name}) refers to a variable whose value comes from a Secret; the local runtime "
                    "cannot expand it (reference the Secret directly)"
                )
            return value
        return match.group(0)

    return _VAR_REF.sub(sub, text)


class _Env:
    """The container's environment in Kubernetes order: later definitions win."""

    def __init__(self) -> None:
        self.values: dict[str, str | None] = {}  # None: comes from a podman secret
        self.secrets: dict[str, str] = {}  # env name -> podman secret name

    def literal(self, name: str, value: str) -> None:
        self.values[name] = value
        self.secrets.pop(name, None)

    def secret(self, name: str, podman_secret: str) -> None:
        self.values[name] = None
        self.secrets[name] = podman_secret


def _secret_key(cluster: Cluster, namespace: str, ref: Mapping[str, Any], where: str) -> str | None:
    name, key = ref.get("name"), ref.get("key")
    secret = cluster.secrets.get(f"{namespace}/{name}")
    if secret is None or key not in secret:
        if ref.get("optional"):
            return None
        what = f"Secret {namespace}/{name!s}" + ("" if secret is None else f" has no key {key!r}; it")
        raise UnsupportedPod(
            f"{where}: {what} does not exist in the local cluster (a cluster would fail the pod with "
            "CreateContainerConfigError); create it before the task runs"
        )
    return secret[key]


def _config_map_key(cluster: Cluster, namespace: str, ref: Mapping[str, Any], where: str) -> str | None:
    name, key = ref.get("name"), ref.get("key")
    data = cluster.config_maps.get(f"{namespace}/{name}")
    if data is None or key not in data:
        if ref.get("optional"):
            return None
        raise UnsupportedPod(f"{where}: ConfigMap {namespace}/{name!s} key {key!r} does not exist in the local cluster")
    return data[key]


def _field_ref(pod: Mapping[str, Any], cluster: Cluster, path: str, where: str) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid") or meta.get("name"),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "spec.nodeName": cluster.node_name,
        "status.podIP": cluster.pod_ip,
        "status.hostIP": cluster.pod_ip,
    }
    if path in simple:
        return str(simple[path] or "")
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise UnsupportedPod(f"{where}.fieldRef.fieldPath: {path!r} is not supported by the local pod runtime")


def _resource_ref(resources: Mapping[str, Any], ref: Mapping[str, Any], where: str) -> str:
    kind, _, name = str(ref.get("resource", "")).partition(".")
    value = (resources.get(kind) or {}).get(name)
    divisor = ref.get("divisor") or "1"
    if kind not in ("limits", "requests") or name not in ("cpu", "memory"):
        raise UnsupportedPod(f"{where}.resourceFieldRef.resource: {ref.get('resource')!r} is not supported")
    if value is None:
        return "0"
    if name == "cpu":
        quotient = _cpu(value, where) / _cpu(divisor, where)
        return str(int(quotient.to_integral_value(rounding="ROUND_CEILING")))
    return str(-(-_bytes(value, where) // _bytes(divisor, where)))


def _environment(pod: Mapping[str, Any], container: Mapping[str, Any], cluster: Cluster, where: str) -> _Env:
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    env = _Env()
    for name, podman_secret in cluster.injected_secret_env.items():
        env.secret(name, podman_secret)
    for index, source in enumerate(container.get("envFrom") or []):
        here = f"{where}.envFrom[{index}]"
        prefix = source.get("prefix") or ""
        if source.get("configMapRef"):
            ref = source["configMapRef"]
            data = cluster.config_maps.get(f"{namespace}/{ref.get('name')}")
            if data is None:
                if ref.get("optional"):
                    continue
                raise UnsupportedPod(
                    f"{here}.configMapRef: ConfigMap {namespace}/{ref.get('name')} does not exist in the local cluster"
                )
            for key, value in sorted(data.items()):
                if _ENV_NAME.match(prefix + key):
                    env.literal(prefix + key, value)
        elif source.get("secretRef"):
            ref = source["secretRef"]
            secret = cluster.secrets.get(f"{namespace}/{ref.get('name')}")
            if secret is None:
                if ref.get("optional"):
                    continue
                raise UnsupportedPod(
                    f"{here}.secretRef: Secret {namespace}/{ref.get('name')} does not exist in the local cluster"
                )
            for key, podman_secret in sorted(secret.items()):
                if _ENV_NAME.match(prefix + key):
                    env.secret(prefix + key, podman_secret)
        else:
            raise UnsupportedPod(f"{here}: only configMapRef and secretRef are supported")
    resources = container.get("resources") or {}
    for index, item in enumerate(container.get("env") or []):
        here = f"{where}.env[{index}]"
        name = item.get("name")
        source = item.get("valueFrom")
        if not source:
            env.literal(name, _expand(str(item.get("value") or ""), env.values))
            continue
        if source.get("secretKeyRef"):
            podman_secret = _secret_key(cluster, namespace, source["secretKeyRef"], f"{here}.valueFrom.secretKeyRef")
            if podman_secret is not None:
                env.secret(name, podman_secret)
        elif source.get("configMapKeyRef"):
            value = _config_map_key(cluster, namespace, source["configMapKeyRef"], f"{here}.valueFrom.configMapKeyRef")
            if value is not None:
                env.literal(name, value)
        elif source.get("fieldRef"):
            env.literal(name, _field_ref(pod, cluster, str(source["fieldRef"].get("fieldPath")), f"{here}.valueFrom"))
        elif source.get("resourceFieldRef"):
            env.literal(name, _resource_ref(resources, source["resourceFieldRef"], f"{here}.valueFrom"))
        else:
            raise UnsupportedPod(f"{here}.valueFrom: {sorted(source)} is not supported by the local pod runtime")
    return env


def _security(pod_ctx: Mapping[str, Any], ctx: Mapping[str, Any], where: str) -> tuple[list[str], dict[str, Any]]:
    args: list[str] = []
    merged = {
        key: ctx.get(key, pod_ctx.get(key)) for key in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")
    }
    user, group = merged["runAsUser"], merged["runAsGroup"]
    if merged["runAsNonRoot"]:
        if user is None:
            raise UnsupportedPod(
                f"{where}.securityContext.runAsNonRoot: set runAsUser too; the local runtime does not read "
                "the image's USER to prove it is not root"
            )
        if int(user) == 0:
            raise UnsupportedPod(f"{where}.securityContext: runAsNonRoot is true but runAsUser is 0")
    if user is not None:
        args += ["--user", f"{int(user)}:{int(group)}" if group is not None else str(int(user))]
    groups = [int(g) for g in pod_ctx.get("supplementalGroups") or []]
    if pod_ctx.get("fsGroup") is not None:
        groups.append(int(pod_ctx["fsGroup"]))
    for gid in dict.fromkeys(groups):
        args += ["--group-add", str(gid)]
    if ctx.get("readOnlyRootFilesystem"):
        # only the volumes the pod declares are writable, as in a cluster (no podman tmpfs on /tmp, /run)
        args += ["--read-only", "--read-only-tmpfs=false"]
    if ctx.get("privileged"):
        args.append("--privileged")
    if ctx.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    caps = ctx.get("capabilities") or {}
    for cap in caps.get("drop") or []:
        args += ["--cap-drop", str(cap).lower() if str(cap).upper() == "ALL" else str(cap)]
    for cap in caps.get("add") or []:
        args += ["--cap-add", str(cap)]
    seccomp = (merged["seccompProfile"] or {}).get("type", "RuntimeDefault")
    if seccomp == "Unconfined":
        args += ["--security-opt", "seccomp=unconfined"]
    elif seccomp != "RuntimeDefault":
        raise UnsupportedPod(f"{where}.securityContext.seccompProfile.type: {seccomp!r} is not supported locally")
    summary = {
        "user": f"{user}:{group}" if user is not None else "image default",
        "read_only_root": bool(ctx.get("readOnlyRootFilesystem")),
        "capabilities_dropped": list(caps.get("drop") or []),
        "no_new_privileges": ctx.get("allowPrivilegeEscalation") is False,
        "seccomp": seccomp,
    }
    return args, summary


def _resources(resources: Mapping[str, Any], where: str) -> tuple[list[str], dict[str, str]]:
    args: list[str] = []
    summary: dict[str, str] = {}
    for kind in ("limits", "requests"):
        for name in resources.get(kind) or {}:
            if name not in ("cpu", "memory"):
                raise UnsupportedPod(
                    f"{where}.resources.{kind}.{name}: the local runtime can enforce cpu and memory only"
                )
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    if "memory" in limits:
        memory = _bytes(limits["memory"], f"{where}.resources.limits.memory")
        # no swap beyond the limit, as on a kubelet node: the container is OOM-killed at the limit
        args += ["--memory", str(memory), "--memory-swap", str(memory)]
        summary["memory_limit"] = str(limits["memory"])
    if "memory" in requests:
        args += ["--memory-reservation", str(_bytes(requests["memory"], f"{where}.resources.requests.memory"))]
    if "cpu" in limits:
        args += ["--cpus", str(_cpu(limits["cpu"], f"{where}.resources.limits.cpu").normalize())]
        summary["cpu_limit"] = str(limits["cpu"])
    if "cpu" in requests:
        shares = max(2, int(_cpu(requests["cpu"], f"{where}.resources.requests.cpu") * 1024))
        args += ["--cpu-shares", str(shares)]
    return args, summary


def _volumes(spec: Mapping[str, Any], container: Mapping[str, Any], where: str) -> tuple[list[str], list[str]]:
    kinds: dict[str, Mapping[str, Any]] = {}
    for index, volume in enumerate(spec.get("volumes") or []):
        name = volume.get("name")
        source = {k: v for k, v in volume.items() if k != "name" and v is not None}
        if set(source) != {"emptyDir"}:
            raise UnsupportedPod(
                f"spec.volumes[{index}]: volume {name!r} of kind {sorted(source)} is not supported by the "
                "local pod runtime (emptyDir only)"
            )
        kinds[str(name)] = source["emptyDir"] or {}
    args: list[str] = []
    empty_dirs: list[str] = []
    for index, mount in enumerate(container.get("volumeMounts") or []):
        here = f"{where}.volumeMounts[{index}]"
        name = str(mount.get("name"))
        if name not in kinds:
            raise UnsupportedPod(f"{here}.name: no volume {name!r} in spec.volumes")
        if mount.get("subPath") or mount.get("subPathExpr"):
            raise UnsupportedPod(f"{here}.subPath: not supported by the local pod runtime")
        path = str(mount.get("mountPath"))
        read_only = ",ro" if mount.get("readOnly") else ""
        empty = kinds[name]
        if empty.get("medium") == "Memory":
            size = f",size={_bytes(empty['sizeLimit'], f'{here}.sizeLimit')}" if empty.get("sizeLimit") else ""
            args += ["--mount", f"type=tmpfs,destination={path},tmpfs-mode=1777{size}{read_only}"]
        else:
            # an emptyDir on the node's disk: a fresh world-writable folder per pod, as the kubelet makes
            args += ["--mount", f"type=bind,source={_placeholder(name)},destination={path}{read_only}"]
            if name not in empty_dirs:
                empty_dirs.append(name)
    return args, empty_dirs


def pod_to_podman(pod: Mapping[str, Any], cluster: Cluster, *, labels: Mapping[str, str] | None = None) -> PodmanRun:
    """Map ``pod`` (API form) to a ``podman run`` invocation; raise UnsupportedPod naming the field."""
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    name, namespace = str(meta.get("name") or ""), str(meta.get("namespace") or "default")
    if not name:
        raise UnsupportedPod("metadata.name: the pod has no name")
    _refuse_unknown(spec, _IGNORED_SPEC | _HANDLED_SPEC, "spec", "pod")
    if spec.get("initContainers"):
        raise UnsupportedPod("spec.initContainers: init containers are not supported by the local pod runtime")
    if spec.get("hostNetwork") and cluster.network != "host":
        raise UnsupportedPod("spec.hostNetwork: not available in this local cluster")
    if spec.get("restartPolicy", "Never") != "Never":
        raise UnsupportedPod(f"spec.restartPolicy: {spec.get('restartPolicy')!r}; task pods run once (Never)")
    containers = spec.get("containers") or []
    if len(containers) != 1:
        names = [c.get("name") for c in containers]
        raise UnsupportedPod(
            f"spec.containers: the local pod runtime runs pods of exactly one container, got {names!r} "
            "(an XCom sidecar comes from do_xcom_push=True)"
        )
    container = containers[0]
    where = "spec.containers[0]"
    _refuse_unknown(container, _HANDLED_CONTAINER, where, "container")
    pod_ctx = spec.get("securityContext") or {}
    ctx = container.get("securityContext") or {}
    _refuse_unknown(pod_ctx, _POD_SECURITY, "spec.securityContext", "pod security")
    _refuse_unknown(ctx, _CONTAINER_SECURITY, f"{where}.securityContext", "container security")
    image = str(container.get("image") or "")
    if not image:
        raise UnsupportedPod(f"{where}.image: required")
    pull = container.get("imagePullPolicy") or _default_pull(image)
    if pull not in _PULL:
        raise UnsupportedPod(f"{where}.imagePullPolicy: {pull!r} is not one of {sorted(_PULL)}")

    env = _environment(pod, container, cluster, where)
    args: list[str] = [
        "--name",
        name,
        "--hostname",
        str(spec.get("hostname") or name)[:63],
        f"--pull={_PULL[pull]}",
        f"--network={cluster.network}",
        "--init=false",
        "--log-driver=none",
    ]
    for key, value in sorted({**(meta.get("labels") or {}), **(labels or {})}.items()):
        args += ["--label", f"{key}={value}"]
    for key, value in sorted((meta.get("annotations") or {}).items()):
        args += ["--annotation", f"{key}={value}"]
    for alias in spec.get("hostAliases") or []:
        for hostname in alias.get("hostnames") or []:
            args += ["--add-host", f"{hostname}:{alias.get('ip')}"]
    security_args, security = _security(pod_ctx, ctx, where)
    resource_args, resources = _resources(container.get("resources") or {}, where)
    volume_args, empty_dirs = _volumes(spec, container, where)
    args += security_args + resource_args + volume_args
    if container.get("workingDir"):
        args += ["--workdir", str(container["workingDir"])]
    if spec.get("terminationGracePeriodSeconds") is not None:
        args += ["--stop-timeout", str(int(spec["terminationGracePeriodSeconds"]))]
    for key, value in env.values.items():
        if value is None:
            args += ["--secret", f"{env.secrets[key]},type=env,target={key}"]
        else:
            args += ["--env", f"{key}={value}"]
    command = [_expand(str(part), env.values) for part in container.get("command") or []]
    container_args = [_expand(str(part), env.values) for part in container.get("args") or []]
    if command:  # like a command without args in Kubernetes, --entrypoint also drops the image's CMD
        args += ["--entrypoint", json.dumps(command)]
    args.append(image)
    args += container_args
    summary = {
        "image": image,
        "pull": pull,
        **security,
        **resources,
        "env": sorted(env.values),
        "secret_env": sorted(env.secrets),
        "volumes": [m.get("mountPath") for m in container.get("volumeMounts") or []],
        "active_deadline_seconds": spec.get("activeDeadlineSeconds"),
    }
    return PodmanRun(
        name=name, namespace=namespace, image=image, args=tuple(args), empty_dirs=tuple(empty_dirs), summary=summary
    )
