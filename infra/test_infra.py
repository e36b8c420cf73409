"""infra/: the generated files (IAM documents, rbac.yaml's ServiceAccounts) match the packages and
the IAM documents grant only what each role needs; the Helm values put the sidecar beside every
Airflow component that parses DAGs and run it --once before workers; rbac.yaml gives the workers
just what KubernetesPodOperator needs in the pods' namespace. Kubernetes objects are validated
offline against the JSON schemas of kubernetes-validate (strict mode).
"""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path

import pytest
import yaml

from infra import update
from infra.airflow_control_plane import service_accounts
from infra.iam import generate

ROOT = Path(__file__).parents[1]  # _main in runfiles
SOURCE_ROOT = Path(os.path.realpath(__file__)).parents[1]
# Every ETL package, as Bazel derives it from the folders under packages/ (//packages:etl_packages).
BAZEL_PACKAGES = (ROOT / "packages" / "etl_packages.txt").read_text().split()

WRITES = {"s3:PutObject", "s3:DeleteObject"}


def _allowed(doc: dict, action: str, key: str) -> bool:
    arn = f"arn:aws:s3:::${{DAG_BUCKET}}/{key}"
    return any(
        action in st["Action"] and any(fnmatch.fnmatchcase(arn, r) for r in st["Resource"])
        for st in doc["Statement"]
        if st["Effect"] == "Allow"
    )


def test_the_generators_see_the_packages_bazel_derives() -> None:
    # Bazel lists the folders under packages/ minus the libraries (packages/BUILD.bazel); the
    # generators list the BUILD.bazel files that call etl_package. Both must name the same packages.
    assert sorted(BAZEL_PACKAGES) == generate.packages(SOURCE_ROOT), (
        "//packages:etl_packages differs from the packages whose BUILD.bazel calls etl_package: "
        "a library folder under packages/ belongs in _LIBRARIES of packages/BUILD.bazel"
    )


def test_committed_documents_match_the_generator() -> None:
    expected = generate.documents(SOURCE_ROOT)
    committed = {p.name: p.read_text() for p in (ROOT / "infra" / "iam").glob("*.json")}
    assert committed == expected, "infra/iam is stale: run `./bazelw run //infra:update`"
    assert set(committed) == {f"publisher-{pkg}.json" for pkg in BAZEL_PACKAGES} | {"sidecar.json"}


def test_committed_service_accounts_match_the_generator() -> None:
    committed = RBAC.read_text()
    expected = service_accounts.render(committed, generate.packages(SOURCE_ROOT))
    assert committed == expected, "rbac.yaml's ServiceAccounts are stale: run `./bazelw run //infra:update`"
    assert next(d for d in _rbac_docs() if d["kind"] == "Namespace")["metadata"]["name"] == service_accounts.NAMESPACE


def test_committed_package_images_match_the_generator() -> None:
    committed = ADMISSION.read_text()
    expected = service_accounts.render_images(committed, generate.packages(SOURCE_ROOT))
    assert committed == expected, "admission.yaml's package images are stale: run `./bazelw run //infra:update`"


def test_update_regenerates_what_a_new_package_needs(tmp_path: Path) -> None:
    # A copy of the inputs the generators read, plus one new package: update() writes its IAM
    # document and ServiceAccount, and a second run changes nothing.
    for pkg in [*BAZEL_PACKAGES, "zz_new"]:
        build = tmp_path / "packages" / pkg / "BUILD.bazel"
        build.parent.mkdir(parents=True)
        build.write_text(f'etl_package(\n    name = "{pkg}",\n    lib = ":{pkg}_lib",\n)\n')
    (tmp_path / "infra" / "iam").mkdir(parents=True)
    for doc in (ROOT / "infra" / "iam").glob("*.json"):
        (tmp_path / "infra" / "iam" / doc.name).write_text(doc.read_text())
    (tmp_path / "infra" / "iam" / "publisher-gone.json").write_text("{}")
    (tmp_path / update.RBAC).parent.mkdir(parents=True)
    (tmp_path / update.RBAC).write_text(RBAC.read_text())
    (tmp_path / update.ADMISSION).write_text(ADMISSION.read_text())
    changed = update.update(tmp_path)
    assert sorted(map(str, changed)) == [
        "infra/airflow_control_plane/admission.yaml",
        "infra/airflow_control_plane/rbac.yaml",
        "infra/iam/publisher-gone.json",
        "infra/iam/publisher-zz_new.json",
    ]
    params = next(d for d in yaml.safe_load_all((tmp_path / update.ADMISSION).read_text()) if d["kind"] == "ConfigMap")
    assert params["data"]["zz-new"] == "registry.example.com/etl/zz_new"
    assert not (tmp_path / "infra" / "iam" / "publisher-gone.json").exists()
    docs = list(yaml.safe_load_all((tmp_path / update.RBAC).read_text()))
    (account,) = [d for d in docs if d and d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "zz-new"]
    _validate(account)
    role = "arn:aws:iam::ACCOUNT_ID:role/etl-zz-new"
    assert account["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": role}
    assert update.update(tmp_path) == []


def test_rbac_without_the_markers_is_refused() -> None:
    with pytest.raises(service_accounts.MarkersMissing, match=r"rbac.yaml: the lines .*BEGIN generated.* are missing"):
        service_accounts.render("apiVersion: v1\nkind: Namespace\n", ["a"])


def test_each_publisher_writes_only_its_own_prefix() -> None:
    pkgs = generate.packages(SOURCE_ROOT)
    for pkg in pkgs:
        doc = json.loads((ROOT / "infra" / "iam" / f"publisher-{pkg}.json").read_text())
        for action in WRITES:
            assert _allowed(doc, action, f"${{ENV}}/{pkg}/dags/x.py")
            assert _allowed(doc, action, f"${{ENV}}/{pkg}/metadata.json")
            for other in pkgs:
                if other != pkg:
                    assert not _allowed(doc, action, f"${{ENV}}/{other}/dags/x.py"), (pkg, other, action)
                    assert not _allowed(doc, action, f"${{ENV}}/{other}/metadata.json"), (pkg, other, action)
            assert not _allowed(doc, action, f"${{ENV}}/{pkg}-evil/dags/x.py")
            assert not _allowed(doc, action, "other-env-root.txt")
        other = next(p for p in pkgs if p != pkg)
        assert _allowed(doc, "s3:GetObject", f"${{ENV}}/{other}/metadata.json")  # the collision check


def test_sidecar_only_reads() -> None:
    doc = json.loads((ROOT / "infra" / "iam" / "sidecar.json").read_text())
    actions = {a for st in doc["Statement"] for a in st["Action"]}
    assert actions == {"s3:GetObject", "s3:ListBucket"}


def test_helm_values_run_the_sidecar_beside_dag_parsers_and_once_in_workers() -> None:
    values = yaml.safe_load((ROOT / "infra" / "airflow_control_plane" / "values.yaml").read_text())
    for component in ("dagProcessor", "scheduler", "triggerer"):
        sidecars = values[component]["extraContainers"]
        assert [c["name"] for c in sidecars] == ["dag-sync"], component
        assert "--once" not in sidecars[0]["args"]
        mounts = {m["mountPath"] for m in sidecars[0]["volumeMounts"]}
        assert "/opt/airflow/dags" in mounts
    inits = values["workers"]["extraInitContainers"]
    assert inits[0]["name"] == "dag-sync-once" and "--once" in inits[0]["args"]
    assert values["config"]["core"]["dags_folder"] == "/opt/airflow/dags"
    interval = int(
        next(e["value"] for e in values["scheduler"]["extraContainers"][0]["env"] if e["name"] == "SYNC_INTERVAL")
    )
    assert int(values["config"]["dag_processor"]["refresh_interval"]) >= interval


# --- RBAC of the KubernetesPodOperator namespace, and offline Kubernetes schema validation ------

K8S_VERSION = "1.33.0"  # the oldest cluster version the manifests must be valid for
RBAC = ROOT / "infra" / "airflow_control_plane" / "rbac.yaml"
ADMISSION = ROOT / "infra" / "airflow_control_plane" / "admission.yaml"
KPO_RULES = {  # what KubernetesPodOperator does (see rbac.yaml); nothing more
    ("pods", frozenset({"create", "get", "list", "watch", "patch", "delete"})),
    ("pods/log", frozenset({"get"})),
    ("pods/exec", frozenset({"create", "get"})),
    ("events", frozenset({"list"})),
}


def _rbac_docs() -> list[dict]:
    return [d for d in yaml.safe_load_all(RBAC.read_text()) if d is not None]


def _validate(doc: dict) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _spec_service_accounts() -> set[tuple[str, str]]:
    """(namespace, service account) of every DAG spec's defaults and tasks."""
    found = set()
    specs = sorted((ROOT / "packages").glob("*/dags/*.yaml"))
    have = {s.parts[-3] for s in specs}
    assert have == set(generate.packages(SOURCE_ROOT)), (
        f"DAG specs of {sorted(set(generate.packages(SOURCE_ROOT)) - have)} missing from //packages:dag_specs"
    )
    for spec in specs:
        doc = yaml.safe_load(spec.read_text())
        defaults = doc.get("defaults") or {}
        for task in doc["tasks"]:
            namespace = task.get("namespace", defaults.get("namespace"))
            account = task.get("service_account", defaults.get("service_account"))
            if account:
                found.add((namespace, account))
    return found


def test_rbac_documents_are_valid_kubernetes_objects() -> None:
    docs = _rbac_docs()
    for doc in docs:
        _validate(doc)
    assert {d["kind"] for d in docs} == {"Namespace", "ServiceAccount", "Role", "RoleBinding"}


def test_offline_validation_rejects_broken_objects() -> None:
    import kubernetes_validate

    role = next(d for d in _rbac_docs() if d["kind"] == "Role")
    broken = {**role, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": "get"}]}
    with pytest.raises(kubernetes_validate.ValidationError, match="is not of type 'array'"):
        _validate(broken)
    account = next(d for d in _rbac_docs() if d["kind"] == "ServiceAccount")
    with pytest.raises(kubernetes_validate.ValidationError, match="automountToken"):
        _validate({**account, "automountToken": False})  # misspelt field: strict mode refuses it


def test_rbac_grants_the_workers_only_what_kpo_needs_in_the_pods_namespace() -> None:
    docs = _rbac_docs()
    assert not [d for d in docs if d["kind"].startswith("Cluster")], "nothing cluster-wide"
    namespaces = {n for n, _ in _spec_service_accounts()}
    assert namespaces == {next(d for d in docs if d["kind"] == "Namespace")["metadata"]["name"]}
    (namespace,) = namespaces
    roles = [d for d in docs if d["kind"] == "Role"]
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert len(roles) == 1 and len(bindings) == 1
    role, binding = roles[0], bindings[0]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == namespace
    rules = {(res, frozenset(r["verbs"])) for r in role["rules"] for res in r["resources"]}
    assert all(r["apiGroups"] == [""] for r in role["rules"])
    assert rules == KPO_RULES
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    values = yaml.safe_load((ROOT / "infra" / "airflow_control_plane" / "values.yaml").read_text())
    worker = values["workers"]["serviceAccount"]
    assert [(s["kind"], s["name"]) for s in binding["subjects"]] == [("ServiceAccount", worker["name"])]
    assert binding["subjects"][0]["namespace"] != namespace  # Airflow runs in its own namespace


def test_every_service_account_the_dags_use_exists_and_has_no_api_access() -> None:
    docs = _rbac_docs()
    accounts = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs if d["kind"] == "ServiceAccount"}
    missing = _spec_service_accounts() - set(accounts)
    assert not missing, f"rbac.yaml lacks ServiceAccounts the DAG specs use: {sorted(missing)}"
    bound = {(s.get("namespace"), s["name"]) for d in docs if d["kind"] == "RoleBinding" for s in d["subjects"]}
    for key, account in accounts.items():
        assert account.get("automountServiceAccountToken") is False, key
        assert key not in bound, f"the pods' account {key} must not be bound to a Role"


def test_every_dag_runs_as_its_own_package_account() -> None:
    # The account carries the package's cloud role: a pod running as another package's account
    # would get that package's permissions.
    for spec in sorted((ROOT / "packages").glob("*/dags/*.yaml")):
        doc = yaml.safe_load(spec.read_text())
        package = spec.parts[-3]
        defaults = doc.get("defaults") or {}
        for task in doc["tasks"]:
            account = task.get("service_account", defaults.get("service_account"))
            assert account in (None, service_accounts.account_name(package)), (
                f"packages/{package}/dags/{spec.name}: task {task['task_id']!r} runs as {account!r}; "
                f"use the package's own account {service_accounts.account_name(package)!r}"
            )


def test_sidecar_containers_in_the_helm_values_are_valid_container_specs() -> None:
    # The chart's own values schema is not available offline; each container we add is checked as
    # a Pod's container against the Kubernetes schema instead (field names, types, probes).
    values = yaml.safe_load((ROOT / "infra" / "airflow_control_plane" / "values.yaml").read_text())
    containers = [c for comp in ("dagProcessor", "scheduler", "triggerer") for c in values[comp]["extraContainers"]]
    containers += values["workers"]["extraInitContainers"]
    volumes = values["volumes"]
    for container in containers:
        _validate(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "check"},
                "spec": {"containers": [container], "volumes": volumes},
            }
        )
        mounted = {m["name"] for m in container["volumeMounts"]}
        assert mounted <= {v["name"] for v in volumes}, container["name"]


# --- the platform ConfigMap every task pod takes ------------------------------------------------

PLATFORM = ROOT / "infra" / "airflow_control_plane" / "platform.yaml"


def test_platform_config_map_is_valid_and_in_the_pods_namespace() -> None:
    (doc,) = [d for d in yaml.safe_load_all(PLATFORM.read_text()) if d is not None]
    _validate(doc)
    assert (doc["kind"], doc["metadata"]["name"]) == ("ConfigMap", "etl-platform")
    assert {(doc["metadata"]["namespace"])} == {n for n, _ in _spec_service_accounts()}
    # what the jobs read from it (etl_core's PUSHGATEWAY_URL, observability's checks)
    assert {"PUSHGATEWAY_URL", "AIRFLOW_URL", "SIDECAR_URL"} <= set(doc["data"])


def test_the_local_platform_gives_its_pods_the_same_keys() -> None:
    import ast

    demo = (ROOT / "airflow" / "demo.py").read_text()
    call = next(
        n
        for n in ast.walk(ast.parse(demo))
        if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "add_config_map"
    )
    assert ast.literal_eval(call.args[1]) == "etl-platform"
    local_keys = {ast.literal_eval(k) for k in call.args[2].keys}
    (doc,) = [d for d in yaml.safe_load_all(PLATFORM.read_text()) if d is not None]
    assert set(doc["data"]) <= local_keys, sorted(set(doc["data"]) - local_keys)


# --- every pod that parses or runs DAG files keeps syncing, with one interval everywhere ---------

DAG_READERS = ("dagProcessor", "scheduler", "triggerer", "workers")  # Airflow 3: the workers parse too
SETTINGS_ENV = ROOT / "airflow" / "settings.env"
DEPLOYMENT = ROOT / "docs" / "airflow" / "DEPLOYMENT.md"


def _values() -> dict:
    return yaml.safe_load((ROOT / "infra" / "airflow_control_plane" / "values.yaml").read_text())


def _sync_containers(component: dict) -> tuple[list[dict], list[dict]]:
    """(``--once`` init containers, continuously syncing containers) of a component's values."""
    inits = component.get("extraInitContainers") or []
    once = [c for c in inits if "--once" in c.get("args", [])]
    loops = [c for c in component.get("extraContainers") or [] if c["name"].startswith("dag-sync")]
    loops += [c for c in inits if c.get("restartPolicy") == "Always"]  # native sidecars
    return once, loops


def _env(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def test_every_dag_reader_syncs_once_before_start_and_then_continuously() -> None:
    values = _values()
    for name in DAG_READERS:
        once, loops = _sync_containers(values[name])
        assert [c["name"] for c in once] == ["dag-sync-once"], name
        assert [c["name"] for c in loops] == ["dag-sync"], f"{name}: needs a continuously syncing dag-sync"
        loop = loops[0]
        assert "--once" not in loop["args"] and _env(loop).get("SYNC_ONCE") in (None, "false"), name
        inits = values[name]["extraInitContainers"]
        if loop in inits:  # a native sidecar starts after the first sync, as Airflow's container does
            assert inits.index(once[0]) < inits.index(loop), name
        for container in (*once, loop):
            assert {"name": "dags", "mountPath": "/opt/airflow/dags"} in container["volumeMounts"], name
            assert _env(container)["DAGS_DIR"] == values["config"]["core"]["dags_folder"]
            assert {k: _env(container)[k] for k in ("DAG_BUCKET", "ENV")} == {
                k: _env(loop)[k] for k in ("DAG_BUCKET", "ENV")
            }, name
        probes = {loop["readinessProbe"]["httpGet"]["path"], loop["livenessProbe"]["httpGet"]["path"]}
        assert probes == {"/readyz", "/healthz"}, name
    # workers may be KubernetesExecutor task pods: a regular sidecar container would keep them running
    assert not values["workers"].get("extraContainers"), "workers: use a native sidecar (restartPolicy: Always)"


def _settings_env() -> dict[str, str]:
    out = {}
    for line in SETTINGS_ENV.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def test_one_sync_interval_in_values_settings_env_and_the_deployment_guide() -> None:
    values = _values()
    intervals = {
        f"{name}/{c['name']}": int(_env(c)["SYNC_INTERVAL"])
        for name in DAG_READERS
        for c in _sync_containers(values[name])[1]
    }
    settings = _settings_env()
    intervals["values.yaml refresh_interval"] = int(values["config"]["dag_processor"]["refresh_interval"])
    intervals["values.yaml min_file_process_interval"] = int(
        values["config"]["dag_processor"]["min_file_process_interval"]
    )
    intervals["settings.env REFRESH_INTERVAL"] = int(settings["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"])
    intervals["settings.env MIN_FILE_PROCESS_INTERVAL"] = int(
        settings["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"]
    )
    guide = DEPLOYMENT.read_text()
    for row in (
        "sidecar `SYNC_INTERVAL`",
        "`[dag_processor] refresh_interval` (folder listing)",
        "`[dag_processor] min_file_process_interval`",
    ):
        line = next(x for x in guide.splitlines() if x.startswith(f"| {row} |"))
        intervals[f"DEPLOYMENT.md {row}"] = int(line.split("|")[2].strip().removesuffix(" s"))
    assert len(set(intervals.values())) == 1, f"one sync interval everywhere, got {intervals}"


def _pod(component: str, values: dict) -> dict:
    """The Pod the chart makes for ``component``, as far as this repository decides it: our init
    containers and sidecars beside a stand-in for the chart's Airflow container, our volumes."""
    airflow = {"name": component.lower(), "image": "apache/airflow:3.3.2", "volumeMounts": values["volumeMounts"]}
    spec = {
        "initContainers": values[component].get("extraInitContainers", []),
        "containers": [airflow, *values[component].get("extraContainers", [])],
        "volumes": values["volumes"],
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": component.lower()}, "spec": spec}


def test_the_pods_of_every_dag_reader_are_valid_kubernetes_objects() -> None:
    import kubernetes_validate

    values = _values()
    for name in DAG_READERS:
        _validate(_pod(name, values))
    broken = _pod("workers", values)
    broken["spec"]["initContainers"][1] = {**broken["spec"]["initContainers"][1], "restartPolicy": True}
    with pytest.raises(kubernetes_validate.ValidationError, match="True is not of type 'string'"):
        _validate(broken)
