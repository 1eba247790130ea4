"""A history entry's columns as numpy arrays, fast: what History.columns gives, decoded with numpy.

History.columns decodes each packed block in Python (byte planes, time differences):
about 40 ms for one OPD's year, 10 s for the report of 200 OPDs. This reads the same
blocks and open buckets with the same SQL and decodes them with numpy: zlib does the
work that remains, and it runs beside the SQL reads in a second thread (zlib and numpy
let go of the GIL). The packed format is history.py's (``pack``): per block a header of
each column's compressed length, then each column's 64-bit values as 8 byte planes,
zlib-compressed; the start times as differences. tests/test_report_columns.py keeps the
two readers equal. (A candidate for History itself.)

    fetch(db, tier, entry, frm, to) -> Raw      the SQL: packed blocks and open buckets (one thread)
    decode(raw, want) -> {column: int64 array}  pure: safe in any thread
"""

from __future__ import annotations

import itertools
import sqlite3
import sys
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from controller.api.history import _HEAD, COLUMNS, TIER
from controller.core.needs import Ints


@dataclass(frozen=True)
class Raw:
    """What the database holds for one entry and tier in [lo, hi) ms: packed blocks, open buckets."""

    blocks: list[tuple[int, bytes]]  # (buckets in the block, packed data), oldest first
    open_rows: list[tuple[int, ...]]  # (t_ms, ms, values...) of the open buckets, oldest first
    lo: int
    hi: int


def entry_id(db: sqlite3.Connection, entry: str) -> int | None:
    row = db.execute("SELECT id FROM opds WHERE opd=?", (entry,)).fetchone()
    return int(row[0]) if row else None


def fetch(db: sqlite3.Connection, tier: str, oid: int | None, frm: float, to: float) -> Raw:
    """History.columns' SQL: the blocks that may hold buckets starting in [frm, to), and the open ones."""
    lo, hi = int(frm * 1000), int(to * 1000)
    if oid is None:
        return Raw([], [], lo, hi)
    t = TIER[tier]
    blocks = db.execute(
        "SELECT n, data FROM blocks WHERE tier=? AND opd=? AND start > ? AND start < ? ORDER BY start",
        (tier, oid, int(frm) - t.block_s, int(to) + 1),
    ).fetchall()
    cols = ", ".join(COLUMNS)
    rows = db.execute(
        f"SELECT {cols} FROM open_{tier} WHERE opd=? AND t_ms >= ? AND t_ms < ? ORDER BY t_ms", (oid, lo, hi)
    ).fetchall()
    return Raw([(int(n), bytes(d)) for n, d in blocks], rows, lo, hi)


def _planes(chunks: list[bytes], n: int) -> Ints:
    """Byte planes of k blocks of n values each -> their int64 values, one row per block.

    Each plane is copied into its byte of the values, planes of zeros skipped: most high planes
    are zero (a 5-minute byte count fits in 5 bytes), and this is several times faster than
    transposing all the bytes."""
    k = len(chunks)
    raw = np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(k, 8, n)
    out = np.zeros((k, n, 8), dtype=np.uint8)
    for i in range(8):
        plane = raw[:, i, :]
        if plane.any():
            out[:, :, i] = plane
    values: Ints = out.view("<i8").reshape(k, n)
    return values


SMALL = 64  # a compressed column this short is a run of one value (full coverage, no drops): seen again and again


def decode(raw: Raw, want: Iterable[int], seen: dict[bytes, bytes] | None = None) -> dict[int, Ints]:
    """The columns ``want`` (indexes into COLUMNS; 0, the start, is always decoded) of buckets in [lo, hi).

    ``seen``: decompressed short columns by their compressed bytes. Each day's covered-time and
    dropped-bytes columns are mostly the same few bytes (300,000 ms each; no drops), and zlib's
    cost is per call, not per byte: a year of 200 OPDs is half a million calls."""
    cols = sorted(set(want) | {0})
    parts: dict[int, list[Ints]] = {c: [] for c in cols}
    seen = {} if seen is None else seen
    # runs of blocks with the same number of buckets are decoded together
    for n, group in itertools.groupby(raw.blocks, key=lambda b: b[0]):
        datas = [d for _, d in group]
        heads = [_HEAD.unpack_from(d) for d in datas]
        starts = [list(itertools.accumulate(h, initial=_HEAD.size)) for h in heads]
        for c in cols:
            chunks = [_inflate(d[s[c] : s[c + 1]], seen) for d, s in zip(datas, starts, strict=True)]
            values = _planes(chunks, n)
            if c == 0:
                values = np.cumsum(values, axis=1)  # start times are stored as differences
            parts[c].append(values.ravel())
    if raw.open_rows:
        table = np.array(raw.open_rows, dtype=np.int64)
        for c in cols:
            parts[c].append(table[:, c])
    out = {c: _join(parts[c]) for c in cols}
    # oldest first (blocks by start, open buckets after them): the period is one slice
    a, b = np.searchsorted(out[0], [raw.lo, raw.hi])
    if a > 0 or b < len(out[0]):
        out = {c: v[a:b] for c, v in out.items()}
    return out


def _join(parts: list[Ints]) -> Ints:
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _inflate(chunk: bytes, seen: dict[bytes, bytes]) -> bytes:
    if len(chunk) > SMALL:
        return zlib.decompress(chunk)
    out = seen.get(chunk)
    if out is None:
        out = seen[chunk] = zlib.decompress(chunk)
    return out


def _threads() -> bool:
    """Real threads here? Not under eventlet's monkey-patching (the controller runs the report in
    one OS thread of its pool; its green threads would gain nothing)."""
    patcher: Any = sys.modules.get("eventlet.patcher")
    return patcher is None or not patcher.is_monkey_patched("thread")


def stream(
    ids: Iterable[str], fetch_one: Callable[[str], list[Raw]], want: Iterable[int], ahead: int = 4
) -> Iterator[tuple[str, dict[int, Ints]]]:
    """(id, columns) for each id in order: the SQL here, the decoding in a second thread, ``ahead`` at most
    waiting, so that the caller's own work on one entry overlaps the decoding of the next."""
    want = sorted(set(want) | {0})

    seen: dict[bytes, bytes] = {}  # shared by the decoding threads: a dict's get and set are atomic

    def work(raws: list[Raw]) -> dict[int, Ints]:
        if len(seen) > 10_000:
            seen.clear()
        got = [decode(r, want, seen) for r in raws]
        return {c: _join([g[c] for g in got]) for c in want}

    if not _threads():
        for i in ids:
            yield i, work(fetch_one(i))
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kendali-report") as pool:
        pending: deque[tuple[str, Any]] = deque()
        for i in ids:
            pending.append((i, pool.submit(work, fetch_one(i))))
            while len(pending) > ahead:
                j, fut = pending.popleft()
                yield j, fut.result()
        while pending:
            j, fut = pending.popleft()
            yield j, fut.result()
