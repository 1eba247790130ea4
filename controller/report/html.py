"""The html report: one self-contained file from a report document (spec 9, "kendali-report/1").

`render(doc, lang)` fills templates/report.html.j2 (jinja2, autoescaped: OPD and switch
names come from operators and are never trusted as markup) with inline SVG charts from
charts.py and words and numbers from i18n.py. Nothing is fetched when the file is opened:
no scripts, fonts, images or style sheets from elsewhere, so it works offline, can be
mailed, and prints on A4 (print CSS in the template).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from controller.errors import KendaliError
from controller.report import charts
from controller.report.i18n import Fmt, strings

FORMAT = "kendali-report/1"
TEMPLATES = Path(__file__).with_name("templates")
# The first page ranks this many OPDs (200 bars would be unreadable); the tables list all.
RANKING_TOP = 20
LINKS_TOP = 20

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,  # a missing key in the template is a bug, not a blank
)


def _css_string(text: str) -> Markup:
    """A CSS string literal for the @page margin boxes (the banner and footer)."""
    escaped = re.sub(r'["\\<>\n]', lambda m: f"\\{ord(m.group(0)):X} ", text)
    return Markup(f'"{escaped}"')


_env.filters["css_string"] = _css_string


def _action(o: dict[str, Any]) -> str:
    """One word per OPD: raise if either direction needs more, lower if either can take less."""
    acts = {o[d]["recommendation"]["action"] for d in ("down", "up")}
    return "raise" if "raise" in acts else "lower" if "lower" in acts else "keep"


def _check(doc: dict[str, Any]) -> None:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        found = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise KendaliError(f"report document: format must be {FORMAT!r}, found {found!r}")
    for key in ("period", "summary", "uplink", "opds", "links", "settings"):
        if key not in doc:
            raise KendaliError(f"report document: {key!r} is missing")


def _usage_svgs(opds: list[dict[str, Any]], lang: str, tz: str, frm: str, to: str, first: int) -> list[str]:
    """The small multiples of a run of OPDs (numbered from ``first``): one canvas reused."""
    f, t = Fmt(lang, tz), strings(lang)
    with charts.style():
        canvas = charts.UsageCanvas()
        return [charts.usage(o, f, t, frm, to, str(first + i), canvas) for i, o in enumerate(opds)]


def _usage_in_parallel(opds: list[dict[str, Any]], lang: str, tz: str, frm: str, to: str, workers: int) -> list[str]:
    """The small multiples drawn by ``workers`` processes (forked: drawing 200 charts is most
    of a year's report, and matplotlib holds one core)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    n = math.ceil(len(opds) / workers)
    runs = [(opds[i : i + n], lang, tz, frm, to, i) for i in range(0, len(opds), n)]
    with ProcessPoolExecutor(len(runs), mp_context=multiprocessing.get_context("fork")) as pool:
        return [svg for part in pool.map(_usage_svgs, *zip(*runs, strict=True)) for svg in part]


def render(doc: dict[str, Any], lang: str = "id", workers: int = 1) -> str:
    """The report document as one html page in Indonesian ("id") or English ("en").

    ``workers`` > 1 draws the OPDs' charts in that many forked processes: for the command
    line, never inside the controller (forking a process with green threads and an event
    loop is not safe)."""
    t = strings(lang)
    _check(doc)
    period = doc["period"]
    tz = period.get("timezone") or doc["settings"].get("office_hours", {}).get("timezone") or "UTC"
    f = Fmt(lang, tz)
    opds = doc["opds"]
    summary = doc["summary"]
    if workers > 1 and len(opds) >= 4 * workers:
        usage_svgs = _usage_in_parallel(opds, lang, tz, period["from"], period["to"], workers)
    else:
        usage_svgs = _usage_svgs(opds, lang, tz, period["from"], period["to"], 0)
    with charts.style():
        ranking_svg = charts.ranking(opds, f, t, RANKING_TOP) if opds else None
        topo_svg = charts.topology(doc["links"], t) if doc["links"] else None
        uplink_svg = charts.uplink(doc["uplink"], f, t) if opds or doc["uplink"].get("purchased_mbps") else None

    actions = [_action(o) for o in opds]
    mean_bps = (summary.get("mean_down_bps") or 0) + (summary.get("mean_up_bps") or 0)
    counts = {"opds": summary["opds"], "raise_": summary["raise"], "lower": summary["lower"], "keep": summary["keep"]}
    if summary.get("idr_per_mbps_used") is not None:
        answer = t["answer"].format(cost=f.idr(summary["idr_per_mbps_used"]), **counts)
    else:
        answer = t["answer_no_use"].format(**counts)
    links = sorted(
        doc["links"], key=lambda k: (charts.link_util(k) is None, -(charts.link_util(k) or 0), k["id"])
    )  # fmt: skip
    office = doc["settings"].get("office_hours") or {}
    up = doc["uplink"]
    ratio = up.get("ratio_down")
    title = t["title"] + (f" ({t['simulated_title']})" if doc.get("simulated") else "")
    return _env.get_template("report.html.j2").render(
        doc=doc,
        lang=lang,
        t=t,
        f=f,
        title=title,
        period_text=f.period(period["from"], period["to"]),
        answer=answer,
        mean_mbps=f.mbps(mean_bps),
        opds=list(zip(opds, actions, [Markup(s) for s in usage_svgs], strict=True)),
        to_raise=[o["name"] for o, a in zip(opds, actions, strict=True) if a == "raise"],
        to_lower=[o["name"] for o, a in zip(opds, actions, strict=True) if a == "lower"],
        ranking_svg=Markup(ranking_svg) if ranking_svg else None,
        ranking_note=t["ranking_top"].format(shown=RANKING_TOP, total=len(opds)) if len(opds) > RANKING_TOP else "",
        topo_svg=Markup(topo_svg) if topo_svg else None,
        uplink_svg=Markup(uplink_svg) if uplink_svg else None,
        links=links[:LINKS_TOP],
        links_note=t["links_top"].format(shown=LINKS_TOP, total=len(links)) if len(links) > LINKS_TOP else "",
        link_util=charts.link_util,
        util_colour=charts.util_colour,
        uplink_ratio=t["uplink_ratio"].format(pct=f.pct(ratio)) if ratio is not None else "",
        needs_intro=t["needs_intro"].format(
            days=f.weekdays(office.get("days") or []),
            start=office.get("start", ""),
            end=office.get("end", ""),
            tz=f.parse(period["from"]).tzname() or "",
        ),
        cost_intro=t["cost_intro"].format(budget=f.idr(summary["budget_idr"])),
        rules=t["rules"].split("\n"),
        total_by_cap=sum(o["cost"]["by_cap_idr"] for o in opds),
        total_by_use=sum(o["cost"]["by_use_idr"] for o in opds),
        total_volume=sum(o["down"]["monthly_volume_bytes"] + o["up"]["monthly_volume_bytes"] for o in opds),
    )
