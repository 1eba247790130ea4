"""Who uses what: switch counters -> per-OPD and per-link totals and rates. Pure: no os-ken,
no sockets, no clock (every method takes the time it is about).

What is counted (see controller.core.compiler): each OPD the compiler counts has an upload
meter at every switch where it has hosts (frames leaving its hosts) and a download meter
there (frames delivered to them); an OPD behind several switches also has an aggregate
pair at the uplink switch. A meter reports the frames that entered it and, per band, the
frames its band dropped. So, per direction:

    dropped   = every drop of the OPD's meters (edge and aggregate)
    delivered = frames that passed the edge meter, less (upload only) those the uplink's
                aggregate meter dropped afterwards; download frames meet the aggregate
                meter first, so its drops never reached the edge.

Counters live on switches and switches do things to them. The rules, per counter (one
meter or port of one switch), comparing each sample with the one before:

- a sample asked no later than the one we hold is late or repeated: ignored;
- its age (the switch's duration) went back, or we added or modified the meter after
  the previous sample was asked (``meters_reset``; Open vSwitch replaces a modified
  meter, counters from 0, age kept): the counter restarted, all of it is new;
- a value went down otherwise: a 64-bit wrap if the old value was in the upper half and
  the wrapped difference is small, else a restart we were not told about;
- a counter with no previous sample is a baseline (its past is not ours), unless we
  created it since: then all of it is new.

Totals therefore only ever grow and never count a frame twice; what can be lost is the
traffic between a counter's last sample and its restart (at most one poll interval).

With sharing on (controller.core.sharing) demand is counted apart, from counters a meter
re-size does not reset: each OPD's aggregate flows at the uplink switch (tagged
compiler.SHARE_TAG) count what the OPD offers to or from the Internet before its aggregate
meter; that meter's drops are what it did not get. ``share_take`` turns those running
totals into rates between two polls of the uplink switch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.core.compiler import AGGREGATE_METER, FRAME_OVERHEAD, Counted, MeterPlan
from controller.core.graph import LinkKey
from controller.core.sharing import Measured

WRAP = 1 << 64
DIRECTIONS = ("up", "down")
# What an OPD's totals hold, per direction: delivered and dropped, bytes and packets.
TOTAL_FIELDS = ("bytes", "packets", "dropped_bytes", "dropped_packets")
# A cycle's values for the history, in this order (the history's columns).
CYCLE_FIELDS = tuple(f"{d}_{f}" for d in DIRECTIONS for f in TOTAL_FIELDS)


@dataclass(frozen=True)
class MeterSample:
    """One meter's counters as a switch reported them."""

    meter_id: int
    packets: int  # frames that entered the meter
    bytes: int
    dropped_packets: int  # summed over its bands
    dropped_bytes: int
    age: float | None = None  # seconds since the switch created the meter

    @property
    def values(self) -> tuple[int, ...]:
        return (self.bytes, self.packets, self.dropped_bytes, self.dropped_packets)


@dataclass(frozen=True)
class PortSample:
    port: int
    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int
    age: float | None = None

    @property
    def values(self) -> tuple[int, ...]:
        return (self.rx_bytes, self.tx_bytes, self.rx_packets, self.tx_packets)


@dataclass(frozen=True)
class FlowSample:
    """One flow's counters as a switch reported them (the aggregate flows sharing reads)."""

    key: tuple[Any, ...]  # what identifies the flow entry on its switch (table, priority, match)
    meter_id: int  # the meter it sends its frames to: whose traffic it counts
    packets: int
    bytes: int
    age: float | None = None

    @property
    def values(self) -> tuple[int, ...]:
        return (self.bytes, self.packets)


@dataclass
class _Last:
    """A counter's previous sample, and what its last step added per second."""

    values: tuple[int, ...]
    age: float | None
    at: float  # when it was asked for
    rates: tuple[float, ...] = ()
    since: float = 0.0  # start of the step the rates cover


def delta(
    prev: _Last | None, values: tuple[int, ...], age: float | None, at: float, resets: Iterable[float] = ()
) -> tuple[int, ...] | None:
    """What a counter added since ``prev``, by the rules in the module docstring; None when
    the sample adds nothing we may count (late, repeated, or a baseline). ``resets``: when
    we added or modified the counter's meter."""
    if prev is None:
        return values if any(r <= at for r in resets) else None
    if at <= prev.at:
        return None
    if any(prev.at < r <= at for r in resets) or (age is not None and prev.age is not None and age < prev.age):
        return values
    out = []
    for new, old in zip(values, prev.values, strict=True):
        if new >= old:
            out.append(new - old)
        elif old >= WRAP // 2 and new + WRAP - old < WRAP // 4:
            out.append(new + WRAP - old)
        else:
            return values  # restarted without telling us
    return tuple(out)


@dataclass
class OpdTotals:
    """One OPD's counts since Kendali first counted it. Everything only grows."""

    opd: str
    first_seen: float
    # per direction: bytes/packets that passed the edge meters, dropped at any meter,
    # and (upload) dropped by the uplink's aggregate meter after passing the edge.
    passed: dict[str, list[int]] = field(default_factory=lambda: {d: [0, 0] for d in DIRECTIONS})
    dropped: dict[str, list[int]] = field(default_factory=lambda: {d: [0, 0] for d in DIRECTIONS})
    after_edge: list[int] = field(default_factory=lambda: [0, 0])
    delivered: dict[str, list[int]] = field(default_factory=lambda: {d: [0, 0] for d in DIRECTIONS})

    def settle(self) -> None:
        """Delivered = passed - dropped after the edge. The two come from different switches
        polled at different moments, so the difference can dip for a moment: reported
        totals take the running maximum and catch up, never going back."""
        for d in DIRECTIONS:
            later = self.after_edge if d == "up" else [0, 0]
            for i in (0, 1):
                self.delivered[d][i] = max(self.delivered[d][i], self.passed[d][i] - later[i])

    def values(self) -> tuple[int, ...]:
        """In CYCLE_FIELDS order."""
        return tuple(v for d in DIRECTIONS for v in (*self.delivered[d], *self.dropped[d]))

    def to_json(self) -> dict[str, Any]:
        return {
            "first_seen": self.first_seen,
            "passed": self.passed,
            "dropped": self.dropped,
            "after_edge": self.after_edge,
            "delivered": self.delivered,
        }

    @classmethod
    def from_json(cls, opd: str, data: Mapping[str, Any]) -> OpdTotals:
        t = cls(opd, float(data["first_seen"]))
        for name in ("passed", "dropped", "delivered"):
            getattr(t, name).update({d: [int(x) for x in data[name][d]] for d in DIRECTIONS})
        t.after_edge = [int(x) for x in data["after_edge"]]
        return t


@dataclass(frozen=True)
class Cycle:
    """What the history stores for one poll cycle: per OPD, what was added since the last
    cycle (CYCLE_FIELDS order), and the state to continue from after a restart."""

    t: float  # end of the cycle
    seconds: float  # since the previous cycle
    deltas: dict[str, tuple[int, ...]]
    totals: dict[str, dict[str, Any]]  # OpdTotals.to_json by OPD
    counters: list[list[Any]]  # [dpid, meter id, values, age, at] of every OPD meter
    names: dict[str, tuple[str, str]]  # OPD -> (kind, name)
    # Facts the report needs beside the buckets (history meta keys -> JSON values): "links"
    # (id -> ends and capacity), "uplink" (the ISP subnet and what is bought).
    meta: dict[str, Any] = field(default_factory=dict)


def jitter(dpid: int) -> float:
    """A switch's fixed phase in the poll interval, in [0, 1): spread evenly, no randomness."""
    return ((dpid * 0x9E3779B97F4A7C15) % WRAP) / WRAP


class PollSchedule:
    """Which switches to ask now: each every ``interval``, first at its own phase, so that a
    regency's switches are not all asked at once."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: dict[int, float] = {}

    def due(self, dpids: Iterable[int], now: float) -> list[int]:
        out = []
        present = set(dpids)
        for d in [d for d in self._next if d not in present]:
            del self._next[d]
        for d in sorted(present):
            nxt = self._next.setdefault(d, now + jitter(d) * self.interval)
            if now >= nxt:
                out.append(d)
                # After a stall, the next poll is a full interval away, not a burst to catch up.
                self._next[d] = nxt + self.interval if nxt + self.interval > now else now + self.interval
        return out


class Usage:
    """The counting core. Feed it the compile's plan, meter resets and samples; read views."""

    def __init__(self, stale_after: float = 30.0) -> None:
        self.stale_after = stale_after  # a counter not heard for this long adds no rate
        self.opds: dict[str, OpdTotals] = {}
        self.counted: dict[str, Counted] = {}
        self.names: dict[str, str] = {}
        self._owner: dict[int, tuple[str, str, bool]] = {}  # meter id -> (opd, direction, aggregate)
        self._meters: dict[tuple[int, int], _Last] = {}  # (dpid, meter id)
        self._ports: dict[tuple[int, int], _Last] = {}  # (dpid, port)
        self._port_totals: dict[tuple[int, int], list[int]] = {}  # (dpid, port) -> values summed
        self._resets: dict[tuple[int, int], list[float]] = {}  # (dpid, meter id) -> when we (re)made it
        self._taken: dict[str, tuple[int, ...]] = {}  # OPD -> values at the last cycle
        self._last_cycle: float | None = None
        # Sharing: (OPD, "up"/"down") -> [bytes offered to its aggregate meter, bytes it dropped]
        self._flows: dict[tuple[Any, ...], _Last] = {}  # (dpid, flow key)
        self.share_totals: dict[tuple[str, str], list[int]] = {}
        self._share_prev: tuple[float, dict[tuple[str, str], tuple[int, int]]] | None = None

    # ---- what the compiler counts ------------------------------------------------------
    def plan(
        self, counted: Mapping[str, Counted], plans: Mapping[str, MeterPlan], names: Mapping[str, str], now: float
    ) -> None:
        """After each compile: which meter ids belong to which OPD, and the OPDs' names and caps."""
        self.counted = dict(counted)
        self.names = {o: names.get(o, o) for o in counted}
        owner: dict[int, tuple[str, str, bool]] = {}
        for opd, p in plans.items():
            for mid, d in ((p.upload_id, "up"), (p.download_id, "down")):
                owner[mid] = (opd, d, False)
                owner[AGGREGATE_METER | mid] = (opd, d, True)
        self._owner = owner
        for opd in counted:
            self.opds.setdefault(opd, OpdTotals(opd, now))

    def meters_reset(self, dpid: int, meter_ids: Iterable[int], now: float) -> None:
        """We added or modified these meters on this switch now: their counters start from 0."""
        for mid in meter_ids:
            if mid in self._owner:
                self._resets.setdefault((dpid, mid), []).append(now)

    # ---- samples -------------------------------------------------------------------------
    def meter_samples(self, dpid: int, samples: Iterable[MeterSample], asked_at: float) -> None:
        for s in samples:
            owner = self._owner.get(s.meter_id)
            if owner is None:
                continue  # not an OPD's meter (control-plane policing)
            key = (dpid, s.meter_id)
            resets = self._resets.get(key, ())
            d = self._step(self._meters, key, s.values, s.age, asked_at, resets)
            if resets:  # a change the sample we now hold already shows is done with
                kept = [r for r in resets if r > self._meters[key].at]
                if kept:
                    self._resets[key] = kept
                else:
                    del self._resets[key]
            if d is None:
                continue
            opd, direction, aggregate = owner
            t = self.opds.get(opd)
            if t is None:
                continue
            nbytes, npkts, dbytes, dpkts = d
            t.dropped[direction][0] += dbytes
            t.dropped[direction][1] += dpkts
            if aggregate:
                self.share_totals.setdefault((opd, direction), [0, 0])[1] += dbytes
                if direction == "up":
                    t.after_edge[0] += dbytes
                    t.after_edge[1] += dpkts
            else:
                t.passed[direction][0] += max(0, nbytes - dbytes)
                t.passed[direction][1] += max(0, npkts - dpkts)
            t.settle()

    def flow_samples(self, dpid: int, samples: Iterable[FlowSample], asked_at: float) -> None:
        """The aggregate flows' counters (sharing): what each OPD offered its aggregate meter."""
        for s in samples:
            owner = self._owner.get(s.meter_id)
            if owner is None or not owner[2]:
                continue
            key = (dpid, *s.key)
            prev = self._flows.get(key)
            if prev is not None and asked_at <= prev.at:
                continue
            d = delta(prev, s.values, s.age, asked_at)
            self._flows[key] = _Last(s.values, s.age, asked_at)
            if d is not None:
                self.share_totals.setdefault((owner[0], owner[1]), [0, 0])[0] += d[0]

    def share_take(self, at: float) -> dict[str, dict[str, Measured]] | None:
        """What sharing measured per OPD and direction ("download"/"upload") since the previous
        take, from the running totals that the uplink switch's poll asked at ``at`` brought:
        delivered = offered - dropped by the aggregate meter. None at the first take (a
        baseline) or if no time has passed."""
        now = {k: (v[0], v[1]) for k, v in self.share_totals.items()}
        prev, self._share_prev = self._share_prev, (at, now)
        if prev is None or at <= prev[0]:
            return None
        since, before = prev
        span = at - since
        out: dict[str, dict[str, Measured]] = {}
        for (opd, d), (offered, dropped) in now.items():
            b = before.get((opd, d), (0, 0))
            rate_in, rate_drop = max(0, offered - b[0]) * 8 / span, max(0, dropped - b[1]) * 8 / span
            # The two counters come from one poll; a drop count a little ahead of the flow's is not negative delivery.
            got = Measured(max(0.0, rate_in - rate_drop), rate_drop, since)
            out.setdefault(opd, {})["download" if d == "down" else "upload"] = got
        return out

    def port_samples(self, dpid: int, samples: Iterable[PortSample], asked_at: float) -> None:
        for s in samples:
            key = (dpid, s.port)
            d = self._step(self._ports, key, s.values, s.age, asked_at)
            if d is not None:
                tot = self._port_totals.setdefault(key, [0, 0, 0, 0])
                for i, v in enumerate(d):
                    tot[i] += v

    def _step(
        self,
        table: dict[tuple[int, int], _Last],
        key: tuple[int, int],
        values: tuple[int, ...],
        age: float | None,
        at: float,
        resets: Iterable[float] = (),
    ) -> tuple[int, ...] | None:
        prev = table.get(key)
        if prev is not None and at <= prev.at:
            return None  # late or repeated: keep the newer sample we hold
        d = delta(prev, values, age, at, resets)
        last = _Last(values, age, at)
        if d is not None and prev is not None:
            # The switch's own clock times the step when it reports ages; else our asking times.
            span = age - prev.age if age is not None and prev.age is not None and age > prev.age else at - prev.at
            last.rates = tuple(v / span for v in d) if span > 0 else ()
            last.since = at - span
        table[key] = last
        return d

    # ---- reading ---------------------------------------------------------------------------
    def _rates(self, now: float) -> dict[str, dict[str, Any]]:
        """Per OPD: bits per second delivered and dropped each way over each counter's last
        step, and the window those steps cover."""
        out: dict[str, dict[str, Any]] = {
            o: {"up": [0.0, 0.0], "down": [0.0, 0.0], "from": None, "to": None} for o in self.opds
        }
        for (_dpid, mid), last in self._meters.items():
            owner = self._owner.get(mid)
            if owner is None or not last.rates or now - last.at > self.stale_after or owner[0] not in out:
                continue
            opd, direction, aggregate = owner
            r = out[opd]
            nbytes, _p, dbytes, _dp = last.rates
            if not aggregate:
                r[direction][0] += (nbytes - dbytes) * 8
            elif direction == "up":
                r[direction][0] -= dbytes * 8
            r[direction][1] += dbytes * 8
            r["from"] = last.since if r["from"] is None else min(r["from"], last.since)
            r["to"] = last.at if r["to"] is None else max(r["to"], last.at)
        return out

    def view(self, now: float) -> list[dict[str, Any]]:
        """Every counted OPD: totals, current rates, drops, share of cap, window of the last samples."""
        rates = self._rates(now)
        out = []
        for opd in sorted(self.counted):
            t = self.opds[opd]
            c = self.counted[opd]
            r = rates[opd]
            item: dict[str, Any] = {"opd": opd, "name": self.names.get(opd, opd), "kind": c.kind, "since": t.first_seen}
            for d, cap in (("up", c.upload_kbps), ("down", c.download_kbps)):
                bps = max(0.0, r[d][0])
                item[d] = {
                    "bytes": t.delivered[d][0],
                    "packets": t.delivered[d][1],
                    "dropped_bytes": t.dropped[d][0],
                    "dropped_packets": t.dropped[d][1],
                    "bps": round(bps),
                    "dropped_bps": round(r[d][1]),
                    "cap_kbps": cap,
                    "share_of_cap": round(bps / (cap * 1000 * FRAME_OVERHEAD), 4) if cap else None,
                }
            item["window"] = (
                {"from": r["from"], "to": r["to"], "seconds": round(r["to"] - r["from"], 3)}
                if r["from"] is not None
                else None
            )
            out.append(item)
        return out

    @staticmethod
    def add_shares(rows: list[dict[str, Any]], shares: Mapping[str, Mapping[str, Any]] | None) -> list[dict[str, Any]]:
        """``view`` rows with sharing's figures per direction (``shares``: sharing.Sharing.shares;
        None: sharing is off, the rows stay as they are): ``allocation_kbps`` (its share of the
        uplink in force, a policy's unit like cap_kbps), ``meter_kbps`` (its Internet meter's rate:
        the allocation, or more while it keeps room to come back: its reserve),
        ``guarantee_kbps`` and ``demand_bps`` (the demand sharing estimated, whole frames like
        bps); null for an OPD sharing has no figures of."""
        if shares is None:
            return rows
        for row in rows:
            for d, direction in (("down", "download"), ("up", "upload")):
                s = shares.get(row["opd"], {}).get(direction)
                row[d]["allocation_kbps"] = round(s.in_force_kbps) if s else None
                row[d]["meter_kbps"] = round(s.rate_kbps) if s else None
                row[d]["guarantee_kbps"] = round(s.min_kbps) if s else None
                row[d]["demand_bps"] = round(s.demand_kbps * 1000 * FRAME_OVERHEAD) if s else None
        return rows

    def links(self, links: Mapping[LinkKey, float | None], now: float) -> dict[LinkKey, dict[str, Any]]:
        """Per link (key -> capacity in Mbit/s): bytes each way (sent by each end's port) and the
        rate and utilisation over its last step. a_to_b is what the first end's port sent."""
        out = {}
        for key, cap in links.items():
            d1, p1, d2, p2 = key
            item: dict[str, Any] = {}
            for name, port in (("a_to_b", (d1, p1)), ("b_to_a", (d2, p2))):
                last = self._ports.get(port)
                tot = self._port_totals.get(port)
                bps = last.rates[1] * 8 if last and last.rates and now - last.at <= self.stale_after else None
                item[name] = {
                    "bytes": tot[1] if tot else 0,
                    "packets": tot[3] if tot else 0,
                    "bps": round(bps) if bps is not None else None,
                    "utilisation": round(bps / (cap * 1e6), 4) if bps is not None and cap else None,
                }
            out[key] = item
        return out

    def port_totals(self) -> dict[tuple[int, int], tuple[int, ...]]:
        """(dpid, port) -> (rx bytes, tx bytes, rx packets, tx packets) counted since we first saw it."""
        return {k: tuple(v) for k, v in self._port_totals.items()}

    # ---- history -------------------------------------------------------------------------
    def take_cycle(
        self,
        now: float,
        links: Mapping[str, tuple[LinkKey, str]] | None = None,
        meta: Mapping[str, Any] | None = None,
        ports: Mapping[str, tuple[tuple[int, int], str, str]] | None = None,
    ) -> Cycle:
        """What changed since the previous cycle, and the state to resume from.

        Port counters go to the history too (their totals are not saved: they start again
        after a restart, see restore), never with a drop:

        - ``links`` (id -> (key, name)), entries of kind "link": "up" is what the key's
          first end sent over it, "down" what the second end sent (each end's transmit);
        - ``ports`` (id -> ((dpid, port), kind, name)), a switch port facing hosts counted
          as a subnet is (the ISP hand-off): "up" is what its hosts sent (the port's
          receive), "down" what they were sent (its transmit)."""
        deltas, totals = {}, {}
        for opd, t in self.opds.items():
            vals = t.values()
            before = self._taken.get(opd)
            d = tuple(a - b for a, b in zip(vals, before or (0,) * len(vals), strict=True))
            if opd in self.counted or any(d):  # an OPD no longer counted keeps its past, adds no idle rows
                deltas[opd] = d
            if before is None or vals != before:  # idle OPDs: nothing new to save
                totals[opd] = t.to_json()
            self._taken[opd] = vals
        seconds = now - self._last_cycle if self._last_cycle is not None else 0.0
        self._last_cycle = now
        # Meters only: they make the OPDs' totals. Link totals start again after a restart.
        counters = [[d, m, list(v.values), v.age, v.at] for (d, m), v in self._meters.items()]
        names = {o: (self.counted[o].kind, self.names.get(o, o)) for o in self.counted}
        entries: list[tuple[str, str, str, tuple[int, ...] | None]] = []
        for lid, ((d1, p1, d2, p2), lname) in (links or {}).items():
            a, b = self._port_totals.get((d1, p1)), self._port_totals.get((d2, p2))
            entries.append((lid, "link", lname, (a[1], a[3], 0, 0, b[1], b[3], 0, 0) if a and b else None))
        for pid, (port, kind, pname) in (ports or {}).items():
            c = self._port_totals.get(port)
            entries.append((pid, kind, pname, (c[0], c[2], 0, 0, c[1], c[3], 0, 0) if c else None))
        for eid, kind, name, now_vals in entries:
            if now_vals is None:
                continue  # no sample of its ports yet
            before = self._taken.get(eid, (0,) * len(CYCLE_FIELDS))  # port totals count from our first sample
            deltas[eid] = tuple(max(0, x - y) for x, y in zip(now_vals, before, strict=True))
            self._taken[eid] = now_vals
            names[eid] = (kind, name)
        return Cycle(now, seconds, deltas, totals, counters, names, dict(meta or {}))

    def restore(
        self, totals: Mapping[str, Mapping[str, Any]], counters: Iterable[list[Any]], last_cycle: float | None
    ) -> None:
        """Continue from what the history saved at its last cycle (after a controller restart):
        the next samples count from those counters, so nothing is counted twice and traffic
        while the controller was away is counted (if the switches kept their counters)."""
        for opd, data in totals.items():
            t = OpdTotals.from_json(opd, data)
            self.opds[opd] = t
            self._taken[opd] = t.values()
        for dpid, mid, values, age, at in counters:
            self._meters[(int(dpid), int(mid))] = _Last(tuple(int(v) for v in values), age, float(at))
        self._last_cycle = last_cycle
