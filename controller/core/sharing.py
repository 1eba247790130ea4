"""Sharing the uplink by need: allocations that follow demand, and the meter rates that enforce them.

Static caps (the default) leave an idle OPD's share unused and let the ISP's policer decide
who gets through when the purchased uplink is full. With sharing on, every period the
controller measures each OPD's demand and re-sizes its meters (docs/sharing.md), so that

- an OPD gets its guarantee (``*_min_kbps``, MikroTik's limit-at) whenever it asks for it;
- the rest goes by priority (1 first .. 8 last) and, within a priority, by weight, max-min fair;
- no OPD gets more than its cap (``*_kbps``, max-limit);
- the meters together never exceed the uplink, nor a declared link that may be the
  bottleneck: congestion happens in Kendali's meters, where these rules hold, and not in
  the ISP's policer, where they do not;
- what nobody asked for is handed out evenly (the bonus), so that a meter leaves room to grow;
- a meter never goes below the OPD's guarantee, nor, while the OPD is quiet, below an even
  split of the uplink: the room a returning OPD's first packets meet (the allocations still
  give everything else away; the meters may add up to more than the uplink by that room).

Two parts. ``allocate``: one direction, one moment: demand in, allocations out
(hierarchical max-min fair by progressive filling, as Google's Bandwidth Enforcer, SIGCOMM
2015, computes them). ``Sharing``: over time: demand estimated from what the meters
delivered and dropped (the maximum over a short window times a margin, as BwE and HEYP do),
OPDs held at their meter and dropping probed upwards, hysteresis, raising at once and
lowering gradually, and a one-line reason for every change.

Units: ``allocate`` does not care (all figures in one unit). ``Sharing`` takes what the
switches count, whole Ethernet frames in bit/s, and capacities as purchased or declared,
and works in the unit of a policy (what applications get, see compiler.FRAME_OVERHEAD):
its meter rates go through compiler.meter_rate like a cap.

Pure: no clock (the time is passed in), no os-ken, no I/O.
"""

from __future__ import annotations

import heapq
import ipaddress
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from controller.core.compiler import FRAME_OVERHEAD, PolicyLike, best_edges, next_hops
from controller.core.graph import LinkKey, Network
from controller.core.views import link_label

DIRECTIONS = ("download", "upload")
LOWEST_PRIORITY = 8  # MikroTik's order: 1 is served first, 8 last
UPLINK = "uplink"  # the name of the purchased uplink's constraint
# Float drift: a capacity with less than this left (kbit/s) is used up. Allocations are
# sums of a few thousand floats of at most 4e7, whose rounding errors are ~1e-8.
_EPS = 1e-6


# --- one allocation --------------------------------------------------------------------------


@dataclass(frozen=True)
class Opd:
    """What the allocator needs of one OPD in one direction (kbit/s)."""

    id: str
    cap_kbps: float
    min_kbps: float = 0.0  # the guarantee; given up to the demand
    priority: int = LOWEST_PRIORITY
    weight: float = 1.0
    # Kept (as far as room is left) after every priority level and before the bonus: how
    # Sharing lowers a meter gradually without taking from anyone who asks for the room.
    hold_kbps: float = 0.0


@dataclass(frozen=True)
class Constraint:
    """A shared capacity: the OPDs whose traffic crosses it (None: every OPD, the uplink)."""

    name: str
    capacity_kbps: float
    opds: frozenset[str] | None = None


@dataclass(frozen=True)
class Allocation:
    kbps: float  # the OPD's allocation: its meter rate
    guaranteed_kbps: float  # the part its guarantee gave (at most its demand)
    demand_kbps: float  # the part its demand justified: guarantee, floor and priority share
    limit: str  # what stopped the demanded part: "demand", "cap" or a constraint's name

    @property
    def bonus_kbps(self) -> float:
        """Room to grow: the held part and the even share of what nobody asked for."""
        return self.kbps - self.demand_kbps


def _kbps(x: object) -> float:
    """A usable rate: negative, NaN, infinite or not a number count as 0 (a bad sample must not
    take the uplink away from everyone)."""
    if not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0:
        return 0.0
    return float(x)


class _Filler:
    """Progressive filling over shared constraints: the state one allocation's phases share."""

    def __init__(self, opds: list[Opd], capacities: Sequence[Constraint]) -> None:
        index = {o.id: i for i, o in enumerate(opds)}
        self.n = len(opds)
        self.names = [c.name for c in capacities]
        self.remaining = [_kbps(c.capacity_kbps) for c in capacities]
        self.slack = [_EPS + 1e-12 * r for r in self.remaining]  # "used up" below this
        self.members: list[list[int]] = []
        self.of_opd: list[list[int]] = [[] for _ in opds]
        for ci, c in enumerate(capacities):
            ms = list(range(self.n)) if c.opds is None else sorted(index[o] for o in c.opds if o in index)
            self.members.append(ms)
            for i in ms:
                self.of_opd[i].append(ci)
        self.alloc = [0.0] * self.n
        self.stopped: list[int | None] = [None] * self.n  # the constraint that stopped an OPD last

    def fill(self, candidates: Iterable[int], target: Sequence[float], weight: Sequence[float]) -> None:
        """Raise the candidates together, each at ``weight`` times a common pace, until each reaches
        its ``target`` or a constraint it crosses is used up (weighted water-filling)."""
        alloc, rem, of_opd = self.alloc, self.remaining, self.of_opd
        active: set[int] = set()
        for i in candidates:
            if target[i] - alloc[i] <= _EPS or weight[i] <= 0:
                continue
            full = next((c for c in of_opd[i] if rem[c] <= self.slack[c]), None)
            if full is not None:
                self.stopped[i] = full
                continue
            active.add(i)
        if not active:
            return
        pace = [0.0] * len(rem)  # per constraint: the summed weight of its active members
        count = [0] * len(rem)
        for i in active:
            for c in of_opd[i]:
                pace[c] += weight[i]
                count[c] += 1
        live = [c for c in range(len(rem)) if count[c]]
        base = {i: alloc[i] for i in active}
        # Each active OPD reaches its target at a fixed level of the common pace.
        heap = [((target[i] - alloc[i]) / weight[i], i) for i in active]
        heapq.heapify(heap)
        level = 0.0

        def freeze(i: int, value: float) -> None:
            alloc[i] = min(value, target[i])
            active.discard(i)
            for c in of_opd[i]:
                count[c] -= 1
                pace[c] = pace[c] - weight[i] if count[c] else 0.0

        while active:
            while heap and heap[0][1] not in active:
                heapq.heappop(heap)
            next_level = heap[0][0] if heap else math.inf
            used_up = -1
            for c in live:
                if count[c] and level + rem[c] / pace[c] < next_level:
                    next_level, used_up = level + rem[c] / pace[c], c
            step = next_level - level
            for c in live:
                if count[c]:
                    rem[c] -= pace[c] * step
            level = next_level
            if used_up >= 0:
                rem[used_up] = 0.0  # exactly: it is the one that ran out
            while heap and heap[0][0] <= level:
                _, i = heapq.heappop(heap)
                if i in active:
                    freeze(i, target[i])
            for c in live:
                if count[c] and rem[c] <= self.slack[c]:
                    rem[c] = max(rem[c], 0.0)
                    for i in self.members[c]:
                        if i in active:
                            freeze(i, base[i] + weight[i] * level)
                            self.stopped[i] = c


def allocate(
    opds: Iterable[Opd] | Mapping[str, Opd],
    demand: Mapping[str, float],
    capacities: Sequence[Constraint],
    floor_kbps: float = 0.0,
) -> dict[str, Allocation]:
    """Each OPD's allocation in one direction: hierarchical max-min fair, by progressive filling.

    ``demand``: kbit/s each OPD asks for (absent: 0). ``capacities``: the shared ones, each
    with the OPDs that cross it (the uplink first: every OPD). In order, each phase filling
    what the ones before left of every constraint:

    1. guarantees: each OPD up to min(guarantee, demand, cap); should the guarantees not
       fit a constraint, its OPDs get the same fraction of theirs;
    2. the floor: every OPD up to min(floor_kbps, cap), asked for or not (a meter must let
       a returning OPD's first packets, and ACKs, through);
    3. priority 1, then 2, .. 8: within a level, weighted water-filling of min(demand, cap);
    4. holds: up to each OPD's hold_kbps (a meter being lowered gradually), evenly;
    5. the bonus: what is left, evenly, to every OPD below its cap.

    Never above a cap; never more than a constraint's capacity in total.
    """
    items = list(opds.values()) if isinstance(opds, Mapping) else list(opds)
    f = _Filler(items, capacities)
    cap = [_kbps(o.cap_kbps) for o in items]
    want = [min(cap[i], _kbps(demand.get(o.id, 0.0))) for i, o in enumerate(items)]
    weight = [max(_kbps(o.weight), 1e-9) for o in items]
    everyone = range(f.n)
    ones = [1.0] * f.n

    sure = [min(_kbps(o.min_kbps), want[i]) for i, o in enumerate(items)]
    f.fill(everyone, sure, sure)  # weight = the guarantee: an equal fraction of each when short
    guaranteed = list(f.alloc)
    floor = _kbps(floor_kbps)
    if floor:
        f.fill(everyone, [min(floor, c) for c in cap], ones)
    for level in range(1, LOWEST_PRIORITY + 1):
        f.fill((i for i, o in enumerate(items) if _priority(o) == level), want, weight)
    demanded = list(f.alloc)
    stopped = list(f.stopped)  # a later phase may find the uplink full first; the level phases tell why
    f.fill(everyone, [min(_kbps(o.hold_kbps), cap[i]) for i, o in enumerate(items)], ones)
    f.fill(everyone, cap, ones)

    out = {}
    for i, o in enumerate(items):
        if demanded[i] >= want[i] - _EPS:
            limit = "cap" if want[i] >= cap[i] and _kbps(demand.get(o.id, 0.0)) > cap[i] else "demand"
        else:
            by = stopped[i]
            limit = f.names[by] if by is not None else "demand"
        out[o.id] = Allocation(f.alloc[i], guaranteed[i], demanded[i], limit)
    return out


def _priority(o: Opd) -> int:
    return min(max(int(o.priority), 1), LOWEST_PRIORITY)


# --- where the capacity is shared --------------------------------------------------------------


class SharedPolicy(PolicyLike, Protocol):
    """What sharing reads of a policy besides what the compiler does (controller.core.policy.Policy has it)."""

    @property
    def download_min_kbps(self) -> int: ...
    @property
    def upload_min_kbps(self) -> int: ...
    @property
    def priority(self) -> int: ...
    @property
    def weight(self) -> int: ...


def constraints(net: Network, policies: Mapping[str, SharedPolicy], uplink_kbps: float | None) -> list[Constraint]:
    """The capacities the OPDs share, as purchased or declared (kbit/s on the wire): the uplink
    (every OPD), then each declared link on the way from the ISP router to an OPD's switches
    that may be the bottleneck: the caps of the OPDs crossing it add up to more than it carries.

    Only the Internet path is known here; traffic between OPDs and to the server farm also
    crosses links (and counts against an OPD's download and upload), so a link constraint
    is a lower bound of that link's load, never more.
    """
    out = [Constraint(UPLINK, uplink_kbps)] if uplink_kbps else []
    router = net.uplink_router()
    g = best_edges(net.graph())
    if router is None or router.dpid not in g:
        return out
    towards = next_hops(g, router.dpid)  # switch -> its neighbour on the way to the ISP router
    crossing: dict[LinkKey, set[str]] = {}
    for opd, switches in opd_switches(net, policies).items():
        for s in switches:
            while s != router.dpid and s in towards:
                nxt = towards[s]
                crossing.setdefault(g[s][nxt]["key"], set()).add(opd)
                s = nxt
    for key in sorted(crossing):
        info = net.links.get(key)
        if info is None or not info.capacity_mbps:
            continue  # undeclared capacity: nothing to share
        opds = crossing[key]
        most = sum(max(policies[o].download_kbps, policies[o].upload_kbps) for o in opds) * FRAME_OVERHEAD
        if most > info.capacity_mbps * 1000:
            out.append(Constraint(f"link {link_label(net, key)}", info.capacity_mbps * 1000, frozenset(opds)))
    return out


def opd_switches(net: Network, policies: Mapping[str, SharedPolicy]) -> dict[str, set[int]]:
    """The switches where each OPD has known hosts (where its meters are)."""
    by_prefix: dict[int, dict[int, str]] = {}  # prefix length -> network address -> OPD
    for opd, p in policies.items():
        for text in p.subnets:
            n = ipaddress.IPv4Network(text)
            by_prefix.setdefault(n.prefixlen, {})[int(n.network_address)] = opd
    masks = {length: (0xFFFFFFFF << (32 - length)) & 0xFFFFFFFF for length in by_prefix}
    out: dict[str, set[int]] = {}
    for h in net.hosts.values():
        if not h.ip:
            continue
        addr = int(ipaddress.IPv4Address(h.ip))
        for length, nets in by_prefix.items():
            owner = nets.get(addr & masks[length])
            if owner is not None:
                out.setdefault(owner, set()).add(h.dpid)
                break  # policies never overlap: one OPD per address
    return out


# --- over time ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The constants of sharing; each a parameter (``kendali controller --sharing`` may expose them)."""

    # Seconds between reallocations. Long enough for TCP to settle at a new meter rate
    # (tens of round trips even on a 100 ms path) and for the counters to show it; short
    # enough that a guarantee is honoured within 2 periods (10 s) of the demand appearing.
    period: float = 5.0
    # Demand is the largest (delivered + dropped) of the last `window` periods (BwE, HEYP).
    # 2 rides out one quiet period (a web page between reads, a lost poll) and lets an OPD
    # that went idle give its share back after 2 periods; 3 would hold it a period longer
    # than the 2-period goal.
    window: int = 2
    # ... times this margin: room for an OPD to grow 10 % within a period without being
    # held back, so that meeting the demand exactly does not look like saturation.
    margin: float = 1.1
    # An OPD held at its meter and dropping asks for at least its meter times this (and at
    # least its guarantee): TCP behind a meter offers little more than the meter passes, so
    # what it drops under-states what it wants. 1.5 doubles the rate in 2 periods (1.5 x
    # the 1.1 margin of the next), where TCP's own slow start would need many more RTTs
    # after every loss.
    probe: float = 1.5
    # "Held at its meter": delivered at least this share of the meter rate. A TCP flow at a
    # meter delivers 0.98-1.01 of it (docs/policies.md); 0.9 leaves room for the poll's
    # timing and for bursty senders that still hit the meter.
    held: float = 0.9
    # "Dropping": dropped more than this share of what was delivered. 1 %: a meter that a
    # sender hits drops a few percent; below 1 % it is a burst at most.
    dropping: float = 0.01
    # Hysteresis: a meter changes only when the new rate differs by more than this share of
    # the old ... (10 %: below what a person notices; keeps TCP from re-converging every period)
    change_share: float = 0.10
    # ... and by more than this many kbit/s (a third of an office's 1 Mbit/s video call:
    # keeps a hundred small OPDs from re-sizing every period for nothing).
    change_kbps: float = 300.0
    # A meter is lowered at most this share of the way towards its new allocation per
    # period, when nobody asks for the room (halfway: TCP's own multiplicative decrease);
    # room that another OPD's demand needs is taken at once.
    lower_share: float = 0.5
    # Every OPD keeps at least this (kbit/s, or its cap if lower): a meter at 0 would drop
    # a returning OPD's first packets and ACKs, and with them the evidence of its demand.
    # policy.MIN_KBPS, the smallest cap a policy may have.
    floor_kbps: float = 64.0
    # A quiet OPD's meter stays at least at this share of an even split of the uplink (at
    # most its cap), and every OPD's meter at least at its guarantee, whatever its allocation:
    # the rate a returning OPD's sender first finds is the rate it learns. Measured in the lab:
    # a TCP (BBR) flow that began behind a 64 kbit/s meter estimated 73 kbit/s and kept pacing
    # at that for 12 s after its meter went to 10 Mbit/s. Allocations still give the room away,
    # so for up to a period after an OPD returns the ISP's shaper shares it.
    ramp_share: float = 1.0
    # "Quiet": it asks for at most this share of that even split and drops nothing.
    quiet_share: float = 0.1

    def __post_init__(self) -> None:
        checks = [
            ("period", self.period > 0, "must be more than 0 seconds"),
            ("window", isinstance(self.window, int) and self.window >= 1, "must be a whole number of periods, >= 1"),
            ("margin", self.margin >= 1, "must be at least 1 (a demand estimate below the demand starves)"),
            ("probe", self.probe > 1, "must be more than 1 (else a dropping OPD is never raised)"),
            ("held", 0 < self.held <= 1, "must be a share of the meter rate, more than 0 and at most 1"),
            ("dropping", 0 <= self.dropping < 1, "must be a share, 0 or more and below 1"),
            ("change_share", 0 <= self.change_share < 1, "must be a share, 0 or more and below 1"),
            ("change_kbps", self.change_kbps >= 0, "must be 0 or more kbit/s"),
            ("lower_share", 0 < self.lower_share <= 1, "must be more than 0 and at most 1 (1: lower at once)"),
            ("floor_kbps", self.floor_kbps >= 0, "must be 0 or more kbit/s"),
            ("ramp_share", 0 <= self.ramp_share <= 1, "must be a share of an even split, 0 to 1"),
            ("quiet_share", 0 <= self.quiet_share <= 1, "must be a share, 0 to 1"),
        ]
        for name, ok, problem in checks:
            value = getattr(self, name)
            if not ok or (isinstance(value, float) and not math.isfinite(value)):
                raise ValueError(f"sharing {name}: {problem} (got {value!r})")


@dataclass(frozen=True)
class Measured:
    """One OPD, one direction, one period: what its meters passed and dropped, bit/s of whole
    frames, from counters a meter re-size does not reset (the OPD totals of controller.core.usage)."""

    delivered_bps: float
    dropped_bps: float
    # When the counters' window began (the clock ``step`` is given). A window that began
    # before the OPD's meter last changed says nothing about the new rate: such a sample
    # counts for demand but cannot show the OPD "held at its meter". None: assume it is new.
    since: float | None = None


def measured_from_usage(view: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Measured]]:
    """What ``step`` wants, from controller.core.usage.Usage.view(now): each OPD's rates over its
    counters' last poll (OPD totals, which a meter re-size does not reset), "down"/"up" there."""
    out: dict[str, dict[str, Measured]] = {}
    for item in view:
        window = item.get("window")
        since = float(window["from"]) if window else None
        out[str(item["opd"])] = {
            direction: Measured(float(item[short]["bps"]), float(item[short]["dropped_bps"]), since)
            for direction, short in (("download", "down"), ("upload", "up"))
        }
    return out


@dataclass(frozen=True)
class Change:
    """A meter rate to set (kbit/s in a policy's unit: give it to compiler.meter_rate), and why."""

    opd: str
    direction: str
    old_kbps: float
    new_kbps: float
    reason: str

    def __str__(self) -> str:
        return f"{self.opd} {self.direction} {_rates(self.old_kbps, self.new_kbps)}: {self.reason}"


@dataclass(frozen=True)
class Share:
    """One OPD in one direction after the last period: for /v1/usage and /metrics (kbit/s)."""

    cap_kbps: float
    min_kbps: float
    delivered_kbps: float  # measured in the last period, in a policy's unit
    dropped_kbps: float
    demand_kbps: float  # the estimate the allocation used
    allocation_kbps: float  # what allocate gave
    rate_kbps: float  # the meter rate in force: the allocation in force, at least the reserve
    limit: str
    probed: bool
    in_force_kbps: float  # the allocation in force (allocate's unless hysteresis kept the old)
    reserve_kbps: float  # the meter's lower bound: the guarantee, or an even split while quiet


@dataclass
class _Seen:
    """What sharing remembers of one OPD in one direction."""

    rate: float  # the meter rate in force, kbit/s
    alloc: float  # the allocation in force, kbit/s (the meter is at least this)
    offered: deque[float] = field(default_factory=deque)  # delivered + dropped, last `window` periods
    changed: float | None = None  # when sharing last changed the rate


class Sharing:
    """The uplink shared by need, over time. Call ``step`` once a period with what was measured;
    it returns the meter rates to change and why. Pure: the time is an argument.

    Before an OPD's first step its meters are at its cap (what the compiler installs without
    a rate from here), and that is where sharing starts from.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._seen: dict[tuple[str, str], _Seen] = {}
        self.shares: dict[str, dict[str, Share]] = {}  # opd -> direction -> the last period's figures
        self.last_step: float | None = None

    def due(self, now: float) -> bool:
        """Whether a period has passed since the last step (the first is due at once)."""
        return self.last_step is None or now - self.last_step >= self.settings.period

    def rate(self, opd: str, direction: str) -> int | None:
        """The meter rate sharing wants for ``opd`` (kbit/s, a policy's unit), or None: use its cap."""
        seen = self._seen.get((opd, direction))
        return None if seen is None else max(1, int(round(seen.rate)))

    def rates(self) -> dict[str, tuple[int, int]]:
        """opd -> (download, upload) meter rates, for the compiler (kbit/s, a policy's unit)."""
        out = {}
        for opd in sorted({o for o, _ in self._seen}):
            down, up = self.rate(opd, "download"), self.rate(opd, "upload")
            if down is not None and up is not None:
                out[opd] = (down, up)
        return out

    def step(
        self,
        now: float,
        policies: Mapping[str, SharedPolicy],
        measured: Mapping[str, Mapping[str, Measured]],
        capacities: Sequence[Constraint],
    ) -> list[Change]:
        """One period: ``measured[opd][direction]`` over it (absent: nothing passed),
        ``capacities`` as purchased or declared (wire kbit/s, ``constraints``). Returns the
        meter changes, each with its reason."""
        for key in [k for k in self._seen if k[0] not in policies]:
            del self._seen[key]
        self.shares = {o: {} for o in policies}
        usable = [Constraint(c.name, _kbps(c.capacity_kbps) / FRAME_OVERHEAD, c.opds) for c in capacities]
        self.last_step = now
        changes = []
        for direction in DIRECTIONS:
            changes += self._direction(now, direction, policies, measured, usable)
        return changes

    def _direction(
        self,
        now: float,
        direction: str,
        policies: Mapping[str, SharedPolicy],
        measured: Mapping[str, Mapping[str, Measured]],
        capacities: list[Constraint],
    ) -> list[Change]:
        s = self.settings
        to_kbps = 1 / (1000 * FRAME_OVERHEAD)  # frames' bit/s -> a policy's kbit/s
        opds, demand, probed, seen_now, quiet = [], {}, set(), {}, {}
        grown = set()  # passed more than its allocation (probed too)
        for opd in sorted(policies):
            p = policies[opd]
            cap, low = float(getattr(p, f"{direction}_kbps")), float(getattr(p, f"{direction}_min_kbps"))
            seen = self._seen.get((opd, direction))
            if seen is None:
                seen = self._seen[(opd, direction)] = _Seen(cap, cap, deque(maxlen=s.window))
            m = measured.get(opd, {}).get(direction)
            delivered = _kbps(m.delivered_bps) * to_kbps if m else 0.0
            dropped = _kbps(m.dropped_bps) * to_kbps if m else 0.0
            seen.offered.append(delivered + dropped)
            want = max(seen.offered) * s.margin
            current = m is not None and (m.since is None or seen.changed is None or m.since >= seen.changed)
            if current and dropped > 0 and delivered >= s.held * seen.rate and dropped > s.dropping * delivered:
                want = max(want, seen.rate * s.probe, low)
                probed.add(opd)
            elif current and seen.rate > seen.alloc + _EPS and delivered > seen.alloc * s.margin + _EPS:
                # It passed more than its allocation: it grows into its meter's reserve (back from
                # idle). Its demand is hidden: with the room given to others the ISP's shaper shares
                # the uplink until this period's reallocation (lab: A averaged 3.4-4.8 Mbit/s of
                # its 10, well under its meter, for the rest of the phase). It asks for its
                # guarantee at once, and more as a held OPD would.
                want = max(want, delivered * s.probe, low)
                probed.add(opd)
                grown.add(opd)
            if opd in probed:
                # A probe counts as demand for the whole window: TCP needs a period or two to grow
                # into a raised meter, and meanwhile must not lose it as "uses less".
                seen.offered[-1] = max(seen.offered[-1], min(want, cap) / s.margin)
            want = min(want, cap)
            demand[opd] = want
            # Lowering: keep up to `lower_share` of the way down, if nobody needs the room.
            hold = seen.alloc - s.lower_share * (seen.alloc - want) if want < seen.alloc else 0.0
            opds.append(Opd(opd, cap, low, p.priority, p.weight, hold))
            quiet[opd] = opd not in probed and dropped <= s.dropping * delivered
            seen_now[opd] = (delivered, dropped)
        alloc = allocate(opds, demand, capacities, s.floor_kbps)
        final = self._hysteresis(direction, opds, alloc, capacities)
        reserve = self._reserves(opds, demand, quiet, capacities)

        uplink = next((c for c in capacities if c.name == UPLINK and c.opds is None), None)
        busy = ""
        if uplink and uplink.capacity_kbps > 0:
            share = sum(a.demand_kbps for a in alloc.values()) / uplink.capacity_kbps
            busy = f"; uplink {100 * share:.0f} % allocated to demand"
        changes = []
        for o in opds:
            seen = self._seen[(o.id, direction)]
            old, a = seen.rate, alloc[o.id]
            new = max(final[o.id], reserve[o.id])
            if abs(new - old) > _EPS:
                if new > old and final[o.id] <= old + _EPS:  # only the reserve went up
                    why = "quiet: its meter keeps room to come back, an even split of the uplink"
                else:
                    why = _why(old, new, a, o, demand[o.id], o.id in probed, o.id in grown)
                    why += _kept(o, reserve[o.id]) if new > final[o.id] + _EPS else ""
                changes.append(Change(o.id, direction, old, new, why + busy))
                seen.changed = now
            seen.rate, seen.alloc = new, final[o.id]
            delivered, dropped = seen_now[o.id]
            self.shares[o.id][direction] = Share(
                o.cap_kbps,
                o.min_kbps,
                delivered,
                dropped,
                demand[o.id],
                a.kbps,
                new,
                a.limit,
                o.id in probed,
                final[o.id],
                reserve[o.id],
            )
        return changes

    def _reserves(
        self, opds: list[Opd], demand: Mapping[str, float], quiet: Mapping[str, bool], capacities: list[Constraint]
    ) -> dict[str, float]:
        """Each OPD's meter floor: its guarantee, and while it is quiet (asks for little, drops
        nothing) an even split of the uplink, never above its cap. Not allocated: the room
        the first packets of an OPD coming back meet, so that its sender does not learn a
        tiny rate (docs/sharing.md, "Coming back")."""
        s = self.settings
        uplink = next((c for c in capacities if c.name == UPLINK and c.opds is None), None)
        even = s.ramp_share * uplink.capacity_kbps / len(opds) if uplink and opds else 0.0
        out = {}
        for o in opds:
            low = o.min_kbps
            if quiet[o.id] and demand[o.id] <= s.quiet_share * even:
                low = max(low, even)
            out[o.id] = min(_kbps(low), o.cap_kbps)
        return out

    def _hysteresis(
        self, direction: str, opds: list[Opd], alloc: Mapping[str, Allocation], capacities: list[Constraint]
    ) -> dict[str, float]:
        """The allocations in force: allocate's, except that a small change is skipped where it
        may be: a small raise unless the allocation is below the OPD's guarantee, a small lowering
        only if every capacity the OPD shares still has room for it."""
        s = self.settings
        final = {o.id: alloc[o.id].kbps for o in opds}
        room = []
        for c in capacities:
            members = final if c.opds is None else {o: final[o] for o in c.opds if o in final}
            room.append(c.capacity_kbps - sum(members.values()))
        crosses = {o.id: [i for i, c in enumerate(capacities) if c.opds is None or o.id in c.opds] for o in opds}

        def small(old: float, new: float) -> bool:
            return abs(new - old) <= max(s.change_share * old, s.change_kbps)

        raises = [o for o in opds if final[o.id] > self._seen[(o.id, direction)].alloc]
        lowers = [o for o in opds if final[o.id] < self._seen[(o.id, direction)].alloc]
        for o in raises:  # first: keeping an allocation lower makes room
            old = self._seen[(o.id, direction)].alloc
            if small(old, final[o.id]) and old >= alloc[o.id].guaranteed_kbps - _EPS:
                for i in crosses[o.id]:
                    room[i] += final[o.id] - old
                final[o.id] = old
        for o in lowers:
            old = self._seen[(o.id, direction)].alloc
            extra = old - final[o.id]
            if small(old, final[o.id]) and old <= o.cap_kbps and all(room[i] >= extra for i in crosses[o.id]):
                for i in crosses[o.id]:
                    room[i] -= extra
                final[o.id] = old
        return final


def _why(old: float, new: float, a: Allocation, o: Opd, want: float, probed: bool, grown: bool = False) -> str:
    if new > old:
        if grown:
            return "passed more than its allocation, probed up"
        if probed:
            return "dropping at its allocation, probed up"
        if a.guaranteed_kbps > old + _EPS:
            return f"asks for its guarantee of {_rate(o.min_kbps)}"
        if a.demand_kbps > old + _EPS:
            return f"demand {_rate(want)}"
        return "room nobody asked for, shared evenly"
    if old > o.cap_kbps + _EPS:
        return f"its cap is {_rate(o.cap_kbps)}"
    if want < old - _EPS:
        gradual = " (lowered gradually)" if new > a.demand_kbps + _EPS else ""
        return f"uses less: demand {_rate(want)}{gradual}"
    if a.limit not in ("demand", "cap"):
        return f"{a.limit} is full: others' guarantees and priority come first"
    return "others need the room"


def _kept(o: Opd, reserve: float) -> str:
    if reserve <= o.min_kbps + _EPS:
        return f" (the meter keeps its guarantee of {_rate(o.min_kbps)})"
    return " (the meter keeps an even split of the uplink while it is quiet)"


def _rate(kbps: float) -> str:
    return f"{kbps / 1000:.3g} Mbit/s" if kbps >= 1000 else f"{kbps:.0f} kbit/s"


def _rates(old: float, new: float) -> str:
    """'40 -> 55 Mbit/s', or with both units when they differ."""
    a, b = _rate(old), _rate(new)
    if a.endswith(" Mbit/s") and b.endswith(" Mbit/s"):
        return f"{a[: -len(' Mbit/s')]} -> {b}"
    return f"{a} -> {b}"
