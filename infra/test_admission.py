"""infra/airflow_control_plane/admission.yaml, checked offline.

The objects are validated against the Kubernetes 1.33 JSON schemas (kubernetes-validate, strict),
and the policy's own CEL expressions (variables, validations, messages) are evaluated with a CEL
evaluator (PyPI cel-python) against the pods the packages' rendered DAG files really make
(``task.build_pod_request_obj(dry_run=True)`` in a real Airflow DagBag): every one is allowed,
and the same pods with a swapped service account, a foreign or unpinned image are denied with the
policy's message. The expressions use standard CEL only, which cel-python implements; a
Kubernetes extension (split, replace, join) would fail here as an undeclared reference.

Not checked offline: Kubernetes' own type check and cost estimate of the expressions, and the
admission chain itself (that needs an API server).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.iam import generate

ROOT = Path(__file__).parents[1]  # _main in runfiles
SOURCE_ROOT = Path(os.path.realpath(__file__)).parents[1]

K8S_VERSION = "1.33.0"
ADMISSION = ROOT / "infra" / "airflow_control_plane" / "admission.yaml"
RBAC = ROOT / "infra" / "airflow_control_plane" / "rbac.yaml"
REGISTRY = "registry.example.com/etl"  # the placeholder prefix of the committed ConfigMap
DIGEST = "sha256:" + "ab" * 32


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _one(kind: str) -> dict[str, Any]:
    (doc,) = [d for d in _docs(ADMISSION) if d["kind"] == kind]
    return doc


def _dns(package: str) -> str:
    return package.replace("_", "-")


class Policy:
    """The ValidatingAdmissionPolicy's CEL, compiled and evaluated as the API server does:
    variables in order (each sees the ones before it), then every validation; a false one denies
    with its messageExpression."""

    def __init__(self, policy: dict[str, Any]) -> None:
        import celpy

        self._celpy = celpy
        env = celpy.Environment()
        spec = policy["spec"]
        self.variables = [(v["name"], env.program(env.compile(v["expression"]))) for v in spec["variables"]]
        self.validations = [
            (env.program(env.compile(v["expression"])), env.program(env.compile(v["messageExpression"])))
            for v in spec["validations"]
        ]

    def evaluate(self, pod: dict[str, Any], params: dict[str, Any]) -> list[str]:
        """The messages of the failed validations: [] means the pod is admitted."""
        from celpy import celtypes

        base = {"object": self._celpy.json_to_cel(pod), "params": self._celpy.json_to_cel(params)}
        variables = celtypes.MapType({})
        for name, program in self.variables:
            variables[celtypes.StringType(name)] = program.evaluate({**base, "variables": variables})
        activation = {**base, "variables": variables}
        denied = []
        for check, message in self.validations:
            result = check.evaluate(activation)
            assert isinstance(result, celtypes.BoolType), f"a validation gave {result!r}, not a bool"
            if not result:
                denied.append(str(message.evaluate(activation)))
        return denied


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy(_one("ValidatingAdmissionPolicy"))


# --- the objects ------------------------------------------------------------------------------


def test_objects_are_valid_kubernetes_objects() -> None:
    import kubernetes_validate

    docs = _docs(ADMISSION)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    assert [d["kind"] for d in docs] == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ConfigMap"]
    broken = copy.deepcopy(_one("ValidatingAdmissionPolicyBinding"))
    broken["spec"]["validationAction"] = ["Deny"]  # misspelt: strict mode refuses it
    with pytest.raises(kubernetes_validate.ValidationError, match="validationAction"):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_binding_applies_the_policy_to_the_pods_namespace_with_its_parameter() -> None:
    policy, binding, params = (
        _one(k) for k in ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "ConfigMap")
    )
    namespace = next(d for d in _docs(RBAC) if d["kind"] == "Namespace")["metadata"]["name"]
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert policy["spec"]["paramKind"] == {"apiVersion": "v1", "kind": "ConfigMap"}
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["pods", "pods/ephemeralcontainers"],
        }
    ]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["paramRef"] == {
        "name": params["metadata"]["name"],
        "namespace": namespace,
        "parameterNotFoundAction": "Deny",
    }
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": namespace}
    }
    assert params["metadata"]["namespace"] == namespace


def test_parameter_lists_every_package_and_every_account_has_one_owner(policy: Policy) -> None:
    params = _one("ConfigMap")
    packages = generate.packages(SOURCE_ROOT)
    assert params["data"] == {_dns(p): f"{REGISTRY}/{p}" for p in packages}, (
        "ConfigMap etl-package-images must list every package of packages/ (<dns name>: <registry>/<package>)"
    )
    accounts = [d for d in _docs(RBAC) if d["kind"] == "ServiceAccount"]
    assert accounts
    for account in accounts:
        package = account["metadata"]["labels"]["etl.platform/package"]
        pod = _pod(account["metadata"]["name"], [f"{REGISTRY}/{package}@{DIGEST}"])
        assert policy.evaluate(pod, params) == [], account["metadata"]["name"]


# --- the real pods of the rendered DAGs -------------------------------------------------------


@pytest.fixture(scope="module")
def real_pods(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """package -> the pods its rendered DAG files make (API form), from //packages/<pkg>:dags."""
    os.environ["AIRFLOW_HOME"] = str(tmp_path_factory.mktemp("airflow_home"))
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag
    from kubernetes.client import ApiClient

    pods: dict[str, list[dict[str, Any]]] = {}
    for package in generate.packages(SOURCE_ROOT):
        folder = ROOT / "packages" / package / "dags"
        assert sorted(folder.glob("*.py")), f"no rendered DAGs of {package}: add //packages/{package}:dags to the data"
        bag = DagBag(dag_folder=str(folder))
        assert not bag.import_errors, bag.import_errors
        pods[package] = [
            dict(ApiClient().sanitize_for_serialization(task.build_pod_request_obj(dry_run=True)))
            for dag in bag.dags.values()
            for task in dag.tasks
        ]
    yield pods


def _build_params(real_pods: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The committed ConfigMap with the registry prefix the packages were built for."""
    image = real_pods["file_processing"][0]["spec"]["containers"][0]["image"]
    prefix = image.split("@")[0].removesuffix("/file_processing")
    params = copy.deepcopy(_one("ConfigMap"))
    params["data"] = {name: repo.replace(REGISTRY, prefix, 1) for name, repo in params["data"].items()}
    return params


def _pod(account: str | None, images: list[str]) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]}
    if account is not None:
        spec["serviceAccountName"] = account
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "etl-jobs"}, "spec": spec}


def test_every_real_pod_is_admitted(policy: Policy, real_pods: dict[str, list[dict[str, Any]]]) -> None:
    params = _build_params(real_pods)
    count = 0
    for package, pods in real_pods.items():
        assert pods, package
        for pod in pods:
            assert pod["spec"]["serviceAccountName"] == _dns(package)
            assert policy.evaluate(pod, params) == [], (package, pod["metadata"]["labels"])
            count += 1
    print(f"\nadmitted {count} real task pods of {len(real_pods)} packages")
    assert count >= 6


def _denials(real_pods: dict[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(what, pod, expected messages): the real pods, each changed in one hostile way."""
    fp = real_pods["file_processing"][0]
    fp_image = fp["spec"]["containers"][0]["image"]
    dp_image = real_pods["data_pipeline"][0]["spec"]["containers"][0]["image"]
    prefix = fp_image.split("@")[0].removesuffix("/file_processing")

    def changed(**spec: Any) -> dict[str, Any]:
        pod = copy.deepcopy(fp)
        for key, value in spec.items():
            if value is None:
                pod["spec"].pop(key, None)
            else:
                pod["spec"][key] = value
        return pod

    def with_image(image: str) -> dict[str, Any]:
        pod = changed()
        pod["spec"]["containers"][0]["image"] = image
        return pod

    def mismatch(account: str, package: str, got: str) -> str:
        return (
            f"service account {account} belongs to package image {prefix}/{package}: a pod running as "
            f"it may run only that image, got {got}"
        )

    def unpinned(got: str) -> str:
        return f"etl-jobs pods run package images pinned by digest (<registry>/<package>@sha256:<64 hex>); got {got}"

    def no_owner(account: str) -> str:
        return (
            f"service account {account} belongs to no package: the pods of a package run as its name in "
            "DNS form (file-processing for file_processing) or that plus -<suffix> (ConfigMap "
            "etl-package-images lists the packages)"
        )

    latest = f"{prefix}/file_processing:latest"
    foreign = f"evil.example.com/etl/file_processing@{DIGEST}"
    newline = fp_image + "\n"
    upper = fp_image.split("@")[0] + "@sha256:" + "AB" * 32
    debug = {"name": "debug", "image": dp_image}
    return [
        (
            "service account swapped",
            changed(serviceAccountName="data-pipeline"),
            [mismatch("data-pipeline", "data_pipeline", fp_image)],
        ),
        ("image swapped", with_image(dp_image), [mismatch("file-processing", "file_processing", dp_image)]),
        ("image from another registry", with_image(foreign), [mismatch("file-processing", "file_processing", foreign)]),
        (
            "image by tag",
            with_image(latest),
            [unpinned(latest), mismatch("file-processing", "file_processing", latest)],
        ),
        ("digest with a trailing newline", with_image(newline), [unpinned(newline)]),
        ("digest in upper case", with_image(upper), [unpinned(upper)]),
        ("no service account", changed(serviceAccountName=None), [no_owner("default")]),
        ("look-alike account", changed(serviceAccountName="file-processingx"), [no_owner("file-processingx")]),
        (
            "foreign init container",
            changed(initContainers=[debug]),
            [mismatch("file-processing", "file_processing", dp_image)],
        ),
        (
            "foreign ephemeral container",
            changed(ephemeralContainers=[debug]),
            [mismatch("file-processing", "file_processing", dp_image)],
        ),
    ]


def test_changed_real_pods_are_denied_with_the_policy_message(
    policy: Policy, real_pods: dict[str, list[dict[str, Any]]]
) -> None:
    params = _build_params(real_pods)
    for what, pod, expected in _denials(real_pods):
        got = policy.evaluate(pod, params)
        print(f"denied: {what}: {got}")
        assert got == expected, what


def test_suffixed_account_is_allowed_and_the_longest_package_name_owns_an_account(
    policy: Policy, real_pods: dict[str, list[dict[str, Any]]]
) -> None:
    params = _build_params(real_pods)
    fp_image = real_pods["file_processing"][0]["spec"]["containers"][0]["image"]
    prefix = fp_image.split("@")[0].removesuffix("/file_processing")
    assert policy.evaluate(_pod("file-processing-reader", [fp_image]), params) == []
    # A package 'data' would own 'data-...' by the prefix rule alone, 'data-pipeline' included.
    with_data = {**params, "data": {**params["data"], "data": f"{prefix}/data"}}
    data_image = f"{prefix}/data@{DIGEST}"
    assert policy.evaluate(_pod("data-reader", [data_image]), with_data) == []
    assert policy.evaluate(_pod("data-pipeline-reader", [data_image]), with_data) == [
        f"service account data-pipeline-reader belongs to package image {prefix}/data_pipeline: a pod running "
        f"as it may run only that image, got {data_image}"
    ]


def test_without_the_parameter_data_every_pod_is_denied(
    policy: Policy, real_pods: dict[str, list[dict[str, Any]]]
) -> None:
    pod = real_pods["observability"][0]
    empty = {k: v for k, v in _build_params(real_pods).items() if k != "data"}
    assert len(policy.evaluate(pod, empty)) == 1


def test_the_expressions_are_standard_cel(policy: Policy) -> None:
    # What the header promises: no Kubernetes extension function, which cel-python would not know
    # (and which would then only be tested by a cluster).
    text = json.dumps(_one("ValidatingAdmissionPolicy")["spec"])
    for extension in (
        ".split(",
        ".replace(",
        ".join(",
        ".substring(",
        ".lowerAscii(",
        ".indexOf(",
        "url(",
        "authorizer",
    ):
        assert extension not in text, extension
