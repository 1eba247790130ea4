"""`kendali history simulate`: a month (or more) of plausible usage, for demonstrations.

A lab run lasts minutes and a report covers a month. This fills a state directory with
what a month of PPU's intranet could look like, so the report has something to say:

- the OPDs of the state's policies (policies.json), or, if it has none, of the embedded
  default policies (policies/ppu.yaml), which are then saved as the state's policies;
- office hours from the settings (WITA, Monday to Friday 07:30-16:00 by default): staff
  arrive, a lunch dip, a slow afternoon end, quiet evenings, nights, weekends and days off;
  the hospital (rsud) and the puskesmas keep a night load;
- a few OPDs outgrow a cap (their demand is beyond it in office hours: the meter drops,
  TCP backs off, so a share of the excess is dropped), one barely uses its own;
- the links of topologies/ppu.yaml carry the OPDs' traffic on the shortest path (by the
  topology's path cost) to the core switch, where the ISP uplink is;
- the ISP hand-off subnet counted as the controller counts it (its "up" is what came from
  the ISP), and the meta "uplink" naming it;
- 5-minute and hourly buckets (History.import_buckets), the meta "links" and
  ``simulated = 1``: every report built on it says SIMULATED.

Deterministic for a seed (numpy's PCG64). It refuses a history that was measured (not
simulated) unless --force, which moves that file aside rather than deleting it.
"""

from __future__ import annotations

import datetime
import math
import os
import time
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from controller.api.history import HISTORY_FILE, History
from controller.api.store import STATE_FILE, PolicyStore, load_policies, load_settings
from controller.core import policy as policy_mod
from controller.core import topology as topology_mod
from controller.core.compiler import FRAME_OVERHEAD
from controller.core.settings import DAYS, days_off, minutes
from controller.errors import KendaliError
from controller.report.data import set_meta_json

DEFAULT_POLICIES = Path(__file__).resolve().parents[2] / "policies" / "ppu.yaml"
STEP_S = 300
MAX_DAYS = 400  # what the 5-minute tier keeps
# Who does what in PPU's month (ids of policies/ppu.yaml); other policy sets get roles by seed.
OUTGROW = {"disdukcapil": "down", "pkm-penajam": "down", "bappeda": "up"}
IDLE = "inspektorat"
ALL_NIGHT = ("rsud", "pkm-")  # a hospital and the puskesmas work around the clock
TCP_DROP = 0.3  # of the demand beyond the cap, the share that reaches the meter and is dropped


@dataclass(frozen=True)
class Role:
    level_down: float  # office-time demand, share of the download cap
    level_up: float  # share of the upload cap
    night: float  # share of the office level outside office hours


def _roles(ids: list[str], rng: np.random.Generator) -> dict[str, Role]:
    out = {}
    outgrow = {k: v for k, v in OUTGROW.items() if k in ids}
    idle = IDLE if IDLE in ids else None
    if not outgrow and len(ids) >= 4:  # not PPU's policies: pick some by seed
        picks = [str(x) for x in rng.choice(ids, size=3, replace=False)]
        outgrow, idle = {picks[0]: "down", picks[1]: "down"}, picks[2]
    for oid in ids:
        down, up = rng.uniform(0.4, 0.6), rng.uniform(0.35, 0.55)
        if outgrow.get(oid) == "down":
            down = rng.uniform(1.3, 1.6)
        if outgrow.get(oid) == "up":
            up = rng.uniform(1.3, 1.6)
        if oid == idle:
            down, up = 0.04, 0.03
        night = 0.35 if oid.startswith(ALL_NIGHT) else 0.04
        out[oid] = Role(down, up, night)
    return out


def _office_shape(office: np.ndarray, minute: np.ndarray) -> np.ndarray:
    """Share of the office level at each sample: a working day's shape in office hours, 1.0 at best."""
    m = minute
    shape = np.where(m < 12 * 60, 0.95, np.where(m < 13 * 60, 0.55, 0.85))  # morning, lunch, afternoon
    shape = np.where(m < 8 * 60, 0.6, shape)  # arriving
    shape = np.where(m >= 15 * 60 + 30, 0.6, shape)  # leaving
    return np.where(office, shape, 0.0)


def _local_seconds(t_s: np.ndarray, zone: zoneinfo.ZoneInfo) -> np.ndarray:
    """Each start as seconds of local wall-clock time since 1970-01-01 (the zone's offset taken each hour)."""
    hours = t_s // 3600
    first = int(hours[0])
    offsets = np.array(
        [
            (datetime.datetime.fromtimestamp(h * 3600, zone).utcoffset() or datetime.timedelta()).total_seconds()
            for h in range(first, int(hours[-1]) + 1)
        ],
        dtype=np.int64,
    )
    out: np.ndarray = t_s + offsets[hours - first]
    return out


def simulate(state_dir: Path, days: int, end: float, seed: int = 1, force: bool = False) -> dict[str, Any]:
    """Write ``days`` of simulated history ending at ``end`` into ``state_dir``. Returns what was made."""
    if not 1 <= days <= MAX_DAYS:
        raise KendaliError(f"must be 1-{MAX_DAYS} (the 5-minute history keeps {MAX_DAYS} days)", "--days")
    state = Path(state_dir)
    if state.exists() and not state.is_dir():
        raise KendaliError("is not a directory", str(state))
    moved = _make_room(state / HISTORY_FILE, force)
    settings = load_settings(state)  # the defaults while the state dir has none
    if (state / STATE_FILE).exists():
        policies = load_policies(state / STATE_FILE)
        seeded = False
    else:
        policies = policy_mod.load_file(DEFAULT_POLICIES)
        PolicyStore(state).seed(policies, "kendali history simulate")
        seeded = True
    if not policies:
        raise KendaliError(
            "has no policies to simulate; delete it, or PUT some policies first", str(state / STATE_FILE)
        )
    topo = topology_mod.load(topology_mod.DEFAULT_TOPOLOGY)

    rng = np.random.default_rng(seed)
    end = end // STEP_S * STEP_S
    start = end - days * 86400
    if start < 0:
        raise KendaliError(f"{days} days before --end is before 1970", "--end")
    t_s = np.arange(start, end, STEP_S, dtype=np.int64)
    zone = zoneinfo.ZoneInfo(settings.office_hours.timezone)
    oh = settings.office_hours
    local_s = _local_seconds(t_s, zone)
    minute = (local_s % 86400) // 60
    ordinal = local_s // 86400 + datetime.date(1970, 1, 1).toordinal()  # local date; weekday = (ordinal - 1) % 7
    first, last = datetime.date.fromordinal(int(ordinal[0])), datetime.date.fromordinal(int(ordinal[-1]))
    off = [d.toordinal() for d in days_off(settings, first, last)]
    working = np.isin((ordinal - 1) % 7, [DAYS.index(d) for d in oh.days]) & ~np.isin(ordinal, off)
    office = working & (minute >= minutes(oh.start)) & (minute < minutes(oh.end))
    shape = _office_shape(office, minute)

    ids = sorted(policies)
    roles = _roles(ids, rng)
    n = len(t_s)
    hist = History(state / HISTORY_FILE)
    made: dict[str, Any] = {"opds": len(ids), "days": days, "from": float(start), "to": float(end), "moved": moved}
    per_opd: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        for oid in ids:
            p, role = policies[oid], roles[oid]
            day_mood = np.repeat(rng.lognormal(0, 0.1, size=math.ceil(n / 288)), 288)[:n]
            noise = rng.lognormal(0, 0.2, size=n)
            outside = np.where(working, role.night, role.night * 0.6)
            share = np.where(office, shape, outside) * day_mood * noise
            rows_cols = []
            for cap_kbps, level in ((p.download_kbps, role.level_down), (p.upload_kbps, role.level_up)):
                want = share * level * cap_kbps * 1000 * FRAME_OVERHEAD  # frame bits/s demanded
                meter = cap_kbps * 1000 * FRAME_OVERHEAD
                got = np.minimum(want, meter * rng.uniform(0.97, 0.995, size=n))  # a full meter runs a bit under
                dropped = np.where(want > got, (want - got) * TCP_DROP, 0.0)
                nbytes = (got * STEP_S / 8).astype(np.int64)
                dbytes = (dropped * STEP_S / 8).astype(np.int64)
                frame = rng.uniform(700, 1300)
                rows_cols.append((nbytes, nbytes // int(frame), dbytes, dbytes // int(frame)))
            (down, down_p, down_d, down_dp), (up, up_p, up_d, up_dp) = rows_cols
            per_opd[oid] = (down, up)
            cols = (t_s * 1000, np.full(n, STEP_S * 1000), up, up_p, up_d, up_dp, down, down_p, down_d, down_dp)
            _write(hist, oid, "policy", p.name, cols, start, end)
        links = _links(topo, policies, per_opd, n)
        meta = {}
        for lid, (a, b, cap, uplink, a_to_b, b_to_a) in links.items():
            zero = np.zeros(n, dtype=np.int64)
            cols = (
                t_s * 1000,
                np.full(n, STEP_S * 1000),
                a_to_b,
                a_to_b // 1000,
                zero,
                zero,
                b_to_a,
                b_to_a // 1000,
                zero,
                zero,
            )
            _write(hist, lid, "link", f"{a} – {b}", cols, start, end)
            meta[lid] = {"a": a, "b": b, "capacity_mbps": cap, "uplink": uplink}
        set_meta_json(hist, "links", meta)
        if topo.uplink is not None:
            isp = topo.uplink.subnet
            total_down = sum((d for d, _ in per_opd.values()), np.zeros(n, dtype=np.int64))
            total_up = sum((u for _, u in per_opd.values()), np.zeros(n, dtype=np.int64))
            zero = np.zeros(n, dtype=np.int64)
            # the ISP's "up" is what it sent: the regency's download
            isp_cols = (t_s * 1000, np.full(n, STEP_S * 1000), total_down, total_down // 1000, zero, zero)
            _write(
                hist,
                isp,
                "subnet",
                topo.subnets[isp].name,
                isp_cols + (total_up, total_up // 1000, zero, zero),
                start,
                end,
            )
            set_meta_json(hist, "uplink", {"subnet": isp, "capacity_mbps": topo.uplink.capacity_mbps})
        hist.db.execute("INSERT OR REPLACE INTO meta VALUES ('simulated', '1')")
        hist.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        hist.close()
    made["links"] = len(links)
    made["seeded_policies"] = seeded
    made["roles"] = {
        "outgrow": sorted(o for o, r in roles.items() if max(r.level_down, r.level_up) > 1),
        "idle": sorted(o for o, r in roles.items() if r.level_down < 0.1),
    }
    return made


def _write(hist: History, entry: str, kind: str, name: str, cols: tuple[Any, ...], start: float, end: float) -> None:
    five = np.column_stack([np.asarray(c, dtype=np.int64) for c in cols])
    hour = five[:, 0] // 3_600_000
    starts = np.flatnonzero(np.r_[True, hour[1:] != hour[:-1]])  # the first bucket of each hour
    hourly = np.column_stack([hour[starts] * 3_600_000, np.add.reduceat(five[:, 1:], starts, axis=0)])
    hist.import_buckets("5m", entry, kind, name, five.tolist())
    hist.import_buckets("1h", entry, kind, name, hourly.tolist())
    hist.db.execute("UPDATE opds SET first_seen=?, last_seen=? WHERE opd=?", (start, end, entry))


def _links(
    topo: topology_mod.Topology, policies: dict[str, Any], per_opd: dict[str, tuple[np.ndarray, np.ndarray]], n: int
) -> dict[str, tuple[str, str, float | None, bool, np.ndarray, np.ndarray]]:
    """Each declared link's bytes a->b and b->a: every OPD's traffic on its path to the uplink switch."""
    g = nx.Graph()
    for link in topo.links:
        g.add_edge(link.a, link.b, cost=100_000 / (link.capacity_mbps or 1000))
    core = topo.uplink.switch if topo.uplink else next(iter(topo.switches))
    links: dict[str, tuple[str, str, float | None, bool, np.ndarray, np.ndarray]] = {}
    ends: dict[frozenset[str], str] = {}
    for link in topo.links:
        lid = f"link:{link.a}~{link.b}"
        links[lid] = (
            link.a,
            link.b,
            link.capacity_mbps,
            False,
            np.zeros(n, dtype=np.int64),
            np.zeros(n, dtype=np.int64),
        )
        ends[frozenset((link.a, link.b))] = lid
    for oid, (down, up) in per_opd.items():
        subnet = topo.subnets.get(oid)
        if subnet is None or subnet.switch not in g or core not in g:
            continue
        path = nx.shortest_path(g, core, subnet.switch, weight="cost")
        for x, y in zip(path, path[1:], strict=False):
            lid = ends[frozenset((x, y))]
            a = links[lid][0]
            toward_opd, toward_core = (links[lid][4], links[lid][5]) if a == x else (links[lid][5], links[lid][4])
            toward_opd += down
            toward_core += up
    return links


def _make_room(path: Path, force: bool) -> str | None:
    """Refuse to overwrite a measured history unless forced; then move it aside. A simulated one is replaced."""
    if not path.exists():
        return None
    try:
        hist = History(path, reader=True)
        try:
            row = hist.db.execute("SELECT value FROM meta WHERE key='simulated'").fetchone()
            has_data = hist.db.execute("SELECT COUNT(*) FROM opds").fetchone()[0] > 0
        finally:
            hist.close()
        simulated = row is not None and row[0] == "1"
    except Exception:  # not even readable: treat as measured, never delete it silently
        simulated, has_data = False, True
    if has_data and not simulated and not force:
        raise KendaliError(
            "holds measured usage history; simulating would replace it. Use another --state-dir, "
            "or --force to move it aside (it is kept, renamed)",
            str(path),
        )
    moved = None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        p = Path(str(path) + suffix)
        if not p.exists():
            continue
        if simulated or not has_data:
            p.unlink()
        else:
            target = p.with_name(f"{path.name}.replaced-{stamp}{suffix}")
            os.replace(p, target)
            moved = moved or str(target)
    return moved
