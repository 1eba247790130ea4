"""`kendali bench stats`: what usage telemetry costs the controller, and what its history weighs.

1. Poll cost. A generated regency (controller.lab.synth: core pair, distribution rings,
   dual-homed edges) with its OPDs on the edge switches (one in ten on two switches, so
   the uplink switch carries aggregate meters too). Each cycle every switch answers the
   poll with real OpenFlow 1.3 reply bytes (its meters and ports, counters growing);
   timed is the controller's side only: building and serialising the requests, os-ken
   parsing the replies, turning them into samples, the counting core, and taking the
   cycle for the history. CPU time (process_time), median of the measured cycles, after a
   warm-up cycle. Also: one cycle written to the history (the writer thread's CPU, off
   the event loop), a /metrics scrape and a GET /v1/usage view.
   Goal (issue 8): a poll of a 200-switch regency under 50 ms of controller CPU.
2. History. A year of 5-minute buckets (plus the year's hourly buckets and 7 days of
   raw 10-second cycles) for 200 OPDs with office-like traffic: busy on weekdays 08-17
   local time (UTC+8), quiet at night and at weekends, noise on every bucket, drops when
   demand beats the cap. Written through the history's own packing, then the file's
   size and one OPD's queries (a year by day and by hour, a month by 5 minutes, a day of
   raw cycles: each with its summary and percentiles). Goal: under 500 MB, a year's
   query under 100 ms.

Knobs (environment): KENDALI_BENCH_STATS_SIZES="100:200,200:200,1000:2000" (switches:OPDs),
KENDALI_BENCH_STATS_CYCLES=5, KENDALI_BENCH_STATS_OPDS=200 (history), KENDALI_BENCH_STATS_DAYS=365.
"""

from __future__ import annotations

import math
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from controller.api.history import DAY, History
from controller.api.metrics import Metrics, Snapshot
from controller.core.compiler import AGGREGATE_METER, CONTROL_METERS, Compiler, Counted
from controller.core.usage import Cycle, Usage
from controller.lab.bench import table, write_json
from controller.lab.switchstats import datapath, meter_reply, parse, port_reply
from controller.lab.synth import regency_graph
from controller.openflow import stats

GOAL_POLL_MS = 50.0
GOAL_DB_MB = 500.0
GOAL_QUERY_MS = 100.0
MBIT = 1e6


# ---- 1. poll cost ---------------------------------------------------------------------------------


class Regency:
    """Switches with their meters and ports, and a counting core planned for them."""

    def __init__(self, n_switches: int, n_opds: int, seed: int = 1) -> None:
        rng = random.Random(seed)
        g = regency_graph(n_switches)
        n_dist = max(4, n_switches // 12)
        edges = list(range(3 + n_dist, n_switches + 1))
        self.ports = {d: list(range(1, g.degree(d) + 2)) for d in g.nodes}  # links + one host/uplink port
        comp = Compiler()
        counted, self.meters = {}, {d: [m.meter_id for m in CONTROL_METERS] for d in g.nodes}
        for i in range(n_opds):
            opd = f"opd{i}"
            cap = rng.choice([5000, 10000, 20000, 50000, 100000])
            counted[opd] = Counted(opd, "policy", (f"10.{i // 256}.{i % 256}.0/24",), cap // 2, cap)
            ids = comp.meter_ids(opd)
            homes = [edges[i % len(edges)]] + ([edges[(i + 7) % len(edges)]] if i % 10 == 0 else [])
            for d in homes:
                self.meters[d] += [ids.upload_id, ids.download_id]
            if len(homes) > 1:
                self.meters[1] += [AGGREGATE_METER | ids.upload_id, AGGREGATE_METER | ids.download_id]
        comp.counted = counted
        self.usage = Usage(stale_after=25.0)
        self.usage.plan(counted, comp.meter_plans(), {}, 0.0)
        self.dps = {d: datapath(d) for d in g.nodes}
        self.poller = stats.Poller()
        self.rate = {d: rng.uniform(1e5, 5e6) for d in g.nodes}  # bytes/s through each switch's meters

    def replies(self, cycle: int, xids: dict[int, tuple[int, int]]) -> dict[int, tuple[bytes, bytes]]:
        """What each switch answers at this cycle (built outside the timed part: the switch's work)."""
        out = {}
        for d, mids in self.meters.items():
            t = 10.0 * cycle + 100.0
            base = int(self.rate[d] * t)
            meters = [(m, base // 1000 + m, base + m * 1000, base // 20_000, base // 20, t) for m in mids]
            ports = [(p, base // 900, base // 1100, base + p, base * 2 + p, t) for p in self.ports[d]]
            mx, px = xids[d]
            out[d] = (meter_reply(mx, meters), port_reply(px, ports))
        return out

    def cycle(self, n: int, replies: dict[int, tuple[bytes, bytes]] | None = None) -> float:
        """One poll of every switch and the history cycle; the controller's CPU seconds."""
        t0 = time.process_time()
        now = 10.0 * n + 100.0
        for dp in self.dps.values():
            dp.sent.clear()
            self.poller.poll(dp, now)
        spent = time.process_time() - t0
        xids = {d: (dp.sent[0].xid, dp.sent[1].xid) for d, dp in self.dps.items()}
        data = self.replies(n, xids)  # the switches' work: not timed
        t1 = time.process_time()
        for d, (mbytes, pbytes) in data.items():
            dp = self.dps[d]
            for raw, kind in ((mbytes, "meter"), (pbytes, "port")):
                msg = parse(dp, raw)
                got = self.poller.reply(msg, now + 0.01)
                if got is None:
                    raise RuntimeError("a reply the poller did not expect")
                if kind == "meter":
                    self.usage.meter_samples(d, stats.meter_samples(msg), got[0])
                else:
                    self.usage.port_samples(d, stats.port_samples(msg), got[0])
        self.last_cycle = self.usage.take_cycle(now + 1)
        return spent + time.process_time() - t1


def bench_poll(n_switches: int, n_opds: int, cycles: int) -> dict[str, Any]:
    r = Regency(n_switches, n_opds)
    r.cycle(0)  # baselines
    cpu = [r.cycle(i) for i in range(1, cycles + 1)]
    if not any(v for row in r.usage.view(200.0) for v in (row["up"]["bytes"], row["down"]["bytes"])):
        raise RuntimeError("the benchmark counted nothing: its replies are wrong")
    with tempfile.TemporaryDirectory(prefix="kendali-bench-") as tmp:
        hist = History(Path(tmp) / "u.sqlite")
        hist.write(r.last_cycle)  # creates every OPD's row once
        writes = []
        for i in range(3):
            c = r.last_cycle
            nxt = Cycle(c.t + 10 * (i + 1), 10.0, c.deltas, c.totals, c.counters, c.names)
            t0 = time.process_time()
            hist.write(nxt)
            writes.append(time.process_time() - t0)
        hist.close()
    links = [
        {
            "link": f"l{i}",
            "capacity_mbps": 1000.0,
            "a_to_b": {"bytes": 1, "packets": 1, "bps": 1, "utilisation": 0.0},
            "b_to_a": {"bytes": 1, "packets": 1, "bps": 1, "utilisation": 0.0},
        }
        for i in range(n_switches * 2)
    ]
    t0 = time.process_time()
    view = r.usage.view(200.0)
    view_s = time.process_time() - t0
    metrics = Metrics(lambda: Snapshot(view, links, [], len(links), 0, 0))
    t0 = time.process_time()
    text, _ = metrics.exposition()
    scrape_s = time.process_time() - t0
    poll_ms = statistics.median(cpu) * 1000
    return {
        "switches": n_switches,
        "opds": n_opds,
        "meters": sum(len(m) for m in r.meters.values()),
        "ports": sum(len(p) for p in r.ports.values()),
        "poll_ms": poll_ms,
        "poll_max_ms": max(cpu) * 1000,
        "per_switch_us": poll_ms * 1000 / n_switches,
        "history_write_ms": statistics.median(writes) * 1000,
        "usage_view_ms": view_s * 1000,
        "metrics_scrape_ms": scrape_s * 1000,
        "metrics_kb": len(text) / 1024,
    }


_POLL_COLS = [
    ("switches", "switches"),
    ("opds", "OPDs"),
    ("meters", "meters"),
    ("ports", "ports"),
    ("poll_ms", "poll ms CPU"),
    ("poll_max_ms", "max ms"),
    ("per_switch_us", "per switch us"),
    ("history_write_ms", "history write ms"),
    ("usage_view_ms", "/v1/usage ms"),
    ("metrics_scrape_ms", "/metrics ms"),
    ("metrics_kb", "/metrics KB"),
]


# ---- 2. history ------------------------------------------------------------------------------------


def _profile(rng: random.Random) -> list[float]:
    """Share of an OPD's busy rate for each 5-minute slot of a UTC day: offices in UTC+8."""
    out = []
    for slot in range(288):
        local_h = (slot * 5 / 60 + 8) % 24
        if 8 <= local_h < 17:
            share = 0.55 + 0.45 * math.sin(math.pi * (local_h - 8) / 9)
        elif 7 <= local_h < 8 or 17 <= local_h < 19:
            share = 0.25
        else:
            share = 0.03
        out.append(share * rng.uniform(0.9, 1.1))
    return out


def year_of_history(path: Path, n_opds: int, days: int, end: float, seed: int = 7) -> dict[str, Any]:
    """Write ``days`` of 5-minute and hourly buckets and 7 days of raw cycles for ``n_opds`` OPDs."""
    rng = random.Random(seed)
    hist = History(path)
    start = end - days * DAY
    raw_from = end - 7 * DAY
    t0 = time.monotonic()
    for i in range(n_opds):
        opd = f"opd{i:03d}"
        cap = rng.choice([5, 10, 20, 30, 50, 100, 150]) * MBIT  # download cap, bits/s
        busy = cap * rng.uniform(0.2, 1.3)  # some OPDs want more than they get
        up_share = rng.uniform(0.1, 0.5)
        frame = rng.uniform(700, 1300)  # mean frame size, bytes
        prof = _profile(rng)
        five, hourly, raw = [], [], []
        for day in range(days):
            day_t = start + day * DAY
            weekday = time.gmtime(day_t + 8 * 3600).tm_wday < 5
            level = busy * (1.0 if weekday else 0.12) * rng.uniform(0.8, 1.2)
            hour_acc = [0] * 10
            for slot in range(288):
                want = level * prof[slot] * rng.lognormvariate(0, 0.25)  # bits/s demanded
                got = min(want, cap)
                down = int(got * 300 / 8)
                drop = int((want - got) * 300 / 8 * 0.3) if want > cap else 0  # TCP backs off: a share is offered
                up = int(down * up_share * rng.uniform(0.8, 1.2))
                # cycles are shared out over the buckets they span: a bucket covers all its 300 s
                row = (
                    int((day_t + slot * 300) * 1000),
                    300_000,
                    up,
                    int(up / 90),
                    0,
                    0,
                    down,
                    int(down / frame),
                    drop,
                    int(drop / frame),
                )
                five.append(row)
                for k in range(1, 10):
                    hour_acc[k] += row[k]
                if slot % 12 == 11:
                    hourly.append((int((day_t + (slot - 11) * 300) * 1000), *hour_acc[1:]))
                    hour_acc = [0] * 10
                if day_t + slot * 300 >= raw_from:  # the last week: thirty 10 s cycles per slot
                    for k in range(30):
                        share = rng.uniform(0.7, 1.3) / 30
                        # a cycle's length is known to the poll loop's 0.1 s tick
                        raw.append(
                            (
                                row[0] + (k + 1) * 10_000,
                                10_000 + rng.randrange(-100, 101),
                                *(int(v * share) for v in row[2:]),
                            )
                        )
        hist.import_buckets("5m", opd, "policy", f"OPD {i}", five)
        hist.import_buckets("1h", opd, "policy", f"OPD {i}", hourly)
        hist.import_buckets("raw", opd, "policy", f"OPD {i}", raw)
        if (i + 1) % 50 == 0:
            print(f"  {i + 1} OPDs written ({time.monotonic() - t0:.0f} s)", flush=True)
    hist.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    tiers = {
        t: (n, b) for t, n, b in hist.db.execute("SELECT tier, SUM(n), SUM(LENGTH(data)) FROM blocks GROUP BY tier")
    }
    hist.close()
    size = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return {
        "opds": n_opds,
        "days": days,
        "file_mb": size / 2**20,
        "write_s": time.monotonic() - t0,
        "tiers": {t: {"buckets": n, "packed_mb": b / 2**20} for t, (n, b) in tiers.items()},
    }


def time_queries(path: Path, n_opds: int, end: float, samples: int = 10, seed: int = 3) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    opds = rng.sample([f"opd{i:03d}" for i in range(n_opds)], min(samples, n_opds))
    cases = [
        ("a year, by day", 365 * DAY, DAY),
        ("a year, by hour", 365 * DAY, 3600),
        ("a month, by 5 minutes", 30 * DAY, 300),
        ("a day, by 10 s cycle", DAY, 10),
    ]
    rows = []
    for label, span, step in cases:
        took, points = [], 0
        for opd in opds:
            hist = History(path, reader=True)  # as the controller does: a fresh connection per query
            t0 = time.perf_counter()
            q = hist.query(opd, end - span, end, step, now=end)
            took.append(time.perf_counter() - t0)
            hist.close()
            points = len(q["t"])
            if q["summary"]["down"]["p95_bps"] is None:
                raise RuntimeError(f"{label}: no data read for {opd}")
        rows.append(
            {
                "query": label,
                "tier": q["tier"],
                "points": points,
                "median_ms": statistics.median(took) * 1000,
                "max_ms": max(took) * 1000,
            }
        )
    return rows


def run(args: Any) -> int:
    sizes = [
        tuple(int(x) for x in s.split(":"))
        for s in os.environ.get("KENDALI_BENCH_STATS_SIZES", "100:200,200:200,1000:200,100:2000,1000:2000").split(",")
    ]
    cycles = int(os.environ.get("KENDALI_BENCH_STATS_CYCLES", "5"))
    n_opds = int(os.environ.get("KENDALI_BENCH_STATS_OPDS", "200"))
    days = int(os.environ.get("KENDALI_BENCH_STATS_DAYS", "365"))
    print(
        "1. Controller CPU per poll cycle (real reply bytes parsed by os-ken, counting core, history cycle; "
        f"median of {cycles} cycles)\n",
        flush=True,
    )
    poll = []
    for n, k in sizes:
        poll.append(bench_poll(n, k, cycles))
        print(f"  {n} switches, {k} OPDs: {poll[-1]['poll_ms']:.1f} ms", flush=True)
    print("\n" + table(poll, _POLL_COLS))
    at200 = [r for r in poll if r["switches"] == 200]
    if at200:
        print(
            f"\nGoal: a poll of a 200-switch regency under {GOAL_POLL_MS:.0f} ms CPU: "
            f"{at200[0]['poll_ms']:.1f} ms ({'met' if at200[0]['poll_ms'] < GOAL_POLL_MS else 'NOT met'})"
        )
    print(
        f"\n2. History: {days} days of 5-minute and hourly buckets and 7 days of raw cycles for {n_opds} OPDs\n",
        flush=True,
    )
    end = (time.time() // DAY) * DAY
    with tempfile.TemporaryDirectory(prefix="kendali-bench-history-") as tmp:
        path = Path(tmp) / "usage.sqlite"
        hist = year_of_history(path, n_opds, days, end)
        queries = time_queries(path, n_opds, end)
    tiers = [
        {"tier": t, "buckets": v["buckets"], "packed_mb": v["packed_mb"]} for t, v in sorted(hist["tiers"].items())
    ]
    print(table(tiers, [("tier", "tier"), ("buckets", "buckets"), ("packed_mb", "packed MB")]))
    print(
        f"\nfile: {hist['file_mb']:.1f} MB (goal under {GOAL_DB_MB:.0f} MB: "
        f"{'met' if hist['file_mb'] < GOAL_DB_MB else 'NOT met'}); written in {hist['write_s']:.0f} s\n"
    )
    print(
        table(
            queries,
            [
                ("query", "one OPD's query"),
                ("tier", "tier"),
                ("points", "points"),
                ("median_ms", "median ms"),
                ("max_ms", "max ms"),
            ],
        )
    )
    year = max(q["max_ms"] for q in queries if q["query"].startswith("a year"))
    print(
        f"\nGoal: any OPD's year query under {GOAL_QUERY_MS:.0f} ms: slowest {year:.1f} ms "
        f"({'met' if year < GOAL_QUERY_MS else 'NOT met'})"
    )
    out = write_json("stats", {"benchmark": "stats", "poll": poll, "history": hist, "queries": queries}, args.json)
    print(f"\nJSON: {out}")
    return 0
