"""The console in a real browser: Playwright driving Debian's headless chromium.

Independent judge for every test here: a real browser (chromium) renders the
pages, runs the console's script and clicks like an operator. Screenshots are
kept under var/test-artifacts/web/ (gitignored); each test prints its path.
The tests skip, saying why, when /usr/bin/chromium or playwright is missing
(`make test` installs chromium with apt-get when it can).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from web_media import colour_rundown
from web_world import DAY, G03, PASSWORD, ZONE, ZT, WebWorld, bad_day, good_day, serve

from core.clock import SystemClock
from epg.rundown import rundown_path
from skyclass.database import make_engine, upgrade
from skyclass.web import create_app
from skyclass.web.multiviewer import OutputPictures

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[3] / "var" / "test-artifacts" / "web"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(
            f"no chromium at {CHROMIUM}: `apt-get install chromium` (make test does it as root)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright Python package is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


class Shots:
    """Screenshots of one test, kept as artifacts."""

    def __init__(self, name: str, record: Any) -> None:
        self.folder = ARTIFACTS / name
        self.folder.mkdir(parents=True, exist_ok=True)
        for old in self.folder.glob("*.png"):
            old.unlink()
        record("screenshots", str(self.folder))
        print(f"\nscreenshots: {self.folder}")

    def take(self, page: Any, name: str) -> Path:
        page.evaluate("document.fonts.ready.then(() => true)")  # Chinese glyphs, not boxes
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest, record_property: Any) -> Shots:
    return Shots(request.node.name.replace("[", "-").replace("]", ""), record_property)


def _page(browser: Any, base: str) -> tuple[Any, Any, list[str]]:
    """A fresh browser context; every request it makes is recorded (all must be local)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.set_default_timeout(20_000)
    return context, page, requests


def _log_in(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/console/")
    assert "/login" in page.url  # the console sends an anonymous visitor to the login form
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-testid=user]")


def _only_local(requests: list[str], base: str) -> None:
    outside = [u for u in requests if not u.startswith((base, "data:"))]
    assert outside == [], f"the console loaded something from elsewhere: {outside}"


def test_log_in_then_open_an_event_from_the_weekly_grid(
    browser: Any, served_lite: Any, shots: Shots
) -> None:
    world = served_lite.world
    world.epg.importer.load(world.csv(good_day()), created_by="op", at=world.clock.now())
    context, page, requests = _page(browser, served_lite.base)
    try:
        page.goto(f"{served_lite.base}/login")
        page.fill("input[name=name]", "op")
        page.fill("input[name=password]", "wrong password")
        page.click("button[type=submit]")
        assert "用户名或密码错误" in page.inner_text("[data-testid=login-error]")
        shots.take(page, "1-login-refused")
        page.fill("input[name=name]", "op")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_selector("[data-testid=user]")
        assert page.inner_text("[data-testid=user]") == "op"
        assert page.locator(".tile").count() == len(world.registry)
        shots.take(page, "2-dashboard")
        page.goto(f"{served_lite.base}/console/grid?channel={G03}&week={DAY.isoformat()}")
        lesson = page.locator("a.ev.lesson").first
        assert lesson.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(47, 111, 209)"
        ad = page.locator("a.ev.ad").first
        assert ad.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(217, 130, 43)"
        shots.take(page, "3-grid")
        lesson.click()
        page.wait_for_selector("[data-testid=event]")
        assert "08:00:00" in page.inner_text("[data-testid=event]")
        assert "语文 L1" in page.inner_text("h1")
        shots.take(page, "4-event")
        _only_local(requests, served_lite.base)
    finally:
        context.close()


def test_upload_a_schedule_with_an_error_and_see_the_row_highlighted(
    browser: Any, served_lite: Any, shots: Shots
) -> None:
    world = served_lite.world
    bad = world.csv(bad_day(), "周播表-有错.csv")
    context, page, requests = _page(browser, served_lite.base)
    try:
        _log_in(page, served_lite.base, "op")
        page.goto(f"{served_lite.base}/console/schedule")
        page.set_input_files("[data-testid=schedule-file]", str(bad))
        page.click("button[value=publish]")
        page.wait_for_selector("[data-testid=errors]")
        row = page.locator("#row-4")
        assert "row-error" in (row.get_attribute("class") or "")
        assert row.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(253, 226, 223)"
        cell = row.locator("td.cell-error")
        assert cell.inner_text() == "NO-SUCH-AD"
        first_error = page.locator("[data-testid=errors] tbody tr").first.inner_text()
        assert "row 4" in first_error and "asset" in first_error
        page.click("[data-testid=errors] a[href='#row-4']")
        shots.take(page, "1-error-row-highlighted")
        assert world.epg.schedules.stamp() == 0  # nothing was stored
        _only_local(requests, served_lite.base)
    finally:
        context.close()


def test_a_reviewer_approves_an_asset(browser: Any, served_lite: Any, shots: Shots) -> None:
    world = served_lite.world
    context, page, requests = _page(browser, served_lite.base)
    try:
        _log_in(page, served_lite.base, "rev")
        assert "/console/assets" in page.url  # a reviewer lands on the library
        page.select_option("select[name=state]", "pending")
        page.click("form[role=search] button[type=submit]")
        page.wait_for_url("**state=pending**")
        shots.take(page, "0-pending-list")
        page.click("[data-testid=assets] a:text-is('LP')")
        page.wait_for_selector("[data-testid=review-form]")
        shots.take(page, "1-pending")
        for name in ("political", "scientific", "normative"):
            page.check(f"input[name={name}]")
        page.fill("textarea[name=comment]", "政治性、科学性、规范性均符合要求")
        page.click("button[value=approve]")
        page.wait_for_selector("[data-testid=done]")
        assert "已通过" in page.inner_text("[data-testid=review-state]")
        shots.take(page, "2-approved")
        asset = world.epg.assets.get("LP")
        assert asset.review_state.value == "approved" and asset.reviews[-1].reviewer == "rev"
        _only_local(requests, served_lite.base)
    finally:
        context.close()


@pytest.fixture
def on_air(tmp_path: Path) -> Iterator[tuple[WebWorld, subprocess.Popen[bytes]]]:
    """Channel zt on air in real time: red, then blue, then green lessons, to HLS in tmp."""
    url = f"sqlite:///{tmp_path / 'station.db'}"
    engine = make_engine(url)
    upgrade(engine)
    world = WebWorld(engine, tmp_path, clock=SystemClock()).seed()
    now = datetime.now(ZONE)
    day = now.date()
    empty = colour_rundown(tmp_path / "clips", day, ZONE, 0, [])
    first = empty.frame_at(now) - 50  # the first lesson began 2 s ago: playout joins it
    rundown = colour_rundown(
        tmp_path / "clips",
        day,
        ZONE,
        first,
        # Long enough that a loaded 2-core machine still sees each one (start-up, polling).
        [("红色课 A", "red", 25), ("蓝色课 B", "blue", 20), ("绿色课 C", "green", 10)],
    )
    rundown.save(rundown_path(world.var_dir / "rundowns", ZT, day))
    env = {
        **os.environ,
        "SKYCLASS_DATABASE_URL": url,
        "SKYCLASS_VAR_DIR": str(world.var_dir),
        "SKYCLASS_MEDIA_ROOT": str(world.media_root),
        "SKYCLASS_CHANNELS_FILE": str(world.channels_file),
    }
    env.pop("SKYCLASS_CONFIG", None)
    hls = tmp_path / "var" / "hls" / "zt"
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("skyclass")), "playout", "run", "--channel", ZT,
         "--output", f"hls:{hls}", "--duration", "60"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield world, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        engine.dispose()


def test_now_next_and_the_live_picture_change(
    browser: Any, on_air: tuple[WebWorld, Any], shots: Shots
) -> None:
    world, process = on_air
    app = create_app(world, pictures=OutputPictures(world.registry, clock=world.clock))
    with serve(app) as base:
        context, page, requests = _page(browser, base)
        try:
            _log_in(page, base, "op")
            tile = page.locator(f"[data-channel='{ZT}']")
            deadline = time.monotonic() + 25

            def airing(title: str) -> bool:
                on_air = "播出中" in tile.locator("[data-field=state]").inner_text()
                return on_air and title in tile.locator("[data-field=now]").inner_text()

            while not airing("红色课 A"):  # playout starts, the console sees it on air
                assert process.poll() is None, process.stdout.read().decode(errors="replace")
                assert time.monotonic() < deadline, tile.inner_text()
                page.wait_for_timeout(500)
            assert "蓝色课 B" in tile.locator("[data-field=next]").inner_text()
            assert "剩余" in tile.locator("[data-field=now]").inner_text()
            red = _wait_for_colour(page, tile, "red", 20)
            shots.take(page, "1-red-on-air")

            while not airing("蓝色课 B"):
                assert time.monotonic() < deadline + 40, tile.inner_text()
                page.wait_for_timeout(500)
            assert "绿色课 C" in tile.locator("[data-field=next]").inner_text()
            blue = _wait_for_colour(page, tile, "blue", 20)
            shots.take(page, "2-blue-on-air")
            assert red != blue
            _only_local(requests, base)
        finally:
            context.close()


CENTRE_PIXEL = """img => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(img.naturalWidth / 2, img.naturalHeight / 2, 1, 1).data;
  return [d[0], d[1], d[2], img.currentSrc];
}"""


def _wait_for_colour(page: Any, tile: Any, colour: str, seconds: float) -> str:
    """Wait until the tile's picture (as the browser decoded it) shows ``colour``."""
    deadline = time.monotonic() + seconds
    image = tile.locator("img[data-picture]")
    seen = None
    while time.monotonic() < deadline:
        if image.evaluate("img => img.complete && img.naturalWidth > 0"):
            r, g, b, src = image.evaluate(CENTRE_PIXEL)
            seen = (r, g, b)
            target = {"red": (r > 150 and g < 90 and b < 90), "blue": (b > 150 and r < 90)}
            if target[colour]:
                return str(src)
        page.wait_for_timeout(500)
    raise AssertionError(f"the picture never turned {colour}: last centre pixel {seen}")
