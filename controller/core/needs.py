"""What each OPD needs, and what it costs: the analysis behind the report (pure, no I/O).

Input: an OPD's buckets over the report's period (history.COLUMNS: start, covered ms,
delivered and dropped bytes per direction), its caps, the settings. Output: plain dicts,
the pieces of the report document (controller.report.data). The rules, as docs/report.md
states them:

- **Samples** are the 5-minute buckets of the period (hourly ones where 5-minute history
  has expired). A sample's rate is bytes x 8000 / ms; buckets that cover no time are left
  out. The **95th percentile** is the nearest rank: of n rates sorted, the k-th with
  k = ceil(0.95 n) (numpy's ``method="inverted_cdf"``; what ISPs bill). The **mean** is
  the bytes over the time covered, never a mean of rates. The **peak** is the largest rate.
- **Office time**: a sample is in office hours when its start, in the settings' time zone,
  falls on an office day that is not a day off, within [start, end). Outside is every
  other sample.
- **Demand** is delivered + dropped. A sample is **at the cap** when the cap dropped frames
  in it, or its delivered rate reached 95 % of the meter rate (the cap x FRAME_OVERHEAD:
  meters count whole Ethernet frames). The cap is the one in force at the sample's time.
- **Recommendation**, per direction with a cap, in this order:
  too little history (under 1 day covered): keep, and say so;
  **raise** when at the cap in more than 10 % of office samples AND the cap dropped bytes:
  to the office demand's p95 (turned from frames into cap units, / FRAME_OVERHEAD) x 1.2,
  rounded up to 5 Mbit/s, at least cap + 5 Mbit/s;
  **lower** when the p95 of all samples is under 40 % of the meter rate and at least 7 days
  are covered: to max(p95 / FRAME_OVERHEAD x 1.5 rounded up to 5 Mbit/s, 5 Mbit/s), if that
  is below the cap; else **keep**.
- **Cost**: the annual budget split two ways, by allocated caps (download + upload kbit/s;
  no cap: 0) and by measured use (delivered bytes down + up in the period), each with the
  largest-remainder method so that the whole rupiah add up exactly to the budget. Cost per
  Mbit/s used: the OPD's share by cap over its mean (down + up) Mbit/s, i.e. what its
  allocation costs per Mbit/s it actually uses; regency wide: the budget over the sum of
  the OPDs' mean Mbit/s.
- **Links**: peak and p95 of each direction's 5-minute rates, and over the capacity.

Everything here takes numpy arrays of int64 (the history's columns) and gives ints and
floats: JSON as is.
"""

from __future__ import annotations

import datetime
import math
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from babel.numbers import format_decimal

from controller.core.compiler import FRAME_OVERHEAD
from controller.core.settings import DAYS, OfficeHours, minutes

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

PERCENTILE = 95
AT_CAP_OF_METER = 0.95  # a sample's delivered rate at 95 % of the meter rate counts as at the cap
RAISE_AT_CAP_SHARE = 0.10  # of office samples
RAISE_HEADROOM = 1.2
LOWER_BELOW = 0.40  # p95 of all samples under this share of the meter rate
LOWER_HEADROOM = 1.5
STEP_KBPS = 5000  # suggestions are rounded up to 5 Mbit/s
MIN_COVERED_S = 86400  # less history than a day: no recommendation
LOWER_COVERED_S = 7 * 86400  # lowering a cap needs a week of history
MONTH_S = 30 * 86400
LANGS = ("id", "en")


# ---- samples ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Direction:
    """One direction's buckets: covered ms, delivered bytes, dropped bytes (aligned with the start times)."""

    ms: Ints
    delivered: Ints
    dropped: Ints


def rank(n: int, p: int = PERCENTILE) -> int:
    """The nearest rank (1-based) of the p-th percentile among n values: ceil(p n / 100), at least 1.
    In integers, so no float rounding can move it (numpy's inverted_cdf gives the same for every n)."""
    return max(1, (p * n + 99) // 100)


def percentile(values: Floats, p: int = PERCENTILE) -> float | None:
    """Nearest-rank percentile; None for no values.

    No sort of a year of samples: a bound just under the percentile is taken from every 16th
    value, and only the values at or above it (a few in a hundred) are partitioned. If the
    sample misled (fewer values above the bound than the rank needs), all are partitioned."""
    n = len(values)
    if n == 0:
        return None
    k = rank(n, p) - 1  # 0-based, ascending
    if n > 4096:
        sample = np.sort(values[::16])
        bound = sample[max(0, int(len(sample) * (k / n)) - len(sample) // 50)]
        top = values[values >= bound]
        below = n - len(top)
        if below <= k:
            return float(np.partition(top, k - below)[k - below])
    return float(np.partition(values, k)[k])


def rates(nbytes: Ints, ms: Ints) -> Floats:
    """Bits per second of each bucket; NaN where it covers no time."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out: Floats = np.where(ms > 0, nbytes * 8000.0 / np.maximum(ms, 1), np.nan)
    return out


def _int(x: float | None) -> int | None:
    return None if x is None or math.isnan(x) else int(round(x))


def stats(d: Direction, mask: Bools, meter_bps: Floats | None) -> dict[str, Any]:
    """STATS of the samples ``mask`` selects: mean, p95, peak and demand p95 (bit/s), and the share
    at the cap. ``meter_bps``: each sample's meter rate (NaN: not capped then), or None (never capped)."""
    return _Rates(d, meter_bps).stats(mask)


def window_stats(d: Direction, office: Bools, meter_bps: Floats | None) -> dict[str, dict[str, Any]]:
    """STATS of office time, outside it and all samples: the rates worked out once for the three."""
    r = _Rates(d, meter_bps)
    return {"office": r.stats(office), "outside": r.stats(~office), "all": r.stats(None)}


class _Rates:
    """One direction's rates, at-cap flags and the like, worked out once (a year is 105,120 samples)."""

    def __init__(self, d: Direction, meter_bps: Floats | None) -> None:
        self.d = d
        self.valid: Bools | None = d.ms > 0  # buckets that cover no time are left out of rates
        if self.valid is not None and self.valid.all():
            self.valid = None  # the usual case: no copies
        ms = (d.ms if self.valid is None else d.ms[self.valid]).astype(np.float64)
        self.ms = ms
        delivered = d.delivered if self.valid is None else d.delivered[self.valid]
        dropped = d.dropped if self.valid is None else d.dropped[self.valid]
        self.rate: Floats = delivered * 8000.0 / ms if len(ms) else np.zeros(0)
        self.any_drop = bool(dropped.any())
        self.demand: Floats = (delivered + dropped) * 8000.0 / ms if self.any_drop else self.rate
        self.at: Bools | None = None
        self.capped: Bools | None = None
        if meter_bps is not None:
            meter = meter_bps if self.valid is None else meter_bps[self.valid]
            self.capped = ~np.isnan(meter)
            with np.errstate(invalid="ignore"):
                self.at = (dropped > 0) | (self.rate >= AT_CAP_OF_METER * meter)

    def stats(self, mask: Bools | None) -> dict[str, Any]:
        d = self.d
        sel = mask if mask is None or self.valid is None else mask[self.valid]
        rate = self.rate if sel is None else self.rate[sel]
        n = len(rate)
        covered = float(self.ms.sum() if sel is None else self.ms[sel].sum())
        # bytes of a bucket that covers no time still count (a cycle shared out to its last bucket)
        nbytes = int(d.delivered.sum() if mask is None else d.delivered.sum(where=mask))
        at_cap_share = None
        if self.at is not None and self.capped is not None:
            capped = self.capped if sel is None else self.capped[sel]
            at = self.at if sel is None else self.at[sel]
            if capped.any():
                at_cap_share = round(float((at & capped).sum()) / int(capped.sum()), 4)
        demand_p95 = None
        if self.any_drop:
            demand_p95 = percentile(self.demand if sel is None else self.demand[sel])
        p95 = percentile(rate)
        return {
            "mean_bps": _int(nbytes * 8000 / covered) if covered else None,
            "p95_bps": _int(p95),
            "peak_bps": int(round(float(rate.max()))) if n else None,
            "samples": n,
            "demand_p95_bps": _int(demand_p95 if self.any_drop else p95),
            "at_cap_share": at_cap_share,
        }


# ---- office time -----------------------------------------------------------------------------


def office_windows(
    frm: float, to: float, office: OfficeHours, days_off: set[datetime.date]
) -> list[tuple[float, float]]:
    """The office periods [start, end) in unix seconds that overlap [frm, to), oldest first.

    Each office day's local start and end are turned into instants by the zone's own rules
    (zoneinfo), so daylight saving time elsewhere moves them as it moves the clocks.
    """
    zone = zoneinfo.ZoneInfo(office.timezone)
    days = {DAYS.index(d) for d in office.days}
    start_min, end_min = minutes(office.start), minutes(office.end)
    first = datetime.datetime.fromtimestamp(frm, zone).date() - datetime.timedelta(days=1)
    last = datetime.datetime.fromtimestamp(to, zone).date() + datetime.timedelta(days=1)
    out = []
    day = first
    while day <= last:
        if day.weekday() in days and day not in days_off:
            a = _wall(day, start_min, zone)
            b = _wall(day, end_min, zone)
            if b > frm and a < to:
                out.append((a, b))
        day += datetime.timedelta(days=1)
    return out


def _wall(day: datetime.date, minute: int, zone: zoneinfo.ZoneInfo) -> float:
    """The instant of a local wall-clock time (minute of ``day``; 1440 is the next midnight)."""
    extra, minute = divmod(minute, 1440)
    d = day + datetime.timedelta(days=extra)
    return datetime.datetime(d.year, d.month, d.day, minute // 60, minute % 60, tzinfo=zone).timestamp()


def in_windows(t_ms: Ints, windows: Sequence[tuple[float, float]]) -> Bools:
    """Which starts (unix ms) fall in one of the windows (sorted, not overlapping)."""
    if not windows:
        return np.zeros(len(t_ms), dtype=bool)
    bounds = np.array([x * 1000 for w in windows for x in w], dtype=np.float64)
    out: Bools = np.searchsorted(bounds, t_ms, side="right") % 2 == 1
    return out


# ---- caps over time ----------------------------------------------------------------------------


def meter_bps(t_ms: Ints, first: int | None, changes: Sequence[tuple[float, int | None]]) -> Floats:
    """Each sample's meter rate in bit/s (cap x FRAME_OVERHEAD), NaN where there was no cap.

    ``first``: the cap (kbit/s) before the first change; ``changes``: (unix s, cap from then on)."""
    if not changes:
        return np.full(len(t_ms), np.nan if first is None else first * 1000.0 * FRAME_OVERHEAD)
    caps = [first] + [c for _, c in changes]
    values = np.array([np.nan if c is None else c * 1000.0 * FRAME_OVERHEAD for c in caps])
    at = np.array([t * 1000 for t, _ in changes], dtype=np.float64)
    idx = np.searchsorted(at, t_ms, side="right")
    out: Floats = values[idx]
    return out


def cap_at(t: float, first: int | None, changes: Sequence[tuple[float, int | None]]) -> int | None:
    """The cap (kbit/s) in force at unix time ``t``."""
    cap = first
    for when, c in changes:
        if when > t:
            break
        cap = c
    return cap


# ---- recommendations -----------------------------------------------------------------------------


def _round_up(kbps: float) -> int:
    return int(math.ceil(kbps / STEP_KBPS - 1e-9) * STEP_KBPS)


def _num(x: float, lang: str) -> str:
    return str(format_decimal(x, format="#,##0.#", locale="id_ID" if lang == "id" else "en_US"))


def mbit(bps: float, lang: str) -> str:
    return _num(bps / 1e6, lang)


def volume(nbytes: int, lang: str) -> str:
    """1234567890 -> '1.2 GB' (decimal units, as operators and ISPs count)."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= size:
            return f"{_num(nbytes / size, lang)} {unit}"
    return f"{nbytes} B"


def _pct(share: float) -> str:
    return f"{round(share * 100):d}%"


_WORDS = {
    "en": {"down": "download", "up": "upload"},
    "id": {"down": "unduh", "up": "unggah"},
}


def recommend(
    direction: str,
    cap_kbps: int | None,
    office: dict[str, Any],
    whole: dict[str, Any],
    dropped_bytes: int,
    covered_s: float,
) -> dict[str, Any]:
    """The recommendation for one direction: {"action", "suggested_kbps", "text": {"id", "en"}}."""
    w = {lang: _WORDS[lang][direction] for lang in LANGS}
    p95 = whole["p95_bps"]
    if cap_kbps is None:
        seen = {lang: f"; 95th percentile {mbit(p95, lang)} Mbit/s" if p95 is not None else "" for lang in LANGS}
        seen["id"] = seen["id"].replace("95th percentile", "persentil ke-95")
        return _rec(
            "keep",
            None,
            f"No {w['en']} cap: nothing to recommend{seen['en']}.",
            f"Tanpa batas {w['id']}: tidak ada rekomendasi{seen['id']}.",
        )
    cap_en, cap_id = _num(cap_kbps / 1000, "en"), _num(cap_kbps / 1000, "id")
    days_en, days_id = _num(covered_s / 86400, "en"), _num(covered_s / 86400, "id")
    if covered_s < MIN_COVERED_S:
        return _rec(
            "keep",
            None,
            f"Keep the {w['en']} cap of {cap_en} Mbit/s: only {days_en} days of history; "
            "a recommendation needs at least 1 day.",
            f"Pertahankan batas {w['id']} {cap_id} Mbit/s: riwayat baru {days_id} hari; "
            "rekomendasi perlu sedikitnya 1 hari.",
        )
    meter = cap_kbps * 1000 * FRAME_OVERHEAD
    at_cap = office["at_cap_share"]
    demand = office["demand_p95_bps"]
    if at_cap is not None and at_cap > RAISE_AT_CAP_SHARE and dropped_bytes > 0 and demand is not None:
        suggested = max(_round_up(demand / FRAME_OVERHEAD / 1000 * RAISE_HEADROOM), cap_kbps + STEP_KBPS)
        s_en, s_id = _num(suggested / 1000, "en"), _num(suggested / 1000, "id")
        return _rec(
            "raise",
            suggested,
            f"Raise the {w['en']} cap from {cap_en} to {s_en} Mbit/s: it was at its cap {_pct(at_cap)} of office "
            f"time and {volume(dropped_bytes, 'en')} were dropped; office demand's 95th percentile was "
            f"{mbit(demand, 'en')} Mbit/s.",
            f"Naikkan batas {w['id']} dari {cap_id} menjadi {s_id} Mbit/s: {_pct(at_cap)} jam kerja berada di "
            f"batas dan {volume(dropped_bytes, 'id')} dibuang; persentil ke-95 permintaan jam kerja "
            f"{mbit(demand, 'id')} Mbit/s.",
        )
    share = p95 / meter if p95 is not None else None
    if share is not None and share < LOWER_BELOW and covered_s >= LOWER_COVERED_S:
        suggested = max(_round_up(p95 / FRAME_OVERHEAD / 1000 * LOWER_HEADROOM), STEP_KBPS)
        if suggested < cap_kbps:
            s_en, s_id = _num(suggested / 1000, "en"), _num(suggested / 1000, "id")
            return _rec(
                "lower",
                suggested,
                f"Lower the {w['en']} cap from {cap_en} to {s_en} Mbit/s: its 95th percentile was "
                f"{mbit(p95, 'en')} Mbit/s, {_pct(share)} of the cap, over {days_en} days.",
                f"Turunkan batas {w['id']} dari {cap_id} menjadi {s_id} Mbit/s: persentil ke-95-nya "
                f"{mbit(p95, 'id')} Mbit/s, {_pct(share)} dari batas, selama {days_id} hari.",
            )
    parts_en, parts_id = [], []
    if at_cap is not None:
        parts_en.append(f"at its cap {_pct(at_cap)} of office time")
        parts_id.append(f"{_pct(at_cap)} jam kerja berada di batas")
    if share is not None:
        parts_en.append(f"95th percentile {_pct(share)} of the cap")
        parts_id.append(f"persentil ke-95 {_pct(share)} dari batas")
    why_en = (": " + ", ".join(parts_en)) if parts_en else ""
    why_id = (": " + ", ".join(parts_id)) if parts_id else ""
    return _rec(
        "keep",
        None,
        f"Keep the {w['en']} cap of {cap_en} Mbit/s{why_en}.",
        f"Pertahankan batas {w['id']} {cap_id} Mbit/s{why_id}.",
    )


def _rec(action: str, suggested: int | None, en: str, id_: str) -> dict[str, Any]:
    return {"action": action, "suggested_kbps": suggested, "text": {"id": id_, "en": en}}


# ---- cost --------------------------------------------------------------------------------------


def largest_remainder(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` in whole units that add up to exactly ``total``
    (Hamilton's method: everyone gets the whole part of their quota, the units left over go to
    the largest fractions; ties to the earlier one). All zeros when every weight is zero."""
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("a total and weights of zero or more")
    whole = sum(weights)
    if whole == 0:
        return [0] * len(weights)
    # Integer arithmetic throughout: a float quota of a 2.3e9 budget over byte counts would lose rupiah.
    quotas = [divmod(total * w, whole) for w in weights]
    out = [q for q, _ in quotas]
    left = total - sum(out)
    by_fraction = sorted(range(len(weights)), key=lambda i: (-quotas[i][1], i))
    for i in by_fraction[:left]:
        out[i] += 1
    return out


def cost(budget: int, cap_kbps: Sequence[int], used_bytes: Sequence[int], mean_bps: Sequence[float]) -> dict[str, Any]:
    """The budget split per OPD by cap and by use, and the cost per Mbit/s used.

    ``cap_kbps``: each OPD's download + upload caps (0: none); ``used_bytes``: delivered down + up;
    ``mean_bps``: mean down + up rate over the period. Returns {"opds": [per OPD], "idr_per_mbps_used"}.
    """
    by_cap = largest_remainder(budget, cap_kbps)
    by_use = largest_remainder(budget, used_bytes)
    caps, used = sum(cap_kbps), sum(used_bytes)
    rows = []
    for i in range(len(cap_kbps)):
        mbps = mean_bps[i] / 1e6
        rows.append(
            {
                "by_cap_idr": by_cap[i],
                "by_use_idr": by_use[i],
                "cap_share": round(cap_kbps[i] / caps, 6) if caps else 0.0,
                "use_share": round(used_bytes[i] / used, 6) if used else 0.0,
                "idr_per_mbps_used": int(round(by_cap[i] / mbps)) if cap_kbps[i] and mbps > 0 else None,
            }
        )
    total_mbps = sum(mean_bps) / 1e6
    return {"opds": rows, "idr_per_mbps_used": int(round(budget / total_mbps)) if total_mbps > 0 else None}


# ---- links and charts ----------------------------------------------------------------------------


def link_direction(ms: Ints, nbytes: Ints, capacity_mbps: float | None) -> dict[str, Any]:
    """Peak and p95 rate of one direction of a link, and each over the capacity."""
    r = rates(nbytes, ms)
    r = r[~np.isnan(r)]
    peak = float(r.max()) if len(r) else None
    p95 = percentile(r)
    cap = capacity_mbps * 1e6 if capacity_mbps else None
    return {
        "peak_bps": _int(peak),
        "p95_bps": _int(p95),
        "peak_util": round(peak / cap, 4) if cap and peak is not None else None,
        "p95_util": round(p95 / cap, 4) if cap and p95 is not None else None,
    }


MAX_POINTS = 800


def chart_step(frm: float, to: float, max_points: int = MAX_POINTS) -> int:
    """Hourly, or whole hours more when the period has more than ``max_points`` hours."""
    return 3600 * max(1, math.ceil((to - frm) / 3600 / max_points))


def chart(t_ms: Ints, ms: Ints, columns: Sequence[Ints], frm: float, to: float, step: int) -> dict[str, Any]:
    """Mean bit/s of each step of the period for each column: {"t": [unix s], "bps": [[int|None...]...]}.

    Steps are aligned to multiples of ``step`` since the epoch; a step with no covered time is None.
    ``t_ms`` is sorted (oldest first), so each step's buckets are one run: summed with reduceat."""
    first = int(frm // step * step)
    n = max(0, math.ceil((to - first) / step))
    idx = (t_ms // 1000 - first) // step
    a, b = np.searchsorted(idx, [0, n])
    idx = idx[a:b]
    out: dict[str, Any] = {"t": [first + i * step for i in range(n)], "bps": []}
    if not len(idx):
        out["bps"] = [[None] * n for _ in columns]
        return out
    runs = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]])  # where each step's buckets start
    steps = idx[runs]
    covered = np.zeros(n, dtype=np.int64)
    covered[steps] = np.add.reduceat(ms[a:b], runs)
    for col in columns:
        total = np.zeros(n, dtype=np.int64)
        total[steps] = np.add.reduceat(col[a:b], runs)
        with np.errstate(divide="ignore", invalid="ignore"):
            bps = np.rint(total * 8000.0 / covered)
        out["bps"].append([None if c <= 0 else int(x) for x, c in zip(bps.tolist(), covered.tolist(), strict=True)])
    return out
