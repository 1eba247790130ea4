"""controller.report.columns reads what History.columns reads, with numpy: the two must agree."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

from controller.api.history import COLUMNS, History
from controller.report import columns

T0 = 1_795_000_000  # seconds; not on a day boundary


def fill(path: Path, seed: int) -> History:
    """Buckets of two OPDs in the 5m and 1h tiers: full days, short days, a gap, and open buckets."""
    rng = random.Random(seed)
    hist = History(path)
    for opd in ("dinkes", "rsud"):
        for tier, step in (("5m", 300), ("1h", 3600)):
            rows, t = [], T0 // step * step
            for _ in range(rng.randint(50, 900)):
                t += step * rng.choice([1, 1, 1, 1, 2, 40])  # now and then a gap
                ms = rng.choice([step * 1000, step * 1000, rng.randint(0, step * 1000)])
                values = [rng.choice([0, rng.randint(0, 2**40), rng.randint(0, 300)]) for _ in COLUMNS[2:]]
                rows.append((t * 1000, ms, *values))
            hist.import_buckets(tier, opd, "policy", opd, rows)
            # open (not yet packed) buckets after the packed ones
            for k in range(1, 4):
                tt = (t + step * k) * 1000
                hist.db.execute(
                    f"INSERT INTO open_{tier} VALUES ((SELECT id FROM opds WHERE opd=?), ?, ?, {', '.join('?' * 8)})",
                    (opd, tt, step * 1000, *range(k, k + 8)),
                )
    return hist


@pytest.mark.parametrize("seed", range(4))
def test_the_numpy_reader_equals_history_columns(tmp_path: Path, seed: int) -> None:
    hist = fill(tmp_path / "u.sqlite", seed)
    rng = random.Random(seed)
    seen: dict[bytes, bytes] = {}
    try:
        for _ in range(12):
            tier = rng.choice(["5m", "1h"])
            opd = rng.choice(["dinkes", "rsud", "nobody"])
            frm = T0 + rng.randint(-86400, 200 * 86400)
            to = frm + rng.choice([1, 300, 3600, 86400, 400 * 86400])
            want = sorted(rng.sample(range(len(COLUMNS)), rng.randint(1, len(COLUMNS))))
            expect = hist.columns(tier, opd, frm, to, want)
            oid = columns.entry_id(hist.db, opd)
            got = columns.decode(columns.fetch(hist.db, tier, oid, frm, to), want, seen)
            for c in want:
                assert np.array_equal(got[c], np.frombuffer(expect[c], dtype=np.int64)), (tier, opd, frm, to, c)
    finally:
        hist.close()


def test_stream_gives_every_entry_in_order_with_or_without_threads(tmp_path: Path, monkeypatch) -> None:
    hist = fill(tmp_path / "u.sqlite", 9)
    ids = ["rsud", "nobody", "dinkes"]

    def fetch(entry: str) -> list[columns.Raw]:
        return [columns.fetch(hist.db, "5m", columns.entry_id(hist.db, entry), T0, T0 + 400 * 86400)]

    try:
        threaded = list(columns.stream(ids, fetch, [1, 6]))
        monkeypatch.setattr(columns, "_threads", lambda: False)
        plain = list(columns.stream(ids, fetch, [1, 6]))
    finally:
        hist.close()
    assert [i for i, _ in threaded] == [i for i, _ in plain] == ids
    for (_, a), (_, b) in zip(threaded, plain, strict=True):
        assert all(np.array_equal(a[c], b[c]) for c in (0, 1, 6))
    assert len(plain[1][1][0]) == 0  # an entry the history does not know: no buckets
