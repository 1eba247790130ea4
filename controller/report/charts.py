"""The report's charts: matplotlib (Agg, no pyplot state) drawn to SVG strings for inlining.

The html must work offline and be mailed as one file, so every chart is inline SVG with
its text kept as text (svg.fonttype "none": small, sharp in print, searchable in the
PDF) in the page's own sans-serif; nothing is fetched. Element ids are prefixed per chart
because many SVGs share one html document (matplotlib's clip-path ids could collide).
Rates are drawn in Mbit/s, volumes in GB, money in million rupiah.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before anything pulls in pyplot elsewhere: never a display

import networkx as nx  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from controller.report.i18n import Fmt  # noqa: E402

# A calm palette (government report, not a dashboard): ink, one blue, one ochre.
INK = "#1f2a36"
GRID = "#d9dee4"
DOWN = "#2f5f8a"
DOWN_FILL = "#c9d9e8"
UP = "#b26a1d"
CAP = "#1f2a36"
BY_CAP = "#9aa7b4"
UTIL_LOW = "#5c8f5b"
UTIL_MID = "#d39b2a"
UTIL_HIGH = "#b23a3a"
UTIL_UNKNOWN = "#b8bec5"

RC: dict[Any, Any] = {  # matplotlib types its keys as literals; these are checked at run time
    "svg.fonttype": "none",
    "svg.hashsalt": "kendali-report",  # stable ids: the same document renders the same bytes
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 7,
    "axes.edgecolor": "#8a949e",
    "axes.labelcolor": INK,
    "axes.linewidth": 0.6,
    "xtick.color": "#4a5560",
    "ytick.color": "#4a5560",
    "xtick.major.width": 0.5,
    "ytick.major.width": 0.5,
    "text.color": INK,
    "legend.frameon": False,
}

# Labels on the topology sit on a white ground so links behind them stay out of the way
# (not a stroke path effect: that turns text into outlines, ten times the bytes).
LABEL_BOX = {"boxstyle": "round,pad=0.12", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}

# Names longer than this are cut on chart axes (the tables carry the full name).
LABEL_CHARS = 30


@contextmanager
def style() -> Iterator[None]:
    with matplotlib.rc_context():  # restores the caller's settings on the way out
        matplotlib.rcParams.update(RC)
        yield


def _label(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


_ID = re.compile(r' id="([^"]+)"')
_REF = re.compile(r'(?:url\(#|href="#)([^"\)]+)')
_STYLE = re.compile(r"\s*<style[^>]*>.*?</style>", re.S)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_DECIMALS = re.compile(r"(?<=\d\.\d\d)\d+")  # digits past the second decimal (a plain delete: fast)
_COORDS = re.compile(r'( (?:d|x|y|transform)=")([^"]*)"')


def to_svg(fig: Figure, prefix: str) -> str:
    """The figure as an inline <svg> element: no XML prologue, ids made unique by prefix."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None}, transparent=True)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = _METADATA.sub("", svg)
    # matplotlib's <style>*{...}</style> would apply to the whole html page once inlined;
    # the template's svg.chart rule carries the same line joins for the charts alone.
    svg = _STYLE.sub("", svg)
    # Only ids something refers to (clip paths, reused markers) are kept; the rest is noise.
    used = set(_REF.findall(svg))
    svg = _ID.sub(lambda m: m.group(0) if m.group(1) in used else "", svg)
    # 0.01 pt is far below what print or screen shows; six decimals tripled the bytes.
    # Chart text takes the page's font (CSS), as the tables do; DejaVu Sans measured it and is
    # wider than the usual sans-serifs, so nothing overflows.
    svg = svg.replace(" font-family: 'DejaVu Sans', sans-serif;", "")
    svg = _COORDS.sub(lambda m: m.group(1) + _DECIMALS.sub("", m.group(2)) + '"', svg)
    ids = set(_ID.findall(svg))
    if ids:
        pattern = re.compile(r'(id="|url\(#|href="#)(' + "|".join(re.escape(i) for i in ids) + r')(?=["\)])')
        svg = pattern.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", svg)
    # Size comes from CSS (width 100%); the viewBox keeps the proportions.
    svg = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r'<svg\1 class="chart" role="img"', svg, count=1)
    return svg


def _tidy(ax: Any, grid_axis: str = "y") -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis=grid_axis, color=GRID, linewidth=0.5)
    ax.set_axisbelow(True)
    ax.tick_params(length=2.5, pad=2)


def ranking(opds: Sequence[dict[str, Any]], fmt: Fmt, t: dict[str, str], top: int = 20) -> str:
    """Two panels sharing the OPD axis: volume a month (download + upload) and annual cost two ways."""
    rows = sorted(
        opds, key=lambda o: o["down"]["monthly_volume_bytes"] + o["up"]["monthly_volume_bytes"], reverse=True
    )[:top]
    n = len(rows)
    names = [_label(o["name"]) for o in rows]
    down = np.array([o["down"]["monthly_volume_bytes"] / 1e9 for o in rows])
    up = np.array([o["up"]["monthly_volume_bytes"] / 1e9 for o in rows])
    by_use = np.array([o["cost"]["by_use_idr"] / 1e6 for o in rows])
    by_cap = np.array([o["cost"]["by_cap_idr"] / 1e6 for o in rows])
    y = np.arange(n)
    fig = Figure(figsize=(7.1, 0.19 * n + 0.75))
    ax1, ax2 = fig.subplots(1, 2, sharey=True, gridspec_kw={"wspace": 0.08})
    ax1.barh(y, down, height=0.72, color=DOWN, label=t["legend_down"])
    ax1.barh(y, up, left=down, height=0.72, color=UP, label=t["legend_up"])
    ax1.set_title(t["chart_use"], loc="left", fontsize=7.5, fontweight="bold")
    ax2.barh(y - 0.19, by_use, height=0.38, color=DOWN, label=t["by_use"])
    ax2.barh(y + 0.19, by_cap, height=0.38, color=BY_CAP, label=t["by_cap"])
    ax2.set_title(t["chart_cost"], loc="left", fontsize=7.5, fontweight="bold")
    ax1.set_yticks(y, names)
    ax1.invert_yaxis()
    for ax in (ax1, ax2):
        _tidy(ax, "x")
        ax.tick_params(axis="y", length=0)
        ax.xaxis.set_major_formatter(lambda v, _pos: fmt.num(v))
        ax.legend(loc="lower right", fontsize=6.5, handlelength=1.2)
    fig.subplots_adjust(left=0.27, right=0.985, top=1 - 0.3 / fig.get_figheight(), bottom=0.3 / fig.get_figheight())
    return to_svg(fig, "rank")


def _nan(values: Sequence[float | int | None], scale: float) -> np.ndarray:
    return np.array([math.nan if v is None else v * scale for v in values], dtype=float)


def _steps(x: np.ndarray, y: np.ndarray, end_x: float) -> tuple[np.ndarray, np.ndarray]:
    """Only the points where the value changes (and the end): a month's constant cap is 2 points, not 1,440."""
    same = np.isclose(y[1:], y[:-1], equal_nan=True)
    keep = np.concatenate(([True], ~same))
    return np.append(x[keep], end_x), np.append(y[keep], y[-1])


def _day_ticks(start: datetime, span_days: float) -> list[float]:
    """Positions (days from start) of local midnights: weekly over a month, whole weeks apart
    over longer periods (at most about five labels: a year's 52 weekly labels would overlap,
    and drawing tick labels is most of a small chart's cost), fewer days apart when short.

    None in the last 15 % of a step before the end, where its label would run off the chart.
    """
    step = 7 * max(1, math.ceil(span_days / 7 / 5)) if span_days > 10 else max(1, math.ceil(span_days / 5))
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(days=1)
    ticks = []
    d = first
    while (pos := (d - start).total_seconds() / 86400) <= span_days - 0.15 * step:
        ticks.append(pos)
        d += timedelta(days=step)
    return ticks


class UsageCanvas:
    """One small-multiple figure, redrawn for each OPD: axes and ticks are built once, which
    halves the time of a report with hundreds of OPDs (most of a chart's cost is its axes)."""

    def __init__(self) -> None:
        self.fig = Figure(figsize=(3.5, 1.45))
        self.ax = self.fig.subplots()
        _tidy(self.ax)
        self.fig.subplots_adjust(left=0.12, right=0.98, top=0.95, bottom=0.17)
        self.ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))

    def clear(self) -> None:
        for artist in [*self.ax.lines, *self.ax.collections]:
            artist.remove()


def usage(
    opd: dict[str, Any], fmt: Fmt, t: dict[str, str], frm: str, to: str, key: str, canvas: UsageCanvas | None = None
) -> str:
    """One OPD's hourly download and upload against its caps (step lines), over the period."""
    start, end = fmt.parse(frm), fmt.parse(to)
    span = max((end - start).total_seconds() / 86400, 1 / 24)
    s = opd.get("series") or {}
    ts = s.get("t") or []
    canvas = canvas or UsageCanvas()
    canvas.clear()
    fig, ax = canvas.fig, canvas.ax
    top = 0.0
    if ts:
        x = (np.array(ts, dtype=float) - start.timestamp()) / 86400
        down = _nan(s.get("down_bps") or [None] * len(ts), 1e-6)
        up = _nan(s.get("up_bps") or [None] * len(ts), 1e-6)
        cap_down = _nan(s.get("cap_down_kbps") or [opd["cap_kbps"]["down"]] * len(ts), 1e-3)
        # The spec's series carries the download cap history; the upload cap is drawn from
        # cap_up_kbps when the data layer gives it, else as the current cap.
        cap_up = _nan(s.get("cap_up_kbps") or [opd["cap_kbps"]["up"]] * len(ts), 1e-3)
        # Each hourly mean drawn at the middle of its hour; the caps as steps at their changes.
        mid = x + (s.get("step_s") or 3600) / 86400 / 2
        ax.fill_between(mid, down, facecolor=DOWN_FILL, edgecolor=DOWN, linewidth=0.5)
        ax.plot(mid, up, color=UP, linewidth=0.6)
        end_x = float(x[-1]) + (s.get("step_s") or 3600) / 86400
        ax.step(*_steps(x, cap_down, end_x), where="post", color=CAP, linewidth=0.9, linestyle=(0, (4, 2)))
        ax.step(*_steps(x, cap_up, end_x), where="post", color=UP, linewidth=0.8, linestyle=(0, (1.5, 1.5)))
        for arr in (down, up, cap_down, cap_up):
            if np.isfinite(arr).any():
                top = max(top, float(np.nanmax(arr)))
    ax.set_xlim(0, span)
    ax.set_ylim(0, top * 1.12 if top > 0 else 1)
    ticks = _day_ticks(start, span)
    ax.set_xticks(ticks, [fmt.short_date(start + timedelta(days=v)) for v in ticks])
    ax.yaxis.set_major_formatter(lambda v, _pos: fmt.num(v))
    return to_svg(fig, f"use-{key}")


def util_colour(util: float | None) -> str:
    if util is None:
        return UTIL_UNKNOWN
    return UTIL_HIGH if util >= 0.8 else UTIL_MID if util >= 0.5 else UTIL_LOW


def link_util(link: dict[str, Any]) -> float | None:
    """The busier direction's p95 utilisation, None when the capacity is unknown."""
    vals = [link[d]["p95_util"] for d in ("a_to_b", "b_to_a") if link.get(d) and link[d].get("p95_util") is not None]
    return max(vals) if vals else None


def layout(g: nx.Graph) -> tuple[dict[Any, np.ndarray], dict[Any, float]]:
    """Positions for the topology picture, and the spoke angle of each office switch.

    The backbone (every switch that is not a dead end) gets networkx's spring layout,
    started from a circle so it is deterministic; each dead-end switch (an OPD's edge
    switch) is fanned out around its hub, away from the rest of the backbone, so a
    ring-and-star intranet reads as a ring of hubs with their offices around them.
    """
    leaves = {n for n in g if g.degree(n) == 1}
    backbone = sorted((n for n in g if n not in leaves), key=str)
    pos: dict[Any, np.ndarray] = {}
    angles: dict[Any, float] = {}
    if len(backbone) == 1:
        pos[backbone[0]] = np.zeros(2)
    elif backbone:
        core = g.subgraph(backbone)
        init = nx.circular_layout(backbone)
        pos.update(nx.spring_layout(core, pos=init, seed=9, iterations=200))
    for hub in backbone:
        kids = sorted((n for n in g[hub] if n in leaves), key=str)
        if not kids:
            continue
        # The fan goes into the widest gap between the hub's backbone links, so offices do
        # not sit on the ring.
        dirs = sorted(math.atan2(*(pos[n] - pos[hub])[::-1]) for n in g[hub] if n in pos)
        if dirs:
            gaps = [((dirs[(i + 1) % len(dirs)] - d) % (2 * math.pi)) or 2 * math.pi for i, d in enumerate(dirs)]
            widest = max(range(len(dirs)), key=lambda i: gaps[i])
            gap = gaps[widest]
            base = dirs[widest] + gap / 2
        else:
            gap, base = 2 * math.pi, math.pi / 2
        k = len(kids)
        span = min(0.42 * (k - 1), max(gap - 0.7, gap * 0.6))
        radius = 0.3 + 0.012 * k
        for i, kid in enumerate(kids):
            a = base + ((i - (k - 1) / 2) * span / (k - 1) if k > 1 else 0.0)
            r = radius * (1.0 if i % 2 == 0 or k <= 6 else 1.3)  # staggered: labels do not collide
            pos[kid] = pos[hub] + r * np.array([math.cos(a), math.sin(a)])
            angles[kid] = a
    rest = [n for n in g if n not in pos]  # lone links (two dead ends): set apart, below right
    if rest:
        extra = nx.spring_layout(g.subgraph(rest), seed=9, scale=0.3)
        for n, p in extra.items():
            pos[n] = p + np.array([1.4, -1.0])
    return pos, angles


def topology(links: Sequence[dict[str, Any]], t: dict[str, str]) -> str:
    """The switches and links (from the links' ends), each link coloured by its p95 utilisation."""
    g: nx.Graph = nx.Graph()
    for link in links:
        g.add_edge(link["a"], link["b"], link=link)
    pos, angles = layout(g)
    fig = Figure(figsize=(7.1, 5.6))
    ax = fig.subplots()
    ax.set_axis_off()
    ax.set_aspect("equal")
    for a, b, data in g.edges(data=True):
        link = data["link"]
        (xa, ya), (xb, yb) = pos[a], pos[b]
        util = link_util(link)
        width = 3.6 if link.get("uplink") else 1.1 + (1.2 if (link.get("capacity_mbps") or 0) >= 1000 else 0)
        style = "solid" if util is not None else (0, (3, 2))
        ax.plot([xa, xb], [ya, yb], color=util_colour(util), linewidth=width, linestyle=style, zorder=1,
                solid_capstyle="round")  # fmt: skip
        if link.get("uplink"):
            ax.annotate(t["uplink"].upper(), ((xa + xb) / 2, (ya + yb) / 2), fontsize=6.5, fontweight="bold",
                        color=INK, ha="center", va="center", bbox=LABEL_BOX, zorder=3)  # fmt: skip
    hubs = [n for n in g if n not in angles]
    ax.scatter([pos[n][0] for n in hubs], [pos[n][1] for n in hubs], s=60, c="white", edgecolors=INK,
               linewidths=0.9, zorder=2)  # fmt: skip
    leaves = list(angles)
    ax.scatter([pos[n][0] for n in leaves], [pos[n][1] for n in leaves], s=14, c="white", edgecolors=INK,
               linewidths=0.7, zorder=2)  # fmt: skip
    for n in hubs:
        ax.annotate(_label(str(n)), tuple(pos[n]), fontsize=6.5, fontweight="bold", xytext=(0, 6),
                    textcoords="offset points", ha="center", va="bottom", zorder=4, bbox=LABEL_BOX)  # fmt: skip
    for n, a in angles.items():
        c, s_ = math.cos(a), math.sin(a)
        ha = "left" if c > 0.35 else "right" if c < -0.35 else "center"
        va = "bottom" if s_ > 0.35 else "top" if s_ < -0.35 else "center"
        ax.annotate(_label(str(n)), tuple(pos[n]), fontsize=5.6, xytext=(5 * c, 5 * s_), textcoords="offset points",
                    ha=ha, va=va, zorder=4, bbox=LABEL_BOX)  # fmt: skip
    handles = [
        Line2D([], [], color=UTIL_LOW, linewidth=2, label=t["util_low"]),
        Line2D([], [], color=UTIL_MID, linewidth=2, label=t["util_mid"]),
        Line2D([], [], color=UTIL_HIGH, linewidth=2, label=t["util_high"]),
        Line2D([], [], color=UTIL_UNKNOWN, linewidth=2, linestyle=(0, (3, 2)), label=t["util_unknown"]),
        Line2D([], [], color=INK, linewidth=3.6, label=t["uplink"]),
    ]
    fig.legend(handles=handles, loc="lower center", ncols=5, fontsize=6.5, handlelength=2.2, columnspacing=1.6,
               title=t["legend_util"], title_fontsize=6.5)  # fmt: skip
    ax.margins(0.12, 0.06)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.1)
    return to_svg(fig, "topo")


def uplink(up: dict[str, Any], fmt: Fmt, t: dict[str, str]) -> str:
    """Purchased uplink capacity against the OPDs' summed p95 (and the uplink's own, if measured)."""
    rows: list[tuple[str, float, str]] = []
    if up.get("purchased_mbps") is not None:
        rows.append((t["purchased"], float(up["purchased_mbps"]), "#e3e7ec"))
    rows.append((t["sum_p95_down"], up["sum_p95_down_bps"] / 1e6, DOWN))
    rows.append((t["sum_p95_up"], up["sum_p95_up_bps"] / 1e6, UP))
    measured = up.get("measured") or {}
    if measured.get("p95_bps") is not None:
        rows.append((t["measured_p95"], measured["p95_bps"] / 1e6, "#4d6b52"))
    if measured.get("peak_bps") is not None:
        rows.append((t["measured_peak"], measured["peak_bps"] / 1e6, "#8aa68e"))
    fig = Figure(figsize=(7.1, 0.3 * len(rows) + 0.45))
    ax = fig.subplots()
    y = np.arange(len(rows))
    vals = [r[1] for r in rows]
    ax.barh(y, vals, color=[r[2] for r in rows], height=0.62, edgecolor="#8a949e", linewidth=0.4)
    for yi, v in zip(y, vals, strict=True):
        ax.annotate(fmt.num(v) + " Mbit/s", (v, yi), xytext=(3, 0), textcoords="offset points", va="center",
                    fontsize=6.5, bbox=LABEL_BOX)  # fmt: skip
    if up.get("purchased_mbps") is not None:
        ax.axvline(float(up["purchased_mbps"]), color=INK, linewidth=0.8, linestyle=(0, (4, 2)), zorder=0.5)
    ax.set_yticks(y, [r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, max([*vals, 1.0]) * 1.18)
    ax.xaxis.set_major_formatter(lambda v, _pos: fmt.num(v))
    ax.set_xlabel("Mbit/s")
    _tidy(ax, "x")
    ax.tick_params(axis="y", length=0)
    h = fig.get_figheight()
    fig.subplots_adjust(left=0.27, right=0.97, top=1 - 0.08 / h, bottom=0.35 / h)
    return to_svg(fig, "uplink")
