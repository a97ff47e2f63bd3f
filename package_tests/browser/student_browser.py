"""A student's browser for the browser tests: a Jupyter server on 127.0.0.1 serving one folder, and
Debian's Chromium driven by Playwright, with every request that does not go to that server blocked.

Chromium is Debian's (`apt-get install chromium`): Playwright's own browser download cannot be
reached here, so Playwright is pointed at /usr/bin/chromium.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import nbformat
from playwright.sync_api import Browser, Locator, Page, Route, sync_playwright

from backprop_hw.paths import ROOT

SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
# --no-sandbox: Chromium's sandbox refuses root; the rest keep Chromium from calling Google's servers, which this
# machine's closed network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TOKEN = "student-browser-test"
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on show
STDERR = '.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]'
INDICATOR = f"{PANEL} .jp-Notebook-ExecutionIndicator"  # in the toolbar of JupyterLab and Notebook 7
RUN_TIMEOUT_MS = 300_000
# JupyterLab's settings for the test server: no autosave, so that an unsaved edit stays unsaved
# however long a step takes, and no offer of Jupyter's news (a box over the notebook).
SETTINGS = {"@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
            "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's headless Chromium, closed on the way out whatever happened."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def jupyter_server(root: Path, home: Path) -> Iterator[str]:
    """JupyterLab (which also serves Notebook 7) on a free port of 127.0.0.1, serving `root`, with its
    configuration, settings and runtime files in `home`; yields its base URL. The server and its
    kernels are stopped on the way out whatever happened."""
    for name, settings in SETTINGS.items():
        (home / "settings" / name).parent.mkdir(parents=True, exist_ok=True)
        (home / "settings" / name).write_text(json.dumps(settings))
    port = free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_DATA_DIR": str(home / "data"),
           "JUPYTER_RUNTIME_DIR": str(home / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces")}
    log = home / "server.log"
    with log.open("w") as output:
        server = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
                                   "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={TOKEN}",
                                   f"--ServerApp.root_dir={root}"],
                                  env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_server(url, server, log)
        yield url
    finally:
        stop(server)


def wait_for_server(url: str, server: subprocess.Popen, log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the Jupyter server exited with code {server.returncode}:\n{log.read_text()}")
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the Jupyter server did not answer within {seconds} s:\n{log.read_text()}")


def stop(server: subprocess.Popen) -> None:
    """Stop the server (which shuts its kernels down), then anything left in its process group."""
    server.terminate()
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
    try:
        os.killpg(server.pid, signal.SIGKILL)  # kernels that outlived the server; the group is the server's own
    except ProcessLookupError:
        pass


def block_all_but(page: Page, origin: str | None) -> list[str]:
    """Abort every request of `page` that leaves the machine and does not go to `origin`; the list
    fills with the blocked URLs. Requests wait for the handler, which runs only inside Playwright
    calls: wait with Playwright (page.wait_for_...), never with time.sleep."""
    blocked: list[str] = []

    def route(route: Route) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:")) or origin is not None and url.startswith(origin + "/"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", route)
    return blocked


def screenshot(page: Page, name: str, showing: Locator | None = None, full_page: bool = False) -> None:
    """Save what the page shows (scrolled to the end of `showing`), or all of it, as
    build/screenshots/<name>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if showing is not None:
        showing.evaluate("element => element.scrollIntoView({block: 'end'})")
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page)


class NotebookTab:
    """A notebook open in JupyterLab or Notebook 7, used through the page as a student uses it.

    Cells are found by their index in the saved file, which is their place on the page."""

    def __init__(self, page: Page, server: str, root: Path, path: Path, ui: str) -> None:
        self.page, self.path, self.ui = page, path, ui
        relative = path.relative_to(root)
        workspace = quote(relative.parent.as_posix())  # JupyterLab would reopen other tests' notebooks
        url = (f"{server}/lab/workspaces/{workspace}/tree/{quote(relative.as_posix())}" if ui == "lab"
               else f"{server}/notebooks/{quote(relative.as_posix())}")
        self.blocked = block_all_but(page, server)
        page.goto(f"{url}?token={TOKEN}")
        kernel = f"{PANEL} .jp-Toolbar-kernelName"
        self.wait_until_settled(f"/Python/.test(document.querySelector('{kernel}')?.textContent)")  # kernel started
        self.sources = [cell.source for cell in nbformat.read(path, as_version=4).cells]

    def index(self, start: str) -> int:
        """The index of the one cell whose source starts with `start`."""
        [index] = [i for i, source in enumerate(self.sources) if source.startswith(start)]
        return index

    def cell(self, index: int) -> Locator:
        return self.page.locator(f"{PANEL} .jp-Notebook .jp-Cell").nth(index)

    def output(self, index: int) -> str:
        """What the cell shows below itself (the text of its outputs, visible or scrolled away)."""
        outputs = self.cell(index).locator(".jp-OutputArea-output")
        return "\n".join(outputs.nth(i).text_content() for i in range(outputs.count()))

    def stderr_boxes(self) -> list[str]:
        boxes = self.page.locator(f"{PANEL} {STDERR}")
        return [boxes.nth(i).text_content() for i in range(boxes.count())]

    def menu(self, menu: str, item: str) -> None:
        self.page.get_by_role("menuitem", name=menu, exact=True).click()
        self.page.get_by_role("menuitem", name=item, exact=True).click()

    def until_idle(self, action: Callable[[], None]) -> None:
        """Do `action`, then wait until the notebook has run everything it scheduled: the toolbar's
        kernel indicator (which JupyterLab may redraw) turned busy, and it has been idle, with no
        cell waiting (`[*]`), for 1.5 s (between two cells of Run All it is idle for a moment)."""
        self.page.evaluate("""selector => {
            window.sawBusy = false;
            const watch = () => {
                if (document.querySelector(selector)?.dataset.status === 'busy') window.sawBusy = true;
            };
            new MutationObserver(watch).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                                attributeFilter: ['data-status']});
        }""", INDICATOR)
        self.page.bring_to_front()  # JupyterLab draws on animation frames, which a tab behind others lacks
        action()
        self.wait_until_settled("window.sawBusy")

    def wait_until_settled(self, condition: str) -> None:
        """Wait until `condition` (JavaScript) holds and the kernel has been idle, with no cell
        waiting, for 1.5 s."""
        self.page.wait_for_function(f"""() => {{
            const idle = document.querySelector('{INDICATOR}')?.dataset.status === 'idle' && ![...document
                .querySelectorAll('{PANEL} .jp-InputPrompt')].some(prompt => prompt.textContent.includes('*'));
            if (!({condition}) || !idle) {{
                window.idleSince = null;
                return false;
            }}
            window.idleSince ??= performance.now();
            return performance.now() - window.idleSince > 1500;
        }}""", polling=100, timeout=RUN_TIMEOUT_MS)  # time-based: animation frames stop in a tab behind

    def run_all(self) -> None:
        self.until_idle(lambda: self.menu("Run", "Run All Cells"))

    def run_all_above(self, index: int) -> None:
        self.select(index)
        self.until_idle(lambda: self.menu("Run", "Run All Above Selected Cell"))

    def select(self, index: int) -> None:
        """Select a cell in command mode, as a click on its left margin does."""
        self.cell(index).locator(".jp-InputPrompt").click()

    def run(self, index: int, seeing: str | None = None) -> None:
        """Run one cell with Shift+Enter (and, if given, wait until its output shows `seeing` while it runs)."""
        self.select(index)

        def run_it() -> None:
            self.page.keyboard.press("Shift+Enter")
            if seeing is not None:
                self.cell(index).locator(".jp-OutputArea-output", has_text=seeing).first.wait_for(timeout=RUN_TIMEOUT_MS)

        self.until_idle(run_it)

    def type_into(self, index: int, source: str) -> None:
        """Replace the cell's code with `source`, as if typed in its editor."""
        editor = self.cell(index).locator(".cm-content")
        editor.click()
        self.page.keyboard.press("Control+A")
        self.page.keyboard.insert_text(source)  # one insertion: no auto-indent or bracket closing
        self.page.keyboard.press("Escape")

    def save(self) -> None:
        """Save with Ctrl+S and wait until the server has written the file."""
        with self.page.expect_response(lambda response: response.request.method == "PUT"
                                       and "/api/contents/" in response.url) as saved:
            self.page.keyboard.press("Control+S")
        assert saved.value.ok, f"saving failed: {saved.value.status}"
