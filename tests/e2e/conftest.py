"""Browser tests (make e2e): Playwright for Python driving Debian's Chromium, offline.

They run only with LABKIT_E2E=1 (``make e2e`` sets it), so ``make test`` never needs a browser.
Every page is opened with the network blocked: a request to any host other than this machine is
aborted and counted.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]

if not os.environ.get("LABKIT_E2E"):
    collect_ignore_glob = ["test_*.py"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _local(url: str) -> bool:
    from urllib.parse import urlparse
    return urlparse(url).hostname in ("127.0.0.1", "localhost", "::1") or url.startswith(("data:", "blob:"))


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make e2e does it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


class Page:
    """A page with its console errors, uncaught exceptions and blocked requests recorded."""

    def __init__(self, browser, width: int = 1300, height: int = 900):
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.context.route("**/*", self._route)
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def _route(self, route):
        if _local(route.request.url):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort()

    def close(self):
        self.context.close()


@pytest.fixture
def page(browser):
    p = Page(browser)
    yield p
    p.close()


# ----------------------------------------------------------------------------- JupyterLab
@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    """JupyterLab on a copy of book/ and labs/ (Run All must not write outputs into the repository)."""
    root = tmp_path_factory.mktemp("lab")
    for folder in ("book", "labs"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = root / "lab-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell stays in the page (JupyterLab 4 otherwise detaches cells scrolled out of view)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(root / "lab-settings"), "LABKIT_PROFILE": "smoke", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("LABKIT_HEADLESS", None)
    env.pop("PLOTLY_RENDERER", None)
    cmd = [str(Path(sys.executable).parent / "jupyter-lab"), "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--ServerApp.disable_check_xsrf=True", "--allow-root"]
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
            break
        if proc.poll() is not None:
            raise RuntimeError((root / "lab.log").read_text())
        time.sleep(0.5)
    else:
        proc.terminate()
        raise RuntimeError("JupyterLab did not start in 120 s:\n" + (root / "lab.log").read_text())
    yield {"url": url, "token": token, "root": root}
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


# ----------------------------------------------------------------------------- the built book
BOOK = Path(os.environ.get("LABKIT_E2E_BOOK", ROOT / "_build" / "smoke" / "_build" / "html"))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def book_server():
    if not (BOOK / "index.html").exists():
        pytest.fail(f"no built book at {BOOK}: run make book-smoke first (make e2e does)")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(BOOK)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


_visits: dict[str, dict] = {}


@pytest.fixture
def visit(book_server, browser):
    """Open a page of the built book once, at 1300 x 900 with the network blocked, and keep what every check reads:
    ``check`` (probes.CHECK), ``measure`` (probes.MEASURE), the console ``errors`` and the ``blocked`` requests."""
    from probes import CHECK, MEASURE

    def get(rel: str) -> dict:
        if rel not in _visits:
            p = Page(browser, width=1300, height=900)
            try:
                p.page.goto(f"{book_server}/{rel}", wait_until="load", timeout=60_000)
                check = p.page.evaluate(CHECK)
                measure = p.page.evaluate(MEASURE)
                _visits[rel] = {"check": check, "measure": measure, "errors": list(p.errors), "blocked": list(p.blocked)}
            finally:
                p.close()
        return _visits[rel]
    return get
