"""`./bazelw run //:demo`: the whole platform on this machine, on loopback only.

moto S3 + Debian's docker-registry -> publish every package (image, DAGs, metadata.json) with the
publisher library -> the DAG sync sidecar mirrors the bucket into a dags folder -> a local Airflow 3
(api-server, scheduler, dag-processor; SQLite) parses it. Waits until the REST API lists every DAG
with no import errors, prints the UI address, the login and a summary, then runs until Ctrl-C.
``--once`` verifies, triggers one DAG run, prints the timings and exits (0, or 1 with one line).

Every state file is under one folder (``--state-dir``, default ``$BUILD_WORKSPACE_DIRECTORY/.etl/demo``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

PACKAGES = ("file_processing", "data_pipeline", "observability")
RENDERED_REGISTRY = "localhost:5000"  # //tools/bazel:image_repository, what the DAGs pin
BUCKET = "etl-dags"


class DemoError(RuntimeError):
    """An expected failure of the demo (printed as one line, exit 1)."""


@dataclasses.dataclass
class Published:
    package: str
    dag_ids: list[str]
    digest: str
    release_id: str | None
    outcome: str


class LoopbackRegistry:
    """ImageRegistry for the publisher that serves the rendered repository from a local registry.

    The DAGs were rendered for ``localhost:5000/etl/<pkg>``; the demo's registry listens on a free
    port, so ``localhost:5000/`` is mapped to ``127.0.0.1:<port>/`` for the push and the check.
    The digest, which is what the DAGs pin, is unchanged.
    """

    def __init__(self, host: str, *, rendered: str = RENDERED_REGISTRY) -> None:
        self._host = host
        self._rendered = rendered

    def real(self, repository: str) -> str:
        head, _, rest = repository.partition("/")
        return f"{self._host}/{rest}" if head == self._rendered else repository

    def push(self, layout: Path, repository: str, tags: Sequence[str]) -> str | None:
        from ocitool.push import push_layout

        lines: list[str] = []
        result = push_layout(layout, self.real(repository), list(tags), log=lines.append)
        if lines:
            _log(f"  {lines[-1].strip()}")  # ocitool's summary: what it pushed, how much, how long
        return str(result.manifest_digest)

    def exists(self, repository: str, digest: str) -> bool:
        from ocitool.registry import manifest_exists

        return bool(manifest_exists(self.real(repository), digest))


class _Stop(Exception):
    """SIGTERM or SIGINT arrived."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    del frame
    raise _Stop(signal.Signals(signum).name)


def _log(message: str) -> None:
    print(message, flush=True)


def build_dir_default() -> Path:
    """Where the packages' build outputs are: the runfiles tree under Bazel, else bazel-bin."""
    here = Path(os.path.abspath(__file__)).parent.parent  # not resolve(): stay in the runfiles tree
    for candidate in (here, here / "bazel-bin"):
        if (candidate / "packages" / PACKAGES[0] / "metadata.json").is_file():
            return candidate
    return here


def state_dir_default() -> Path | None:
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    return Path(workspace) / ".etl" / "demo" if workspace else None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument("--once", action="store_true", help="verify, trigger one DAG run, exit")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="every state file goes here (default $BUILD_WORKSPACE_DIRECTORY/.etl/demo)")
    parser.add_argument("--build-dir", type=Path, default=None,
                        help="folder holding packages/<pkg>/{metadata.json,dags,image,image.digest}")
    parser.add_argument("--env", default="dev", help="store environment prefix (default dev)")
    parser.add_argument("--sync-interval", type=float, default=5.0,
                        help="sidecar interval; Airflow's refresh interval follows it (default 5)")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds to wait for every DAG to be visible (default 600)")
    args = parser.parse_args(argv)
    if args.state_dir is None:
        args.state_dir = state_dir_default()
        if args.state_dir is None:
            parser.error("--state-dir is required outside `bazel run` (BUILD_WORKSPACE_DIRECTORY is not set)")
    if args.sync_interval <= 0:
        parser.error(f"--sync-interval {args.sync_interval!r}: must be a positive number of seconds")
    args.state_dir = args.state_dir.absolute()
    args.build_dir = (args.build_dir or build_dir_default()).absolute()
    return args


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """Environment of a Python child: this process's sys.path (Bazel runfiles deps) as PYTHONPATH."""
    path = os.pathsep.join(p for p in sys.path if p)
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **extra}


def fresh_state(state: Path) -> dict[str, Path]:
    """Lay out the state folder; everything but Airflow's migrated DB template starts empty."""
    dirs = {name: state / name for name in ("s3", "registry", "dags", "logs", "airflow")}
    for name in ("s3", "registry", "dags", "logs"):
        shutil.rmtree(dirs[name], ignore_errors=True)
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    db = dirs["airflow"] / "airflow.db"
    for suffix in ("", "-wal", "-shm", "-journal"):  # a stale WAL would replay the last run's DAGs
        (dirs["airflow"] / f"airflow.db{suffix}").unlink(missing_ok=True)
    template = dirs["airflow"] / "airflow.db.migrated"
    if template.is_file():  # a migrated, empty DB: no DAGs from an earlier run
        shutil.copyfile(template, db)
    return dirs


def read_metadata(build_dir: Path, package: str) -> dict:
    path = build_dir / "packages" / package / "metadata.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise DemoError(f"cannot read {str(path)!r} ({exc}); build first: ./bazelw build //airflow:demo") from exc


def publish_all(build_dir: Path, *, env: str, registry: LoopbackRegistry) -> list[Published]:
    from publisher import load_build_output, open_store, publish_build

    store = open_store(f"s3://{BUCKET}")
    done = []
    for package in PACKAGES:
        root = build_dir / "packages" / package
        build = load_build_output(root, package=package, image_digest_file=root / "image.digest")
        result = publish_build(build, store=store, env=env, registry=registry, image_layout=root / "image")
        digest = read_metadata(build_dir, package)["image"]["digest"]
        done.append(Published(package, sorted(build.dags), digest, result.release_id, result.outcome))
        _log(f"  published {package}: {len(build.dags)} DAGs, release {result.release_id} ({result.outcome})")
    return done


def start_sidecar(dirs: dict[str, Path], *, env: str, interval: float, port: int,
                  aws: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(dirs["logs"] / "sidecar.log", "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sidecar", "--dag-bucket", f"s3://{BUCKET}", "--env", env,
             "--dags-dir", str(dirs["dags"]), "--sync-interval", str(interval),
             "--metrics-port", str(port), "--metrics-host", "127.0.0.1"],
            env=child_env(aws), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``timeout``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def sync_state(dags_dir: Path, item: Published, health: dict | None) -> str:
    manifest = dags_dir / item.package / ".release.json"
    try:
        release = (json.loads(manifest.read_text()).get("release") or {}).get("id")
    except (OSError, ValueError):
        return "not synced"
    state = "synced" if release == item.release_id else f"behind ({release})"
    if health is not None and health.get("consecutive_failures"):
        state += f", {health['consecutive_failures']} failed cycles"
    return state


def sidecar_health(port: int) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return dict(json.loads(response.read()))
    except urllib.error.HTTPError as exc:
        with contextlib.suppress(ValueError):
            return dict(json.loads(exc.read()))
    except (OSError, ValueError):
        pass
    return None


def wait_for_dags(api, expected: set[str], *, timeout: float, sidecar: subprocess.Popen[bytes],
                  control_plane) -> float:
    """Poll until every expected DAG is listed and there are no import errors; return when."""
    deadline = time.monotonic() + timeout
    next_note = 0.0
    seen: set[str] = set()
    errors: list[dict] = []
    while time.monotonic() < deadline:
        control_plane.check_running()
        if sidecar.poll() is not None:
            raise DemoError(f"the sidecar exited with code {sidecar.returncode}; see logs/sidecar.log")
        seen = api.dag_ids() & expected
        errors = api.import_errors()
        if seen == expected and not errors:
            return time.monotonic()
        if time.monotonic() >= next_note:
            _log(f"  waiting: {len(seen)}/{len(expected)} DAGs visible, {len(errors)} import errors")
            next_note = time.monotonic() + 5
        time.sleep(1)
    missing = sorted(expected - seen)
    detail = f"; import errors: {[e.get('filename') for e in errors]!r}" if errors else ""
    raise DemoError(f"after {timeout:.0f}s Airflow still misses DAGs {missing!r}{detail}; see the logs folder")


def print_summary(items: list[Published], dags_dir: Path, health: dict | None) -> None:
    rows = [("package", "DAGs", "image digest", "sync state")]
    rows += [(i.package, str(len(i.dag_ids)), i.digest[:19] + "...", sync_state(dags_dir, i, health))
             for i in items]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for n, row in enumerate(rows):
        _log("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            _log("  " + "  ".join("-" * w for w in widths))


def run(args: argparse.Namespace) -> int:
    from controlplane.runner import ControlPlane
    from controlplane.settings import ControlPlaneSettings

    from tools.testing.registry import registry_server
    from tools.testing.servers import free_port, moto_server

    t0 = time.monotonic()

    def since() -> str:
        return f"{time.monotonic() - t0:5.1f}s"

    expected = {d["dag_id"] for p in PACKAGES for d in read_metadata(args.build_dir, p)["dags"]}
    dirs = fresh_state(args.state_dir)
    _log(f"demo: state folder {args.state_dir}")
    with contextlib.ExitStack() as stack:
        moto = stack.enter_context(moto_server(log_dir=dirs["s3"]))
        registry = stack.enter_context(registry_server(work_dir=dirs["registry"]))
        aws = moto.env()
        os.environ.update(aws)  # the publisher library (boto3) talks to moto
        import boto3

        boto3.client("s3").create_bucket(Bucket=BUCKET)
        _log(f"[{since()}] S3 (moto) at {moto.endpoint_url}, registry at {registry.url}, bucket s3://{BUCKET}")

        settings = ControlPlaneSettings(home=dirs["airflow"], dags_folder=dirs["dags"], api_port=free_port(),
                                        sync_interval=args.sync_interval)
        plane = ControlPlane(settings, log_dir=dirs["logs"], extra_env=child_env({}))
        stack.callback(plane.stop)
        boot_error: list[BaseException] = []

        def boot() -> None:  # migrate and start Airflow while the packages are published
            try:
                plane.migrate()
                template = dirs["airflow"] / "airflow.db.migrated"
                if not template.exists():
                    shutil.copyfile(dirs["airflow"] / "airflow.db", template)
                plane.start()
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                boot_error.append(exc)

        booter = threading.Thread(target=boot, name="airflow-boot", daemon=True)
        booter.start()

        _log(f"[{since()}] publishing {len(PACKAGES)} packages (images to {registry.host}, "
             f"DAGs to s3://{BUCKET}/{args.env}/)")
        published = publish_all(args.build_dir, env=args.env, registry=LoopbackRegistry(registry.host))

        metrics_port = free_port()
        sidecar = start_sidecar(dirs, env=args.env, interval=args.sync_interval, port=metrics_port, aws=aws)
        stack.callback(stop_process, sidecar)
        _log(f"[{since()}] sidecar syncing every {args.sync_interval:g}s into {dirs['dags']} "
             f"(status http://127.0.0.1:{metrics_port}/healthz)")

        while booter.is_alive():
            booter.join(timeout=1)
        if boot_error:
            raise boot_error[0]
        _log(f"[{since()}] Airflow processes started; waiting for the api-server")
        plane.wait_healthy(progress=_log)
        _log(f"[{since()}] Airflow api-server healthy at {settings.api_url}")

        api = plane.api()
        visible_at = wait_for_dags(api, expected, timeout=args.timeout, sidecar=sidecar, control_plane=plane)
        visible = visible_at - t0
        _log(f"[{since()}] all {len(expected)} DAGs visible, 0 import errors")
        _log("")
        _log(f"  Airflow UI: {settings.api_url}/   login: {plane.username} / {plane.password}")
        _log("")
        print_summary(published, dirs["dags"], sidecar_health(metrics_port))
        _log("")
        if args.once:
            dag_id = min(expected)
            run_ = api.trigger(dag_id, {"demo": True})
            if run_.get("dag_id") != dag_id or not run_.get("dag_run_id"):
                raise DemoError(f"triggering {dag_id!r} returned {run_!r}")
            _log(f"[{since()}] triggered {dag_id}: run {run_['dag_run_id']} ({run_.get('state')})")
            _log(f"demo: ok: time from start to all DAGs visible: {visible:.1f}s "
                 f"(sidecar interval {args.sync_interval:g}s, Airflow refresh interval "
                 f"{settings.environ()['AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL']}s)")
            return 0
        _log(f"demo: running (all DAGs visible after {visible:.1f}s). Ctrl-C stops everything.")
        while True:
            plane.check_running()
            if sidecar.poll() is not None:
                raise DemoError(f"the sidecar exited with code {sidecar.returncode}; see {dirs['logs']}")
            time.sleep(2)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from controlplane.errors import ControlPlaneError
    from publisher.errors import PublishError

    from tools.testing.registry import RegistryToolMissing
    from tools.testing.servers import ServerStartError

    expected = (DemoError, ControlPlaneError, PublishError, ServerStartError, RegistryToolMissing)
    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return run(args)
    except _Stop as stop:
        _log(f"demo: {stop}: stopped everything it started")
        return 0
    except expected as exc:
        print(f"demo: error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
