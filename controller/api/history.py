"""Usage history: one SQLite file in the state directory (WAL, no server), per OPD id.

Tiers, each a series of buckets per OPD:

    raw   one bucket per poll cycle          kept 7 days
    5m    5-minute sums                      kept 400 days (>= 13 months: a month's 95th
                                             percentile, the usual billing figure, needs them)
    1h    hourly sums                        kept forever

A bucket holds the milliseconds it covers (a controller that was down covers less) and,
per direction, delivered bytes and packets and dropped bytes and packets (CYCLE_FIELDS).

Each poll cycle is ONE transaction: its raw rows, its sums added to the open 5-minute and
hourly buckets, the OPDs' totals and the switch counters to resume from. WAL with
synchronous=NORMAL keeps every committed transaction across a kill -9 of the controller
(only a power cut can lose the last ones), so a restart loses at most the cycle being
written, and the totals, history and counters always agree with each other.

Space: a finished block of buckets (an hour of raw, a day of 5-minute, a week of hourly
buckets of one OPD) is packed into one row: each column as 64-bit integers, byte planes
shuffled and zlib-compressed on its own, so a year of 5-minute history of 200 OPDs stays
small and one OPD's year is read as 365 rows, of which a query decompresses only the
columns it needs (figures: `kendali bench stats`).

The writer runs in its own OS thread (``Writer``): the controller's event loop only puts
a cycle on a queue. Everything else here is plain synchronous code, tested without eventlet.
"""

from __future__ import annotations

import array
import bisect
import itertools
import json
import logging
import math
import operator
import queue as queue_mod
import sqlite3
import struct
import threading as threading_mod
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from controller.core.usage import CYCLE_FIELDS, Cycle

LOG = logging.getLogger("kendali.history")
HISTORY_FILE = "usage.sqlite"  # in the state directory
DAY = 86400


@dataclass(frozen=True)
class Tier:
    name: str
    bucket_s: int  # 0: one bucket per poll cycle
    block_s: int  # a packed row holds this much of one OPD
    keep_s: float  # math.inf: forever


TIERS = (Tier("raw", 0, 3600, 7 * DAY), Tier("5m", 300, DAY, 400 * DAY), Tier("1h", 3600, 7 * DAY, math.inf))
TIER = {t.name: t for t in TIERS}
COLUMNS = ("t_ms", "ms") + CYCLE_FIELDS  # a bucket: start (raw: end of the cycle), covered ms, values
NVAL = len(CYCLE_FIELDS)
PERCENTILES = (95, 99)
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS opds (id INTEGER PRIMARY KEY, opd TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
    name TEXT NOT NULL, first_seen REAL NOT NULL, last_seen REAL NOT NULL, totals TEXT);
CREATE TABLE IF NOT EXISTS blocks (id INTEGER PRIMARY KEY, tier TEXT NOT NULL, opd INTEGER NOT NULL,
    start INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL, UNIQUE (tier, opd, start));
""" + "".join(
    f"CREATE TABLE IF NOT EXISTS open_{t.name} (opd INTEGER NOT NULL, t_ms INTEGER NOT NULL, ms INTEGER NOT NULL, "
    + ", ".join(f"{c} INTEGER NOT NULL" for c in CYCLE_FIELDS)
    + ", PRIMARY KEY (t_ms, opd)) WITHOUT ROWID;\n"
    for t in TIERS
)


class HistoryError(Exception):
    """A query that cannot be answered as asked (the REST layer turns it into a 400)."""

    def __init__(self, problem: str, field: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.field = field


# ---- packing: rows of integers <-> one blob of compressed columns --------------------------------

_HEAD = struct.Struct(f"<{len(COLUMNS)}I")  # each column's compressed length


def _pack_column(values: Sequence[int]) -> bytes:
    raw = array.array("q", values).tobytes()
    return zlib.compress(b"".join(raw[i::8] for i in range(8)), 6)


def _unpack_column(data: bytes) -> array.array:
    planes = zlib.decompress(data)
    raw = bytearray(len(planes))
    size = len(planes) // 8
    for i in range(8):
        raw[i::8] = planes[i * size : (i + 1) * size]
    out = array.array("q")
    out.frombytes(bytes(raw))
    return out


def pack(rows: Sequence[Sequence[int]]) -> bytes:
    """Rows of len(COLUMNS) integers -> bytes: each column compressed on its own (so a query
    decompresses only the columns it reads), times as differences, each 64-bit value's bytes
    split into planes: the high planes are nearly all zero and vanish under zlib."""
    cols: list[Sequence[int]] = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in COLUMNS]
    t = cols[0]
    cols[0] = [t[0]] + [y - x for x, y in itertools.pairwise(t)] if t else []
    streams = [_pack_column(c) for c in cols]
    return _HEAD.pack(*(len(x) for x in streams)) + b"".join(streams)


def unpack_columns(data: bytes, want: Iterable[int]) -> dict[int, array.array]:
    """The columns (indexes into COLUMNS) ``want`` of a packed block."""
    lens = _HEAD.unpack_from(data)
    starts = list(itertools.accumulate(lens, initial=_HEAD.size))
    out = {}
    for c in want:
        col = _unpack_column(data[starts[c] : starts[c + 1]])
        out[c] = array.array("q", itertools.accumulate(col)) if c == 0 else col
    return out


def unpack(data: bytes) -> list[tuple[int, ...]]:
    cols = unpack_columns(data, range(len(COLUMNS)))
    return list(zip(*(cols[c] for c in range(len(COLUMNS))), strict=True))


# ---- cycles into buckets -------------------------------------------------------------------------

MAX_SPREAD_MS = DAY * 1000  # a cycle longer than this (the controller was away) spreads over its last day


def spread(t_ms: int, ms: int, bucket_ms: int) -> list[tuple[int, int, float]]:
    """The buckets a cycle ending at ``t_ms`` and ``ms`` long overlaps: (bucket start, ms of
    the cycle in it, cumulative share of the cycle up to the end of it). A cycle's counts
    are shared out in proportion, so a full bucket covers exactly its length: its rate is
    not off by a cycle that ended just inside or just outside it, and its covered time
    compresses to almost nothing. Counts of a cycle longer than a day (the switches kept
    counting while the controller was away) are spread over that day; what came before
    goes to its first bucket."""
    if ms <= 0:
        return [(t_ms // bucket_ms * bucket_ms, 0, 1.0)]
    start = t_ms - min(ms, MAX_SPREAD_MS)
    out = []
    b = start // bucket_ms * bucket_ms
    while b < t_ms:
        part = min(t_ms, b + bucket_ms) - max(start, b)
        out.append((b, part, 0.0))
        b += bucket_ms
    out[0] = (out[0][0], out[0][1] + ms - min(ms, MAX_SPREAD_MS), 0.0)
    acc = 0
    for k, (b, part, _) in enumerate(out):
        acc += part
        out[k] = (b, part, acc / ms)
    return out


def split(pieces: list[tuple[int, int, float]], values: Sequence[int]) -> list[tuple[int, int, tuple[int, ...]]]:
    """``values`` shared out over ``pieces`` (from ``spread``); integer parts that add up exactly."""
    if len(pieces) == 1:
        return [(pieces[0][0], pieces[0][1], tuple(values))]
    out, before = [], [0] * len(values)
    for b, part, share in pieces:
        upto = [round(v * share) for v in values]
        out.append((b, part, tuple(u - p for u, p in zip(upto, before, strict=True))))
        before = upto
    return out


# ---- parsing query parameters ------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": DAY, "w": 7 * DAY}


def parse_duration(text: str, field: str) -> int:
    """'300', '5m', '1h', '7d', '2w' -> seconds (> 0)."""
    s = text.strip().lower()
    try:
        value = float(s[:-1]) * _UNITS[s[-1]] if s and s[-1] in _UNITS else float(s)
    except ValueError:
        raise HistoryError(f"{text!r} is not a duration; use seconds or e.g. 5m, 1h, 1d", field) from None
    if not math.isfinite(value) or value < 1:
        raise HistoryError(f"{text!r} is not a duration of at least one second", field)
    return int(value)


def parse_time(text: str, field: str, now: float) -> float:
    """Unix seconds, ISO 8601 ('2026-11-30T08:00:00Z'), 'now', or 'now-7d' / '-7d'."""
    from datetime import datetime

    s = text.strip()
    if s.lower() == "now":
        return now
    rel = s[3:] if s.lower().startswith("now") else s
    if rel.startswith("-") and rel[1:] and not rel[1:].replace(".", "").isdigit():
        return now - parse_duration(rel[1:], field)
    try:
        value = float(s)
    except ValueError:
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            raise HistoryError(
                f"{text!r} is not a time; use unix seconds, ISO 8601 (2026-11-30T08:00:00Z) or now-7d", field
            ) from None
        value = (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(value) or value < 0:
        raise HistoryError(f"{text!r} is not a time after 1970", field)
    return value


# ---- the database --------------------------------------------------------------------------------


class History:
    """The usage database. One instance per thread (SQLite connections are not shared)."""

    def __init__(self, path: str | Path, keep: dict[str, float] | None = None, reader: bool = False) -> None:
        """``reader``: only to query a database the writer has made (no schema writes)."""
        self.path = Path(path)
        self.keep = {t.name: (keep or {}).get(t.name, t.keep_s) for t in TIERS}
        self.db = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        if not reader:
            # Before the first table: 32 KiB pages hold packed blocks (a few KiB each) with little
            # left over (4 KiB pages wasted 15 % of the file), and a cycle writes few of them: the
            # open buckets are keyed by time first, so each cycle's rows sit together.
            self.db.execute("PRAGMA page_size=32768")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        self._ids: dict[str, int] = dict(self.db.execute("SELECT opd, id FROM opds").fetchall())
        self._meta: dict[str, str] = {}  # meta values as read or written (JSON text)

    def close(self) -> None:
        self.db.close()

    # ---- writing ------------------------------------------------------------------------
    def write(self, cycle: Cycle) -> None:
        """One poll cycle, in one transaction; then pack what is complete (its own transaction)."""
        ms = int(round(cycle.seconds * 1000))
        t_ms = int(round(cycle.t * 1000))
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for opd, (kind, name) in cycle.names.items():
                if opd not in self._ids:
                    cur = db.execute(
                        "INSERT INTO opds (opd, kind, name, first_seen, last_seen) VALUES (?,?,?,?,?) "
                        "ON CONFLICT (opd) DO UPDATE SET kind=excluded.kind RETURNING id",
                        (opd, kind, name, cycle.t, cycle.t),
                    )
                    self._ids[opd] = cur.fetchone()[0]
                db.execute(
                    "UPDATE opds SET kind=?, name=?, last_seen=? WHERE id=?", (kind, name, cycle.t, self._ids[opd])
                )
            for opd, data in cycle.totals.items():
                if opd in self._ids:
                    db.execute(
                        "UPDATE opds SET totals=?, first_seen=? WHERE id=?",
                        (json.dumps(data), data["first_seen"], self._ids[opd]),
                    )
            rows = [(self._ids[o], v) for o, v in cycle.deltas.items() if o in self._ids]
            cols = ", ".join(CYCLE_FIELDS)
            marks = ", ".join("?" * (NVAL + 3))
            db.executemany(
                f"INSERT OR REPLACE INTO open_raw (opd, t_ms, ms, {cols}) VALUES ({marks})",
                [(i, t_ms, ms, *v) for i, v in rows],
            )
            add = ", ".join(f"{c}={c}+excluded.{c}" for c in ("ms",) + CYCLE_FIELDS)
            for tier in TIERS[1:]:
                pieces = spread(t_ms, ms, tier.bucket_s * 1000)
                db.executemany(
                    f"INSERT INTO open_{tier.name} (opd, t_ms, ms, {cols}) VALUES ({marks}) "
                    f"ON CONFLICT (opd, t_ms) DO UPDATE SET {add}",
                    [(i, start, part_ms, *vals) for i, v in rows for start, part_ms, vals in split(pieces, v)],
                )
            for key, value in cycle.meta.items():
                self._put_meta(key, value)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('last_cycle', ?)", (repr(cycle.t),))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('counters', ?)", (json.dumps(cycle.counters),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._meta.clear()  # what it cached may not have been written
            raise
        self.pack_complete(cycle.t)

    def _put_meta(self, key: str, value: Any) -> None:
        """A JSON fact in the meta table; "links" are merged, so a link gone keeps its ends and
        capacity for the report of a period it was in."""
        if key == "links":
            value = {**(self.meta_json("links") or {}), **value}
        text = json.dumps(value, sort_keys=True)
        if self._meta.get(key) != text:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, text))
            self._meta[key] = text

    def meta_json(self, key: str) -> Any:
        """A JSON fact of the meta table ("links", "uplink", ...), or None."""
        if key not in self._meta:
            row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            if row is None:
                return None
            self._meta[key] = row[0]
        try:
            return json.loads(self._meta[key])
        except ValueError:
            return None

    def set_meta_json(self, key: str, value: Any) -> None:
        """Write one JSON fact (its own transaction; for simulate and migrations)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._put_meta(key, value)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def pack_complete(self, now: float) -> None:
        """Pack every open bucket of a block that has ended, and drop blocks past their tier's keep."""
        for tier in TIERS:
            block_ms = tier.block_s * 1000
            current = int(now // tier.block_s * tier.block_s) * 1000
            row = self.db.execute(f"SELECT MIN(t_ms) FROM open_{tier.name}").fetchone()
            if row[0] is None or row[0] >= current:
                continue
            self.db.execute("BEGIN IMMEDIATE")
            try:
                rows = self.db.execute(
                    f"SELECT opd, t_ms, ms, {', '.join(CYCLE_FIELDS)} FROM open_{tier.name} "
                    "WHERE t_ms < ? ORDER BY opd, t_ms",
                    (current,),
                ).fetchall()
                groups: dict[tuple[int, int], list[tuple[int, ...]]] = {}
                for r in rows:
                    groups.setdefault((r[0], r[1] // block_ms * block_ms // 1000), []).append(r[1:])
                for (opd, start), items in groups.items():
                    self._put_block(tier.name, opd, start, items)
                self.db.execute(f"DELETE FROM open_{tier.name} WHERE t_ms < ?", (current,))
                if math.isfinite(self.keep[tier.name]):
                    self.db.execute(
                        "DELETE FROM blocks WHERE tier=? AND start < ?",
                        (tier.name, int(now - self.keep[tier.name] - tier.block_s)),
                    )
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def _put_block(self, tier: str, opd: int, start: int, items: list[tuple[int, ...]]) -> None:
        """Write one packed block, merged with what is already packed there (a late bucket)."""
        old = self.db.execute(
            "SELECT n, data FROM blocks WHERE tier=? AND opd=? AND start=?", (tier, opd, start)
        ).fetchone()
        if old:
            merged: dict[int, list[int]] = {r[0]: list(r) for r in unpack(old[1])}
            for r in items:
                cur = merged.get(r[0])
                merged[r[0]] = [r[0]] + [a + b for a, b in zip(cur[1:], r[1:], strict=True)] if cur else list(r)
            items = [tuple(merged[k]) for k in sorted(merged)]
        self.db.execute(
            "INSERT OR REPLACE INTO blocks (tier, opd, start, n, data) VALUES (?,?,?,?,?)",
            (tier, opd, start, len(items), pack(items)),
        )

    def import_buckets(self, tier: str, opd: str, kind: str, name: str, rows: Iterable[Sequence[int]]) -> None:
        """Packed blocks straight from rows (t_ms, ms, values...): for benchmarks and migrations."""
        t = TIER[tier]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cur = self.db.execute(
                "INSERT INTO opds (opd, kind, name, first_seen, last_seen) VALUES (?,?,?,0,0) "
                "ON CONFLICT (opd) DO UPDATE SET name=excluded.name RETURNING id",
                (opd, kind, name),
            )
            oid = cur.fetchone()[0]
            self._ids[opd] = oid
            groups: dict[int, list[tuple[int, ...]]] = {}
            for r in rows:
                groups.setdefault(r[0] // (t.block_s * 1000) * t.block_s, []).append(tuple(r))
            for start, items in groups.items():
                self._put_block(tier, oid, start, items)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # ---- reading --------------------------------------------------------------------------
    def load(self) -> tuple[dict[str, dict[str, Any]], list[list[Any]], float | None]:
        """What the counting core needs to continue: totals by OPD, switch counters, last cycle time."""
        totals = {o: json.loads(t) for o, t in self.db.execute("SELECT opd, totals FROM opds WHERE totals IS NOT NULL")}
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        counters = json.loads(meta.get("counters", "[]"))
        last = float(meta["last_cycle"]) if "last_cycle" in meta else None
        return totals, counters, last

    def opds(self) -> list[dict[str, Any]]:
        """Every OPD the history knows, deleted ones included."""
        return [
            {"opd": o, "kind": k, "name": n, "first_seen": f, "last_seen": ls}
            for o, k, n, f, ls in self.db.execute(
                "SELECT opd, kind, name, first_seen, last_seen FROM opds ORDER BY opd"
            )
        ]

    def columns(
        self, tier: str, opd: str, frm: float, to: float, want: Iterable[int] = range(len(COLUMNS))
    ) -> dict[int, array.array]:
        """Columns (indexes into COLUMNS) of one OPD's buckets of a tier that start in [frm, to),
        oldest first. Only the columns asked for are decompressed (start times only for the
        blocks at the ends of the range, which need cutting)."""
        cols = sorted(set(want))
        out = {c: array.array("q") for c in cols}
        oid = self._ids.get(opd) or self._lookup(opd)
        if oid is None:
            return out
        t = TIER[tier]
        lo, hi = int(frm * 1000), int(to * 1000)
        for start, data in self.db.execute(
            "SELECT start, data FROM blocks WHERE tier=? AND opd=? AND start > ? AND start < ? ORDER BY start",
            (tier, oid, int(frm) - t.block_s, int(to) + 1),
        ):
            if lo <= start * 1000 and (start + t.block_s) * 1000 <= hi:
                for c, col in unpack_columns(data, cols).items():
                    out[c].extend(col)
                continue
            got = unpack_columns(data, sorted(set(cols) | {0}))
            i, j = bisect.bisect_left(got[0], lo), bisect.bisect_left(got[0], hi)
            for c in cols:
                out[c].extend(got[c][i:j])
        # Open buckets all come after the packed blocks: packing moves whole finished blocks.
        names = ", ".join(COLUMNS[c] for c in cols)
        for row in self.db.execute(
            f"SELECT {names} FROM open_{tier} WHERE opd=? AND t_ms >= ? AND t_ms < ? ORDER BY t_ms", (oid, lo, hi)
        ):
            for c, v in zip(cols, row, strict=True):
                out[c].append(v)
        return out

    def buckets(self, tier: str, opd: str, frm: float, to: float) -> list[tuple[int, ...]]:
        """The tier's buckets of one OPD that start in [frm, to), as rows (t_ms, ms, values...)."""
        cols = self.columns(tier, opd, frm, to)
        return list(zip(*(cols[c] for c in range(len(COLUMNS))), strict=True))

    def _lookup(self, opd: str) -> int | None:
        row = self.db.execute("SELECT id FROM opds WHERE opd=?", (opd,)).fetchone()
        if row:
            self._ids[opd] = row[0]
        return row[0] if row else None

    def known(self, opd: str) -> bool:
        return (self._ids.get(opd) or self._lookup(opd)) is not None

    def query(
        self, opd: str, frm: float, to: float, step: int | None, now: float, max_points: int = 10_000
    ) -> dict[str, Any]:
        """One OPD's series over [frm, to) in steps, with totals and percentiles.

        A bucket belongs to the range when it starts in it. The series sums the buckets of
        the coarsest tier that fits in the step and still holds ``frm`` into steps aligned
        to multiples of ``step`` since the epoch (UTC); it is columns (one list per field),
        cheap to build and to send. The percentiles are of 5-minute rates while those are
        kept (hourly ones after): a month's p95 is the usual 95th percentile of 5-minute
        rates, whatever the step."""
        if to <= frm:
            raise HistoryError("'to' must be later than 'from'", "to")
        span = to - frm
        if step is None:
            step = max(1, math.ceil(span / 300))
        if span / step > max_points:
            raise HistoryError(
                f"{math.ceil(span / step)} points asked; at most {max_points}: use a larger step", "step"
            )
        held = [t for t in TIERS if frm >= now - self.keep[t.name]] or [TIERS[-1]]
        fit = [t for t in held if t.bucket_s <= step]
        tier = fit[-1] if fit else held[0]
        step = max(step, tier.bucket_s)
        basis = next((t for t in held if t.bucket_s >= 300), TIERS[-1])
        cols = self.columns(tier.name, opd, frm, to)
        rate_cols = (1, 2, 6)  # ms, up bytes, down bytes
        rates = cols if basis is tier else self.columns(basis.name, opd, frm, to, rate_cols)
        out: dict[str, Any] = {"opd": opd, "from": frm, "to": to, "step": step, "tier": tier.name}
        out.update(_series(cols, step))
        ms = sum(cols[1])
        totals = [sum(cols[2 + i]) for i in range(NVAL)]
        summary: dict[str, Any] = {"seconds": ms / 1000, "basis": basis.name}
        for i, d in enumerate(("up", "down")):
            nbytes, pkts, dbytes, dpkts = totals[4 * i : 4 * i + 4]
            summary[d] = {
                "bytes": nbytes,
                "packets": pkts,
                "dropped_bytes": dbytes,
                "dropped_packets": dpkts,
                "bps": round(nbytes * 8000 / ms) if ms else None,
                "dropped_bps": round(dbytes * 8000 / ms) if ms else None,
                **_top_rates(rates[1], rates[2 + 4 * i]),
            }
        out["summary"] = summary
        return out


def _series(cols: dict[int, array.array], step: int) -> dict[str, Any]:
    """Buckets summed into steps: {"t": [...], "seconds": [...], "up": {field: [...]}, "down": ...}."""
    t = cols[0]
    keys = [x // (step * 1000) for x in t]
    n = len(keys)
    starts = [0] + list(itertools.compress(range(1, n), map(operator.ne, keys[1:], keys[:-1]))) if n else []
    if len(starts) == n:  # one bucket per step: nothing to add up
        sums = {c: cols[c].tolist() for c in range(1, len(COLUMNS))}
    else:
        bounds = list(itertools.pairwise(starts + [n]))
        sums = {c: [sum(cols[c][a:b]) for a, b in bounds] for c in range(1, len(COLUMNS))}
    ms = sums[1]
    out: dict[str, Any] = {"t": [keys[i] * step for i in starts], "seconds": [x / 1000 for x in ms]}
    for i, d in enumerate(("up", "down")):
        part = {f: sums[2 + 4 * i + k] for k, f in enumerate(("bytes", "packets", "dropped_bytes", "dropped_packets"))}
        for f, src in (("bps", "bytes"), ("dropped_bps", "dropped_bytes")):
            part[f] = [round(b * 8000 / m) if m else None for b, m in zip(part[src], ms, strict=True)]
        out[d] = part
    return out


def _top_rates(ms: Sequence[int], nbytes: Sequence[int]) -> dict[str, int | None]:
    """max, p99 and p95 (nearest rank) of the buckets' rates in bits per second, buckets that
    cover no time left out. A year of 5-minute buckets is 105,120 rates: rather than work
    out and sort them all, the rates of every 50th bucket give a bound a little under the
    p95, and only the buckets that may be at or above it (compared in C) have
    their rates worked out and sorted; if the sample misled, every rate is."""
    n = len(ms) - ms.count(0)
    if not n:
        return {"max_bps": None, "p99_bps": None, "p95_bps": None}
    ranks = {p: max(0, math.ceil(p / 100 * n) - 1) for p in PERCENTILES}  # ascending, 0-based
    need = n - min(ranks.values())  # how many of the largest rates the percentiles fall among
    top: list[float] = []
    if n > 5000:
        sample = sorted(nbytes[i] / ms[i] for i in range(0, len(ms), 50) if ms[i])
        bound = sample[max(0, int(len(sample) * (1 - 2 * need / n)) - 1)]
        # rate >= bound means bytes >= bound x ms: with ms at least a usual bucket's (``short``),
        # bytes >= bound x short, compared in integers; the few shorter buckets are all taken.
        short = sorted(ms[::50])[len(ms[::50]) // 100]
        idx = range(len(ms))
        above = itertools.compress(idx, map(operator.ge, nbytes, itertools.repeat(int(bound * short))))
        brief = itertools.compress(idx, map(operator.lt, ms, itertools.repeat(short)))
        top = sorted((nbytes[i] / ms[i] for i in set(above).union(brief) if ms[i]), reverse=True)
    if len(top) < need:
        top = sorted((b / m for b, m in zip(nbytes, ms, strict=True) if m), reverse=True)
    out: dict[str, int | None] = {"max_bps": round(top[0] * 8000)}
    for p in sorted(PERCENTILES, reverse=True):
        out[f"p{p}_bps"] = round(top[n - 1 - ranks[p]] * 8000)
    return out


def check(path: str | Path) -> None:
    """Open (or create) the history and read what a restart continues from; a file that
    cannot serve is a KendaliError naming it, before the controller starts."""
    from controller.errors import KendaliError

    try:
        hist = History(path)
        try:
            hist.load()
        finally:
            hist.close()
    except (sqlite3.Error, OSError, ValueError, KeyError, TypeError) as exc:
        raise KendaliError(
            f"the usage history cannot be used ({exc}); move it aside to start a new one", str(path)
        ) from None


class Writer:
    """Writes cycles in its own OS thread, so the event loop never waits on the disk.

    The controller runs under eventlet, whose monkey-patching turns ``threading`` and
    ``queue`` green: the shell passes the original modules (eventlet.patcher.original)."""

    def __init__(self, path: str | Path, threading: Any = threading_mod, queue: Any = queue_mod) -> None:
        self.path = Path(path)
        self._q: Any = queue.Queue()
        self.put_count = 0
        self.done = 0  # cycles taken off the queue (written or failed)
        self.written = 0
        self.write_seconds = 0.0  # summed, for the metrics
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="kendali-history", daemon=True)
        self._thread.start()

    def put(self, cycle: Cycle) -> None:
        self.put_count += 1
        self._q.put(cycle)

    @property
    def backlog(self) -> int:
        return self.put_count - self.done

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every cycle put so far is written (tests, a clean stop)."""
        deadline = time.monotonic() + timeout
        while self.backlog > 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.backlog <= 0

    def close(self, timeout: float = 10.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        hist = History(self.path)
        try:
            while True:
                cycle = self._q.get()
                if cycle is None:
                    return
                t0 = time.perf_counter()
                try:
                    hist.write(cycle)
                    self.written += 1
                    self.error = None
                except Exception as exc:  # a full disk must not stop the controller: say so, go on
                    if self.error is None:
                        LOG.error("usage history: cannot write %s: %s", self.path, exc)
                    self.error = str(exc)
                self.write_seconds += time.perf_counter() - t0
                self.done += 1
        finally:
            hist.close()
