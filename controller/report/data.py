"""The report document: a state directory's history, policies and settings -> one dict.

    build(state_dir, frm, to, now) -> dict        format "kendali-report/1" (docs/report.md)

json is this dict as is; csv (controller.report.csvout) and html (controller.report.html)
render it. The figures come from controller.core.needs; this module only reads:

    <state-dir>/usage.sqlite     5-minute buckets (hourly before 5-minute history expired),
                                 link entries, meta "links" and "simulated"
    <state-dir>/policies.json    the caps now (read-only: no PolicyStore, which tidies files)
    <state-dir>/audit.jsonl      the caps before: each OPD's chart shows the cap of its time
    <state-dir>/settings.json    budget, uplink, office hours, holidays (defaults if absent)

Nothing is written. A missing or damaged file is a KendaliError naming it; a missing
history is a report with no use and a note saying so.
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import sqlite3
import struct
import zlib
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from controller.api.history import COLUMNS, HISTORY_FILE, History, HistoryError, parse_time
from controller.api.store import AUDIT_FILE, STATE_FILE, load_policies, load_settings, read_audit
from controller.core import needs
from controller.core.needs import Direction, Ints
from controller.core.policy import Policy
from controller.core.settings import Settings, days_off
from controller.errors import KendaliError
from controller.report import columns

FORMAT = "kendali-report/1"
MAX_DAYS = 800  # a period longer than two years and a bit is a typo
LATEST = datetime.datetime(2200, 1, 1, tzinfo=datetime.UTC).timestamp()  # calendars end somewhere
FORMATS = ("html", "json", "csv")
LANGS = ("id", "en")
DEFAULT_DAYS = 30
OPD_KINDS = ("policy", "subnet")
LINK_KIND = "link"
# history columns read: start, covered ms, delivered and dropped bytes each way
_T, _MS, _UP, _UP_DROP, _DOWN, _DOWN_DROP = (
    COLUMNS.index(c) for c in ("t_ms", "ms", "up_bytes", "up_dropped_bytes", "down_bytes", "down_dropped_bytes")
)
_WANT = (_T, _MS, _UP, _UP_DROP, _DOWN, _DOWN_DROP)


def parse_when(text: str, field: str, now: float, zone: str) -> float:
    """A report's --from/--to: a date or a time without an offset is the offices' local time
    (2026-11-01 is midnight in WITA); anything else as history.parse_time (unix seconds,
    ISO 8601 with an offset or Z, now, now-30d). HistoryError naming ``field``."""
    s = text.strip()
    if s[:1].isdigit() and ("-" in s or ":" in s) and not s.endswith(("Z", "z")):
        try:
            dt = datetime.datetime.fromisoformat(s)
        except ValueError:
            dt = None
        if dt is not None and dt.tzinfo is None:
            try:
                return check_time(dt.replace(tzinfo=zoneinfo.ZoneInfo(zone)).timestamp(), text, field)
            except (OverflowError, OSError, ValueError):
                raise HistoryError(f"{text!r} is not a time a report can cover", field) from None
    return check_time(parse_time(text, field, now), text, field)


def check_time(t: float, text: str, field: str) -> float:
    if not 0 <= t < LATEST:
        raise HistoryError(f"{text!r} is outside the years 1970-2199", field)
    return t


def check_period(frm: float, to: float) -> None:
    """A period a report can cover, or HistoryError naming 'from' or 'to'."""
    if not (math.isfinite(frm) and math.isfinite(to)):
        raise HistoryError("not a time", "from")
    check_time(frm, repr(frm), "from")
    check_time(to, repr(to), "to")
    if to <= frm:
        raise HistoryError("'to' must be later than 'from'", "to")
    if to - frm > MAX_DAYS * 86400:
        raise HistoryError(f"the period is {(to - frm) / 86400:.0f} days; a report covers at most {MAX_DAYS}", "from")


def period_of(state_dir: str | Path, frm: str | None, to: str | None, now: float) -> tuple[float, float]:
    """The report's period from its flags or query (default: the 30 days up to now)."""
    zone = load_settings(Path(state_dir)).office_hours.timezone
    end = parse_when(to, "to", now, zone) if to else now
    start = parse_when(frm, "from", now, zone) if frm else end - DEFAULT_DAYS * 86400
    check_period(start, end)
    return start, end


class Notes:
    """What the reader must know about the figures, in English ("notes") and Indonesian
    ("notes_id"), the same notes in the same order."""

    def __init__(self) -> None:
        self.en: list[str] = []
        self.id: list[str] = []

    def add(self, en: str, id_: str) -> None:
        self.en.append(en)
        self.id.append(id_)


class Unavailable(Exception):
    """The html report cannot be made here (a library it needs is missing)."""


def render(doc: dict[str, Any], fmt: str, lang: str = "id", workers: int = 1) -> str:
    """The document as text: json (the dict as is), csv or html (``workers``: processes that
    draw its charts; the command line uses every core, the controller one)."""
    if fmt == "json":
        return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    if fmt == "csv":
        from controller.report import csvout

        return csvout.render(doc)
    return html_renderer()(doc, lang, workers)


def html_renderer() -> Any:
    """controller.report.html.render, imported only when html is asked for (it brings matplotlib)."""
    import importlib

    try:
        module = importlib.import_module("controller.report.html")
    except ImportError as exc:  # an install without the plotting or template libraries
        raise Unavailable(f"html cannot be made here ({exc}); use json or csv") from None
    return module.render


def file_name(doc: dict[str, Any], fmt: str) -> str:
    """report-<from>-<to>.<fmt>, with the period's local dates."""
    return f"report-{doc['period']['from'][:10]}-{doc['period']['to'][:10]}.{fmt}"


# ---- the history's meta table (History.meta_json once the lead's history.py has it) -------------------


def meta_json(hist: History, key: str) -> Any:
    """The JSON value of a meta key, or None."""
    own = getattr(hist, "meta_json", None)
    if own is not None:
        return own(key)
    row = hist.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return json.loads(row[0]) if row else None


def set_meta_json(hist: History, key: str, value: Any) -> None:
    own = getattr(hist, "set_meta_json", None)
    if own is not None:
        own(key, value)
        return
    hist.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))


def _meta_text(hist: History, key: str) -> str | None:
    row = hist.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return str(row[0]) if row else None


# ---- reading -----------------------------------------------------------------------------------


class _Reader:
    """Buckets of one entry over the period: 5-minute ones, hourly ones before 5-minute expiry."""

    def __init__(self, hist: History, frm: float, to: float, now: float) -> None:
        self.hist = hist
        self.frm, self.to = frm, to
        # where 5-minute buckets are kept from, on an hour so the two tiers meet without overlap
        self.split = max(frm, math.ceil((now - hist.keep["5m"]) / 3600) * 3600)
        self.hourly = frm < self.split

    def fetch(self, entry: str) -> list[columns.Raw]:
        """The packed buckets of the period (SQL: in the caller's thread)."""
        oid = columns.entry_id(self.hist.db, entry)
        out = []
        if self.hourly:
            out.append(columns.fetch(self.hist.db, "1h", oid, self.frm, min(self.split, self.to)))
        if self.split < self.to:
            out.append(columns.fetch(self.hist.db, "5m", oid, self.split, self.to))
        return out

    def stream(self, entries: list[str]) -> Iterator[tuple[str, dict[int, Ints]]]:
        """(entry, columns) in order; decoding overlaps the caller's work (columns.stream)."""
        return columns.stream(entries, self.fetch, _WANT)


def _open_history(path: Path) -> History:
    try:
        return History(path, reader=True)
    except (sqlite3.Error, OSError) as exc:
        raise KendaliError(f"the usage history cannot be read ({exc})", str(path)) from None


def _audit_time(entry: dict[str, Any]) -> float | None:
    try:
        return datetime.datetime.fromisoformat(str(entry["time"])).timestamp()
    except (KeyError, ValueError):
        return None


def _caps(p: Any) -> tuple[int | None, int | None]:
    """(download, upload) kbit/s of a policy as the audit log writes it (None: no policy)."""
    if not isinstance(p, dict):
        return None, None
    down, up = p.get("download_kbps"), p.get("upload_kbps")
    return (down if isinstance(down, int) else None, up if isinstance(up, int) else None)


Timeline = tuple[tuple[int | None, int | None], list[tuple[float, tuple[int | None, int | None]]]]


def cap_timelines(audit: list[dict[str, Any]], policies: dict[str, Policy]) -> dict[str, Timeline]:
    """Per OPD: (caps before the first change, [(unix s, caps from then on)]) from the audit log.

    An OPD the log does not mention has its caps of now throughout. A seed (the --policies
    file an empty state dir started from) is what held before Kendali counted anything: its
    caps count from the beginning."""
    out: dict[str, Timeline] = {}
    for e in audit:
        if e.get("action") not in ("put", "delete", "seed") or not isinstance(e.get("id"), str):
            continue
        t = _audit_time(e)
        if t is None:
            continue
        if e["action"] == "seed" and e["id"] not in out:
            out[e["id"]] = (_caps(e.get("after")), [])
            continue
        first, changes = out.setdefault(e["id"], (_caps(e.get("before")), []))
        changes.append((t, _caps(e.get("after"))))
    for _, changes in out.values():
        changes.sort(key=lambda c: c[0])  # the log is in the order written; a clock may have stepped back
    for pid, p in policies.items():
        now = (p.download_kbps, p.upload_kbps)
        if pid not in out:
            out[pid] = (now, [])
        elif (out[pid][1][-1][1] if out[pid][1] else out[pid][0]) != now:
            # a lost audit line: what is in force now counts from now
            out[pid][1].append((math.inf, now))
    return out


# ---- one OPD -----------------------------------------------------------------------------------


def _direction(
    name: str,
    d: Direction,
    office: Any,
    meters: Any,
    cap: int | None,
    covered_s: float,
) -> dict[str, Any]:
    w = needs.window_stats(d, office, meters)
    o, a = w["office"], w["all"]
    out = {
        **w,
        "volume_bytes": int(d.delivered.sum()),
        "monthly_volume_bytes": int(round(int(d.delivered.sum()) * needs.MONTH_S / covered_s)) if covered_s else 0,
        "dropped_bytes": int(d.dropped.sum()),
        "at_cap_office_share": o["at_cap_share"],
        "recommendation": needs.recommend(name, cap, o, a, int(d.dropped.sum()), covered_s),
    }
    return out


def _opd(
    entry: dict[str, Any],
    cols: dict[int, Ints],
    policy: Policy | None,
    timeline: Timeline | None,
    windows: list[tuple[float, float]],
    frm: float,
    to: float,
    step: int,
) -> dict[str, Any]:
    t, ms = cols[_T], cols[_MS]
    office = needs.in_windows(t, windows)
    covered_s = float(ms.sum()) / 1000
    first, changes = timeline if timeline is not None else ((None, None), [])
    caps = {"down": policy.download_kbps if policy else None, "up": policy.upload_kbps if policy else None}
    out: dict[str, Any] = {
        "opd": entry["opd"],
        "name": policy.name if policy else entry["name"],
        "kind": "policy" if policy else entry["kind"],
        "cap_kbps": caps,
        "covered_s": covered_s,
    }
    for k, name, nbytes, dropped in ((0, "down", _DOWN, _DOWN_DROP), (1, "up", _UP, _UP_DROP)):
        line = [(when, c[k]) for when, c in changes]
        meters = needs.meter_bps(t, first[k], line)
        out[name] = _direction(name, Direction(ms, cols[nbytes], cols[dropped]), office, meters, caps[name], covered_s)
    chart = needs.chart(t, ms, [cols[_DOWN], cols[_UP]], frm, to, step)
    out["series"] = {
        "step_s": step,
        "t": chart["t"],
        "down_bps": chart["bps"][0],
        "up_bps": chart["bps"][1],
        "cap_down_kbps": [needs.cap_at(x, first[0], [(w, c[0]) for w, c in changes]) for x in chart["t"]],
        "cap_up_kbps": [needs.cap_at(x, first[1], [(w, c[1]) for w, c in changes]) for x in chart["t"]],
    }
    return out


# ---- links -------------------------------------------------------------------------------------


def _link_ends(link_id: str) -> tuple[str, str]:
    a, _, b = link_id.removeprefix("link:").partition("~")
    return a, b


def _capacity(info: dict[str, Any]) -> float | None:
    cap = info.get("capacity_mbps")
    return float(cap) if isinstance(cap, (int, float)) and not isinstance(cap, bool) and cap > 0 else None


def _links(reader: _Reader | None, entries: list[dict[str, Any]], meta: Any, notes: Notes) -> list[dict[str, Any]]:
    declared: dict[str, dict[str, Any]] = {}
    if meta is not None and not isinstance(meta, dict):
        notes.add(
            "the history's list of links is not readable; links are shown without names or capacities",
            "daftar link dalam riwayat tidak terbaca; link ditampilkan tanpa nama dan kapasitas",
        )
        meta = {}
    for lid, info in (meta or {}).items():
        if isinstance(info, dict):
            declared[str(lid)] = info
    seen = {e["opd"] for e in entries if e["kind"] == LINK_KIND}
    # each link's figures as its buckets arrive: a year of 60 links' columns would be 300 MB at once
    figures: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for lid, cols in reader.stream(sorted(seen)) if reader is not None else ():
        cap = _capacity(declared.get(lid, {}))
        figures[lid] = (
            needs.link_direction(cols[_MS], cols[_UP], cap),
            needs.link_direction(cols[_MS], cols[_DOWN], cap),
        )
    out = []
    for lid in sorted(set(declared) | seen):
        info = declared.get(lid, {})
        a, b = _link_ends(lid)
        cap = _capacity(info)
        row: dict[str, Any] = {
            "id": lid,
            "a": str(info.get("a", a)),
            "b": str(info.get("b", b)),
            "capacity_mbps": cap,
            "uplink": info.get("uplink") is True,
        }
        if lid in figures:
            row["a_to_b"], row["b_to_a"] = figures[lid]
        else:
            empty = np.zeros(0, dtype=np.int64)
            row["a_to_b"] = row["b_to_a"] = needs.link_direction(empty, empty, cap)
        out.append(row)
    return out


# ---- the document --------------------------------------------------------------------------------


def _iso(t: float, zone: zoneinfo.ZoneInfo) -> str:
    return datetime.datetime.fromtimestamp(t, zone).isoformat(timespec="seconds")


def build(state_dir: str | Path, frm: float, to: float, now: float) -> dict[str, Any]:
    """The report document of ``state_dir`` over [frm, to) (unix seconds), made at ``now``."""
    check_period(frm, to)
    state = Path(state_dir)
    if not state.is_dir():
        raise KendaliError("no such state directory (give the controller's --state-dir)", str(state))
    settings: Settings = load_settings(state)
    policies = load_policies(state / STATE_FILE) if (state / STATE_FILE).exists() else {}
    timelines = cap_timelines(read_audit(state / AUDIT_FILE), policies)
    zone = zoneinfo.ZoneInfo(settings.office_hours.timezone)
    first_day = datetime.datetime.fromtimestamp(frm, zone).date() - datetime.timedelta(days=1)
    last_day = datetime.datetime.fromtimestamp(to, zone).date() + datetime.timedelta(days=1)
    windows = needs.office_windows(frm, to, settings.office_hours, days_off(settings, first_day, last_day))
    step = needs.chart_step(frm, to)
    notes = Notes()

    path = state / HISTORY_FILE
    hist = _open_history(path) if path.exists() else None
    if hist is None:
        notes.add(
            f"no usage history in {state} yet: every figure of use is zero",
            f"belum ada riwayat pemakaian di {state}: semua angka pemakaian nol",
        )
    try:
        return _build(state, hist, settings, policies, timelines, windows, frm, to, now, step, zone, notes)
    except (sqlite3.Error, zlib.error, struct.error, ValueError, KeyError, TypeError) as exc:
        # a damaged block or table: say which file, never a traceback
        raise KendaliError(f"the usage history cannot be read ({exc}); is it damaged?", str(path)) from None
    finally:
        if hist is not None:
            hist.close()


def _build(
    state: Path,
    hist: History | None,
    settings: Settings,
    policies: dict[str, Policy],
    timelines: dict[str, Timeline],
    windows: list[tuple[float, float]],
    frm: float,
    to: float,
    now: float,
    step: int,
    zone: zoneinfo.ZoneInfo,
    notes: Notes,
) -> dict[str, Any]:
    entries = hist.opds() if hist is not None else []
    reader = _Reader(hist, frm, to, now) if hist is not None else None
    simulated = hist is not None and _meta_text(hist, "simulated") == "1"
    if simulated:
        notes.add(
            "SIMULATED: this history was generated by `kendali history simulate`, not measured",
            "SIMULASI: riwayat ini dibuat oleh `kendali history simulate`, bukan hasil pengukuran",
        )
    if reader is not None and reader.hourly:
        split = datetime.datetime.fromtimestamp(reader.split, zone).date().isoformat()
        notes.add(
            f"5-minute history is kept 400 days: before {split} the samples are hourly",
            f"riwayat 5 menit disimpan 400 hari: sebelum {split} sampelnya per jam",
        )

    # The ISP hand-off is counted like a subnet; it is the uplink, not an OPD (see _uplink).
    uplink_meta = meta_json(hist, "uplink") if hist is not None else None
    isp = uplink_meta.get("subnet") if isinstance(uplink_meta, dict) else None
    # every OPD with a policy now, and every counted OPD or subnet with buckets in the period
    known = {e["opd"]: e for e in entries if e["kind"] in OPD_KINDS and e["opd"] != isp}
    for pid, p in policies.items():
        known.setdefault(pid, {"opd": pid, "kind": "policy", "name": p.name})
    empty = {c: np.zeros(0, dtype=np.int64) for c in _WANT}
    in_history = {e["opd"] for e in entries}
    read = reader.stream([o for o in sorted(known) if o in in_history]) if reader is not None else iter(())
    opds = []
    for oid, cols in itertools.chain(read, ((o, empty) for o in sorted(known) if o not in in_history)):
        if not len(cols[_T]) and oid not in policies:
            continue  # a deleted OPD or old subnet with nothing in this period
        opds.append(_opd(known[oid], cols, policies.get(oid), timelines.get(oid), windows, frm, to, step))
    opds.sort(key=lambda o: (-o["down"]["volume_bytes"], o["opd"]))
    # Declared subnets without a policy (a server farm) are listed apart: their traffic also
    # passes the OPDs' own meters, so in the ranking or the cost split it would count twice.
    subnets = [o for o in opds if o["kind"] != "policy"]
    opds = [o for o in opds if o["kind"] == "policy"]

    budget = settings.annual_budget_idr
    means = [
        (o["down"]["volume_bytes"] + o["up"]["volume_bytes"]) * 8 / o["covered_s"] if o["covered_s"] else 0.0
        for o in opds
    ]
    money = needs.cost(
        budget,
        [(o["cap_kbps"]["down"] or 0) + (o["cap_kbps"]["up"] or 0) for o in opds],
        [o["down"]["volume_bytes"] + o["up"]["volume_bytes"] for o in opds],
        means,
    )
    for o, c in zip(opds, money["opds"], strict=True):
        o["cost"] = c
    if budget and opds and not any(o["cost"]["by_cap_idr"] for o in opds):
        notes.add(
            "no OPD has a cap: the budget is not split by cap",
            "tidak ada OPD yang punya batas: anggaran tidak dibagi menurut batas",
        )
    if budget and opds and not any(o["cost"]["by_use_idr"] for o in opds):
        notes.add(
            "no use was measured in the period: the budget is not split by use",
            "tidak ada pemakaian terukur dalam periode ini: anggaran tidak dibagi menurut pemakaian",
        )

    covered = max((o["covered_s"] for o in opds), default=0.0)
    days = (to - frm) / 86400
    if hist is not None and covered < 0.95 * (to - frm):
        unit, per, unit_id = ("days", 86400, "hari") if days >= 1 else ("hours", 3600, "jam")
        span = (to - frm) / per
        notes.add(
            f"history covers {covered / per:.1f} of {span:.1f} {unit}",
            f"riwayat mencakup {covered / per:.1f} dari {span:.1f} {unit_id}".replace(".", ","),
        )

    links = _links(reader, entries, meta_json(hist, "links") if hist is not None else None, notes)
    isp_cols = next(iter(reader.stream([isp]))) if reader is not None and isp and isp in in_history else None
    uplink = _uplink(settings, links, opds, notes, uplink_meta, isp_cols[1] if isp_cols else None)

    actions = []
    for o in opds:
        mine = {o["down"]["recommendation"]["action"], o["up"]["recommendation"]["action"]}
        actions.append("raise" if "raise" in mine else "lower" if "lower" in mine else "keep")
    for o in opds + subnets:
        del o["covered_s"]
    return {
        "format": FORMAT,
        "simulated": simulated,
        "generated_at": _iso(now, zone),
        "period": {
            "from": _iso(frm, zone),
            "to": _iso(to, zone),
            "days": round(days, 4),
            "timezone": settings.office_hours.timezone,
            "covered_s": covered,
        },
        "settings": settings.to_dict(),
        "summary": {
            "budget_idr": budget,
            "opds": len(opds),
            "down_bytes": sum(o["down"]["volume_bytes"] for o in opds),
            "up_bytes": sum(o["up"]["volume_bytes"] for o in opds),
            "mean_down_bps": int(round(sum(_mean(o, "down") for o in opds))),
            "mean_up_bps": int(round(sum(_mean(o, "up") for o in opds))),
            "idr_per_mbps_used": money["idr_per_mbps_used"],
            "raise": actions.count("raise"),
            "lower": actions.count("lower"),
            "keep": actions.count("keep"),
        },
        "uplink": uplink,
        "opds": opds,
        "subnets": subnets,
        "links": links,
        "notes": notes.en,
        "notes_id": notes.id,
    }


def _mean(o: dict[str, Any], direction: str) -> float:
    m = o[direction]["all"]["mean_bps"]
    return float(m) if m is not None else 0.0


def _uplink(
    settings: Settings,
    links: list[dict[str, Any]],
    opds: list[dict[str, Any]],
    notes: Notes,
    meta: Any = None,
    isp_cols: dict[int, Ints] | None = None,
) -> dict[str, Any]:
    """Bought against needed. What is bought: the settings' uplink_mbps, else the declared
    topology's uplink (history meta "uplink"). What went through it: the ISP subnet's own
    counters (its "up" is what came from the ISP: the regency's download), or, in a history
    that marks a link as the uplink (simulated), that link."""
    up_link = next((link for link in links if link["uplink"]), None)
    declared = _capacity(meta) if isinstance(meta, dict) else None
    purchased = settings.uplink_mbps or declared
    if purchased is None and up_link is not None:
        purchased = up_link["capacity_mbps"]
    if purchased is None:
        notes.add(
            "the purchased uplink capacity is unknown: set uplink_mbps (PUT /v1/settings)",
            "kapasitas uplink yang dibeli tidak diketahui: isi uplink_mbps (PUT /v1/settings)",
        )
    ways: tuple[dict[str, Any], ...] = ()
    if isp_cols is not None:
        cap = float(purchased) if purchased else None
        ways = (
            needs.link_direction(isp_cols[_MS], isp_cols[_UP], cap),
            needs.link_direction(isp_cols[_MS], isp_cols[_DOWN], cap),
        )
    elif up_link is not None:
        ways = (up_link["a_to_b"], up_link["b_to_a"])
    down = sum(o["down"]["all"]["p95_bps"] or 0 for o in opds)
    up = sum(o["up"]["all"]["p95_bps"] or 0 for o in opds)
    measured = None
    if ways:
        peaks = [w["peak_bps"] for w in ways if w["peak_bps"] is not None]
        p95s = [w["p95_bps"] for w in ways if w["p95_bps"] is not None]
        measured = {"peak_bps": max(peaks) if peaks else None, "p95_bps": max(p95s) if p95s else None}
    return {
        "purchased_mbps": purchased,
        "sum_p95_down_bps": int(down),
        "sum_p95_up_bps": int(up),
        "ratio_down": round(down / (purchased * 1e6), 4) if purchased else None,
        "measured": measured,
    }
