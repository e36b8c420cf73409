"""A real headless Chromium driven by Playwright, and a page helper for Airflow 3's UI.

Playwright never downloads a browser here: ``launch_chromium`` starts Debian's ``/usr/bin/chromium``
from the toolchain root (tools/toolchain/packages.txt). ``AirflowUI`` wraps one page: it knows the
UI's routes and the ``data-testid`` hooks of Airflow 3.3's React UI, saves screenshots into the
test's outputs, and collects the page's JavaScript errors (``JsErrors``) for the caller to fail on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Playwright, expect

__all__ = [
    "CHROMIUM",
    "VIEWPORT",
    "AirflowUI",
    "Graph",
    "JsError",
    "JsErrors",
    "launch_chromium",
    "unauthenticated_probe",
]

CHROMIUM = Path("/usr/bin/chromium")
# Headless, no sandbox (tests run as root in a chroot, where Chromium's sandbox cannot start), and
# nothing that would reach the network or write outside the temporary profile.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
VIEWPORT = {"width": 1400, "height": 1200}  # the DAG list's six cards fit without scrolling
TIMEOUT_MS = 30_000  # per UI step; pages drew in 1-5 s here (2 cores shared with other builds)


def launch_chromium(playwright: Playwright) -> Browser:
    if not CHROMIUM.is_file():
        raise FileNotFoundError(f"{CHROMIUM}: no Chromium; run through ./bazelw (its toolchain root installs it)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True)


@dataclasses.dataclass(frozen=True)
class JsError:
    kind: str  # "pageerror" (uncaught exception) or "console.error"
    text: str
    source: str  # the script or resource URL, where the browser names one

    def __str__(self) -> str:
        return f"{self.kind}: {self.text}" + (f" ({self.source})" if self.source else "")


def unauthenticated_probe(error: JsError) -> bool:
    """The UI's first ``GET /ui/config`` without a session answers 401; the UI then shows the login page."""
    return error.kind == "console.error" and error.source.endswith("/ui/config") and "status of 401" in error.text


class JsErrors:
    """Uncaught exceptions and ``console.error`` messages of one page, except those ``allowed``.

    A static file that 404s shows up here too ("Failed to load resource"), as does a React error.
    """

    def __init__(self, page: Page, *, allowed: Callable[[JsError], bool] = lambda _e: False) -> None:
        self.errors: list[JsError] = []
        self._allowed = allowed
        page.on("console", self._on_console)
        page.on("pageerror", self._on_pageerror)

    def _add(self, error: JsError) -> None:
        if not self._allowed(error):
            self.errors.append(error)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self._add(JsError("console.error", message.text, str(message.location.get("url") or "")))

    def _on_pageerror(self, error: Error) -> None:
        self._add(JsError("pageerror", f"{error.name}: {error.message}", ""))

    def summary(self) -> str:
        """``""``, or one line per error under a count."""
        if not self.errors:
            return ""
        lines = "\n  ".join(str(e) for e in self.errors)
        return f"{len(self.errors)} JavaScript error(s):\n  {lines}"

    def check(self, where: str) -> None:
        if self.errors:
            raise AssertionError(f"{where}: {self.summary()}")


@dataclasses.dataclass(frozen=True)
class Graph:
    """What the graph view drew: task ids and (upstream, downstream) edges."""

    nodes: set[str]
    edges: set[tuple[str, str]]


class AirflowUI:
    """One page of Airflow 3's UI at ``base_url``; screenshots go to ``shots``; its JS errors to ``js_errors``."""

    def __init__(
        self, page: Page, *, base_url: str, shots: Path, allowed_errors: Callable[[JsError], bool] = lambda _e: False
    ) -> None:
        self.page = page
        self.base_url = base_url.rstrip("/")
        self.shots = shots
        self.js_errors = JsErrors(page, allowed=allowed_errors)
        page.set_default_timeout(TIMEOUT_MS)

    @contextlib.contextmanager
    def step(self, what: str) -> Iterator[None]:
        """Name the step in a failure (a Playwright timeout: the page never drew it), with the page's JS errors."""
        try:
            yield
        except (Error, AssertionError) as exc:  # expect() raises AssertionError
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
            errors = self.js_errors.summary()
            raise AssertionError(f"{what}: {first}" + (f"; the page had {errors}" if errors else "")) from exc

    def goto(self, path: str) -> None:
        """Open a UI route, e.g. ``/dags``; raise on an HTTP error status."""
        response = self.page.goto(self.base_url + path)
        if response is None or not response.ok:
            status = response.status if response else "no response"
            raise AssertionError(f"GET {self.base_url + path} answered {status}")

    def screenshot(self, name: str) -> Path:
        """Save the viewport as ``<shots>/<name>.png`` (Bazel keeps it under test.outputs/)."""
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def login(self, username: str, password: str, *, shot: str | None = None) -> None:
        """Sign in on the simple auth manager's form; the session cookie then serves every page of the context."""
        with self.step(f"sign in at {self.base_url}/"):
            self.goto("/")  # without a session the UI sends the browser to /auth/login
            self.page.get_by_label("Username").fill(username)
            self.page.get_by_label("Password").fill(password)
            if shot:
                self.screenshot(shot)
            self.page.get_by_role("button", name="Sign in").click()
            self.page.wait_for_url(re.compile(re.escape(self.base_url) + r"/(\?.*)?$"))

    def dag_list(self, expected: int) -> dict[str, list[str]]:
        """Open the DAG list, wait until ``expected`` DAG cards are drawn; return {dag_id: tags} as shown."""
        with self.step(f"DAG list at {self.base_url}/dags, {expected} DAGs"):
            self.goto("/dags")
            cards = self.page.get_by_test_id("dag-card")
            expect(cards).to_have_count(expected, timeout=TIMEOUT_MS)
            shown: dict[str, list[str]] = {}
            for card in cards.all():
                dag_id = card.get_by_test_id("dag-id").inner_text().strip()
                shown[dag_id] = [t.strip() for t in card.locator('a[href^="/dags?tags="]').all_inner_texts()]
            return shown

    def graph(self, dag_id: str) -> Graph:
        """Open ``dag_id``'s page, switch to the graph view and return the task nodes and edges it drew."""
        path = f"/dags/{urllib.parse.quote(dag_id, safe='')}"
        with self.step(f"graph view at {self.base_url}{path}"):
            self.goto(path)
            self.page.get_by_role("button", name=re.compile(r"^Show Graph")).click()
            nodes = self.page.locator(".react-flow__node")
            expect(nodes.first).to_be_visible(timeout=TIMEOUT_MS)
            # the view fetches the structure twice (two /ui/structure/structure_data calls measured):
            # read the edges once the last answer is drawn
            self.page.wait_for_load_state("networkidle")
            ids = set(nodes.evaluate_all("els => els.map(e => e.dataset.id)"))
            labels = self.page.locator(".react-flow__edge").evaluate_all(
                "els => els.map(e => e.getAttribute('aria-label') || '')"
            )
        edges = set()
        for label in labels:  # "Edge from <upstream> to <downstream>"
            found = re.fullmatch(r"Edge from (\S+) to (\S+)", label)
            if not found:
                raise AssertionError(f"graph of {dag_id!r}: unexpected edge label {label!r}")
            edges.add((found.group(1), found.group(2)))
        return Graph(nodes=ids, edges=edges)

    def task_log(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        """Open a task instance's page (its log) and return the log lines the page drew."""
        path = (
            f"/dags/{urllib.parse.quote(dag_id, safe='')}/runs/{urllib.parse.quote(run_id, safe='')}"
            f"/tasks/{urllib.parse.quote(task_id, safe='')}"
        )
        with self.step(f"task log at {self.base_url}{path}"):
            self.goto(path)
            log = self.page.get_by_test_id("virtualized-list")
            expect(log).to_be_visible(timeout=TIMEOUT_MS)
            expect(log).to_contain_text("[base]", timeout=TIMEOUT_MS)
            full = self.page.get_by_role("button", name=re.compile(r"full\s*screen", re.IGNORECASE))
            if full.count():  # the log alone, full width, in a dialog: the screenshot shows whole lines
                full.first.click()
                log = self.page.get_by_role("dialog").get_by_test_id("virtualized-list")
                expect(log).to_contain_text("[base]", timeout=TIMEOUT_MS)
            return [line for line in log.inner_text().splitlines() if line.strip()]
