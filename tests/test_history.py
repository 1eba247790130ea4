"""The usage history: tiers and rollups, packing, retention, percentiles, renames and deletions,
the writer thread, and a kill -9 in the middle of writing."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from controller.api.history import (
    COLUMNS,
    DAY,
    History,
    HistoryError,
    Writer,
    _top_rates,
    pack,
    parse_duration,
    parse_time,
    unpack,
)
from controller.core.usage import Cycle

T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC: a day, hour and 5-minute boundary


def cycle(
    t: float,
    seconds: float,
    deltas: dict,
    names: dict | None = None,
    totals: dict | None = None,
    counters: list | None = None,
) -> Cycle:
    names = names or {o: ("policy", o.upper()) for o in deltas}
    return Cycle(t, seconds, {o: tuple(v) for o, v in deltas.items()}, totals or {}, counters or [], names)


def vals(up: int, down: int = 0, up_drop: int = 0) -> tuple[int, ...]:
    return (up, up // 1000, up_drop, up_drop // 1000, down, down // 1000, 0, 0)


@pytest.fixture
def hist(tmp_path: Path) -> History:
    h = History(tmp_path / "usage.sqlite")
    yield h
    h.close()


def test_pack_round_trip_keeps_every_integer():
    rng = random.Random(1)
    rows = []
    t = 1_700_000_000_000
    for _ in range(300):
        t += rng.choice([300_000, 300_000, 600_000])
        rows.append((t, rng.randrange(300_001)) + tuple(rng.choice([0, rng.randrange(2**50)]) for _ in range(8)))
    assert unpack(pack(rows)) == rows and unpack(pack([])) == []
    assert len(rows[0]) == len(COLUMNS)


def test_every_cycle_lands_in_all_three_tiers_and_they_agree(hist):
    for i in range(1, 361):  # one hour of 10 s cycles
        hist.write(cycle(T0 + 10 * i, 10.0, {"a": vals(1000, 5000, 10), "b": vals(0)}))
    raw = hist.buckets("raw", "a", T0, T0 + 3601)
    five = hist.buckets("5m", "a", T0, T0 + 3601)
    hour = hist.buckets("1h", "a", T0, T0 + 3601)
    assert len(raw) == 360 and raw[0][1] == 10_000
    assert [r[0] for r in five] == [int((T0 + 300 * k) * 1000) for k in range(12)]
    assert {r[1] for r in five} == {300_000}  # thirty 10 s cycles each, exactly
    for tier in (raw, five, hour):
        assert sum(r[2] for r in tier) == 360 * 1000 and sum(r[6] for r in tier) == 360 * 5000
        assert sum(r[1] for r in tier) == 3600 * 1000
    assert sum(r[2] for r in hist.buckets("raw", "b", T0, T0 + 3601)) == 0
    assert len(hist.buckets("raw", "b", T0, T0 + 3601)) == 360  # idle yet covered: not a gap


def test_a_cycle_across_bucket_boundaries_is_shared_out_in_proportion(hist):
    hist.write(cycle(T0 + 1000, 1000.0, {"a": vals(1000)}))  # 10:00 of 16:40 is in the first 5 minutes
    five = hist.buckets("5m", "a", T0, T0 + 1000)
    assert [(r[0], r[1], r[2]) for r in five] == [
        (int(T0 * 1000), 300_000, 300),
        (int(T0 * 1000) + 300_000, 300_000, 300),
        (int(T0 * 1000) + 600_000, 300_000, 300),
        (int(T0 * 1000) + 900_000, 100_000, 100),
    ]
    assert sum(r[3] for r in five) == 1 and sum(r[2] for r in hist.buckets("raw", "a", T0, T0 + 1001)) == 1000
    # a controller away for days: its first cycle back spreads over the last day at the same
    # rate, and what came before lands in that day's first bucket
    span = 4 * DAY - 1000.0
    hist.write(cycle(T0 + 4 * DAY, span, {"a": vals(288 * 1000)}))
    hour = hist.buckets("1h", "a", T0 + 3 * DAY, T0 + 4 * DAY)
    each = 288 * 1000 * 3600 / span
    assert len(hour) == 24 and all(abs(r[2] - each) <= 1 for r in hour[1:]) and {r[1] for r in hour[1:]} == {3_600_000}
    assert hour[0][1] == int((span - 23 * 3600) * 1000)
    assert sum(r[2] for r in hist.buckets("1h", "a", T0, T0 + 4 * DAY)) == 1000 + 288 * 1000


def test_finished_blocks_are_packed_and_read_back_the_same(hist):
    for i in range(1, 3 * 360):  # 10 s cycles until just before 03:00: two raw hours end
        hist.write(cycle(T0 + 10 * i, 10.0, {"a": vals(1000 + i)}))
    packed = dict(hist.db.execute("SELECT tier, COUNT(*) FROM blocks GROUP BY tier").fetchall())
    assert packed == {"raw": 2}
    assert hist.db.execute("SELECT COUNT(*) FROM open_raw").fetchone()[0] == 360  # the third hour is open
    raw = hist.buckets("raw", "a", T0, T0 + 3 * 3600)
    assert [r[2] for r in raw] == [1000 + i for i in range(1, 3 * 360)]


def test_day_and_week_boundaries_pack_five_minute_and_hourly_blocks(hist):
    for i in range(1, 8 * 24 + 2):  # hourly cycles over eight days
        hist.write(cycle(T0 + 3600 * i, 3600.0, {"a": vals(10**9)}))
    tiers = dict(hist.db.execute("SELECT tier, COUNT(*) FROM blocks GROUP BY tier").fetchall())
    assert tiers["5m"] == 8 and tiers["1h"] >= 1
    q = hist.query("a", T0, T0 + 8 * DAY, 86400, now=T0 + 8 * DAY + 3600)
    assert q["up"]["bytes"] == [24 * 10**9] * 8 and q["t"] == [T0 + k * DAY for k in range(8)]
    assert q["tier"] == "1h" and q["summary"]["basis"] == "5m"


def test_raw_is_kept_seven_days_five_minutes_as_configured_hourly_forever(tmp_path):
    h = History(tmp_path / "u.sqlite", keep={"5m": 3 * DAY})
    for i in range(1, 10 * 24 + 1):  # hourly cycles over ten days
        h.write(cycle(T0 + 3600 * i, 3600.0, {"a": vals(1000)}))
    now = T0 + 10 * DAY
    assert not h.buckets("raw", "a", T0, T0 + 2 * DAY)
    assert h.buckets("raw", "a", now - 6 * DAY, now)
    assert not h.buckets("5m", "a", T0, T0 + 6 * DAY)
    assert len(h.buckets("1h", "a", T0, now + 1)) == 10 * 24
    h.close()


def test_percentiles_are_nearest_rank_of_the_buckets_rates_and_skip_buckets_with_no_time():
    ms = [300_000] * 100 + [0]
    nbytes = [x * 300 // 8 for x in range(1, 101)] + [10**12]  # 1..100 bit/s, and an uncovered bucket
    random.Random(2).shuffle(order := list(range(100)))
    ms, nbytes = [ms[i] for i in order] + ms[100:], [nbytes[i] for i in order] + nbytes[100:]
    assert _top_rates(ms, nbytes) == {"max_bps": 100, "p99_bps": 99, "p95_bps": 95}
    assert _top_rates([300_000] * 3, [0, 0, 300 // 8 * 5]) == {"max_bps": 5, "p99_bps": 5, "p95_bps": 5}
    assert _top_rates([], []) == {"max_bps": None, "p99_bps": None, "p95_bps": None}


def test_a_month_query_gives_the_95th_percentile_of_its_five_minute_rates(hist):
    # 100 busy 5-minute buckets at 1..100 Mbit/s upload, spread over a month, the rest idle
    rng = random.Random(7)
    slots = sorted(rng.sample(range(30 * 288), 100))
    rows, mbit = [], list(range(1, 101))
    rng.shuffle(mbit)
    for slot, m in zip(slots, mbit, strict=True):
        rows.append((int((T0 + 300 * slot) * 1000), 300_000, m * 10**6 * 300 // 8, 1, 0, 0, 0, 0, 0, 0))
    hist.import_buckets("5m", "a", "policy", "A", rows)
    hours: dict[int, list[int]] = {}
    for r in rows:
        acc = hours.setdefault(r[0] // 3_600_000 * 3_600_000, [0] * 9)
        hours[r[0] // 3_600_000 * 3_600_000] = [a + b for a, b in zip(acc, r[1:], strict=True)]
    hist.import_buckets("1h", "a", "policy", "A", [(t, *v) for t, v in sorted(hours.items())])
    q = hist.query("a", T0, T0 + 30 * DAY, DAY, now=T0 + 31 * DAY)
    s = q["summary"]["up"]
    assert q["summary"]["basis"] == "5m" and q["tier"] == "1h" and q["step"] == DAY
    assert s["max_bps"] == 100 * 10**6 and s["p95_bps"] == 95 * 10**6 and s["p99_bps"] == 99 * 10**6
    assert s["bytes"] == sum(r[2] for r in rows)


def test_the_step_picks_the_tier_and_old_ranges_fall_back_to_what_is_kept(hist):
    for i in range(1, 13):
        hist.write(cycle(T0 + 300 * i, 300.0, {"a": vals(1000)}))
    now = T0 + 3600
    assert hist.query("a", T0, now, 60, now)["tier"] == "raw"
    assert hist.query("a", T0, now, 300, now)["tier"] == "5m"
    assert hist.query("a", T0, now, 3600, now)["tier"] == "1h"
    assert hist.query("a", T0, now, 3600, now=T0 + 500 * DAY)["summary"]["basis"] == "1h"  # 5-minute ones are gone
    old = hist.query("a", T0, now, 60, now=T0 + 30 * DAY)  # raw is gone by then
    assert old["tier"] == "5m" and old["step"] == 300
    assert hist.query("a", T0, now, None, now)["step"] == 12  # about 300 points by default


def test_bad_ranges_are_refused(hist):
    with pytest.raises(HistoryError) as e:
        hist.query("a", T0, T0, 300, T0)
    assert e.value.field == "to"
    with pytest.raises(HistoryError) as e:
        hist.query("a", T0, T0 + 365 * DAY, 60, T0)
    assert e.value.field == "step" and "at most" in e.value.problem


def test_a_renamed_opd_keeps_its_history_and_a_deleted_one_keeps_its_past(hist):
    hist.write(
        cycle(
            T0 + 10, 10.0, {"a": vals(500), "b": vals(700)}, names={"a": ("policy", "Old name"), "b": ("subnet", "B")}
        )
    )
    hist.write(cycle(T0 + 20, 10.0, {"a": vals(500)}, names={"a": ("policy", "New name")}))
    opds = {o["opd"]: o for o in hist.opds()}
    assert opds["a"]["name"] == "New name" and opds["b"]["last_seen"] == T0 + 10
    assert sum(r[2] for r in hist.buckets("raw", "a", T0, T0 + 60)) == 1000
    assert sum(r[2] for r in hist.buckets("raw", "b", T0, T0 + 60)) == 700 and hist.known("b")
    assert not hist.known("nobody")


def test_totals_and_counters_are_saved_with_each_cycle(hist):
    hist.write(
        cycle(
            T0 + 10,
            10.0,
            {"a": vals(1)},
            totals={"a": {"first_seen": T0, "x": 1}},
            counters=[[7, 1, [1, 2, 3, 4], 5.0, T0 + 9]],
        )
    )
    hist.write(cycle(T0 + 20, 10.0, {"a": vals(1)}, counters=[[7, 1, [9, 2, 3, 4], 15.0, T0 + 19]]))
    totals, counters, last = hist.load()
    assert totals == {"a": {"first_seen": T0, "x": 1}} and counters == [[7, 1, [9, 2, 3, 4], 15.0, T0 + 19]]
    assert last == T0 + 20


@pytest.mark.parametrize("text,want", [("300", 300), ("5m", 300), ("1h", 3600), ("7d", 7 * DAY), ("2w", 14 * DAY)])
def test_durations(text, want):
    assert parse_duration(text, "step") == want


@pytest.mark.parametrize("text", ["", "x", "0", "-5m", "1y", "nan"])
def test_bad_durations_name_the_field(text):
    with pytest.raises(HistoryError) as e:
        parse_duration(text, "step")
    assert e.value.field == "step"


def test_times():
    now = T0 + 1000
    assert parse_time("now", "from", now) == now
    assert parse_time("now-1h", "from", now) == now - 3600 == parse_time("-1h", "from", now)
    assert parse_time(str(T0), "from", now) == T0
    assert parse_time("2026-01-01T00:00:00Z", "from", now) == T0 == parse_time("2026-01-01T08:00:00+08:00", "f", now)
    for bad in ("yesterday", "2026-13-01", "-3", "inf"):
        with pytest.raises(HistoryError):
            parse_time(bad, "from", now)


def test_the_writer_thread_writes_everything_put_on_its_queue(tmp_path):
    w = Writer(tmp_path / "u.sqlite")
    for i in range(1, 51):
        w.put(cycle(T0 + 10 * i, 10.0, {"a": vals(100)}))
    assert w.flush(20.0) and w.written == 50 and w.error is None
    w.close()
    h = History(tmp_path / "u.sqlite")
    assert sum(r[2] for r in h.buckets("raw", "a", T0, T0 + 1000)) == 5000
    h.close()


def _crash_writer(path: Path, t: float, ready: Any) -> None:
    """Writes cycles as fast as it can until killed; each cycle's totals and counters say n."""
    h = History(path)
    total, i = 0, 0
    while True:
        i += 1
        total += 1000
        h.write(
            Cycle(
                t + 10 * i,
                10.0,
                {"a": (1000, 1, 0, 0, 0, 0, 0, 0)},
                {"a": {"first_seen": t, "n": total}},
                [[1, 1, [total, 0, 0, 0], float(i), t + 10 * i]],
                {"a": ("policy", "A")},
            )
        )
        if i == 3:
            ready.set()


def test_kill_9_while_writing_leaves_a_consistent_database(tmp_path):
    """Killed at random moments (cycles crossing raw blocks every 360): the database is never
    corrupt and the totals, the counters and every tier agree on the same last cycle."""
    path = tmp_path / "u.sqlite"
    rng = random.Random(3)
    t = T0 - 3000  # crosses an hour boundary early on: packing happens during the kills
    ctx = multiprocessing.get_context("fork")
    written = 0  # bytes in every cycle committed so far, over all runs
    for _ in range(3):
        ready = ctx.Event()
        proc = ctx.Process(target=_crash_writer, args=(path, t, ready))
        proc.start()
        assert ready.wait(10)
        time.sleep(rng.uniform(0.1, 0.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        db.close()
        h = History(path)
        totals, counters, last = h.load()
        n = totals["a"]["n"]  # this run's cycles x 1000
        assert n >= 3000 and counters[0][2][0] == n and counters[0][4] == last  # that very cycle's counters
        written += n
        for tier in ("raw", "5m", "1h"):
            assert sum(r[2] for r in h.buckets(tier, "a", 0, last + 1)) == written, tier
        packed = h.db.execute("SELECT COUNT(*) FROM blocks WHERE tier='raw'").fetchone()[0]
        h.close()
        t = last + 10_000  # the next run writes later cycles into the same file
    assert packed > 0  # the kills fell among cycles that packed blocks too


def test_a_file_that_is_no_history_is_one_clear_error(tmp_path):
    from controller.api.history import check
    from controller.errors import KendaliError

    good = tmp_path / "usage.sqlite"
    check(good)
    assert good.exists()
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(KendaliError) as e:
        check(bad)
    assert str(bad) in str(e.value) and "move it aside" in str(e.value)


def test_meta_facts_are_kept_with_the_cycle_and_links_merge(tmp_path):
    h = History(tmp_path / "u.sqlite")
    a = {"a": "x", "b": "y", "capacity_mbps": 100}
    c = cycle(T0 + 10, 10.0, {"link:x:1~y:1": vals(1000, 500)}, names={"link:x:1~y:1": ("link", "x – y")})
    h.write(
        Cycle(c.t, c.seconds, c.deltas, {}, [], c.names, {"links": {"link:x:1~y:1": a}, "uplink": {"subnet": "isp"}})
    )
    b = {"a": "y", "b": "z", "capacity_mbps": None}
    h.write(Cycle(T0 + 20, 10.0, {}, {}, [], {}, {"links": {"link:y:2~z:1": b}}))
    h.close()
    r = History(tmp_path / "u.sqlite", reader=True)
    assert r.meta_json("links") == {"link:x:1~y:1": a, "link:y:2~z:1": b}  # a link gone keeps its facts
    assert r.meta_json("uplink") == {"subnet": "isp"} and r.meta_json("nothing") is None
    assert [o["kind"] for o in r.opds()] == ["link"]
    assert r.query("link:x:1~y:1", T0, T0 + 60, 60, T0 + 60)["summary"]["down"]["bytes"] == 500
