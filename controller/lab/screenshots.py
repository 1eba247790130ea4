"""Screenshots for the README (docs/), taken with Debian's headless Chromium through Playwright.

    console_png(url, token, out)   the web console of a running controller, signed in

Playwright's own browser download does not work offline; /usr/bin/chromium (apt package
``chromium``) does. Never imported by the running controller.
"""

from __future__ import annotations

from pathlib import Path

from controller.errors import KendaliError

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in the lab: Chromium's sandbox refuses to start otherwise
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
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
