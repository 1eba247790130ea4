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


# ---- `kendali screenshots`: both pictures, regenerated -------------------------------------------


def report_of_a_simulated_month(out: Path, days: int = 30, seed: int = 7) -> Path:
    """docs/report.png: the first page of the report of a simulated PPU month (as
    `kendali history simulate` makes it: the page says SIMULATED)."""
    import tempfile
    import time

    from controller.report import data
    from controller.report.simulate import simulate

    with tempfile.TemporaryDirectory(prefix="kendali-shot-") as tmp:
        state = Path(tmp) / "state"
        end = time.time()
        simulate(state, days, end, seed=seed)
        doc = data.build(state, end - days * 86400, end, end)
        return report_png(data.render(doc, "html", "id"), out)


def console_of_the_ppu_lab(out: Path) -> Path:
    """docs/console.png: the console of a controller running the PPU lab, with a few OPDs
    loaded, one link down (failed over) and a cap changed by a named token."""
    from controller.api.tokens import TokenFile
    from controller.core.policy import load_file
    from controller.core.topology import DEFAULT_TOPOLOGY, load
    from controller.lab import traffic
    from controller.lab.demo import DEFAULT_POLICIES, DEMO_OPDS, _first_host
    from controller.lab.labctl import ControllerProcess
    from controller.lab.mininet_lab import Lab

    topo = load(DEFAULT_TOPOLOGY)
    policies = load_file(DEFAULT_POLICIES)
    with ControllerProcess(DEFAULT_TOPOLOGY, DEFAULT_POLICIES, extra=["--stats-interval", "2"]) as ctl:
        noc = TokenFile(ctl.state_dir).add("noc", "write")  # the running controller reads it at once
        with Lab(topo, controller_port=ctl.ofp_port, prefix="ks") as lab:
            _took, matrix = lab.wait_reachable(timeout=120, wait_s=1.0)
            if not matrix.complete:
                raise KendaliError("the PPU lab did not become reachable", "screenshots")
            lab.link_down("dist-babulu", "dist-sepaku")  # the microwave hop: a failover to show
            body = ctl.get("/v1/policies/dinkes")
            status, answer = ctl.request("PUT", "/v1/policies/dinkes", dict(body, download_kbps=45000), token=noc)
            if status != 200:
                raise KendaliError(f"PUT /v1/policies/dinkes answered {status}: {answer}", "screenshots")
            source = topo.subnets[topo.uplink.subnet].hosts[0].name if topo.uplink else topo.hosts[0].name
            hosts = [_first_host(topo, policies[o]) for o in DEMO_OPDS if o in policies]
            loads = [traffic.Load(source, h) for h in hosts if h]
            # the picture is taken while the OPDs download: their bars show live rates
            import threading

            shot: dict[str, Any] = {}

            def take() -> None:
                import time

                time.sleep(7.0)  # a few polls into the load
                try:
                    shot["path"] = console_png(ctl.url, noc, out)
                except KendaliError as exc:
                    shot["error"] = exc

            t = threading.Thread(target=take)
            t.start()
            traffic.run(lab, loads, seconds=14, omit=1)
            t.join()
            if "error" in shot:
                raise shot["error"]
            return Path(shot["path"])


def screenshots_main(args: Any) -> int:
    """`kendali screenshots [--out DIR] [--only report|console]`."""
    out = Path(args.out)
    if args.only in (None, "report"):
        print(report_of_a_simulated_month(out / "report.png"), flush=True)
    if args.only in (None, "console"):
        print(console_of_the_ppu_lab(out / "console.png"), flush=True)
    return 0
