"""The footage and admin pages in real Chromium against the real service (the shared
session service of conftest.py): zones drawn with the mouse land in the camera config
as a new version, cameras are added, tested and deleted, users and API keys are made
and revoked, and recorded footage of the live campus camera plays.

These tests never leave the camera list changed (other console tests count tiles):
the camera they add they delete, and zones go on a camera that never connects."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.console.conftest import login, screenshot
from tests.e2e.test_service import Service, wait_for

pytestmark = pytest.mark.e2e

RECORDING_TIMEOUT_S = 90  # the first 10 s segment of the campus camera must be indexed
VIDEO_TIMEOUT_MS = 30_000
ZONE_CAMERA = "gate-5"  # never connects: editing it disturbs no live detection


def api_get(service: Service, path: str, **params: Any) -> Any:
    response = httpx.get(f"{service.base}{path}", params=params, headers=service.headers)
    assert response.status_code == 200, response.text
    return response.json()


def newest_version(service: Service) -> dict[str, Any]:
    versions: list[dict[str, Any]] = api_get(service, "/api/config/versions", limit=1)
    return versions[0]


def click_at(page: Page, canvas: Locator, fx: float, fy: float, double: bool = False) -> None:
    """Click the drawing canvas at a fraction of its width and height."""
    box = canvas.bounding_box()
    assert box is not None
    x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    if double:
        page.mouse.dblclick(x, y)
    else:
        page.mouse.click(x, y)


def test_zone_and_line_drawn_on_the_picture_are_saved_as_a_new_version(
    service: Service, page: Page
) -> None:
    before = newest_version(service)["id"]
    stored_url = api_get(service, f"/api/cameras/{ZONE_CAMERA}")["url"]
    login(page)
    page.goto(f"/#/admin/zones?camera={ZONE_CAMERA}")
    canvas = page.get_by_test_id("zone-canvas")
    expect(canvas).to_be_visible()
    # A camera that never connected has no picture: a 16:9 placeholder stands in.
    expect(page.locator(".stage-placeholder")).to_be_visible()
    box = canvas.bounding_box()
    assert box is not None and abs(box["width"] / box["height"] - 16 / 9) < 0.02

    page.get_by_role("button", name="Vẽ vùng").click()
    for fx, fy in ((0.2, 0.3), (0.7, 0.3), (0.7, 0.8)):
        click_at(page, canvas, fx, fy)
    click_at(page, canvas, 0.2, 0.8, double=True)  # the 4th corner, and close
    zone_row = page.locator('li[data-kind="zone"]').last
    zone_row.locator("input").fill("test-yard")
    page.get_by_role("button", name="Vẽ vạch").click()
    click_at(page, canvas, 0.1, 0.5)
    click_at(page, canvas, 0.9, 0.5)
    page.locator('li[data-kind="line"]').last.locator("input").fill("test-gate")
    page.locator("input[name=custom-person]").check()
    page.locator("input[name=min_confidence-person]").fill("0.6")
    expect(page.locator("polygon.zone")).to_have_count(1)
    screenshot(page, "admin-zones-drawn")
    page.get_by_role("button", name="Lưu cấu hình").click()

    status = page.get_by_test_id("zones-status")
    expect(status).to_contain_text("phiên bản")
    version = newest_version(service)
    assert version["id"] > before
    assert version["comment"] == f"update camera {ZONE_CAMERA}"
    assert version["author"] == "user:admin"
    expect(status).to_have_text(f"Đã lưu: cấu hình phiên bản {version['id']}")

    camera = api_get(service, f"/api/cameras/{ZONE_CAMERA}")
    zone = next(z for z in camera["zones"] if z["name"] == "test-yard")
    expected = [(0.2, 0.3), (0.7, 0.3), (0.7, 0.8), (0.2, 0.8)]
    assert len(zone["points"]) == 4, zone  # the double-click added no extra corner
    for (x, y), (ex, ey) in zip(zone["points"], expected, strict=True):
        assert abs(x - ex) < 0.01 and abs(y - ey) < 0.01, zone["points"]
    line = next(ln for ln in camera["lines"] if ln["name"] == "test-gate")
    assert [round(c, 2) for p in line["points"] for c in p] == [0.1, 0.5, 0.9, 0.5]
    assert camera["filters"]["person"] == {"min_confidence": 0.6, "min_area": 0.0}
    assert camera["url"] == stored_url and camera["name"] == "Cổng 5"  # the rest unchanged

    # The live camera shows its picture (or the placeholder) with its configured zone.
    page.locator("select[name=camera]").select_option("campus")
    expect(page.locator('polygon.zone[data-name="walkway"]')).to_have_count(1)
    expect(page.locator('line.tripwire[data-name="middle"]')).to_have_count(1)
    screenshot(page, "admin-zones")


def test_cameras_page_adds_tests_and_deletes_a_camera(service: Service, page: Page) -> None:
    camera_id = f"tmp-{uuid.uuid4().hex[:6]}"
    login(page)
    page.goto("/#/admin/cameras")
    expect(page.locator('tr[data-camera="campus"]')).to_be_visible()

    # "Test connection" on the live camera's edit form: the clip is 480x360 H.264.
    page.locator('tr[data-camera="campus"]').get_by_role("button", name="Sửa").click()
    form = page.get_by_test_id("camera-form")
    form.get_by_role("button", name="Kiểm tra kết nối").click()
    expect(page.get_by_test_id("test-result")).to_contain_text("H264 480×360")
    form.get_by_role("button", name="Hủy").click()

    page.get_by_role("button", name="Thêm camera").click()
    form.locator("input[name=id]").fill(camera_id)
    form.locator("input[name=name]").fill("Camera thử")
    form.locator("input[name=url]").fill("rtsp://user:secret-pw@127.0.0.1:9/nothing")
    form.locator("input[name=fps]").fill("2")
    form.get_by_role("button", name="Kiểm tra kết nối").click()
    result = page.get_by_test_id("test-result")
    expect(result).to_contain_text("Ngoại tuyến")  # port 9 refuses: offline
    assert "secret-pw" not in (result.text_content() or "")
    screenshot(page, "admin-cameras-form")
    form.get_by_role("button", name="Lưu").click()
    row = page.locator(f'tr[data-camera="{camera_id}"]')
    expect(row).to_contain_text("rtsp://***@127.0.0.1:9/nothing")
    added = api_get(service, f"/api/cameras/{camera_id}")
    assert added["name"] == "Camera thử" and added["detect"]["fps"] == 2
    assert newest_version(service)["comment"] == f"add camera {camera_id}"
    expect(page.get_by_test_id("camera-status")).to_contain_text(
        f"phiên bản {newest_version(service)['id']}"
    )
    screenshot(page, "admin-cameras")

    row.get_by_role("button", name="Xóa").click()
    row.locator("[data-confirm=yes]").click()
    expect(row).to_have_count(0)
    gone = httpx.get(f"{service.base}/api/cameras/{camera_id}", headers=service.headers)
    assert gone.status_code == 404
    assert newest_version(service)["comment"] == f"remove camera {camera_id}"


def test_users_page_creates_changes_and_deactivates_users_and_keys(
    service: Service, page: Page
) -> None:
    username = f"ops-{uuid.uuid4().hex[:6]}"
    login(page)
    page.goto("/#/admin/users")
    form = page.get_by_test_id("user-form")
    form.locator("input[name=username]").fill(username)
    form.locator("input[name=display_name]").fill("Nguyễn Thị Vận Hành")
    form.locator("select[name=role]").select_option("operator")
    form.locator("input[name=password]").fill("ca trực đêm 2026")
    form.get_by_role("button", name="Tạo người dùng").click()
    row = page.locator(f'tr[data-username="{username}"]')
    expect(row).to_contain_text("Nguyễn Thị Vận Hành")

    def user() -> dict[str, Any]:
        users: list[dict[str, Any]] = api_get(service, "/api/users")
        return next(u for u in users if u["username"] == username)

    assert (user()["role"], user()["active"]) == ("operator", True)
    row.locator(f"select[name=role-{username}]").select_option("police")
    wait_for(lambda: user()["role"] == "police", 10, "the role change reached the API")

    keys = page.get_by_test_id("key-form")
    keys.locator("input[name=key_name]").fill(f"bridge-{username}")
    keys.get_by_role("button", name="Tạo khóa API").click()
    secret = page.get_by_test_id("new-key-value").input_value()
    assert secret.startswith("cvk_")
    me = httpx.get(f"{service.base}/api/auth/me", headers={"X-API-Key": secret})
    assert me.status_code == 200 and me.json()["role"] == "viewer"
    screenshot(page, "admin-users")

    key_row = page.locator("tr[data-key]", has_text=f"bridge-{username}")
    key_row.get_by_role("button", name="Thu hồi").click()
    key_row.locator("[data-confirm=yes]").click()
    expect(key_row).to_contain_text("Đã thu hồi")
    revoked = httpx.get(f"{service.base}/api/auth/me", headers={"X-API-Key": secret})
    assert revoked.status_code == 401

    row.get_by_role("button", name="Khóa tài khoản").click()
    row.locator("[data-confirm=yes]").click()
    expect(row).to_contain_text("Đã khóa")
    assert user()["active"] is False


def test_footage_page_shows_recorded_ranges_and_plays_the_clicked_moment(
    service: Service, page: Page
) -> None:
    def recorded() -> list[dict[str, float]]:
        now = time.time()
        timeline = api_get(
            service, "/api/cameras/campus/timeline", since_ts=now - 3600, until_ts=now + 60
        )
        ranges: list[dict[str, float]] = timeline["ranges"]
        return ranges

    wait_for(lambda: bool(recorded()), RECORDING_TIMEOUT_S, "a recorded segment of campus")
    login(page)
    page.goto("/#/footage?camera=campus")
    page.locator("select[name=span]").select_option("600")  # zoom to 10 min, ending now
    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator(".tl-range").first).to_be_visible()
    expect(page.get_by_test_id("footage-summary")).to_contain_text("Đã ghi")

    timeline.locator(".tl-range").last.click()
    page.wait_for_function(
        "() => { const v = document.querySelector('video.footage-video');"
        " return v !== null && v.readyState >= 2; }",
        timeout=VIDEO_TIMEOUT_MS,
    )
    # Seeked into the clip: the middle of a recorded range, not its first frame.
    assert page.evaluate("document.querySelector('video.footage-video').currentTime") > 0.5
    expect(timeline.locator(".tl-playhead")).to_have_attribute("visibility", "visible")
    href = page.get_by_test_id("footage-download").get_attribute("href")
    assert href is not None and "download=true" in href
    download = httpx.get(f"{service.base}{href}", headers=service.headers, timeout=60)
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "video/mp4"
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.content[4:8] == b"ftyp"
    screenshot(page, "footage")
