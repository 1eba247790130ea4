"""Screenshots for the README (docs/report.png, docs/console.png), taken with Debian's
headless Chromium through Playwright.

    report_png(html, out)          the report's first page
    console_png(url, token, out)   the web console of a running controller, signed in

Playwright's own browser download does not work offline; /usr/bin/chromium (apt package
``chromium``) does. Used by `kendali screenshots`; never imported by the running controller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controller.errors import KendaliError

CHROMIUM = "/usr/bin/chromium"
# The same flags as the browser tests: nothing phoning home (the machine's network is closed).
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in the lab: Chromium's sandbox refuses to start otherwise
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A4 at 96 css px per inch: 210 x 297 mm.
A4_WIDTH_PX = 794
A4_HEIGHT_PX = 1123
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


CONSOLE_VIEWPORT = {"width": 1440, "height": 1000}
# The console shows its main part once the token is accepted, or says why not.
SIGNED_IN_OR_REFUSED = (
    "() => !document.getElementById('main').hidden || !!document.getElementById('login-msg').textContent"
)


def console_png(url: str, token: str, out: Path, timeout_s: float = 30.0) -> Path:
    """Sign in to the console at ``url`` with ``token``, wait until the map, the OPDs and the
    events are drawn, and write a full-page PNG to ``out``. KendaliError naming what failed."""
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise KendaliError("Playwright is not installed (pip install playwright)", "screenshots") from None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ms = timeout_s * 1000
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport=CONSOLE_VIEWPORT)  # type: ignore[arg-type]
                page.goto(url.rstrip("/") + "/", timeout=ms)
                page.fill("#token", token)
                page.click("#signin")
                page.wait_for_function(SIGNED_IN_OR_REFUSED, timeout=ms)
                if page.is_visible("#login"):
                    why = page.locator("#login-msg").text_content() or ""
                    raise KendaliError(f"the console did not accept the token: {why}", "screenshots")
                page.wait_for_selector("#map svg g.switch", timeout=ms)
                page.wait_for_selector("#usage .opd, #usage p", timeout=ms)
                page.wait_for_selector("#events li", timeout=ms)
                page.screenshot(path=str(out), full_page=True)
            finally:
                browser.close()
    except PlaywrightError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KendaliError(f"cannot screenshot the console at {url}: {first}", "screenshots") from None
    return out
