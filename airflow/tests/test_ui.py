"""Airflow 3's UI in a real headless Chromium, against the demo's own platform.

`demo.start_platform` brings up moto S3, docker-registry, the publisher, the sidecar and Airflow
(api-server, scheduler, dag-processor) as `./bazelw run //:demo` does. A browser context signs in
once as the demo's admin (password from the simple auth manager's passwords file); then each step
is one test on a fresh page of that context, in file order:

  test_dag_list_shows_every_package_dag_with_its_tags   every spec's DAG, with its tags
  test_graph_view_draws_every_task_and_dependency       one DAG's graph: its tasks and edges
  test_task_log_shows_the_containers_output             a finished task's log: its pod's output
  test_data_quality_report_renders                      file_processing's DQ report (HTML in S3)

Every page is checked for JavaScript errors (uncaught exceptions, console errors, which include
any asset that fails to load) when its step ends; a failing step also leaves a screenshot
`FAILED-<test>.png`. Screenshots go to $TEST_UNDECLARED_OUTPUTS_DIR, so a reviewer finds them
under bazel-testlogs/airflow/test_ui/test.outputs/.

Adding a step: write `def test_<what>(ui: AirflowUI, platform: demo.Platform) -> None` below the
others, drive `ui.page` (add a method to `browser.AirflowUI` for anything another step may reuse),
and save `ui.screenshot("NN-<what>")`. Steps that need finished DAG runs take the `runs` fixture:
the orders ingest and its data-quality DAG, run once for the module as the demo runs them (their
pods in podman).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import demo
import demoruns
import pytest
import yaml
from browser import VIEWPORT, AirflowUI, launch_chromium, unauthenticated_probe
from controlplane.settings import ADMIN_USER
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

ROOT = Path(__file__).parent.parent.parent  # the workspace root (runfiles _main under Bazel)


@dataclasses.dataclass(frozen=True)
class Spec:
    """What a DAG spec (packages/<pkg>/dags/<dag_id>.yaml) says the UI must show."""

    package: str
    dag_id: str
    tags: list[str]
    tasks: set[str]
    edges: set[tuple[str, str]]  # (upstream, downstream)


def read_specs() -> dict[str, Spec]:
    specs: dict[str, Spec] = {}
    for package in demo.PACKAGES:
        files = sorted((ROOT / "packages" / package / "dags").glob("*.yaml"))
        assert files, f"no DAG specs under {ROOT / 'packages' / package / 'dags'}"
        for path in files:
            raw = yaml.safe_load(path.read_text())
            tasks = raw["tasks"]
            specs[raw["dag_id"]] = Spec(
                package=package,
                dag_id=raw["dag_id"],
                tags=sorted(raw.get("tags") or []),
                tasks={t["task_id"] for t in tasks},
                edges={(up, t["task_id"]) for t in tasks for up in t.get("upstream") or []},
            )
    return specs


@dataclasses.dataclass
class Session:
    context: BrowserContext
    logged_in_at: float  # time.monotonic()


@pytest.fixture(scope="module")
def specs() -> dict[str, Spec]:
    return read_specs()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: Bazel's undeclared outputs (kept after the test), else a temp folder."""
    out = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
    return Path(out) if out else tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[demo.Platform]:
    """The demo's platform with its defaults (sidecar interval 5 s), state in a temp folder."""
    build = demo.find_build_dir()
    if build is None:
        pytest.fail("no build outputs of the packages in the runfiles (//airflow:demo_lib's data)")
    args = demo.parse_args(["--state-dir", str(tmp_path_factory.mktemp("ui") / "state"), "--build-dir", str(build)])
    with contextlib.ExitStack() as stack:
        yield demo.start_platform(args, stack)


@pytest.fixture(scope="module")
def runs(platform: demo.Platform) -> dict[str, demoruns.DagRunReport]:
    """data_pipeline_orders_daily, then file_processing_orders_quality, as the demo runs them."""
    reports = demoruns.run_in_order(
        platform.client(),
        ["data_pipeline_orders_daily", "file_processing_orders_quality"],
        run_date=platform.seeded.run_date,
        timeout=600,
        log=print,
    )
    for dag_id, report in reports.items():
        assert report.outcome is not None and report.outcome.ok, (
            dag_id,
            report.state,
            report.outcome and report.outcome.failure_detail(),
        )
    return reports


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def session(browser: Browser, platform: demo.Platform, shots: Path) -> Iterator[Session]:
    """A browser context signed in as the demo's admin, the password read from the passwords file.

    Chromium starts before the platform, as a user's browser is already open: the time to the DAG
    list counts the UI, not the browser's start-up.
    """
    password = json.loads(platform.settings.passwords_file.read_text())[ADMIN_USER]
    context = browser.new_context(viewport=VIEWPORT)
    login = AirflowUI(
        context.new_page(), base_url=platform.settings.api_url, shots=shots, allowed_errors=unauthenticated_probe
    )
    try:
        login.login(ADMIN_USER, password, shot="01-login")
    except AssertionError:
        login.screenshot("FAILED-login")
        raise
    login.js_errors.check("login")
    login.page.close()
    yield Session(context=context, logged_in_at=time.monotonic())
    context.close()


@pytest.fixture()
def ui(session: Session, platform: demo.Platform, shots: Path, request: pytest.FixtureRequest) -> Iterator[AirflowUI]:
    """A fresh page of the signed-in context; its JavaScript errors fail the step."""
    view = AirflowUI(session.context.new_page(), base_url=platform.settings.api_url, shots=shots)
    failed_before = request.session.testsfailed
    yield view
    if request.session.testsfailed > failed_before:
        view.screenshot(f"FAILED-{request.node.name}")
    view.page.close()
    platform.check_running()
    view.js_errors.check(request.node.name)


def test_dag_list_shows_every_package_dag_with_its_tags(
    ui: AirflowUI, platform: demo.Platform, session: Session, specs: dict[str, Spec]
) -> None:
    shown = ui.dag_list(expected=len(specs))
    rendered_at = time.monotonic()
    ui.screenshot("02-dag-list")
    for package in demo.PACKAGES:
        want = {s.dag_id: s.tags for s in specs.values() if s.package == package}
        got = {dag_id: sorted(tags) for dag_id, tags in shown.items() if dag_id in want}
        assert got == want, f"DAG list, package {package!r}: shows {got!r}, the specs say {want!r}"
    assert set(shown) == set(specs), f"DAG list shows DAGs no spec names: {sorted(set(shown) - set(specs))!r}"
    start = platform.started
    print(
        f"ui: demo start -> DAG list rendered in Chromium: {rendered_at - start:.1f}s (all "
        f"{len(specs)} DAGs in the REST API at {platform.visible_at - start:.1f}s, signed in at "
        f"{session.logged_in_at - start:.1f}s)"
    )


def test_graph_view_draws_every_task_and_dependency(ui: AirflowUI, specs: dict[str, Spec]) -> None:
    # the DAG with the most dependencies (then tasks): the graph has edges to check, not only boxes
    spec = max(sorted(specs.values(), key=lambda s: s.dag_id), key=lambda s: (len(s.edges), len(s.tasks)))
    assert spec.edges, "no DAG spec has a dependency between tasks"
    graph = ui.graph(spec.dag_id)
    ui.screenshot(f"03-graph-{spec.dag_id}")
    assert graph.nodes == spec.tasks, f"graph of {spec.dag_id!r}: draws tasks {sorted(graph.nodes)!r}"
    assert graph.edges == spec.edges, f"graph of {spec.dag_id!r}: draws edges {sorted(graph.edges)!r}"


def test_task_log_shows_the_containers_output(ui: AirflowUI, runs: dict[str, demoruns.DagRunReport]) -> None:
    outcome = runs["data_pipeline_orders_daily"].outcome
    assert outcome is not None
    lines = ui.task_log(outcome.dag_id, outcome.run_id, "ingest_orders")
    ui.screenshot("04-task-log-ingest_orders")
    text = "\n".join(lines)
    assert "Running pod etl-jobs/ingest-orders-" in text, text[-2000:]  # the local pod runtime
    assert "[base]" in text and "job.end" in text, text[-2000:]  # the container's own log lines
    assert "finished: exit code 0" in text, text[-2000:]


def test_data_quality_report_renders(
    ui: AirflowUI, platform: demo.Platform, runs: dict[str, demoruns.DagRunReport]
) -> None:
    del runs  # the DAG run that wrote the report
    url = demo.report_urls(platform)["data-quality report"]
    with ui.step(f"data-quality report at {url}"):
        response = ui.page.goto(url)
        assert response is not None and response.ok, f"GET {url} answered {response and response.status}"
        expect(ui.page).to_have_title("Data quality of orders: passed")
        rows = ui.page.locator("table tr")
        expect(rows).to_have_count(12 + 1)  # the orders suite's 12 expectations and the header
        expect(ui.page.get_by_text("expect_column_values_to_be_unique:order_id")).to_be_visible()
    ui.screenshot("05-data-quality-report")
