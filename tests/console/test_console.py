"""The operator console in real Chromium against the real service: the campus clip as
a live camera raises real alerts, recorded footage gives real clips. One service for
the module (see conftest.py); tests do not depend on each other's order."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.console.conftest import (
    DEAD_CAMERAS,
    ROOT,
    js_errors,
    login,
    new_page,
    screenshot,
)
from tests.e2e.test_service import Service, wait_for

pytestmark = pytest.mark.e2e

ALERT_TIMEOUT_S = 120  # first alerts come ~30 s after start; slower on a busy 2-core box
CLIP_TIMEOUT_S = 60  # an open incident's clip needs its first 10 s segment written
CONSOLE_DIR = ROOT / "dashboards" / "console"


def api_get(service: Service, path: str, **params: Any) -> Any:
    response = httpx.get(f"{service.base}{path}", params=params, headers=service.headers)
    assert response.status_code == 200, response.text
    return response.json()


def vietnam_local_input(ts: float) -> str:
    """What <input type=datetime-local> holds for ``ts`` in Asia/Ho_Chi_Minh."""
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(ts + 7 * 3600))


def test_static_shell_is_served_with_security_headers(service: Service) -> None:
    index = httpx.get(f"{service.base}/")
    assert index.status_code == 200
    assert "/console/app.js" in index.text
    csp = index.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert index.headers["x-frame-options"] == "DENY"
    assert index.headers["x-content-type-options"] == "nosniff"
    assert index.headers["referrer-policy"] == "same-origin"
    module = httpx.get(f"{service.base}/console/pages/index.js")
    assert module.status_code == 200
    assert module.headers["content-type"].startswith("text/javascript")
    # Nothing outside dashboards/console, however the path is spelled.
    for sneaky in ("/console/..%2f..%2fpyproject.toml", "/console/%2e%2e/%2e%2e/README.md"):
        assert httpx.get(f"{service.base}{sneaky}").status_code == 404, sneaky


def test_login_then_wall_has_a_tile_with_health_per_camera(service: Service, page: Page) -> None:
    page.goto("/")
    expect(page.locator("form.login-form")).to_be_visible()  # the gate: no session yet
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill("wrong password")
    page.locator("form.login-form button[type=submit]").click()
    # The API's own message reaches the user.
    expect(page.locator("form.login-form .error")).to_contain_text("wrong username or password")
    login(page)
    assert page.url.endswith("#/wall")
    cameras = api_get(service, "/api/cameras")
    tiles = page.locator(".tile")
    expect(tiles).to_have_count(len(cameras))
    assert len(cameras) == 1 + DEAD_CAMERAS
    for camera in cameras:
        badge = page.locator(f'.tile[data-camera="{camera["id"]}"] [data-testid=health]')
        expect(badge).to_have_attribute("data-state", re.compile(r"\w+"))
    live = page.locator('.tile[data-camera="campus"] [data-testid=health]')
    expect(live).to_have_attribute("data-state", "online", timeout=30_000)
    expect(live).to_have_text("Trực tuyến")
    dead = page.locator('.tile[data-camera="gate-1"] [data-testid=health]')
    expect(dead).not_to_have_attribute("data-state", "online")
    # The live tile shows real frames, refreshed about once a second; a dead camera
    # shows the placeholder instead of a broken image.
    frame = page.locator('.tile[data-camera="campus"] img')
    expect(frame).to_be_visible(timeout=30_000)
    first_src = frame.get_attribute("src")
    assert frame.evaluate("img => img.naturalWidth") > 0
    expect(frame).not_to_have_attribute("src", first_src or "", timeout=5_000)
    expect(page.locator('.tile[data-camera="gate-1"] .placeholder')).to_be_visible()
    expect(page.locator('.tile[data-camera="gate-1"] img')).to_be_hidden()
    # Health reads at a glance: online and offline badges differ in colour.
    online_bg = live.evaluate("el => getComputedStyle(el).backgroundColor")
    dead_bg = dead.evaluate("el => getComputedStyle(el).backgroundColor")
    assert online_bg != dead_bg
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "wall-1366x768")


def test_live_alert_opens_with_playing_clip_and_becomes_false_alarm(
    service: Service, page: Page
) -> None:
    login(page)
    page.goto("/#/alerts")
    expect(page.locator("[data-testid=conn]")).to_have_class(re.compile(r"\bup\b"))
    # Sound needs a user gesture: the button is that gesture.
    sound = page.get_by_role("button", name="Bật âm thanh")
    sound.click()
    expect(page.get_by_role("button", name="Tắt âm thanh")).to_have_attribute(
        "aria-pressed", "true"
    )
    # Pushed over the socket by the pipeline, not loaded with the page.
    alert = page.locator('.feed li[data-live="1"][data-kind="opened"]').first
    alert.wait_for(timeout=ALERT_TIMEOUT_S * 1000)
    high = page.locator('.feed li[data-live="1"][data-kind="opened"][data-severity="high"]')
    high.first.wait_for(timeout=ALERT_TIMEOUT_S * 1000)
    expect(high.first).to_have_class(re.compile(r"\bflash\b"))
    # Newest first: ids are time-ordered (start time in their first hex digits).
    ids = page.locator(".feed li").evaluate_all("els => els.map(e => e.dataset.incident)")
    assert len(ids) >= 2 and ids == sorted(ids, reverse=True)
    screenshot(page, "alerts")

    incident_id = high.first.get_attribute("data-incident")
    assert incident_id
    high.first.get_by_role("button", name="Mở").click()
    expect(page).to_have_url(re.compile(rf"#/review\?id={incident_id}$"))
    card = page.locator(f'article.card[data-incident="{incident_id}"]')
    expect(card).to_be_visible()
    expect(card.locator("[data-testid=snapshot]")).to_have_js_property("complete", True)
    video = card.locator("video[data-testid=clip]")
    video.wait_for()
    wait_for(
        lambda: bool(video.evaluate("v => v.readyState >= 2")),
        CLIP_TIMEOUT_S,
        "the incident clip to load in <video>",
    )
    video.evaluate("v => v.play()")
    start = float(video.evaluate("v => v.currentTime"))
    wait_for(
        lambda: (
            float(video.evaluate("v => v.currentTime")) > start
            or float(video.evaluate("v => v.duration")) > 0
        ),
        15,
        "the clip to play",
    )
    assert float(video.evaluate("v => v.duration")) > 0
    screenshot(page, "review")

    card.locator("select[data-field=category]").select_option("shadow")
    card.locator("button[data-action=false-alarm]").click()
    expect(page.locator("[data-testid=status]")).to_have_text("Báo động giả")
    incident = api_get(service, f"/api/incidents/{incident_id}")
    assert incident["status"] == "false_alarm"
    assert incident["false_alarm_category"] == "shadow"
    # The audit trail on the card shows the change and who made it.
    expect(page.locator("[data-testid=history]")).to_contain_text("user:admin")
    expect(page.locator("[data-testid=history]")).to_contain_text("false_alarm")
    assert not js_errors(page)


def some_campus_incident(service: Service) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def any_incident() -> bool:
        found[:] = api_get(service, "/api/incidents", camera_id="campus", limit=1)["items"]
        return bool(found)

    wait_for(any_incident, ALERT_TIMEOUT_S, "an incident on the campus camera")
    return found[0]


def test_review_card_notes_assigns_locks_and_exports(service: Service, page: Page) -> None:
    incident = some_campus_incident(service)
    login(page)
    page.goto(f"/#/review?id={incident['id']}")
    card = page.locator(f'article.card[data-incident="{incident["id"]}"]')
    card.locator("textarea").fill("Kiểm tra tại chỗ: người đi bộ")
    card.locator("button[data-action=note]").click()
    expect(page.locator("[data-testid=notes]")).to_contain_text("Kiểm tra tại chỗ: người đi bộ")
    card = page.locator(f'article.card[data-incident="{incident["id"]}"]')
    card.get_by_role("button", name="Giao cho tôi").click()
    expect(card.locator("dl.facts")).to_contain_text("admin")
    card = page.locator(f'article.card[data-incident="{incident["id"]}"]')
    card.locator("button[data-action=lock]").click()
    expect(card.locator("button[data-action=lock]")).to_have_text("Mở khóa bằng chứng")
    after = api_get(service, f"/api/incidents/{incident['id']}")
    assert after["assignee"] == "admin" and after["evidence_locked"] is True
    notes = api_get(service, f"/api/incidents/{incident['id']}/notes")
    assert [n["text"] for n in notes][-1] == "Kiểm tra tại chỗ: người đi bộ"
    card.locator("button[data-action=lock]").click()
    expect(card.locator("button[data-action=lock]")).to_have_text("Khóa bằng chứng")
    assert api_get(service, f"/api/incidents/{incident['id']}")["evidence_locked"] is False
    # The export link downloads the signed package with the browser's own session.
    href = card.locator("[data-testid=export]").get_attribute("href")
    assert href == f"/api/incidents/{incident['id']}/evidence.zip"
    package = page.request.get(href)
    assert package.status == 200
    assert package.body()[:2] == b"PK"
    expect(page.locator("[data-testid=history]")).to_contain_text("incident.")
    screenshot(page, "review-actions")


def test_search_by_camera_and_time_range_finds_the_incident(service: Service, page: Page) -> None:
    incident = some_campus_incident(service)
    login(page)
    page.goto("/#/search")
    form = page.locator("[data-testid=search-form]")
    form.locator("select[name=camera_id]").select_option("campus")
    # The form takes Vietnam local time (UTC+7): type it the way a person would.
    since = vietnam_local_input(incident["start_ts"] - 300)
    until = vietnam_local_input(incident["start_ts"] + 300)
    form.locator("input[name=since]").fill(since)
    form.locator("input[name=until]").fill(until)
    form.get_by_role("button", name="Tìm").click()
    result = page.locator(f'.result[data-incident="{incident["id"]}"]')
    expect(result).to_be_visible()
    expect(result.locator("img")).to_have_attribute("src", incident["snapshot_url"])
    assert "camera_id=campus" in page.url and "since_ts=" in page.url and "until_ts=" in page.url
    # Every result is on the chosen camera.
    texts = page.locator(".result strong").all_inner_texts()
    assert texts and all("campus" in text for text in texts)
    screenshot(page, "search")
    result.click()
    expect(page.locator(f'article.card[data-incident="{incident["id"]}"]')).to_be_visible()


def test_language_switch_changes_labels_and_persists(page: Page) -> None:
    login(page)
    alerts_link = page.locator("#nav a[data-page=alerts]")
    expect(alerts_link).to_have_text("Cảnh báo")
    assert page.evaluate("document.documentElement.lang") == "vi"
    page.locator("#lang").click()
    expect(alerts_link).to_have_text("Alerts")
    assert page.evaluate("document.documentElement.lang") == "en"
    page.reload()
    expect(page.locator("#nav a[data-page=alerts]")).to_have_text("Alerts")
    page.goto("/#/traffic")
    expect(page.locator(".chart svg")).to_have_count(1)  # the one camera with a counting line
    expect(page.locator(".chart figcaption")).to_contain_text(re.compile(r"Total: \d+"))
    screenshot(page, "traffic-en")


def test_every_string_exists_in_both_languages(page: Page) -> None:
    login(page)
    keys = page.evaluate(
        """async () => {
          const { coreStrings } = await import('/console/i18n.js');
          const pages = (await import('/console/pages/index.js')).default;
          const login = (await import('/console/pages/login.js')).default;
          const out = { vi: Object.keys(coreStrings.vi), en: Object.keys(coreStrings.en) };
          for (const p of [login, ...pages]) {
            out.vi.push(...Object.keys(p.strings.vi)); out.en.push(...Object.keys(p.strings.en));
          }
          return out;
        }"""
    )
    vi, en = set(keys["vi"]), set(keys["en"])
    assert vi == en, f"only in vi: {sorted(vi - en)}; only in en: {sorted(en - vi)}"
    # Every literal t('key') in the console's code has a string.
    used = set()
    for source in CONSOLE_DIR.rglob("*.js"):
        used |= set(re.findall(r"\bt\(\s*'([a-zA-Z][\w.-]*)'", source.read_text()))
    assert used, "no t('...') calls found"
    assert not used - vi, f"keys used but not defined: {sorted(used - vi)}"


def test_nav_follows_the_role(service: Service, page: Page) -> None:
    body = {"username": "console-viewer", "password": "viewer pass 2026!", "role": "viewer"}
    response = httpx.post(f"{service.base}/api/users", json=body, headers=service.headers)
    assert response.status_code in (201, 409), response.text
    login(page, "console-viewer", "viewer pass 2026!")
    nav = page.locator("#nav a")
    expect(nav.first).to_be_visible()
    pages = nav.evaluate_all("els => els.map(e => e.dataset.page)")
    assert "wall" in pages and "review" not in pages
    page.goto("/#/review")
    expect(page.locator("main .empty")).to_have_text("Vai trò của bạn không được xem trang này.")


def test_wall_at_1920x1080_fits_without_horizontal_scroll(
    service: Service, browser: Browser
) -> None:
    page = new_page(browser, service, 1920, 1080)
    try:
        login(page)
        tiles = page.locator(".tile")
        expect(tiles).to_have_count(1 + DEAD_CAMERAS)
        expect(page.locator(".tile [data-testid=health][data-state]")).to_have_count(
            1 + DEAD_CAMERAS
        )
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        outside = page.evaluate(
            """() => [...document.querySelectorAll('.tile')].filter(t => {
                 const r = t.getBoundingClientRect();
                 return r.width < 100 || r.left < 0 || r.top < 0
                   || r.right > window.innerWidth || r.bottom > window.innerHeight;
               }).map(t => t.dataset.camera)"""
        )
        assert outside == [], f"tiles not fully visible at 1920×1080: {outside}"
        # The fullscreen button really takes the wall fullscreen.
        page.get_by_role("button", name="Toàn màn hình").click()
        wait_for(
            lambda: bool(page.evaluate("document.fullscreenElement?.dataset.testid === 'wall'")),
            5,
            "the wall to go fullscreen",
        )
        screenshot(page, "wall-1920x1080")
        assert not js_errors(page)
    finally:
        page.context.close()
