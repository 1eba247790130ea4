"""The html report in a real browser (Debian's headless Chromium driven by Playwright).

What a reader sees: the totals on the first printed page, charts that are drawn (not
blank SVG), nothing fetched from anywhere, and a PDF with SIMULATED on every page.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import CHROMIUM
from report_fixture import report_doc

from controller.lab.screenshots import CHROMIUM_ARGS
from controller.report.html import render
from controller.report.i18n import Fmt

pytestmark = pytest.mark.browser

# A4 less the report's @page margins (14 mm each side; 17 + 16 mm top and bottom) at 96 px/in.
PAGE_WIDTH_PX = round((210 - 28) / 25.4 * 96)
PAGE_HEIGHT_PX = round((297 - 33) / 25.4 * 96)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module", params=["fixture", "simulated-month"])
def doc(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The crafted document, and the one `kendali report` makes of a simulated month."""
    if request.param == "fixture":
        return report_doc(simulated=True)
    from controller.report import data
    from controller.report.simulate import simulate

    end = 1_796_083_200.0  # 2026-12-01 08:00 WITA
    state = tmp_path_factory.mktemp("month") / "state"
    simulate(state, 30, end, seed=7)
    return data.build(state, end - 30 * 86400, end, end)


def open_report(browser: Any, html: str, outside: list[str]) -> Any:
    """A page with the report, every request that is not data: refused and noted in outside."""
    page = browser.new_page(viewport={"width": PAGE_WIDTH_PX, "height": PAGE_HEIGHT_PX})

    def refuse(route: Any) -> None:
        url = route.request.url
        if url.startswith("data:"):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", refuse)
    page.set_content(html, wait_until="load")
    return page


def test_first_printed_page_shows_the_totals(browser: Any, doc: dict) -> None:
    outside: list[str] = []
    page = open_report(browser, render(doc, "id"), outside)
    page.emulate_media(media="print")
    f = Fmt("id", doc["period"]["timezone"])
    first_break = page.evaluate("document.querySelector('section.page').getBoundingClientRect().top + scrollY")
    for sel, text in (
        ("#total-budget", "Rp2.300.000.000"),
        ("#total-cost-per-mbps", f.idr(doc["summary"]["idr_per_mbps_used"])),
        ("#total-volume", f.gb(doc["summary"]["down_bytes"] + doc["summary"]["up_bytes"])),
    ):
        el = page.locator(sel)
        assert el.is_visible()
        assert el.inner_text().strip() == text
        box = el.bounding_box()
        assert box is not None and box["y"] + box["height"] <= min(first_break, PAGE_HEIGHT_PX)
    answer = page.locator("#answer")
    assert answer.is_visible() and f.idr(doc["summary"]["idr_per_mbps_used"]) in answer.inner_text()
    assert outside == []
    page.close()


def test_every_chart_is_drawn(browser: Any, doc: dict) -> None:
    outside: list[str] = []
    page = open_report(browser, render(doc, "en"), outside)
    charts = page.evaluate(
        """() => [...document.querySelectorAll('svg.chart')].map(svg => {
            const r = svg.getBoundingClientRect();
            // Drawn marks: paths, lines and shapes with a visible stroke or fill and a real size.
            const marks = [...svg.querySelectorAll('path, use, rect, line, polyline, polygon, circle')]
              .filter(el => {
                const b = el.getBBox(); const s = getComputedStyle(el);
                const painted = (s.fill !== 'none' && s.fillOpacity !== '0') || (s.stroke !== 'none');
                return painted && (b.width > 0 || b.height > 0);
              });
            const big = marks.filter(el => { const b = el.getBBox(); return b.width * 1 > 20 || b.height > 20; });
            const texts = [...svg.querySelectorAll('text')].filter(t => t.getBBox().width > 0);
            return {w: r.width, h: r.height, marks: marks.length, big: big.length, texts: texts.length};
        })"""
    )
    assert len(charts) == len(doc["opds"]) + 3  # one per OPD + ranking, topology, uplink
    for c in charts:
        assert c["w"] > 100 and c["h"] > 50, c
        assert c["marks"] >= 5 and c["big"] >= 2 and c["texts"] >= 3, c
    assert outside == []
    page.close()


@pytest.mark.parametrize("simulated", [True, False])
def test_pdf_has_simulated_on_every_page(browser: Any, simulated: bool) -> None:
    from pypdf import PdfReader

    outside: list[str] = []
    doc = report_doc(simulated=simulated, n_opds=12)
    page = open_report(browser, render(doc, "id"), outside)
    pdf = page.pdf(prefer_css_page_size=True)
    page.close()
    reader = PdfReader(io.BytesIO(pdf))
    # Title page, cost, needs, use over time, links, rules: at least six printed pages.
    assert len(reader.pages) >= 6
    a4 = reader.pages[0].mediabox
    assert round(float(a4.width) / 72 * 25.4) == 210 and round(float(a4.height) / 72 * 25.4) == 297
    texts = [p.extract_text() for p in reader.pages]
    assert "Rp2.300.000.000" in texts[0]
    for i, text in enumerate(texts, 1):
        assert ("SIMULATED" in text) is simulated, f"page {i} of {len(texts)}"
        assert f"{i} / {len(texts)}" in text  # the footer's page number: a real page, not a blank
    assert outside == []


def test_report_png(browser: Any, tmp_path: Any, doc: dict) -> None:
    from controller.lab.screenshots import A4_WIDTH_PX, report_png

    out = report_png(render(doc, "id"), tmp_path / "report.png", browser=browser)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    assert width == 2 * A4_WIDTH_PX and 1000 < height <= 2 * 1123
