"""controller.core.needs: percentiles, office time across zones and days off, the recommendation
rule on crafted histories, the cost split to the rupiah."""

from __future__ import annotations

import datetime
import math
from fractions import Fraction
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core import needs
from controller.core.compiler import FRAME_OVERHEAD
from controller.core.needs import Direction, in_windows, largest_remainder, office_windows, percentile, recommend
from controller.core.settings import OfficeHours, validate

WITA = OfficeHours()  # Asia/Makassar, mon-fri 07:30-16:00
MBIT = 1_000_000
STEP_MS = 300_000


def utc(*args: int) -> float:
    return datetime.datetime(*args, tzinfo=datetime.UTC).timestamp()


# ---- percentiles ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e10, allow_nan=False), min_size=1, max_size=3000))
def test_percentile_is_numpys_inverted_cdf(values: list[float]) -> None:
    arr = np.array(values)
    assert percentile(arr.copy()) == np.percentile(arr, 95, method="inverted_cdf")
    assert percentile(arr.copy(), 50) == np.percentile(arr, 50, method="inverted_cdf")


def test_the_nearest_rank_matches_numpy_for_every_count_up_to_a_year_of_samples() -> None:
    for n in [*range(1, 3000), 105_120, 105_121, 8_640, 8_928]:
        ranks = np.arange(n, dtype=np.float64)
        assert needs.rank(n) - 1 == np.percentile(ranks, 95, method="inverted_cdf"), n


def test_no_samples_no_percentile() -> None:
    assert percentile(np.array([], dtype=np.float64)) is None


def test_stats_leave_out_buckets_that_cover_no_time_and_mean_is_bytes_over_time() -> None:
    d = Direction(
        ms=np.array([300_000, 0, 150_000, 300_000], dtype=np.int64),
        delivered=np.array([3_750_000, 999, 3_750_000, 0], dtype=np.int64),
        dropped=np.array([0, 0, 1_875_000, 0], dtype=np.int64),
    )
    s = needs.stats(d, np.ones(4, dtype=bool), None)
    assert s["samples"] == 3
    assert s["mean_bps"] == round((3_750_000 + 999 + 3_750_000) * 8000 / 750_000)  # not a mean of rates
    assert s["peak_bps"] == 200_000  # 3.75 MB in 150 s
    assert s["demand_p95_bps"] == 300_000 and s["at_cap_share"] is None


# ---- office time ---------------------------------------------------------------------------------


def office(t: float, hours: OfficeHours = WITA, off: frozenset[datetime.date] = frozenset()) -> bool:
    windows = office_windows(t - 86400, t + 86400, hours, set(off))
    return bool(in_windows(np.array([int(t * 1000)], dtype=np.int64), windows)[0])


def test_a_utc_bucket_late_on_sunday_is_monday_morning_in_wita() -> None:
    assert datetime.date(2026, 11, 29).weekday() == 6  # a Sunday
    assert not office(utc(2026, 11, 29, 23, 25))  # 07:25 WITA Monday: before the start
    assert office(utc(2026, 11, 29, 23, 30))  # 07:30 WITA: the start is inside
    assert office(utc(2026, 11, 29, 23, 55))  # 07:55 WITA Monday
    assert office(utc(2026, 11, 30, 7, 55))  # 15:55 WITA
    assert not office(utc(2026, 11, 30, 8, 0))  # 16:00 WITA: the end is outside
    assert not office(utc(2026, 11, 27, 23, 55))  # Friday 23:55 UTC is Saturday 07:55 WITA
    assert office(utc(2026, 11, 27, 7, 0))  # Friday 15:00 WITA


def test_other_zones_and_daylight_saving_time() -> None:
    ny = OfficeHours(timezone="America/New_York", start="09:00", end="17:00")
    # 2026-03-08: New York moves from EST (UTC-5) to EDT (UTC-4)
    assert office(utc(2026, 3, 2, 14, 0), ny) and not office(utc(2026, 3, 2, 13, 55), ny)
    assert office(utc(2026, 3, 9, 13, 0), ny) and not office(utc(2026, 3, 9, 12, 55), ny)
    assert not office(utc(2026, 3, 9, 21, 0), ny) and office(utc(2026, 3, 9, 20, 55), ny)
    wib = OfficeHours(timezone="Asia/Jakarta")  # UTC+7: the same instant is an hour earlier there
    assert office(utc(2026, 11, 30, 0, 30), wib) and not office(utc(2026, 11, 30, 0, 25), wib)
    kolkata = OfficeHours(timezone="Asia/Kolkata", days=("sat",), start="10:00", end="24:00")
    assert office(utc(2026, 11, 28, 4, 30), kolkata)  # Saturday 10:00 IST (UTC+5:30)
    assert office(utc(2026, 11, 28, 18, 25), kolkata)  # 23:55
    assert not office(utc(2026, 11, 28, 18, 30), kolkata)  # Sunday 00:00


def test_holidays_and_extra_and_not_days() -> None:
    s = validate({"holidays": {"extra": ["2026-11-30"], "not": ["2026-08-17"]}})
    from controller.core.settings import days_off

    off = days_off(s, datetime.date(2026, 1, 1), datetime.date(2026, 12, 31))
    independence = utc(2026, 8, 17, 2, 0)  # Monday 10:00 WITA
    assert not office(
        independence, WITA, frozenset(days_off(validate({}), datetime.date(2026, 8, 1), datetime.date(2026, 8, 31)))
    )
    assert office(independence, WITA, frozenset(off))  # worked here
    assert not office(utc(2026, 11, 30, 2, 0), WITA, frozenset(off))  # an extra day off
    assert not office(utc(2026, 12, 24, 2, 0), WITA, frozenset(off))  # cuti bersama, from the library


def test_windows_cover_only_the_period_and_are_sorted() -> None:
    frm, to = utc(2026, 11, 1, 16), utc(2026, 11, 15, 16)  # two weeks from Monday 00:00 WITA
    w = office_windows(frm, to, WITA, set())
    assert len(w) == 10 and all(a < b for a, b in w)
    assert all(w[i][1] < w[i + 1][0] for i in range(len(w) - 1))
    assert all(b - a == 8.5 * 3600 for a, b in w)


# ---- the recommendation rule ----------------------------------------------------------------------


def history(days: float, office_bps: float, outside_bps: float, cap_kbps: int | None, start: float | None = None):
    """5-minute buckets: ``office_bps`` demanded in office hours, ``outside_bps`` outside; the cap
    delivers at most its meter rate and drops the rest. Returns (Direction, office mask, meter)."""
    start = start if start is not None else utc(2026, 11, 1, 16, 0)  # Monday 00:00 WITA
    t_ms = np.arange(int(start * 1000), int((start + days * 86400) * 1000), STEP_MS, dtype=np.int64)
    mask = in_windows(t_ms, office_windows(start, start + days * 86400, WITA, set()))
    want = np.where(mask, office_bps, outside_bps)
    meter = cap_kbps * 1000 * FRAME_OVERHEAD if cap_kbps else math.inf
    got = np.minimum(want, meter)
    d = Direction(
        ms=np.full(len(t_ms), STEP_MS, dtype=np.int64),
        delivered=(got * 300 / 8).astype(np.int64),
        dropped=((want - got) * 300 / 8).astype(np.int64),
    )
    meters = needs.meter_bps(t_ms, cap_kbps, [])
    return d, mask, meters


def decide(days: float, office_bps: float, outside_bps: float, cap_kbps: int | None) -> dict:
    d, mask, meters = history(days, office_bps, outside_bps, cap_kbps)
    o = needs.stats(d, mask, meters)
    a = needs.stats(d, np.ones(len(mask), dtype=bool), meters)
    covered = float(d.ms.sum()) / 1000
    return recommend("down", cap_kbps, o, a, int(d.dropped.sum()), covered)


def test_an_opd_that_outgrows_its_cap_is_raised_to_its_office_demand_plus_headroom() -> None:
    r = decide(8, 40 * MBIT, 2 * MBIT, 20_000)
    assert r["action"] == "raise"
    # office demand p95 40 Mbit/s of frames = 38.3 Mbit/s of cap, x 1.2 = 45.9, up to the next 5
    assert r["suggested_kbps"] == math.ceil(40 * MBIT / FRAME_OVERHEAD * 1.2 / 1000 / 5000) * 5000 == 50_000
    assert "Raise the download cap from 20 to 50 Mbit/s" in r["text"]["en"]
    assert "Naikkan batas unduh dari 20 menjadi 50 Mbit/s" in r["text"]["id"]


def test_at_the_cap_without_drops_is_not_a_raise() -> None:
    meter = 20_000 * 1000 * FRAME_OVERHEAD
    r = decide(8, meter * 0.97, 1 * MBIT, 20_000)  # at the cap (>= 95 % of the meter) but nothing dropped
    assert r["action"] == "keep" and "at its cap 100% of office time" in r["text"]["en"]


def test_the_raise_threshold_is_more_than_a_tenth_of_office_samples_and_a_raise_at_least_a_step() -> None:
    d, mask, meters = history(8, 5 * MBIT, 1 * MBIT, 20_000)
    office_idx = np.flatnonzero(mask)
    results = {}
    for share in (0.09, 0.11):
        k = int(len(office_idx) * share)
        dropped = d.dropped.copy()
        dropped[office_idx[:k]] = 1_000_000
        dd = Direction(d.ms, d.delivered, dropped)
        o = needs.stats(dd, mask, meters)
        a = needs.stats(dd, np.ones(len(mask), dtype=bool), meters)
        results[share] = recommend("down", 20_000, o, a, int(dropped.sum()), float(d.ms.sum()) / 1000)
    assert results[0.09]["action"] != "raise" and results[0.11]["action"] == "raise"
    # drops in short bursts, office demand's p95 far below the cap: a raise is still one step up
    assert results[0.11]["suggested_kbps"] == 25_000


def test_an_opd_far_below_its_cap_for_a_week_is_lowered() -> None:
    r = decide(8, 3 * MBIT, 1 * MBIT, 50_000)
    assert r["action"] == "lower"
    assert r["suggested_kbps"] == max(math.ceil(3 * MBIT / FRAME_OVERHEAD * 1.5 / 1000 / 5000) * 5000, 5000) == 5000
    assert "Lower the download cap from 50 to 5 Mbit/s" in r["text"]["en"]
    assert "Turunkan" in r["text"]["id"]
    r = decide(8, 15 * MBIT, 1 * MBIT, 100_000)
    assert r["action"] == "lower" and r["suggested_kbps"] == 25_000  # 15 / 1.0456 x 1.5 = 21.5 -> 25


def test_lowering_needs_a_week_of_history() -> None:
    assert decide(6, 3 * MBIT, 1 * MBIT, 50_000)["action"] == "keep"


def test_lowering_that_would_not_lower_is_a_keep() -> None:
    assert decide(8, 1 * MBIT, 0.5 * MBIT, 5_000)["action"] == "keep"  # suggested 5 Mbit/s = the cap


def test_too_little_history_keeps_and_says_so() -> None:
    r = decide(0.5, 40 * MBIT, 2 * MBIT, 20_000)  # dropping, but half a day is too little to judge
    assert r["action"] == "keep" and r["suggested_kbps"] is None
    assert "only 0.5 days of history" in r["text"]["en"] and "0,5 hari" in r["text"]["id"]


def test_a_busy_opd_within_its_cap_keeps_it() -> None:
    r = decide(8, 15 * MBIT, 12 * MBIT, 20_000)
    assert r["action"] == "keep" and "95th percentile" in r["text"]["en"]


def test_no_cap_no_recommendation() -> None:
    r = decide(8, 15 * MBIT, 12 * MBIT, None)
    assert r["action"] == "keep" and r["text"]["en"].startswith("No download cap")


def test_at_cap_counts_against_the_cap_of_the_time() -> None:
    t = np.arange(0, 10 * STEP_MS, STEP_MS, dtype=np.int64)
    meters = needs.meter_bps(t, 10_000, [(3 * 300, 20_000), (6 * 300, None)])
    assert np.allclose(meters[:3], 10_000 * 1000 * FRAME_OVERHEAD)
    assert np.allclose(meters[3:6], 20_000 * 1000 * FRAME_OVERHEAD)
    assert np.isnan(meters[6:]).all()
    d = Direction(
        np.full(10, STEP_MS, dtype=np.int64),
        np.full(10, int(15 * MBIT * 300 / 8), dtype=np.int64),
        np.zeros(10, dtype=np.int64),
    )
    s = needs.stats(d, np.ones(10, dtype=bool), meters)
    assert s["at_cap_share"] == round(3 / 6, 4)  # 15 Mbit/s is at the 10 Mbit/s cap, not at 20; uncapped ones left out
    assert needs.cap_at(3 * 300 - 1, 10_000, [(3 * 300, 20_000)]) == 10_000
    assert needs.cap_at(3 * 300, 10_000, [(3 * 300, 20_000)]) == 20_000


# ---- cost ------------------------------------------------------------------------------------------

BUDGETS = st.one_of(
    st.sampled_from([0, 1, 2, 3, 7, 99, 2_300_000_000, 2_300_000_001, 10**15]),
    st.integers(min_value=0, max_value=10**15),
)
WEIGHTS = st.lists(
    st.one_of(st.just(0), st.integers(min_value=1, max_value=10), st.integers(min_value=0, max_value=10**13)),
    min_size=1,
    max_size=60,
)


@settings(max_examples=500, deadline=None)
@given(budget=BUDGETS, weights=WEIGHTS)
def test_the_split_adds_up_to_the_budget_to_the_rupiah(budget: int, weights: list[int]) -> None:
    out = largest_remainder(budget, weights)
    total = sum(weights)
    if total == 0:
        assert out == [0] * len(weights)
        return
    assert sum(out) == budget
    for got, w in zip(out, weights, strict=True):
        quota = Fraction(budget * w, total)
        assert quota - 1 < got < quota + 1  # never more than one rupiah from its exact share
        assert w or got == 0  # no weight, no rupiah


def test_remainders_go_to_the_largest_fractions_first() -> None:
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert largest_remainder(100, [1, 2, 3, 4, 5, 6]) == [5, 9, 14, 19, 24, 29]
    assert largest_remainder(7, [0, 5, 0]) == [0, 7, 0]
    with pytest.raises(ValueError):
        largest_remainder(10, [1, -1])


def test_cost_by_cap_and_by_use_and_per_mbit_used() -> None:
    c = needs.cost(2_300_000_000, [90_000, 30_000, 0], [3 * 10**12, 10**12, 10**12], [30e6, 2e6, 5e6])
    rows = c["opds"]
    assert sum(r["by_cap_idr"] for r in rows) == sum(r["by_use_idr"] for r in rows) == 2_300_000_000
    assert [r["by_cap_idr"] for r in rows] == [1_725_000_000, 575_000_000, 0]
    assert [r["by_use_idr"] for r in rows] == [1_380_000_000, 460_000_000, 460_000_000]
    assert rows[0]["idr_per_mbps_used"] == round(1_725_000_000 / 30)
    assert rows[2]["idr_per_mbps_used"] is None  # no cap: its allocation costs nothing
    assert c["idr_per_mbps_used"] == round(2_300_000_000 / 37)


# ---- charts -------------------------------------------------------------------------------------


def test_chart_steps_are_means_and_gaps_are_none() -> None:
    base = 1_700_000_400  # not on an hour
    t = np.array([(base + 300 * i) * 1000 for i in range(24)], dtype=np.int64)
    ms = np.full(24, 300_000, dtype=np.int64)
    ms[20:] = 0
    col = np.full(24, 3_750_000, dtype=np.int64)  # 100 kbit/s
    step = needs.chart_step(base, base + 7200)
    assert step == 3600
    c = needs.chart(t, ms, [col], base, base + 4 * 3600, step)
    assert c["t"][0] == base // 3600 * 3600 and len(c["t"]) == 5
    assert c["bps"][0][:2] == [100_000, 100_000]
    assert c["bps"][0][3:] == [None, None]
    assert needs.chart_step(0, 400 * 86400) == 3600 * 12  # a year and more: at most 800 points


def test_link_direction_utilisation() -> None:
    ms = np.full(20, STEP_MS, dtype=np.int64)
    nbytes = np.array([int(r * MBIT * 300 / 8) for r in range(1, 21)], dtype=np.int64)
    s = needs.link_direction(ms, nbytes, 100)
    assert s["peak_bps"] == 20 * MBIT and s["p95_bps"] == 19 * MBIT
    assert s["peak_util"] == 0.2 and s["p95_util"] == 0.19
    assert needs.link_direction(ms, nbytes, None)["p95_util"] is None


def test_wall_clock_of_a_zone() -> None:
    assert needs._wall(datetime.date(2026, 11, 30), 1440, ZoneInfo("Asia/Makassar")) == utc(2026, 11, 30, 16, 0)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=4097, max_value=40_000),
    kind=st.sampled_from(["uniform", "lognormal", "few values", "sorted", "reversed", "sample misleads"]),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_percentile_of_a_years_samples_is_numpys_too(n: int, kind: str, seed: int) -> None:
    """Above 4,096 values only those over a sampled bound are partitioned; it must not show."""
    rng = np.random.default_rng(seed)
    values = {
        "uniform": lambda: rng.uniform(0, 1e8, n),
        "lognormal": lambda: rng.lognormal(15, 2, n),
        "few values": lambda: rng.integers(0, 3, n).astype(np.float64),
        "sorted": lambda: np.sort(rng.uniform(0, 1e8, n)),
        "reversed": lambda: np.sort(rng.uniform(0, 1e8, n))[::-1].copy(),
        # every 16th value (the ones sampled) is huge: the bound is far too high, so all are partitioned
        "sample misleads": lambda: np.where(np.arange(n) % 16 == 0, 1e12, rng.uniform(0, 1e6, n)),
    }[kind]()
    for p in (95, 50, 99):
        assert percentile(values, p) == np.percentile(values, p, method="inverted_cdf"), (kind, p)
