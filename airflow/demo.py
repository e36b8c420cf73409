"""`./bazelw run //:demo`: the whole platform on this machine, on loopback only.

moto S3 (seeded with a day of inputs) + Debian's docker-registry + a Pushgateway -> publish every
package (image, DAGs, metadata.json) with the publisher library -> the DAGs reach Airflow by one of
two paths (``--dag-delivery``): ``sidecar`` (default), the DAG sync sidecar mirrors the bucket into
a dags folder; ``bundle``, one versioned DAG bundle per package (etl_dag_bundle) reads the store
itself -> a local Airflow 3 (api-server, scheduler, dag-processor, triggerer; SQLite) parses them,
and runs each KubernetesPodOperator task's own pod in podman (the local pod runtime,
docs/airflow/local-pod-runtime.md). Once Airflow lists every DAG with no import errors it
prints the UI address and login, runs every DAG once on the seeded day (in data order), prints
each run's state and outputs, then runs until Ctrl-C. ``--once`` exits instead: 0 when every run
succeeded, else 1 naming the runs that did not.

Every state file is under one folder (``--state-dir``, default ``$BUILD_WORKSPACE_DIRECTORY/.etl/demo``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import hashlib
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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, TextIO


def _etl_packages() -> tuple[str, ...]:
    """Every ETL package: //packages:etl_packages, which Bazel derives from the folders under packages/
    (in the runfiles tree under Bazel, else in bazel-bin), so a new package needs no edit here."""
    here = Path(os.path.abspath(__file__)).parent.parent  # not resolve(): stay in the runfiles tree
    for listing in (here / "packages" / "etl_packages.txt", here / "bazel-bin" / "packages" / "etl_packages.txt"):
        if listing.is_file():
            return tuple(listing.read_text().split())
    return ()


PACKAGES = _etl_packages()
BUCKET = "etl-dags"
JOBS_NAMESPACE = "etl-jobs"  # where the DAG specs run their pods
DELIVERIES = ("sidecar", "bundle")  # --dag-delivery: docs/airflow/dag-bundles.md compares them


class DemoError(RuntimeError):
    """An expected failure of the demo (printed as one line, exit 1)."""


@dataclasses.dataclass
class Published:
    package: str
    dag_ids: list[str]
    digest: str
    release_id: str | None
    outcome: str
    image: str  # <repository>@<digest>, what the DAGs pin


class LoopbackRegistry:
    """ImageRegistry for the publisher that serves the rendered repository from a local registry.

    The DAGs were rendered for ``<registry host>/<prefix>/<pkg>`` (``--//tools/bazel:image_repository``,
    by default ``localhost:5000/etl``); the demo's registry listens on a free port, so the rendered
    registry host is mapped to ``127.0.0.1:<port>`` for the push and the check. The digest, which
    is what the DAGs pin, is unchanged.
    """

    def __init__(self, host: str, *, rendered: str) -> None:
        self._host = host
        self._rendered = rendered

    def real(self, repository: str) -> str:
        head, _, rest = repository.partition("/")
        return f"{self._host}/{rest}" if head == self._rendered else repository

    def push(self, layout: Path, repository: str, tags: Sequence[str]) -> str | None:
        from tools.bazel.ocitool.push import push_layout

        lines: list[str] = []
        result = push_layout(layout, self.real(repository), list(tags), log=lines.append)
        if lines:
            _log(f"  {lines[-1].strip()}")  # ocitool's summary: what it pushed, how much, how long
        return str(result.manifest_digest)

    def exists(self, repository: str, digest: str) -> bool:
        from tools.bazel.ocitool.registry import manifest_exists

        return bool(manifest_exists(self.real(repository), digest))


class _Stop(BaseException):
    """SIGTERM, SIGINT or SIGHUP (the terminal closed) arrived.

    A BaseException, as KeyboardInterrupt is: libraries that wrap every Exception would turn it
    into their own error (a SIGINT during a push ended as "pushing ... failed: SIGINT", exit 1).
    """


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_STOPPING = threading.Event()  # set once the demo stops: further signals are only noted
_UNWINDING = threading.Event()  # set once run() reached its clean-up (a stop, an error or the end)
_critical = 0  # > 0 while the main thread starts a child and registers its clean-up
_pending: str | None = None  # the stop signal that arrived meanwhile
_redeliver: str | None = None  # a stop signal the watcher delivers again: raised even while _STOPPING
_WATCH_SECONDS = 2.0  # how long a stop signal may take to reach run()'s clean-up before it is delivered again


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _pending, _redeliver
    del frame
    name = signal.Signals(signum).name
    if _redeliver is not None:
        name, _redeliver = _redeliver, None
    elif _STOPPING.is_set():  # already stopping: a second Ctrl-C must not cut the clean-up short
        _log(f"demo: {name} again: still stopping, please wait")
        return
    _STOPPING.set()
    if _critical:
        _pending = name  # raised by signals_deferred() once the child is registered for clean-up
        return
    raise _Stop(name)


def _watch_stops(read_fd: int) -> None:
    """The safety net behind ``_on_signal`` (a daemon thread; ``read_fd`` is the wakeup fd's pipe).

    The handler raises ``_Stop`` in the main thread, which unwinds to run()'s clean-up. Once, on a
    loaded CI machine, a SIGINT sent while the packages were being published never got there: the
    demo ran on as if no signal had come. Python's C-level handler writes every signal's number to
    the wakeup fd whatever happens next, so this thread sees each stop signal; when run() has not
    reached its clean-up ``_WATCH_SECONDS`` later, it says so on one line and delivers the signal
    to the main thread again (``_thread.interrupt_main``), up to five times.
    """
    import _thread

    global _redeliver
    stops = {int(s) for s in _STOP_SIGNALS}
    try:
        while data := os.read(read_fd, 64):
            arrived = [n for n in data if n in stops]
            if not arrived or _UNWINDING.is_set():
                continue
            name = signal.Signals(arrived[0]).name
            for _ in range(5):
                if _UNWINDING.wait(_WATCH_SECONDS):
                    break
                handled = "its handler ran" if _STOPPING.is_set() else "its handler has not run"
                _log(
                    f"demo: {name} has not stopped the demo after {_WATCH_SECONDS:g}s ({handled}); delivering it again"
                )
                _redeliver = name
                _thread.interrupt_main(arrived[0])
    finally:
        os.close(read_fd)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """SIGTERM, SIGINT and SIGHUP raise ``_Stop`` in the main thread while this is open (see ``_on_signal``
    and its safety net ``_watch_stops``); the previous handlers and wakeup fd come back after."""
    global _pending, _redeliver
    _STOPPING.clear()
    _UNWINDING.clear()
    _pending = _redeliver = None
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)  # the C-level handler must never block on it
    previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    previous = {sig: signal.signal(sig, _on_signal) for sig in _STOP_SIGNALS}
    threading.Thread(target=_watch_stops, args=(read_fd,), name="stop-watch", daemon=True).start()
    try:
        yield
    finally:
        _UNWINDING.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(previous_fd)
        os.close(write_fd)  # the watcher reads EOF and ends


def _write(stream: TextIO | None, message: str) -> None:
    """Print one line; a lost stdout/stderr never raises, so the clean-up always runs to the end."""
    if stream is None:
        return
    try:
        print(message, file=stream, flush=True)
    except OSError:  # EPIPE: the reader (`| tee`) died with the Ctrl-C; EIO: the terminal closed
        with contextlib.suppress(OSError, ValueError):  # further lines and the exit flush go nowhere
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)
    except (ValueError, RuntimeError):  # a closed stream; a print from the signal handler re-entering one
        pass


def _log(message: str) -> None:
    _write(sys.stdout, message)


def rendered_registry(build_dir: Path) -> str:
    """The registry host the DAGs pin (from the build's metadata.json: the image_repository setting)."""
    repository = read_metadata(build_dir, PACKAGES[0])["image"]["repository"]
    return str(repository).partition("/")[0]


def find_build_dir() -> Path | None:
    """Where the packages' build outputs are (the runfiles tree under Bazel, else bazel-bin), or None."""
    here = Path(os.path.abspath(__file__)).parent.parent  # not resolve(): stay in the runfiles tree
    for candidate in (here, here / "bazel-bin"):
        if PACKAGES and (candidate / "packages" / PACKAGES[0] / "metadata.json").is_file():
            return candidate
    return None


def build_dir_default() -> Path:
    return find_build_dir() or Path(os.path.abspath(__file__)).parent.parent


def state_dir_default() -> Path | None:
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    return Path(workspace) / ".etl" / "demo" if workspace else None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--once",
        action="store_true",
        help="run every DAG once, then stop everything: exit 0 only if every run succeeded",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="every state file goes here (default $BUILD_WORKSPACE_DIRECTORY/.etl/demo)",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=None,
        help="folder holding packages/<pkg>/{metadata.json,dags,image,image.digest}",
    )
    parser.add_argument("--env", default="dev", help="store environment prefix (default dev)")
    parser.add_argument(
        "--dag-delivery",
        choices=DELIVERIES,
        default="sidecar",
        help="how DAG files reach Airflow: 'sidecar' mirrors the store into the dags folder, "
        "'bundle' serves each package as a versioned Airflow DAG bundle (default sidecar)",
    )
    parser.add_argument(
        "--sync-interval",
        type=float,
        default=5.0,
        help="sidecar interval; Airflow's refresh interval (and each bundle's) follows it (default 5)",
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds to wait for every DAG to be visible (default 600)"
    )
    parser.add_argument(
        "--run-timeout", type=float, default=900.0, help="seconds to wait for the DAG runs to end (default 900)"
    )
    parser.add_argument(
        "--no-runs",
        dest="runs",
        action="store_false",
        help="do not run the DAGs at start (they can be triggered from the UI)",
    )
    parser.add_argument(
        "--schedules",
        action="store_true",
        help="let the scheduler create scheduled runs too (off: the seeded data is for one day, "
        "so every run is one the demo or you asked for)",
    )
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
    shutil.rmtree(dirs["airflow"] / "logs", ignore_errors=True)  # task logs of an earlier run
    shutil.rmtree(dirs["airflow"] / "dag_bundles", ignore_errors=True)  # an earlier run's bundle versions
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


def publish_package(root: Path, package: str, *, store, env: str, registry: LoopbackRegistry) -> Published:
    """Publish one package's build output (``root`` holds metadata.json, dags/, image/, image.digest)."""
    from tools.bazel.publisher import load_build_output, publish_build

    build = load_build_output(root, package=package, image_digest_file=root / "image.digest")
    result = publish_build(build, store=store, env=env, registry=registry, image_layout=root / "image")
    image = json.loads((root / "metadata.json").read_text())["image"]
    _log(f"  published {package}: {len(build.dags)} DAGs, release {result.release_id} ({result.outcome})")
    return Published(
        package, sorted(build.dags), image["digest"], result.release_id, result.outcome, image["reference"]
    )


def publish_all(build_dir: Path, *, env: str, registry: LoopbackRegistry) -> list[Published]:
    from tools.bazel.publisher import open_store

    store = open_store(f"s3://{BUCKET}")
    if not PACKAGES:
        raise DemoError("no package list (packages/etl_packages.txt); build first: ./bazelw build //airflow:demo")
    for package in PACKAGES:
        read_metadata(build_dir, package)  # one clear line when the build output is missing
    return [publish_package(build_dir / "packages" / p, p, store=store, env=env, registry=registry) for p in PACKAGES]


def start_sidecar(
    dirs: dict[str, Path], *, env: str, interval: float, port: int, aws: dict[str, str]
) -> subprocess.Popen[bytes]:
    from tools.testing.children import spawn

    with open(dirs["logs"] / "sidecar.log", "ab") as out:
        return spawn(
            [
                sys.executable,
                "-m",
                "sidecar",
                "--dag-bucket",
                f"s3://{BUCKET}",
                "--env",
                env,
                "--dags-dir",
                str(dirs["dags"]),
                "--sync-interval",
                str(interval),
                "--metrics-port",
                str(port),
                "--metrics-host",
                "127.0.0.1",
            ],
            env=child_env(aws),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
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


def sync_state(dags_dir: Path, item: Published, health: dict | None, *, bundles: Path | None = None) -> str:
    """The release Airflow reads for ``item``: the sidecar's folder, or (``bundles``) the bundle's tracking path."""
    manifest = (bundles / item.package / "current" if bundles else dags_dir / item.package) / ".release.json"
    try:
        doc = json.loads(manifest.read_text())
        release = doc.get("version") if bundles else (doc.get("release") or {}).get("id")
    except (OSError, ValueError):
        return "not synced"
    if bundles:  # the release id the dag-processor's tracking path is at
        state = f"{release} (current)" if release == item.release_id else f"{release} (behind {item.release_id})"
    else:
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


def wait_for_dags(
    api, expected: set[str], *, timeout: float, sidecar: subprocess.Popen[bytes] | None, control_plane
) -> float:
    """Poll until every expected DAG is listed and there are no import errors; return when."""
    deadline = time.monotonic() + timeout
    next_note = 0.0
    seen: set[str] = set()
    errors: list[dict] = []
    while time.monotonic() < deadline:
        control_plane.check_running()
        if sidecar is not None and sidecar.poll() is not None:
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


def print_summary(items: list[Published], dags_dir: Path, health: dict | None, *, bundles: Path | None = None) -> None:
    rows = [("package", "DAGs", "image digest", "sync state" if bundles is None else "bundle version")]
    rows += [
        (i.package, str(len(i.dag_ids)), i.digest[:19] + "...", sync_state(dags_dir, i, health, bundles=bundles))
        for i in items
    ]
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for n, row in enumerate(rows):
        _log("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            _log("  " + "  ".join("-" * w for w in widths))


@dataclasses.dataclass
class Platform:
    """Everything ``start_platform`` started, for the demo and the end-to-end test."""

    args: argparse.Namespace
    dirs: dict[str, Path]
    aws: dict[str, str]  # AWS_* of the moto server (also set in os.environ)
    moto: Any  # tools.testing.servers.MotoServer
    registry: LoopbackRegistry
    registry_host: str
    plane: Any  # controlplane.runner.ControlPlane
    pods: Any  # controlplane.localpods.runtime.LocalPodRuntime
    pushgateway: Any  # tools.testing.pushgateway.Pushgateway
    seeded: Any  # demodata.Seeded
    sidecar: subprocess.Popen[bytes] | None  # None with --dag-delivery bundle
    metrics_port: int
    published: list[Published]
    expected: set[str]
    started: float  # time.monotonic() at the start
    visible_at: float  # time.monotonic() when every DAG was visible

    @property
    def settings(self):
        return self.plane.settings

    def api(self):
        return self.plane.api()

    def client(self):
        from tools.bazel.publisher.smoke import AirflowClient, SmokeConfig

        return AirflowClient(
            SmokeConfig(api_url=self.settings.api_url, username=self.plane.username, password=self.plane.password)
        )

    def store(self):
        from tools.bazel.publisher import open_store

        return open_store(f"s3://{BUCKET}")

    def check_running(self) -> None:
        self.plane.check_running()
        if self.sidecar is not None and self.sidecar.poll() is not None:
            raise DemoError(
                f"the sidecar exited with code {self.sidecar.returncode}; see {self.dirs['logs'] / 'sidecar.log'}"
            )

    def refresh_interval(self) -> str:
        return self.settings.environ()["AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL"]

    @property
    def delivery(self) -> str:
        return str(self.args.dag_delivery)

    @property
    def bundles(self) -> Path | None:
        """Where the DAG bundles keep their versions (bundle delivery), else None."""
        return self.settings.dag_bundle_storage if self.delivery == "bundle" else None


def run_date() -> dt.date:
    """The day the demo seeds and runs: today (UTC), so a run triggered from the UI without a
    logical date (its date is the time it was triggered) reads the same seeded data."""
    return dt.datetime.now(dt.UTC).date()


def platform_id(state_dir: Path) -> str:
    """Labels this platform's containers and secrets (one state folder, one platform)."""
    return hashlib.sha256(str(state_dir.absolute()).encode()).hexdigest()[:12]


def local_cluster(
    pods: Any, *, aws: dict[str, str], pushgateway: str, airflow: str, sidecar: str, username: str, password: str
) -> None:
    """What a cluster gives the task pods, here: the platform ConfigMap, the packages' Secrets, and
    AWS credentials for moto (the stand-in for what IRSA's webhook injects by ServiceAccount)."""
    pods.add_config_map(
        JOBS_NAMESPACE,
        "etl-platform",
        {
            "PUSHGATEWAY_URL": pushgateway,
            "AIRFLOW_URL": airflow,
            "SIDECAR_URL": sidecar,
            "AWS_ENDPOINT_URL": aws["AWS_ENDPOINT_URL"],
            "AWS_DEFAULT_REGION": aws["AWS_DEFAULT_REGION"],
            "AWS_REGION": aws["AWS_DEFAULT_REGION"],
        },
    )
    pods.add_secret(JOBS_NAMESPACE, "observability-airflow-api", {"username": username, "password": password})
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        pods.inject_env(name, aws[name])
    pods.write_config()


class ThreadResult:
    """Run ``fn`` in a daemon thread; ``result()`` joins and returns its value or raises its error."""

    def __init__(self, fn: Callable[[], Any], *, name: str) -> None:
        self._value: Any = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._value = fn()
            except BaseException as exc:
                self._error = exc

        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def result(self) -> Any:
        while self._thread.is_alive():
            self._thread.join(timeout=1)  # short joins: signals still reach the main thread
        if self._error is not None:
            raise self._error
        return self._value


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """A stop signal arriving while a child is started and its clean-up registered takes effect
    right after (no leak between). A flag the handler reads, not a blocked signal mask: a blocked
    mask is inherited by the children, and a sidecar started so ignored SIGTERM (issue 19)."""
    global _critical, _pending
    if threading.current_thread() is not threading.main_thread():  # handlers run in the main thread only
        yield
        return
    _critical += 1
    try:
        yield
    finally:
        _critical -= 1
    if not _critical and _pending is not None:
        name, _pending = _pending, None
        raise _Stop(name)


def start_platform(
    args: argparse.Namespace, stack: contextlib.ExitStack, *, log: Callable[[str], None] = _log
) -> Platform:
    """Start moto, the registry, Airflow, publish every package, start the sidecar, wait for the DAGs.

    Every process is registered on ``stack`` right after it starts (a stop signal waits for that),
    so closing the stack, on success, error or Ctrl-C at any moment, stops all of them. Every
    process also gets SIGTERM when the thread that started it exits (``tools.testing.children``),
    so even a SIGKILLed demo leaves nothing behind.
    """
    from controlplane.localpods.runtime import LocalPodRuntime
    from controlplane.runner import ControlPlane
    from controlplane.settings import ControlPlaneSettings
    from demodata import seed

    from tools.testing.pushgateway import pushgateway_server
    from tools.testing.registry import registry_server
    from tools.testing.servers import free_port, moto_server

    t0 = time.monotonic()

    def since() -> str:
        return f"{time.monotonic() - t0:5.1f}s"

    expected = {d["dag_id"] for p in PACKAGES for d in read_metadata(args.build_dir, p)["dags"]}
    dirs = fresh_state(args.state_dir)
    log(f"demo: state folder {args.state_dir}")
    moto = stack.enter_context(moto_server(log_dir=dirs["s3"]))
    registry = stack.enter_context(registry_server(work_dir=dirs["registry"]))
    pushgateway = stack.enter_context(pushgateway_server(work_dir=dirs["logs"]))
    aws = moto.env()
    os.environ.update(aws)  # the publisher library (boto3) talks to moto
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    log(
        f"[{since()}] S3 (moto) at {moto.endpoint_url}, registry at {registry.url}, "
        f"Pushgateway at {pushgateway.url}, bucket s3://{BUCKET}"
    )
    seeded = seed(s3, run_date())
    log(
        f"[{since()}] seeded {len(seeded.objects)} input objects for {seeded.run_date} (orders CSV, "
        f"events JSON lines, customers)"
    )

    metrics_port = free_port()
    rendered = rendered_registry(args.build_dir)
    pods = LocalPodRuntime(
        args.state_dir / "podman", mirrors={rendered: registry.host}, platform_id=platform_id(args.state_dir)
    )
    bundles = None
    if args.dag_delivery == "bundle":
        from etl_dag_bundle import bundle_config_json

        bundles = bundle_config_json(dag_bucket=f"s3://{BUCKET}", env=args.env, packages=PACKAGES)
    settings = ControlPlaneSettings(
        home=dirs["airflow"],
        dags_folder=dirs["dags"],
        api_port=free_port(),
        sync_interval=args.sync_interval,
        local_pods_config=pods.state_dir / "runtime.json",
        scheduled_runs=args.schedules,
        dag_bundles=bundles,
    )
    plane = ControlPlane(settings, log_dir=dirs["logs"], extra_env=child_env({}))
    stack.callback(plane.stop)  # before the boot thread starts anything; stop() refuses later starts
    pods.cleanup()  # containers a killed earlier run of this state folder left behind
    stack.callback(pods.cleanup)  # runs first: containers of running tasks go before their workers
    # With bundle delivery there is no sidecar to point at (see run_dags for its health check).
    sidecar_url = f"http://127.0.0.1:{metrics_port}/metrics" if bundles is None else ""
    local_cluster(
        pods,
        aws=aws,
        pushgateway=pushgateway.url,
        airflow=settings.api_url,
        sidecar=sidecar_url,
        username=plane.username,
        password=plane.password,
    )
    boot_error: list[BaseException] = []

    def boot() -> None:  # migrate Airflow's DB while the packages are published
        try:
            plane.migrate()
            template = dirs["airflow"] / "airflow.db.migrated"
            if not template.exists():
                shutil.copyfile(dirs["airflow"] / "airflow.db", template)
        except BaseException as exc:
            boot_error.append(exc)

    booter = threading.Thread(target=boot, name="airflow-boot", daemon=True)
    booter.start()

    log(
        f"[{since()}] publishing {len(PACKAGES)} packages (images to {registry.host}, "
        f"DAGs to s3://{BUCKET}/{args.env}/)"
    )
    loopback = LoopbackRegistry(registry.host, rendered=rendered)
    published = publish_all(args.build_dir, env=args.env, registry=loopback)
    pulls = ThreadResult(lambda: pods.pull([item.image for item in published]), name="image-pull")
    sidecar: subprocess.Popen[bytes] | None = None
    if bundles is None:
        with signals_deferred():
            sidecar = start_sidecar(dirs, env=args.env, interval=args.sync_interval, port=metrics_port, aws=aws)
            stack.callback(stop_process, sidecar)
        log(
            f"[{since()}] sidecar syncing every {args.sync_interval:g}s into {dirs['dags']} "
            f"(status http://127.0.0.1:{metrics_port}/healthz)"
        )
    else:
        log(
            f"[{since()}] DAG delivery: one versioned DAG bundle per package ({', '.join(PACKAGES)}), refreshed "
            f"every {args.sync_interval:g}s by the dag-processor, versions under {settings.dag_bundle_storage}"
        )

    while booter.is_alive():
        booter.join(timeout=1)
    if boot_error:
        raise boot_error[0]
    # Started here, not in the boot thread: a child's parent-death signal (PR_SET_PDEATHSIG) fires
    # when the thread that forked it exits, and the boot thread ends right after the migration;
    # the main thread lives as long as the demo. `migrate` may stay there: that thread waits for it.
    with signals_deferred():
        plane.start()
    log(f"[{since()}] Airflow processes started; waiting for the api-server")
    plane.wait_healthy(progress=log)
    log(f"[{since()}] Airflow api-server healthy at {settings.api_url}")

    visible_at = wait_for_dags(plane.api(), expected, timeout=args.timeout, sidecar=sidecar, control_plane=plane)
    log(f"[{since()}] all {len(expected)} DAGs visible, 0 import errors")
    pulled = pulls.result()
    log(
        f"[{since()}] package images in the local pod runtime: "
        + ", ".join(f"{ref.split('/')[-1].split('@')[0]} ({seconds:.1f}s)" for ref, seconds in sorted(pulled.items()))
    )
    return Platform(
        args=args,
        dirs=dirs,
        aws=aws,
        moto=moto,
        registry=loopback,
        registry_host=registry.host,
        plane=plane,
        pods=pods,
        pushgateway=pushgateway,
        seeded=seeded,
        sidecar=sidecar,
        metrics_port=metrics_port,
        published=published,
        expected=expected,
        started=t0,
        visible_at=visible_at,
    )


def run_dags(platform: Platform, *, timeout: float) -> dict[str, Any]:
    """Run every DAG once on the seeded day (in data order) and print the outcome per DAG."""
    from demoruns import describe_outputs, run_in_order

    _log(
        f"[{time.monotonic() - platform.started:5.1f}s] running every DAG once for {platform.seeded.run_date} "
        "(tasks run their pods in podman)"
    )
    # With bundle delivery there is no sidecar: observability's sidecar_health gets no target
    # (an empty sidecar_url in its conf; the task passes with "0 of 0"), Airflow's own bundle
    # refresh is what delivers the DAGs then.
    extra = {"observability_platform_checks": {"sidecar_url": ""}} if platform.delivery == "bundle" else {}
    reports = run_in_order(
        platform.client(),
        sorted(platform.expected),
        run_date=platform.seeded.run_date,
        timeout=timeout,
        log=_log,
        extra_conf=extra,
    )
    import boto3

    described = describe_outputs(boto3.client("s3"), platform.pushgateway.groups(), platform.seeded.run_date)
    _log("")
    for dag_id, report in reports.items():
        _log(f"  {dag_id}: {report.state if report.outcome is None else report.outcome.describe()}")
        for line in described.get(dag_id, []):
            _log(f"      {line}")
        if report.outcome is not None and not report.outcome.ok:
            for task in report.outcome.tasks:
                for line in task.log_tail:
                    _log(f"      | {task.task_id}: {line}")
    return reports


def report_urls(platform: Platform) -> dict[str, str]:
    """Where the run's reports open in a browser: presigned S3 URLs (valid 7 days), as one would
    share a report from a private bucket, and the Pushgateway's page."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=platform.moto.endpoint_url, region_name="us-east-1")
    day = platform.seeded.run_date.isoformat()

    def get(key: str) -> str:
        return str(
            s3.generate_presigned_url("get_object", Params={"Bucket": "etl-curated", "Key": key}, ExpiresIn=7 * 86400)
        )

    return {
        "data-quality report": get(f"orders/dt={day}/_dq_orders.html"),
        "profile report": get(f"orders/dt={day}/_profile/profile.html"),
        "metrics (Pushgateway)": f"{platform.pushgateway.url}/",
    }


def print_links(platform: Platform) -> None:
    _log("  Outputs (open in a browser):")
    for what, url in report_urls(platform).items():
        _log(f"    {what:22} {url}")
    _log(f"    {'logs and state':22} {platform.args.state_dir}")


def run(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        try:
            platform = start_platform(args, stack)
            settings = platform.settings
            visible = platform.visible_at - platform.started
            _log("")
            _log(f"  Airflow UI: {settings.api_url}/   login: {platform.plane.username} / {platform.plane.password}")
            _log("")
            print_summary(
                platform.published,
                platform.dirs["dags"],
                sidecar_health(platform.metrics_port) if platform.sidecar is not None else None,
                bundles=platform.bundles,
            )
            _log("")
            failed: list[str] = []
            green = None
            if args.runs:
                reports = run_dags(platform, timeout=args.run_timeout)
                failed = [d for d, r in reports.items() if r.outcome is None or not r.outcome.ok]
                green = time.monotonic() - platform.started
                _log("")
                print_links(platform)
                _log("")
            timing = f"time from start to all DAGs visible: {visible:.1f}s" + (
                f", to all {len(platform.expected)} DAG runs successful: {green:.1f}s"
                if green is not None and not failed
                else ""
            )
            if args.once:
                if failed:
                    raise DemoError(
                        f"{len(failed)} of {len(platform.expected)} DAG runs did not succeed: "
                        f"{', '.join(failed)} (task logs: Airflow UI, or {platform.dirs['airflow'] / 'logs'})"
                    )
                _log(
                    f"demo: ok: {timing} (DAG delivery {args.dag_delivery}, sync interval {args.sync_interval:g}s, "
                    "Airflow refresh interval "
                    f"{platform.refresh_interval()}s)"
                )
                return 0
            if failed:
                _log(
                    f"demo: {len(failed)} DAG runs did not succeed: {', '.join(failed)}; see their task logs in the UI"
                )
            _log(f"demo: running ({timing}). Trigger DAGs and read task logs in the UI. Ctrl-C stops everything.")
            while True:
                platform.check_running()
                time.sleep(2)
        finally:
            _STOPPING.set()  # from here on a signal is only noted: the clean-up must finish
            _UNWINDING.set()
            _log("demo: stopping everything it started ...")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from controlplane.errors import ControlPlaneError
    from controlplane.localpods.runtime import RuntimeSetupError

    from tools.bazel.publisher.errors import EXPECTED as PUBLISH_ERRORS
    from tools.testing.registry import RegistryToolMissing
    from tools.testing.servers import ServerStartError

    expected = (DemoError, ControlPlaneError, *PUBLISH_ERRORS, ServerStartError, RegistryToolMissing, RuntimeSetupError)
    with stop_signals():
        try:
            return run(args)
        except _Stop as stop:
            _log(f"demo: {stop}: stopped everything it started")
            return 0
        except expected as exc:
            _write(sys.stderr, f"demo: error: {exc}")
            return 1


if __name__ == "__main__":
    sys.exit(main())
