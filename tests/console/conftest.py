"""The console in a real Chromium against the real service. Reusable by any console test:

    from tests.console.conftest import login, screenshot

    def test_footage_page(service: Service, page: Page) -> None:
        login(page)                       # admin; login(page, "anh", "pw") for others
        page.goto("/#/footage")
        screenshot(page, "footage")

``service`` is one running service for the whole session (the campus clip as a live
camera with an intrusion rule, plus a few cameras that never connect); ``page`` is a
fresh browser context at 1366×768 whose relative URLs point at it, and which fails
the test if the page threw an uncaught JavaScript error.
"""

from __future__ import annotations

import re
import shutil
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import VideoFinder
from tests.e2e.test_service import (
    E2E_ADMIN_PASSWORD,
    Service,
    campus_camera,
    kill_service,
    start_service,
)

try:
    from playwright.sync_api import Browser, Page, Playwright, sync_playwright
except ImportError:  # a venv from before the console: say how to fix it, never skip
    pytest.fail(
        "the console tests need playwright: .venv/bin/pip install -e '.[dev]'", pytrace=False
    )

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".cache" / "test-artifacts" / "screenshots"
ADMIN_PASSWORD = E2E_ADMIN_PASSWORD
VIEWPORT = {"width": 1366, "height": 768}  # the commonest laptop screen in commune offices
# Cameras that never connect: cheap (one retrying thread each), and they give the wall
# offline tiles to lay out next to the live one.
DEAD_CAMERAS = 5
# Headless without the services a desktop browser phones home to: the box is offline.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "chromium is not installed; the console tests drive the system browser: "
            "apt-get install chromium (or make sysdeps as root)",
            pytrace=False,
        )
    return path


# Appended to campus_camera()'s rules list (it ends with one): a high-severity rule so
# the feed has alerts that flash, and a counting line across the walkway so the
# traffic page has bars. Same tracks, so no extra detector work.
CAMPUS_EXTRAS = """      - {type: intrusion, name: walkway-high, zone: walkway, classes: [person],
         severity: high, min_inside_s: 2.0}
      - {type: line_crossing, name: walkway-count, line: middle}
    lines:
      - {name: middle, points: [[0.5, 0.3], [0.5, 0.95]]}
"""


def dead_cameras(count: int) -> str:
    # Port 9 (discard) is closed on the loopback: refused at once, state offline.
    return "".join(
        f"""
  - id: gate-{n}
    name: "Cổng {n}"
    url: rtsp://127.0.0.1:9/stream{n}
"""
        for n in range(1, count + 1)
    )


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory, video: VideoFinder) -> Iterator[Service]:
    tmp = tmp_path_factory.mktemp("console")
    yaml = campus_camera(video("pets2009_vtest_480x360.mp4")) + CAMPUS_EXTRAS
    yaml += dead_cameras(DEAD_CAMERAS)
    svc = start_service(tmp, yaml)
    yield svc
    kill_service(svc)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


def new_page(browser: Browser, service: Service, width: int, height: int) -> Page:
    context = browser.new_context(
        base_url=service.base, viewport={"width": width, "height": height}, locale="vi-VN"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _JS_ERRORS[page] = errors
    return page


_JS_ERRORS: weakref.WeakKeyDictionary[Page, list[str]] = weakref.WeakKeyDictionary()


def js_errors(page: Page) -> list[str]:
    """Uncaught exceptions the console threw in this page so far."""
    return _JS_ERRORS.get(page, [])


@pytest.fixture()
def page(browser: Browser, service: Service) -> Iterator[Page]:
    page = new_page(browser, service, VIEWPORT["width"], VIEWPORT["height"])
    yield page
    errors = js_errors(page)
    page.context.close()
    assert not errors, f"uncaught JavaScript errors in the console: {errors}"


def login(page: Page, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    """Sign in through the login form and wait for the navigation to appear."""
    page.goto("/")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.locator("form.login-form button[type=submit]").click()
    page.locator("#nav a").first.wait_for()


def screenshot(page: Page, name: str) -> Path:
    """Full-page PNG in .cache/test-artifacts/screenshots/<name>.png (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
