"""The html report (controller.report.html.render) on documents of the spec's shape."""

from __future__ import annotations

import re

import pytest
from report_fixture import BUDGET, report_doc

from controller.errors import KendaliError
from controller.report.html import render
from controller.report.i18n import STRINGS, Fmt


@pytest.fixture(scope="module")
def doc() -> dict:
    return report_doc(simulated=True)


@pytest.fixture(scope="module")
def html_id(doc: dict) -> str:
    return render(doc, "id")


@pytest.fixture(scope="module")
def html_en(doc: dict) -> str:
    return render(doc, "en")


def test_rupiah_as_each_language_writes_it() -> None:
    assert Fmt("id", "Asia/Makassar").idr(2_300_000_000) == "Rp2.300.000.000"
    assert Fmt("en", "Asia/Makassar").idr(2_300_000_000) == "IDR\u00a02,300,000,000"
    assert Fmt("id", "UTC").idr(None) == "–"


def test_numbers_percentages_and_dates() -> None:
    fid, fen = Fmt("id", "Asia/Makassar"), Fmt("en", "Asia/Makassar")
    assert fid.mbps(12_345_678) == "12,3" and fen.mbps(12_345_678) == "12.3"
    assert fid.mbps(20_000) == "<0,1"  # not a false zero
    assert fid.pct(0.125, 1) == "12,5%" and fen.pct(0.125, 1) == "12.5%"
    assert fid.kbps_as_mbps(150_000) == "150" and fid.kbps_as_mbps(2_500) == "2,5"
    assert fid.gb(94_200_000_000_000) == "94,2 TB"
    # The period's end at local midnight is exclusive: the last day shown is the day before.
    assert fid.period("2026-10-01T00:00:00+08:00", "2026-10-31T00:00:00+08:00") == "1 Oktober 2026 – 30 Oktober 2026"
    # A UTC instant is shown in the period's zone (WITA = UTC+8): 16:30 UTC is past midnight there.
    assert fen.period("2026-09-30T16:30:00+00:00", "2026-10-02T16:00:00+00:00") == "1 October 2026 – 2 October 2026"
    assert fid.datetime("2026-10-31T01:00:00+00:00") == "31 Oktober 2026, 09.00 WITA"


def test_both_languages_render_the_totals(doc: dict, html_id: str, html_en: str) -> None:
    assert '<html lang="id">' in html_id and '<html lang="en">' in html_en
    assert "Rp2.300.000.000" in html_id
    assert "IDR\u00a02,300,000,000" in html_en
    s = doc["summary"]
    assert Fmt("id", "Asia/Makassar").idr(s["idr_per_mbps_used"]) in html_id
    assert Fmt("en", "Asia/Makassar").idr(s["idr_per_mbps_used"]) in html_en
    assert STRINGS["id"]["rules_section"] in html_id and STRINGS["en"]["rules_section"] in html_en
    # Every OPD is in the tables with its recommendation sentence in the report's language.
    for o in doc["opds"]:
        assert o["down"]["recommendation"]["text"]["id"] in html_id
        assert o["up"]["recommendation"]["text"]["en"] in html_en


def test_the_cost_columns_add_up_to_the_budget(doc: dict, html_id: str) -> None:
    total = re.search(r"<tfoot>(.*?)</tfoot>", html_id, re.S)
    assert total is not None
    assert total.group(1).count("Rp2.300.000.000") == 2  # by cap and by use, side by side
    assert sum(o["cost"]["by_use_idr"] for o in doc["opds"]) == BUDGET


def test_simulated_is_in_the_title_and_on_every_page(html_id: str, doc: dict) -> None:
    title = re.search(r"<title>(.*?)</title>", html_id, re.S)
    assert title is not None and "SIMULATED" in title.group(1)
    assert "@top-center" in html_id  # the printed pages' margin box
    assert 'class="banner"' in html_id  # on screen
    real = render(report_doc(simulated=False, n_opds=2), "id")
    assert "SIMULATED" not in real and "SIMULASI" not in real and "@top-center" not in real


def test_hostile_names_are_escaped() -> None:
    hostile = report_doc(n_opds=3)
    hostile["opds"][0]["name"] = "<script>alert(1)</script>"
    hostile["opds"][0]["opd"] = '"><img src=x onerror=alert(2)>'
    hostile["links"][1]["a"] = "<svg onload=alert(3)>"
    hostile["notes"] = ["</style><script>alert(4)</script>"]
    html = render(hostile, "en")
    assert "<script" not in html
    assert "<img" not in html
    assert "<svg onload" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown as text, in the tables and charts
    assert html.count("</style>") == 1


def test_no_cap_and_no_history() -> None:
    d = report_doc(n_opds=3)
    o = d["opds"][-1]
    o["cap_kbps"] = {"down": None, "up": None}
    empty = {"mean_bps": None, "p95_bps": None, "peak_bps": None, "samples": 0, "demand_p95_bps": None,
             "at_cap_share": None}  # fmt: skip
    for direction in ("down", "up"):
        o[direction].update(office=empty, outside=empty, all=empty, volume_bytes=0, monthly_volume_bytes=0,
                            dropped_bytes=0, at_cap_office_share=None)  # fmt: skip
    o["series"] = {"step_s": 3600, "t": [], "down_bps": [], "up_bps": [], "cap_down_kbps": []}
    o["cost"].update(by_cap_idr=0, idr_per_mbps_used=None)
    html = render(d, "id")
    assert STRINGS["id"]["no_history"] in html
    assert STRINGS["id"]["no_cap"] in html


def test_counted_subnets_are_listed_apart_from_the_opds(doc: dict, html_id: str, html_en: str) -> None:
    assert doc["subnets"] and all(s["kind"] == "subnet" for s in doc["subnets"])
    for html, lang in ((html_id, "id"), (html_en, "en")):
        section = html[html.index('id="subnets"') : html.index('id="use"')]
        assert STRINGS[lang]["subnets_note"].replace("'", "&#39;") in section
        assert all(s["name"] in section for s in doc["subnets"])
    without = dict(doc, subnets=[])
    assert 'id="subnets"' not in render(without, "id")


def test_a_document_without_opds_says_so_plainly() -> None:
    d = report_doc(simulated=False, n_opds=0)
    for lang in ("id", "en"):
        html = render(d, lang)
        assert STRINGS[lang]["no_opds"] in html
        assert STRINGS[lang]["no_links"] in html
        assert 'id="cost"' not in html  # no empty tables


def test_self_contained_and_ids_unique(html_id: str) -> None:
    # Nothing to fetch: no scripts, no links, no src; references only to the page itself.
    assert "<script" not in html_id and "<link" not in html_id and "@import" not in html_id
    assert re.findall(r'\b(?:src|href)="(?!#)', html_id) == []
    assert "url(http" not in html_id
    # Many inline SVGs share one document: their ids (clip paths) must not collide.
    ids = re.findall(r' id="([^"]+)"', html_id)
    assert len(ids) == len(set(ids))
    for ref in re.findall(r'(?:url\(#|href="#)([^"\)]+)', html_id):
        assert ref in ids


def test_one_chart_per_opd_and_the_overview_charts(doc: dict, html_id: str) -> None:
    assert html_id.count('class="chart"') == len(doc["opds"]) + 3  # + ranking, topology, uplink


def test_bad_input_is_a_clear_error(doc: dict) -> None:
    with pytest.raises(KendaliError, match="language"):
        render(doc, "fr")
    with pytest.raises(KendaliError, match="format"):
        render({**doc, "format": "other/1"}, "id")
    broken = {k: v for k, v in doc.items() if k != "opds"}
    with pytest.raises(KendaliError, match="'opds' is missing"):
        render(broken, "id")


def test_charts_drawn_by_two_processes_make_the_same_page(doc: dict, html_id: str) -> None:
    assert render(doc, "id", workers=2) == html_id
