"""Browser tests: the app under gunicorn on a free port, driven by Playwright in Chromium.

Debian's Chromium is used (``/usr/bin/chromium``); where it is missing the browser tests are
skipped with that reason, except under CI=true where that is a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import DATABASE_URL, REDIS_URL, base_config, free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "tests" / "e2e" / "screenshots"
AXE = ROOT / "tests" / "e2e" / "vendor" / "axe-4.14.1.min.js"

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM}; CI must run the browser tests")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@contextlib.contextmanager
def serve(app, tmp_path, **extra_env):
    """gunicorn serving the app against the test database (``extra_env`` added to its
    environment); yields its base URL."""
    port = free_port()
    cfg = base_config()
    env = {
        **os.environ,
        "LECTERN_ENV": "development",
        "LECTERN_INSTANCE": str(tmp_path / "instance"),
        "SECRET_KEY": cfg["SECRET_KEY"],
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "BASE_URL": f"http://127.0.0.1:{port}",
        "OUTBOX_THREAD": "false",
        "MAIL_SERVER": app.config.get("MAIL_SERVER") or "",
        "MAIL_PORT": str(app.config.get("MAIL_PORT") or 25),
        **extra_env,
    }
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "wsgi:app",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--access-logfile",
            "-",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            log.close()
            raise RuntimeError(
                "gunicorn did not start:\n" + (tmp_path / "gunicorn.log").read_text()
            )
        time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def live_server(app, tmp_path):
    """gunicorn serving the app against the test database; yields its base URL."""
    with serve(app, tmp_path) as url:
        yield url


class PageWatch:
    """Collects console errors and CSP violations of a page."""

    def __init__(self, page):
        self.page = page
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, msg):
        if msg.type in ("error", "warning") and (
            msg.type == "error" or "Content Security Policy" in msg.text
        ):
            self.errors.append(f"{msg.type}: {msg.text}")

    def shot(self, name: str, full_page: bool = True) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        # caret="initial": hiding the caret leaves style="" on inputs, which htmx copies on swaps
        self.page.screenshot(path=str(path), full_page=full_page, caret="initial")
        return path

    def axe(self, exclude_rules: tuple[str, ...] = ()) -> list[dict]:
        """axe-core violations on the current page (vendored, injected by Playwright)."""
        # Evaluated over the DevTools protocol, so the page's CSP (rightly) does not block it.
        if not self.page.evaluate("() => typeof window.axe !== 'undefined'"):
            self.page.evaluate(AXE.read_text() + "\n;undefined")
        result = self.page.evaluate(
            "async (rules) => { const r = await axe.run(document, {rules}); return r.violations; }",
            {rule: {"enabled": False} for rule in exclude_rules},
        )
        return [
            {"id": v["id"], "help": v["help"], "nodes": [n["html"] for n in v["nodes"]][:3]}
            for v in result
        ]

    def assert_clean(self):
        assert self.errors == [], json.dumps(self.errors, indent=2)


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()


@pytest.fixture
def page(context):
    p = context.new_page()
    p.set_default_timeout(10_000)
    watch = PageWatch(p)
    p.watch = watch
    return p
