"""A realistic report document (spec 9's "kendali-report/1" shape) for the html tests.

Stands in for controller.report.data.build() so the renderer can be tested on its own:
PPU-like OPDs with hourly series over the period (office-hours profile, weekends low,
some OPDs at their caps), the ring-and-star links of topologies/ppu.yaml and one ISP
uplink. Deterministic (seeded); the figures are plausible, not an analysis: the real
analysis lives in controller.core.needs and is tested there.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

# (id, name, download cap kbit/s, upload cap kbit/s, switch, distribution node, load factor)
# load > 1: the OPD outgrows its cap; small: it barely uses it. None caps: no policy.
OPDS: list[tuple[str, str, int | None, int | None, str, float]] = [
    ("rsud", "RSUD Ratu Aji Putri Botung", 150000, 80000, "dist-penajam", 1.25),
    ("disdukcapil", "Disdukcapil", 90000, 60000, "dist-penajam", 1.15),
    ("disdik", "Dinas Pendidikan", 80000, 40000, "dist-penajam", 0.8),
    ("diskominfo", "Diskominfo (NOC staff)", 80000, 40000, "core", 0.7),
    ("setda", "Sekretariat Daerah", 60000, 30000, "dist-penajam", 0.75),
    ("bpkad", "BPKAD", 60000, 30000, "dist-penajam", 0.9),
    ("dinkes", "Dinas Kesehatan", 60000, 30000, "dist-penajam", 1.1),
    ("bapenda", "Bapenda", 60000, 30000, "dist-penajam", 0.6),
    ("bappeda", "Bappeda", 50000, 25000, "dist-penajam", 0.55),
    ("dprd", "Sekretariat DPRD", 40000, 20000, "dist-penajam", 0.5),
    ("dc", "Server farm (SPBE e-government, website)", None, None, "dc", 0.6),
    ("kec-penajam", "Kantor Kecamatan Penajam", 40000, 20000, "dist-penajam", 0.55),
    ("pkm-penajam", "Puskesmas Penajam", 40000, 20000, "dist-penajam", 0.6),
    ("kec-waru", "Kantor Kecamatan Waru", 40000, 20000, "dist-waru", 0.5),
    ("pkm-waru", "Puskesmas Waru", 40000, 20000, "dist-waru", 0.55),
    ("kec-babulu", "Kantor Kecamatan Babulu", 40000, 20000, "dist-babulu", 0.3),
    ("pkm-babulu", "Puskesmas Babulu", 40000, 20000, "dist-babulu", 0.5),
    ("kec-sepaku", "Kantor Kecamatan Sepaku", 40000, 20000, "dist-sepaku", 0.5),
    ("pkm-sepaku", "Puskesmas Sepaku", 40000, 20000, "dist-sepaku", 0.55),
    ("inspektorat", "Inspektorat", 30000, 15000, "dist-penajam", 0.06),
]

BUDGET = 2_300_000_000
TZ = "Asia/Makassar"
SETTINGS: dict[str, Any] = {
    "annual_budget_idr": BUDGET,
    "uplink_mbps": None,
    "office_hours": {"timezone": TZ, "days": ["mon", "tue", "wed", "thu", "fri"], "start": "07:30", "end": "16:00"},
    "holidays": {"country": "ID", "extra": ["2026-12-24"], "not": []},
}


def _stats(rates: list[float], cap_bps: float | None) -> dict[str, Any]:
    if not rates:
        return {"mean_bps": None, "p95_bps": None, "peak_bps": None, "samples": 0,
                "demand_p95_bps": None, "at_cap_share": None}  # fmt: skip
    s = sorted(rates)
    p95 = s[max(0, math.ceil(0.95 * len(s)) - 1)]
    at_cap = None if cap_bps is None else sum(r >= 0.95 * cap_bps for r in rates) / len(rates)
    return {
        "mean_bps": int(sum(rates) / len(rates)),
        "p95_bps": int(p95),
        "peak_bps": int(s[-1]),
        "samples": len(rates),
        "demand_p95_bps": int(p95 * (1.15 if at_cap else 1.0)),
        "at_cap_share": at_cap,
    }


def _largest_remainder(weights: list[float], total: int) -> list[int]:
    w = sum(weights)
    if w <= 0:
        return [0] * len(weights)
    exact = [total * x / w for x in weights]
    out = [math.floor(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - out[i], reverse=True)
    for i in order[: total - sum(out)]:
        out[i] += 1
    return out


def _direction(rates: list[float], office: list[bool], cap_kbps: int | None, days: float, lang_word: str) -> dict:
    cap_bps = None if cap_kbps is None else cap_kbps * 1000.0
    off = [r for r, o in zip(rates, office, strict=True) if o]
    out = [r for r, o in zip(rates, office, strict=True) if not o]
    all_stats = _stats(rates, cap_bps)
    office_stats = _stats(off, cap_bps)
    volume = int(sum(rates) * 3600 / 8)
    dropped = 0
    action, suggested = "keep", None
    en = f"Keep the {lang_word} cap: it fits the use."
    idt = f"Pertahankan batas {'unduh' if lang_word == 'download' else 'unggah'}: sesuai pemakaian."
    if cap_kbps is None:
        en = f"No {lang_word} cap: nothing to change."
        idt = f"Tanpa batas {'unduh' if lang_word == 'download' else 'unggah'}: tidak ada yang diubah."
    elif office_stats["at_cap_share"] and office_stats["at_cap_share"] > 0.10:
        dropped = int(volume * 0.04)
        action = "raise"
        suggested = max(cap_kbps + 5000, math.ceil(office_stats["demand_p95_bps"] * 1.2 / 5e6) * 5000)
        share = round(office_stats["at_cap_share"] * 100)
        en = f"Raise to {suggested // 1000} Mbit/s: at the cap {share}% of office hours, traffic dropped."
        idt = f"Naikkan ke {suggested // 1000} Mbit/s: di batas {share}% jam kerja, lalu lintas terbuang."
    elif all_stats["p95_bps"] is not None and all_stats["p95_bps"] < 0.4 * cap_kbps * 1000 and days >= 7:
        action = "lower"
        suggested = max(math.ceil(all_stats["p95_bps"] * 1.5 / 5e6) * 5000, 5000)
        en = f"Lower to {suggested // 1000} Mbit/s: p95 use is under 40% of the cap."
        idt = f"Turunkan ke {suggested // 1000} Mbit/s: p95 pemakaian di bawah 40% batas."
    return {
        "office": office_stats,
        "outside": _stats(out, cap_bps),
        "all": all_stats,
        "volume_bytes": volume,
        "monthly_volume_bytes": int(volume * 30 / days) if days else 0,
        "dropped_bytes": dropped,
        "at_cap_office_share": office_stats["at_cap_share"],
        "recommendation": {"action": action, "suggested_kbps": suggested, "text": {"id": idt, "en": en}},
    }


def _links(opds: list[tuple[str, str, int | None, int | None, str, float]], rng: random.Random) -> list[dict]:
    ring = [("core", "dc", 10000), ("dc", "dist-penajam", 1000), ("core", "dist-penajam", 10000),
            ("dist-penajam", "dist-waru", 1000), ("dist-waru", "dist-babulu", 1000),
            ("dist-babulu", "dist-sepaku", 300), ("dist-sepaku", "core", 1000)]  # fmt: skip
    pairs: list[tuple[str, str, float | None, bool]] = [("core", "isp", 1000, True)]
    pairs += [(a, b, c, False) for a, b, c in ring]
    for opd, _, _, _, dist, _ in opds:
        if opd != "dc":
            # One access link of unknown capacity: the picture shows it grey.
            pairs.append((f"sw-{opd}", dist, None if opd == "kec-babulu" else 100, False))
    links = []
    for a, b, cap, uplink in pairs:
        directions = {}
        for d in ("a_to_b", "b_to_a"):
            base = 0.9 if uplink else (0.85 if b == "dist-sepaku" and a == "dist-babulu" else rng.uniform(0.02, 0.7))
            peak = (cap or 100) * 1e6 * min(1.0, base * rng.uniform(1.05, 1.3))
            p95 = (cap or 100) * 1e6 * base * rng.uniform(0.8, 1.0)
            directions[d] = {
                "peak_bps": int(peak),
                "p95_bps": int(p95),
                "peak_util": None if cap is None else peak / (cap * 1e6),
                "p95_util": None if cap is None else p95 / (cap * 1e6),
            }
        links.append({"id": f"link:{a}~{b}", "a": a, "b": b, "capacity_mbps": cap, "uplink": uplink, **directions})
    return links


def report_doc(simulated: bool = True, n_opds: int = 20, days: int = 30, seed: int = 9) -> dict[str, Any]:
    """A report document with the first n_opds OPDs (more repeat the list with a suffix)."""
    rng = random.Random(seed)
    tz = ZoneInfo(TZ)
    start = datetime(2026, 10, 1, tzinfo=tz)
    end = start + timedelta(days=days)
    hours = days * 24
    t0 = int(start.timestamp())
    times = [t0 + 3600 * h for h in range(hours)]
    local = [datetime.fromtimestamp(t, tz) for t in times]
    office = [d.weekday() < 5 and 8 <= d.hour < 16 for d in local]
    chosen = [OPDS[i % len(OPDS)] for i in range(n_opds)]
    chosen = [(o if i < len(OPDS) else (f"{o[0]}-{i}", f"{o[1]} {i}", *o[2:])) for i, o in enumerate(chosen)]

    opds = []
    for opd, name, cap_down, cap_up, _, load in chosen:
        ref_down = (cap_down or 80000) * 1000.0 * load
        ref_up = (cap_up or 40000) * 1000.0 * load
        down, up = [], []
        for d, o in zip(local, office, strict=True):
            profile = 0.75 + 0.25 * math.sin((d.hour - 8) / 8 * math.pi) if o else 0.06
            if o and d.hour == 12:
                profile *= 0.6  # lunch dip
            noise = rng.uniform(0.8, 1.15)
            rd = ref_down * profile * noise
            ru = ref_up * profile * noise * 0.8
            down.append(min(rd, cap_down * 1000.0) if cap_down else rd)
            up.append(min(ru, cap_up * 1000.0) if cap_up else ru)
        # Cap changed halfway for RSUD: the step line shows it.
        cap_series: list[int | None] = [cap_down] * hours
        if opd == "rsud":
            cap_series = [120000 if h < hours // 2 else cap_down for h in range(hours)]
        opds.append(
            {
                "opd": opd,
                "name": name,
                "kind": "subnet" if cap_down is None else "policy",
                "cap_kbps": {"down": cap_down, "up": cap_up},
                "down": _direction(down, office, cap_down, days, "download"),
                "up": _direction(up, office, cap_up, days, "upload"),
                "series": {
                    "step_s": 3600,
                    "t": times,
                    "down_bps": [int(x) for x in down],
                    "up_bps": [int(x) for x in up],
                    "cap_down_kbps": cap_series,
                },
            }
        )
    opds.sort(key=lambda o: o["down"]["volume_bytes"], reverse=True)
    subnets = [o for o in opds if o["kind"] != "policy"]  # as data.build: not in the ranking or the cost
    opds = [o for o in opds if o["kind"] == "policy"]
    caps = [float((o["cap_kbps"]["down"] or 0) + (o["cap_kbps"]["up"] or 0)) for o in opds]
    uses = [float(o["down"]["volume_bytes"] + o["up"]["volume_bytes"]) for o in opds]
    by_cap = _largest_remainder(caps, BUDGET)
    by_use = _largest_remainder(uses, BUDGET)
    mean_mbps_total = 0.0
    for o, c, u, cw, uw in zip(opds, by_cap, by_use, caps, uses, strict=True):
        mean_mbps = ((o["down"]["all"]["mean_bps"] or 0) + (o["up"]["all"]["mean_bps"] or 0)) / 1e6
        mean_mbps_total += mean_mbps
        o["cost"] = {
            "by_cap_idr": c,
            "by_use_idr": u,
            "cap_share": cw / sum(caps) if sum(caps) else 0.0,
            "use_share": uw / sum(uses) if sum(uses) else 0.0,
            "idr_per_mbps_used": int(u / mean_mbps) if mean_mbps else None,
        }
    down_bytes = sum(o["down"]["volume_bytes"] for o in opds)
    up_bytes = sum(o["up"]["volume_bytes"] for o in opds)
    covered = float(days * 86400) if opds else 0.0
    actions = [
        "raise" if "raise" in (o["down"]["recommendation"]["action"], o["up"]["recommendation"]["action"])
        else "lower" if "lower" in (o["down"]["recommendation"]["action"], o["up"]["recommendation"]["action"])
        else "keep"
        for o in opds
    ]  # fmt: skip
    sum_p95_down = sum(o["down"]["all"]["p95_bps"] or 0 for o in opds)
    sum_p95_up = sum(o["up"]["all"]["p95_bps"] or 0 for o in opds)
    links = _links(chosen[: len(OPDS)], rng) if opds else []
    return {
        "format": "kendali-report/1",
        "simulated": simulated,
        "generated_at": (end + timedelta(hours=9)).isoformat(),
        "period": {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "days": float(days),
            "timezone": TZ,
            "covered_s": covered,
        },  # fmt: skip
        "settings": SETTINGS,
        "summary": {
            "budget_idr": BUDGET,
            "opds": len(opds),
            "down_bytes": down_bytes,
            "up_bytes": up_bytes,
            "mean_down_bps": int(down_bytes * 8 / covered) if covered else 0,
            "mean_up_bps": int(up_bytes * 8 / covered) if covered else 0,
            "idr_per_mbps_used": int(BUDGET / mean_mbps_total) if mean_mbps_total else None,
            "raise": actions.count("raise"),
            "lower": actions.count("lower"),
            "keep": actions.count("keep"),
        },
        "uplink": {
            "purchased_mbps": 1000,
            "sum_p95_down_bps": sum_p95_down,
            "sum_p95_up_bps": sum_p95_up,
            "ratio_down": sum_p95_down / 1e9,
            "measured": {"peak_bps": 960_000_000, "p95_bps": 870_000_000} if opds else None,
        },
        "opds": opds,
        "subnets": subnets,
        "links": links,
        "notes": [] if opds else ["no usage history in the period"],
    }
