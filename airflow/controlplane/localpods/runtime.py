"""The local pod runtime's set-up: podman storage, registry mirrors, Secrets, ConfigMaps.

``LocalPodRuntime`` is made by whoever starts the local platform (``//:demo``, the e2e tests). It
writes one JSON file, ``RuntimeConfig``; the Airflow processes that run tasks find it through the
``ETL_LOCAL_PODS`` environment variable and run each KubernetesPodOperator pod with it.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from controlplane.localpods.podspec import Cluster
from tools.testing.containers import CONTAINERS_CONF

__all__ = ["CONFIG_ENV", "PLATFORM_LABEL", "LocalPodRuntime", "RuntimeConfig", "RuntimeSetupError"]

CONFIG_ENV = "ETL_LOCAL_PODS"
PLATFORM_LABEL = "etl.local/platform"  # on every container and secret, for the clean-up


class RuntimeSetupError(RuntimeError):
    """podman refused a set-up step (pull, secret)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class RuntimeConfig:
    """Everything a task process needs to run a pod: how to call podman, and the cluster's objects."""

    podman: tuple[str, ...]
    podman_env: Mapping[str, str]
    work_dir: str
    platform_id: str
    cluster: Cluster

    def environ(self) -> dict[str, str]:
        return {**os.environ, **self.podman_env}

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RuntimeConfig:
        data = json.loads(text)
        return cls(
            podman=tuple(data["podman"]),
            podman_env=data["podman_env"],
            work_dir=data["work_dir"],
            platform_id=data["platform_id"],
            cluster=Cluster(**data["cluster"]),
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> RuntimeConfig | None:
        path = environ.get(CONFIG_ENV)
        return cls.from_json(Path(path).read_text()) if path else None


class LocalPodRuntime:
    """podman with its own storage under ``state_dir`` (kept between runs: pulled layers are reused).

    ``mirrors`` maps a registry host the DAGs name (``localhost:5000``) to where it really listens
    (``127.0.0.1:41234``), like a registry mirror in a node's container runtime configuration; the
    image references, digests included, stay as published.
    """

    def __init__(self, state_dir: Path, *, mirrors: Mapping[str, str], platform_id: str) -> None:
        self.state_dir = state_dir
        self.platform_id = platform_id
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "containers.conf").write_text(CONTAINERS_CONF)
        registries = ["unqualified-search-registries = []"]
        for prefix, location in sorted(mirrors.items()):
            registries += ["", "[[registry]]", f'prefix = "{prefix}"', f'location = "{location}"', "insecure = true"]
        (state_dir / "registries.conf").write_text("\n".join(registries) + "\n")
        # podman wants a short runroot path (unix socket names); one per state folder
        digest = hashlib.sha256(str(state_dir.absolute()).encode()).hexdigest()[:12]
        self.runroot = Path(tempfile.gettempdir()) / f"etl-podman-{digest}"
        self.podman = ("podman", "--root", str(state_dir / "storage"), "--runroot", str(self.runroot))
        self.podman_env = {
            "CONTAINERS_CONF": str(state_dir / "containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(state_dir / "registries.conf"),
            # this kernel mounts cgroups v1; podman 5 warns on every call, into every task log
            "PODMAN_IGNORE_CGROUPSV1_WARNING": "1",
        }
        self.config_maps: dict[str, dict[str, str]] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        self.injected: dict[str, str] = {}

    def _podman(self, *args: str, stdin: bytes | None = None, timeout: float = 600) -> str:
        done = subprocess.run(
            [*self.podman, *args],
            input=stdin,
            capture_output=True,
            check=False,
            timeout=timeout,
            env={**os.environ, **self.podman_env},
        )
        if done.returncode != 0:
            detail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeSetupError(
                f"podman {args[0]} {args[1] if len(args) > 1 else ''} failed (exit {done.returncode}): {detail[0]}"
            )
        return done.stdout.decode("utf-8", "replace")

    def _podman_secret(self, name: str, value: str) -> None:
        self._podman(
            "secret",
            "create",
            "--replace",
            "--label",
            f"{PLATFORM_LABEL}={self.platform_id}",
            name,
            "-",
            stdin=value.encode("utf-8"),
        )

    def add_config_map(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        self.config_maps[f"{namespace}/{name}"] = dict(data)

    def add_secret(self, namespace: str, name: str, data: Mapping[str, str]) -> None:
        """A Kubernetes Secret: each key becomes one podman secret (values go in on stdin)."""
        keys: dict[str, str] = {}
        for key, value in data.items():
            podman_name = f"{namespace}.{name}.{key}"
            self._podman_secret(podman_name, value)
            keys[key] = podman_name
        self.secrets[f"{namespace}/{name}"] = keys

    def inject_env(self, name: str, value: str) -> None:
        """An env var every pod gets from the cluster (e.g. credentials an admission webhook adds)."""
        podman_name = f"injected.{name}"
        self._podman_secret(podman_name, value)
        self.injected[name] = podman_name

    def config(self) -> RuntimeConfig:
        return RuntimeConfig(
            podman=self.podman,
            podman_env=self.podman_env,
            work_dir=str(self.state_dir / "pods"),
            platform_id=self.platform_id,
            cluster=Cluster(config_maps=self.config_maps, secrets=self.secrets, injected_secret_env=self.injected),
        )

    def write_config(self) -> Path:
        path = self.state_dir / "runtime.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.config().to_json())
        tmp.replace(path)
        return path

    def pull(self, images: Iterable[str], *, progress: Callable[[str], None] | None = None) -> dict[str, float]:
        """Pull ``images`` (side by side) before tasks need them, as a node's image pre-puller would."""
        import time

        def one(image: str) -> tuple[str, float]:
            t0 = time.monotonic()
            self._podman("pull", "--quiet", image)
            return image, time.monotonic() - t0

        wanted = sorted(set(images))
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(wanted))) as pool:
            results = dict(pool.map(one, wanted))
        if progress is not None:
            for image, seconds in results.items():
                progress(f"pulled {image.rpartition('@')[0]} in {seconds:.1f}s")
        return results

    def containers(self) -> list[dict[str, Any]]:
        out = self._podman("ps", "--all", "--format", "json", "--filter", f"label={PLATFORM_LABEL}={self.platform_id}")
        return list(json.loads(out or "[]"))

    def cleanup(self) -> int:
        """Remove every container and secret of this platform; return how many containers were left."""
        left = 0
        try:
            left = len(self.containers())
            self._podman("rm", "--force", "--time", "5", "--filter", f"label={PLATFORM_LABEL}={self.platform_id}")
        except (RuntimeSetupError, ValueError, OSError, subprocess.TimeoutExpired):
            pass
        for name in [n for keys in self.secrets.values() for n in keys.values()] + list(self.injected.values()):
            try:
                self._podman("secret", "rm", "--ignore", name)
            except (RuntimeSetupError, OSError, subprocess.TimeoutExpired):
                pass
        return left
