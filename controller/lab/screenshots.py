"""Screenshots for the README (docs/report.png, docs/console.png), taken by Debian's Chromium.

Playwright drives /usr/bin/chromium (its own browser download does not work offline).
Used by `kendali screenshots`; never imported by the running controller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
# The same flags as the browser tests: no sandbox (root in CI), nothing phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A4 at 96 css px per inch: 210 x 297 mm.
A4_WIDTH_PX = 794
A4_HEIGHT_PX = 1123


def report_png(html: str, out: Path, scale: float = 2.0, browser: Any = None) -> Path:
    """The report's first page (what a head of OPD sees first) as a PNG, A4 wide at `scale`.

    Cut where the second section starts (the page break in print), at most one A4 page.
    The page may fetch nothing: any request other than data: is refused. `browser`: a
    Playwright Browser to reuse (e.g. for the console's screenshot too); else one is started.
    """
    if browser is not None:
        return _report_png(browser, html, out, scale)
    from playwright.sync_api import sync_playwright

    from controller.errors import KendaliError

    if not Path(CHROMIUM).exists():
        raise KendaliError(f"Chromium is needed for screenshots and is not at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            return _report_png(b, html, out, scale)
        finally:
            b.close()


def _report_png(browser: Any, html: str, out: Path, scale: float) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)

    def refuse(route: Any) -> None:
        route.continue_() if route.request.url.startswith("data:") else route.abort()

    page = browser.new_page(viewport={"width": A4_WIDTH_PX, "height": A4_HEIGHT_PX}, device_scale_factor=scale)
    try:
        page.route("**/*", refuse)
        page.set_content(html, wait_until="load")
        cut = page.evaluate(
            "() => { const s = document.querySelector('section.page');"
            " return s ? s.getBoundingClientRect().top + window.scrollY : document.body.scrollHeight; }"
        )
        height = min(float(cut), float(A4_HEIGHT_PX))
        page.screenshot(path=str(out), clip={"x": 0, "y": 0, "width": A4_WIDTH_PX, "height": height})
    finally:
        page.close()
    return out
