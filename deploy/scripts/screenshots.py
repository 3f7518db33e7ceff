"""Screenshots of every dashboard page, as PNGs for docs/screenshots/ (linked from the README).

    python deploy/scripts/screenshots.py http://127.0.0.1:8000 USER PASSWORD [--out docs/screenshots]

Logs in with a real Chromium (Playwright, Debian's /usr/bin/chromium) and saves one PNG per page at a
1280-pixel-wide viewport. The pages show whatever the appliance holds; tests/e2e/test_dashboard_browser.py
runs it after real ffmpeg players played through proxyd (APPLIANCE_SCREENSHOTS_DIR=docs/screenshots).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# name -> (path, the element that shows the page is ready)
PAGES = {
    "dashboard": ("/", "#charts[data-loaded]"),
    "origins": ("/origins/", "main"),
    "origin-form": ("/origins/new/", "main"),
    "content": ("/content/", "main"),
    "sessions": ("/sessions/", "main"),
    "splits": ("/splits/", "main"),
    "playlogs": ("/playlogs/", "main"),
    "reports-by-content": ("/reports/?group=by-content&preset=7d", "#report"),
    "reports-by-day": ("/reports/?group=by-day&preset=30d", "#report"),
    "reports-by-player-software": ("/reports/?group=by-player-software&preset=7d", "#report"),
    "session-quality": ("/reports/qos/", "#qos"),
    "nodes": ("/nodes/", "main"),
    "uplink": ("/uplink/", "main"),
    "audit-log": ("/audit/", "main"),
}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-sync",
    "--no-first-run",
    "--disable-component-update",
]
VIEWPORT = {"width": 1280, "height": 860}
TIMEOUT_MS = 20_000


def capture(
    base_url: str, username: str, password: str, out: Path, *, chromium: str = CHROMIUM, browser=None
) -> list[Path]:
    """One PNG per page in `out` (the login page too); returns their paths. `browser`: a Playwright
    browser already running (tests), else Chromium is launched."""
    if browser is not None:
        return _pages(browser, base_url, username, password, out)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            return _pages(launched, base_url, username, password, out)
        finally:
            launched.close()


def _pages(browser, base_url: str, username: str, password: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(base_url + "/login/")
        written = [_shot(page, out / "login.png")]
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_selector("#live-sessions")
        for name, (path, ready) in PAGES.items():
            page.goto(base_url + path)
            page.wait_for_selector(ready)
            written.append(_shot(page, out / f"{name}.png"))
        return written
    finally:
        context.close()


def _shot(page, path: Path) -> Path:
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the appliance's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("username")
    parser.add_argument("password")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args(argv)
    for path in capture(args.url.rstrip("/"), args.username, args.password, args.out, chromium=args.chromium):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
