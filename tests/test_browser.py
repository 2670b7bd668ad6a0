"""The course as a learner sees it: JupyterLab in headless Chromium, each notebook Run All.

Strict nbval proves the stored outputs; this proves every notebook runs in the browser, top to
bottom, in a fresh kernel each, and that notebook 03's live dashboard does what its buttons say.
Run it alone with `pytest -m browser`; it prints where the screenshots went. It needs Chromium
(Debian's `chromium` package; Playwright's own browser download is not used) and Playwright for
Python (the dev extra); it is skipped with a one-line reason when either is missing.

Slow (marked `slow`): every notebook runs a second time, in a real browser, one after the
other; strict nbval cannot see what only the browser shows, so nothing here can be cut. The
tests share one page (`Window`), as a learner keeps one JupyterLab tab: each notebook is opened
from the file browser, run, saved, and its kernel shut down and tab closed before the next.
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Every wait has a bound, so a hang fails the test instead of stalling the suite; the whole
# file stays under 3 minutes (75 s alone on a quiet two-core machine, most of it the kernels').
SERVER_START_S = 90
NOTEBOOK_RUN_MS = 120_000

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _chromium() -> str | None:
    named = os.environ.get("JOBCONTROLLER_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = _chromium()
if CHROMIUM is None:
    pytest.skip(
        "no Chromium found (apt-get install chromium, or set JOBCONTROLLER_CHROMIUM)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed (the dev extra)"
)


@dataclass(frozen=True)
class Lab:
    """A running JupyterLab: where it serves, its token and the folder it serves."""

    url: str
    token: str
    folder: Path

    def api(self, method: str, path: str) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab as `tasks.py course` starts it (loopback, a token, no browser, --allow-root
    as root), on a copy of the notebooks so that Run All and saving never touch the repo."""
    home = tmp_path_factory.mktemp("lab")
    folder = home / "notebooks"
    shutil.copytree(ROOT / "notebooks", folder, ignore=shutil.ignore_patterns(".ipynb_*"))
    # Answer the "get notified about Jupyter news?" toast, as tasks.py does, so it covers no
    # screenshot; user settings and workspaces live in the temporary home.
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    # Every cell in the page, not only those scrolled into view (JupyterLab 4 renders a long
    # notebook's cells lazily by default), so the test can read every prompt.
    tracker = home / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    # And start the notebook's own kernel without asking (a learner would press "Select").
    (tracker / "tracker.jupyterlab-settings").write_text(
        '{"windowingMode": "none", "autoStartDefaultKernel": true}'
    )
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    token = secrets.token_hex(16)
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--notebook-dir={folder}",
        "--LabApp.news_url=None",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    server = subprocess.Popen(
        command,
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    seen: list[str] = []
    try:
        # Ready when the server logs the URL it serves (read from its output, not by sleeping).
        while (line := lines.get(timeout=SERVER_START_S)) is not None:
            seen.append(line)
            if url in line:
                break
        else:
            pytest.fail("JupyterLab exited before serving:\n" + "".join(seen[-20:]))
        yield Lab(url, token, folder)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[object]:
    """Headless Chromium from the system, driven by Playwright."""
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


class Window:
    """The one JupyterLab page the file's tests share, as a learner keeps one browser tab open
    and opens each notebook from the file browser: loading JupyterLab itself is about 3 s of
    each notebook's 7. A test that fails leaves the page broken, and the next gets a new one."""

    def __init__(self, browser: object, lab: Lab) -> None:
        self._browser, self._lab = browser, lab
        self._page: object | None = None
        self.broken = False

    def page(self) -> object:
        if self._page is not None and self.broken:
            self._page.close()
            self._page = None
        if self._page is None:
            self._page = self._browser.new_page(viewport={"width": 1400, "height": 1000})
            # A workspace of this page's own, empty at first.
            self._page.goto(f"{self._lab.url}/lab/workspaces/course?token={self._lab.token}")
            self.broken = False
        return self._page

    def close(self) -> None:
        if self._page is not None:
            self._page.close()


@pytest.fixture(scope="module")
def window(browser: object, lab: Lab) -> Iterator[Window]:
    shared = Window(browser, lab)
    yield shared
    shared.close()


@pytest.fixture(scope="module")
def screenshots(lab: Lab, pytestconfig: pytest.Config) -> Path:
    """The folder the screenshots go to, printed once (also without -s)."""
    folder = Path(os.environ.get("JOBCONTROLLER_SCREENSHOTS", ROOT / "build" / "browser"))
    folder.mkdir(parents=True, exist_ok=True)
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if capture is not None:
        with capture.global_and_fixture_disabled():
            print(f"\nbrowser screenshots: {folder}", flush=True)
    return folder


_PROMPT_DONE = re.compile(r"^\[\d+\]:$")


def _command(page: object, command: str) -> None:
    # JupyterLab's own commands, through its menu items, as a learner would click them.
    page.locator(f'li.lm-Menu-item[data-command="{command}"]').click()


def _run_all(page: object, name: str) -> object:
    """Open `name` from the file browser, clear its outputs, Run All, wait until every code
    cell has run and the kernel is idle; return the notebook's locator."""
    page.locator(".jp-DirListing-item", has_text=f"{name}.ipynb").dblclick()
    notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook")
    notebook.locator(".jp-CodeCell").first.wait_for(timeout=60_000)
    # Run All before the kernel is connected would run nothing: wait for the status bar's
    # "Python 3 (ipykernel) | Idle", as a learner waits for it.
    page.locator(".jp-StatusBar-Widget").get_by_text("| Idle").first.wait_for(timeout=60_000)
    # Clear the stored outputs first, so every prompt number seen afterwards is this run's.
    page.locator("li.lm-MenuBar-item", has_text="Edit").click()
    _command(page, "editmenu:clear-all")
    page.locator("li.lm-MenuBar-item", has_text="Run").click()
    _command(page, "runmenu:run-all")
    prompts = notebook.locator(".jp-CodeCell .jp-InputPrompt")
    count = prompts.count()
    assert count > 0
    page.wait_for_function(
        """([selector, count]) => {
            const prompts = [...document.querySelectorAll(selector)];
            return prompts.length === count
                && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
        }""",
        arg=[".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt", count],
        timeout=NOTEBOOK_RUN_MS,
    )
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
        timeout=30_000
    )
    assert all(_PROMPT_DONE.match(p.strip()) for p in prompts.all_text_contents())
    return notebook


def _shut_down(lab: Lab) -> None:
    for session in lab.api("GET", "/api/sessions") or []:  # one kernel at a time
        lab.api("DELETE", f"/api/sessions/{session['id']}")


def _close_all(page: object) -> None:
    """File > Close All Tabs; a notebook with unsaved changes (the dashboard's) is discarded."""
    page.locator("li.lm-MenuBar-item", has_text="File").click()
    _command(page, "application:close-all")
    closed_or_asking = (
        "() => !document.querySelector('.jp-NotebookPanel')"
        " || !!document.querySelector('.jp-Dialog')"
    )
    page.wait_for_function(closed_or_asking, timeout=30_000)
    discard = page.locator(".jp-Dialog .jp-Dialog-button", has_text="Discard")
    if discard.count():
        discard.first.click()
    page.locator(".jp-NotebookPanel").first.wait_for(state="detached", timeout=30_000)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_notebook_runs_all_in_the_browser_without_unexpected_errors(
    lab: Lab, window: Window, screenshots: Path, name: str
) -> None:
    """Opened in JupyterLab and Run All in a fresh kernel, every code cell runs, and only
    cells tagged raises-exception show an error."""
    page = window.page()
    try:
        notebook = _run_all(page, name)
        # The last code cell and its output, rather than the closing text.
        notebook.locator(".jp-CodeCell").last.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / f"{name}.png"))
        page.locator("li.lm-MenuBar-item", has_text="File").click()
        _command(page, "docmanager:save")
        page.locator(".lm-TabBar-tab.jp-mod-dirty").wait_for(state="detached", timeout=30_000)
        _shut_down(lab)
        _close_all(page)
    except Exception:
        window.broken = True
        try:
            # What the page looked like when it went wrong, beside the other screenshots.
            page.screenshot(path=str(screenshots / f"{name}-FAILED.png"), full_page=True)
        finally:
            _shut_down(lab)
        raise

    # What the browser ran, as JupyterLab saved it: every code cell executed in order, and
    # errors only where the notebook expects them.
    saved = nbformat.read(lab.folder / f"{name}.ipynb", as_version=4)
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    unexpected = [
        f"cell {index}: {output.ename}: {output.evalue}"
        for index, cell in enumerate(saved.cells)
        if "raises-exception" not in cell.metadata.get("tags", [])
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]
    assert unexpected == [], unexpected
    expected = [c for c in code if "raises-exception" in c.metadata.get("tags", [])]
    for cell in expected:
        assert any(o.output_type == "error" for o in cell.outputs), cell.source[:80]


# Notebook 03's live dashboard (its last cell), pressed as its text tells a learner to: each
# press, what the panel must then show (besides the press counter in its last action line).
DASHBOARD_PRESSES = [
    ("trigger once", ["-> SUCCEEDED", "runs 1, failures 0"]),
    ("trigger once", ["-> SKIPPED SLOT_DONE", "runs 1, failures 0"]),
    ("fire N at once", ["8 triggers at once for slot 09:00", "runs 1, failures 0"]),
    ("advance clock", ["clock advanced by 1 hour", "(slot 10:00)"]),
    ("fire N at once", ["the workload ran 1 time(s)", "runs 2, failures 0"]),
    ("next run fails", ["the next run will fail", "false / FAIL"]),
    ("advance clock", ["(slot 11:00)"]),
    ("trigger once", ["-> FAILED", "runs 2, failures 1 (1 in a row)"]),
    ("next run crashes", ["the next run will crash", "false / CRASH"]),
    ("advance clock", ["(slot 12:00)"]),
    ("trigger once", ["-> crashed", "RUNNING (holder"]),
    ("pause", ["paused: every trigger now skips", "true / -"]),
    ("resume", ["resumed: triggers may run again", "false / -"]),
]


def test_the_live_dashboard_buttons_do_what_they_say(
    lab: Lab, window: Window, screenshots: Path
) -> None:
    """Each button of notebook 03's live dashboard changes its panel as the button says, and
    every press moves the press counter, also a press that changes nothing in the item."""
    name = "03_duplicate_triggers"
    page = window.page()
    try:
        notebook = _run_all(page, name)
        live = notebook.locator(".jp-CodeCell").last.locator(".jp-OutputArea")
        panel = live.locator(".widget-html-content")
        panel.get_by_text("last action: ready: press a button").wait_for(timeout=30_000)
        for press, (label, shows) in enumerate(DASHBOARD_PRESSES, start=1):
            live.get_by_role("button", name=label, exact=True).click()
            panel.get_by_text(f"last action: press {press} ").wait_for(timeout=30_000)
            text = panel.inner_text()
            missing = [want for want in shows if want not in text]
            assert missing == [], f"after pressing {label!r} (press {press}): {missing}\n{text}"
        live.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshots / f"{name}-dashboard.png"))
        _shut_down(lab)
        _close_all(page)
    except Exception:
        window.broken = True
        try:
            page.screenshot(path=str(screenshots / f"{name}-dashboard-FAILED.png"), full_page=True)
        finally:
            _shut_down(lab)
        raise
