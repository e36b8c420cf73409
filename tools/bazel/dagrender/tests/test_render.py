"""Rendering: the golden file of the reference spec, byte determinism, and the generated code's shape."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagrender import InputFileError, load_spec, render_dag, resolve
from dagrender.render import PLATFORM_CONFIG_MAP, _variable_names
from dagrender.spec import ConfigMapEnvFrom, SecretEnvFrom, SecretKeyRef
from helpers import (
    DIGEST_FILE,
    ENTRYPOINTS,
    GOLDEN,
    GOOD_SPECS,
    PACKAGE,
    REFERENCE_SPEC,
    REPOSITORY,
    TARGET,
    display_path,
    image,
    render,
)

UPDATE = os.environ.get("DAGRENDER_UPDATE_GOLDEN") == "1"


def _child_env(seed: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    env["PYTHONHASHSEED"] = seed
    return env


def test_golden_render_of_reference_spec() -> None:
    golden = GOLDEN / "file_processing_daily_profile.py"
    text = render(REFERENCE_SPEC)
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), "rendering changed: DAGRENDER_UPDATE_GOLDEN=1 to accept"


def test_render_is_byte_identical_across_processes(tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "2"):
        out = tmp_path / seed / f"{REFERENCE_SPEC.stem}.py"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dagrender",
                "render",
                f"--spec={display_path(REFERENCE_SPEC)}",
                f"--package={PACKAGE}",
                f"--repository={REPOSITORY}",
                f"--digest-file={DIGEST_FILE}",
                f"--target={TARGET}",
                f"--entrypoints={ENTRYPOINTS}",
                f"--out={out}",
            ],
            check=True,
            env=_child_env(seed),
            cwd=_workspace_with_spec(tmp_path),
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0] == (GOLDEN / "file_processing_daily_profile.py").read_bytes()


def _workspace_with_spec(tmp_path: Path) -> Path:
    """A folder laid out like the workspace, so --spec can be the workspace-relative path."""
    root = tmp_path / "ws"
    spec = root / display_path(REFERENCE_SPEC)
    if not spec.exists():
        spec.parent.mkdir(parents=True)
        spec.write_bytes(REFERENCE_SPEC.read_bytes())
    return root


@pytest.mark.parametrize("spec", GOOD_SPECS, ids=lambda p: p.stem)
def test_rendered_dag_is_valid_python_importing_only_airflow_and_k8s(spec: Path) -> None:
    text = render(spec)
    tree = ast.parse(text)
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            modules.add(node.module or "")
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    allowed_roots = {"__future__", "datetime", "airflow", "kubernetes"}
    assert {m.split(".")[0] for m in modules} <= allowed_roots, modules
    assert "airflow.providers.cncf.kubernetes.operators.pod" in modules
    assert text.startswith(
        f"# generated from {display_path(spec)} by {TARGET}; do not edit\n"
    ), text.splitlines()[0]
    assert f'IMAGE = "{image().reference}"' in text


def test_image_is_pinned_by_digest_and_changes_with_it(tmp_path: Path) -> None:
    spec = load_spec(REFERENCE_SPEC, display_path(REFERENCE_SPEC))
    resolved = resolve(spec, spec_path=display_path(REFERENCE_SPEC), package=PACKAGE, entrypoints=None)
    other = image().__class__(repository_prefix="127.0.0.1:5000/etl", package=PACKAGE, digest="sha256:" + "ab" * 32)
    text = render_dag(resolved, image=other, spec_path=display_path(REFERENCE_SPEC), target=TARGET)
    assert f'IMAGE = "127.0.0.1:5000/etl/file_processing@sha256:{"ab" * 32}"' in text
    assert '"etl.platform/image-digest": "abababababab"' in text
    assert text != render(REFERENCE_SPEC)


def test_header_refuses_multi_line_target() -> None:
    spec = load_spec(REFERENCE_SPEC, display_path(REFERENCE_SPEC))
    resolved = resolve(spec, spec_path=display_path(REFERENCE_SPEC), package=PACKAGE, entrypoints=None)
    with pytest.raises(InputFileError, match=r"target '//a:b\\nimport os' must be a single line"):
        render_dag(resolved, image=image(), spec_path=display_path(REFERENCE_SPEC), target="//a:b\nimport os")


def test_variable_names_are_distinct_identifiers() -> None:
    names = _variable_names(["profile", "publish-report", "publish_report", "task_publish_report", "dag", "a.b", "1x"])
    assert names["profile"] == "profile"
    assert names["publish_report"] == "publish_report"
    assert names["dag"] == "task_dag"
    assert names["task_publish_report"] == "task_publish_report"
    assert names["publish-report"] == "task_publish_report_2"
    assert names["a.b"] == "task_a_b"
    assert names["1x"] == "task_1x"
    assert len(set(names.values())) == len(names)
    assert all(name.isidentifier() for name in names.values())


def test_defaults_are_inherited_and_overridden() -> None:
    spec = load_spec(REFERENCE_SPEC, display_path(REFERENCE_SPEC))
    tasks = {t.task_id: t for t in resolve(spec, spec_path=display_path(REFERENCE_SPEC), package=PACKAGE, entrypoints=None).tasks}
    run_date = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
    assert [name for name, _ in tasks["profile"].env] == [
        "LOG_LEVEL",
        "RUN_DATE",
        "DB_PASSWORD",
        "PROFILE_BUCKET",
        "SAMPLE_SEED",
        "RUN_KEY",
    ]
    profile_env = dict(tasks["profile"].env)
    assert profile_env["RUN_DATE"] == run_date
    assert profile_env["DB_PASSWORD"] == SecretKeyRef(secret="file-processing-warehouse-ro", key="password")
    assert dict(tasks["validate"].env)["DB_PASSWORD"] == SecretKeyRef(secret="file-processing-warehouse", key="password")
    # env_from: the task's list after the defaults', each source once.
    assert tasks["profile"].env_from == (
        ConfigMapEnvFrom(config_map="file-processing-settings"),
        SecretEnvFrom(secret="file-processing-api-keys", prefix="API_", optional=True),
        ConfigMapEnvFrom(config_map="etl-platform"),
        SecretEnvFrom(secret="file-processing-profile-token", optional=True),
    )
    assert tasks["validate"].env_from == tasks["profile"].env_from[:2]
    assert tasks["profile"].retries == 2 and tasks["validate"].retries == 0
    assert tasks["validate"].image_pull_policy == "Always"
    assert tasks["profile"].image_pull_policy == "IfNotPresent"
    assert tasks["validate"].resources == {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}}
    assert tasks["publish-report"].execution_timeout == 1800
    assert tasks["profile"].execution_timeout == 3600
    assert tasks["profile"].retry_delay == 300


def test_env_is_a_list_of_v1_env_vars_and_secrets_stay_references() -> None:
    text = render(REFERENCE_SPEC)
    assert "env_vars={" not in text
    assert 'k8s.V1EnvVar(name="LOG_LEVEL", value="INFO")' in text
    # A Secret's key is referenced by name; its value is never in the file.
    assert (
        'k8s.V1EnvVar(name="DB_PASSWORD", value_from=k8s.V1EnvVarSource(secret_key_ref='
        'k8s.V1SecretKeySelector(name="file-processing-warehouse-ro", key="password")))'
    ) in text
    assert 'name="DB_PASSWORD", value=' not in text
    assert (
        'k8s.V1EnvVar(name="SAMPLE_SEED", value_from=k8s.V1EnvVarSource(config_map_key_ref='
        'k8s.V1ConfigMapKeySelector(name="file-processing-settings", key="seed", optional=True)))'
    ) in text


def test_every_task_gets_the_platform_config_map_first_and_once() -> None:
    platform = f'k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name="{PLATFORM_CONFIG_MAP}"))'
    for spec in GOOD_SPECS:
        text = render(spec)
        blocks = text.split("env_from=[\n")[1:]
        assert blocks and len(blocks) == text.count("KubernetesPodOperator(")
        for block in blocks:
            sources = block.split("\n        ],")[0].split("\n")
            assert sources[0].strip() == platform + ","
            assert sum(platform in line for line in sources) == 1
