"""`kendali bench report`: how long the usage report of a year of 200 OPDs takes, and its memory.

A state dir with 200 OPDs (policies.json, caps 5-150 Mbit/s) and a year of their 5-minute
and hourly history (office hours in WITA with noise; a tenth of the OPDs beyond their caps,
dropping), plus 60 links, written with History.import_buckets. Then, in a fresh Python
process (so that its peak memory is the report's own): the report of the whole year
(data.build), the document as json, as csv, and as html when controller.report.html is
there. Goal (issue 9): under 10 s in all.

Knobs (environment): KENDALI_BENCH_REPORT_OPDS=200, KENDALI_BENCH_REPORT_DAYS=365,
KENDALI_BENCH_REPORT_DIR=path (keep and reuse the generated state dir there).
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from controller.api.history import HISTORY_FILE, History
from controller.api.store import PolicyStore
from controller.core.compiler import FRAME_OVERHEAD
from controller.core.policy import Policy
from controller.lab.bench import table, write_json

GOAL_S = 10.0
DAY = 86400
STEP = 300
LINKS = 60


def make_state(state: Path, n_opds: int, days: int, end: float, seed: int = 9) -> dict[str, Any]:
    """A state dir with ``n_opds`` policies and ``days`` of their history up to ``end``."""
    from controller.report.data import set_meta_json

    rng = np.random.default_rng(seed)
    t0 = time.monotonic()
    policies = {}
    for i in range(n_opds):
        down = int(rng.choice([5, 10, 20, 30, 50, 100, 150])) * 1000
        policies[f"opd{i:03d}"] = Policy(f"opd{i:03d}", f"OPD {i}", (f"10.{i // 256}.{i % 256}.0/24",), down, down // 2)
    PolicyStore(state).seed(policies, "bench")
    start = end - days * DAY
    t_s = np.arange(start, end, STEP, dtype=np.int64)
    n = len(t_s)
    local = t_s + 8 * 3600  # WITA
    minute = (local % DAY) // 60
    weekday = (local // DAY + 3) % 7  # 1970-01-01 was a Thursday
    office = (weekday < 5) & (minute >= 450) & (minute < 960)
    shape = np.where(office, 1.0, 0.05)
    hist = History(state / HISTORY_FILE)
    ms = np.full(n, STEP * 1000, dtype=np.int64)
    totals = np.zeros((2, n), dtype=np.int64)
    try:
        for i, (pid, p) in enumerate(policies.items()):
            level = rng.uniform(1.2, 1.5) if i % 10 == 0 else rng.uniform(0.3, 0.8)
            want = shape * rng.lognormal(0, 0.25, size=n) * level  # share of the meter rate
            cols = []
            for cap in (p.upload_kbps, p.download_kbps):
                meter = cap * 1000 * FRAME_OVERHEAD
                got = np.minimum(want, 0.99) * meter
                drop = np.maximum(want - 0.99, 0) * meter * 0.3
                nbytes, dbytes = (got * STEP / 8).astype(np.int64), (drop * STEP / 8).astype(np.int64)
                cols += [nbytes, nbytes // 1000, dbytes, dbytes // 1000]
            totals += np.array([cols[0], cols[4]])
            _import(hist, pid, "policy", p.name, t_s, ms, cols)
            if (i + 1) % 50 == 0:
                print(f"  {i + 1} OPDs written ({time.monotonic() - t0:.0f} s)", flush=True)
        meta = {}
        for k in range(LINKS):
            lid = f"link:dist{k // 10}~edge{k}"
            share = rng.uniform(0.02, 0.2)
            up, down = (totals[0] * share).astype(np.int64), (totals[1] * share).astype(np.int64)
            zero = np.zeros(n, dtype=np.int64)
            _import(
                hist,
                lid,
                "link",
                f"dist{k // 10} – edge{k}",
                t_s,
                ms,
                [up, up // 1000, zero, zero, down, down // 1000, zero, zero],
            )
            meta[lid] = {"a": f"dist{k // 10}", "b": f"edge{k}", "capacity_mbps": 1000, "uplink": k == 0}
        set_meta_json(hist, "links", meta)
        hist.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        hist.close()
    return {"opds": n_opds, "links": LINKS, "days": days, "write_s": time.monotonic() - t0}


def _import(hist: History, entry: str, kind: str, name: str, t_s: Any, ms: Any, cols: list[Any]) -> None:
    five = np.column_stack([t_s * 1000, ms, *cols])
    hours = len(five) // 12
    hourly = np.column_stack([five[: hours * 12 : 12, 0], five[: hours * 12, 1:].reshape(hours, 12, -1).sum(axis=1)])
    hist.import_buckets("5m", entry, kind, name, five.tolist())
    hist.import_buckets("1h", entry, kind, name, hourly.tolist())
    hist.db.execute("UPDATE opds SET first_seen=?, last_seen=? WHERE opd=?", (int(t_s[0]), int(t_s[-1]) + STEP, entry))


def _measure(state: str, frm: float, to: float, now: float, out: Any) -> None:
    """In a fresh process: each step timed, and the process's peak memory."""
    from controller.report import csvout, data

    row: dict[str, Any] = {}
    t0 = time.perf_counter()
    doc = data.build(state, frm, to, now)
    row["build_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    row["json_s"] = time.perf_counter() - t1
    row["json_mb"] = len(text.encode()) / 2**20
    t1 = time.perf_counter()
    table_text = csvout.render(doc)
    row["csv_s"] = time.perf_counter() - t1
    row["csv_kb"] = len(table_text.encode()) / 1024
    row["html_s"] = row["html_mb"] = None
    if importlib.util.find_spec("controller.report.html") is not None:
        t1 = time.perf_counter()
        page = data.render(doc, "html", "id", os.cpu_count() or 1)
        row["html_s"] = time.perf_counter() - t1
        row["html_mb"] = len(page.encode()) / 2**20
    row["total_s"] = time.perf_counter() - t0
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["opds"] = doc["summary"]["opds"]
    row["raise"], row["lower"] = doc["summary"]["raise"], doc["summary"]["lower"]
    row["samples_per_opd"] = doc["opds"][0]["down"]["all"]["samples"]
    out.put(row)


def measure(state: Path, frm: float, to: float, now: float) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: its peak RSS is the report's
    q = ctx.Queue()
    proc = ctx.Process(target=_measure, args=(str(state), frm, to, now, q))
    proc.start()
    row: dict[str, Any] = q.get()
    proc.join()
    return row


_COLS = [
    ("run", "run"),
    ("opds", "OPDs"),
    ("samples_per_opd", "samples/OPD"),
    ("build_s", "build s"),
    ("json_s", "json s"),
    ("csv_s", "csv s"),
    ("html_s", "html s"),
    ("total_s", "total s"),
    ("peak_rss_mb", "peak RSS MB"),
    ("json_mb", "json MB"),
    ("csv_kb", "csv KB"),
    ("html_mb", "html MB"),
]


def run(args: Any) -> int:
    n_opds = int(os.environ.get("KENDALI_BENCH_REPORT_OPDS", "200"))
    days = int(os.environ.get("KENDALI_BENCH_REPORT_DAYS", "365"))
    keep = os.environ.get("KENDALI_BENCH_REPORT_DIR")
    end = (time.time() // DAY) * DAY
    with tempfile.TemporaryDirectory(prefix="kendali-bench-report-") as tmp:
        state = Path(keep) if keep else Path(tmp) / "state"
        made: dict[str, Any] = {"opds": n_opds, "days": days, "reused": False}
        if keep and (state / HISTORY_FILE).exists():
            made["reused"] = True
            hist = History(state / HISTORY_FILE, reader=True)
            last = hist.db.execute("SELECT MAX(last_seen) FROM opds").fetchone()[0]
            hist.close()
            end = float(last) if last else end
            print(f"Reusing {state}", flush=True)
        else:
            print(
                f"Writing {days} days of 5-minute and hourly history for {n_opds} OPDs and {LINKS} links\n", flush=True
            )
            made = make_state(state, n_opds, days, end)
            print(f"  written in {made['write_s']:.0f} s\n", flush=True)
        size = sum(p.stat().st_size for p in state.glob(HISTORY_FILE + "*")) / 2**20
        print(f"history: {size:.0f} MB; report of the whole period, in a fresh process, twice:\n", flush=True)
        rows = []
        for i in range(2):
            row = measure(state, end - days * DAY, end, end)
            row["run"] = i + 1
            rows.append(row)
    print(table(rows, _COLS))
    best = min(r["total_s"] for r in rows)
    html = "" if rows[0]["html_s"] is not None else " (html not measured: controller.report.html is not in this build)"
    print(
        f"\nGoal: the report of a year of {n_opds} OPDs under {GOAL_S:.0f} s: {best:.1f} s "
        f"({'met' if best < GOAL_S else 'NOT met'}){html}"
    )
    out = write_json("report", {"benchmark": "report", "history_mb": size, "made": made, "rows": rows}, args.json)
    print(f"\nJSON: {out}")
    return 0
