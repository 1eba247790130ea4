"""(graph, policies) -> desired per-switch OpenFlow state. Pure: no os-ken, no sockets, no clock.

The pipeline (table ids in controller.state):

T_INGRESS  LLDP and ARP to the controller (ARP is answered or flooded by the controller
           over edge ports only, so it can never loop); detour-tagged frames follow their
           detour; broadcast/multicast arriving on a non-tree inter-switch port is dropped;
           upload meters on frames entering from an OPD's hosts.
T_ROUTE    first-hop routing between subnets: frames to the gateway MAC for a declared
           subnet get their MACs rewritten (and TTL decremented) and go to the subnet's
           switch, which holds its hosts' addresses (see _routing), so no separate router
           is needed; unknown hosts of a declared subnet go to the controller (it ARPs for
           them); everything else to the gateway goes to the ISP router (default route).
T_FWD      the destination's locator MAC (controller.core.address): at the host's own
           switch, its real MAC is put back and it is delivered (download meters here);
           elsewhere, the label of its switch -> the out port (in metadata) on the
           shortest path (controller.core.routes); broadcast -> the flood group (edge
           ports plus the spanning tree).
T_EGRESS   out port -> a fast-failover group whose first bucket is the port itself and
           whose backup bucket sends the frame along a detour that avoids the link
           (inter-switch ports), or a plain output (edge ports).
"""

from __future__ import annotations

import gc
import heapq
import ipaddress
import socket
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol

import networkx as nx

from controller.core.address import LABEL_MASK, PREFIX_MAC, PREFIX_MASK, label_mac
from controller.core.graph import HostEntry, LinkKey, Network, cost
from controller.core.routes import Pair, PairLink, RouteTable, SwitchRoutes, cycle_breakers
from controller.core.state import (
    T_EGRESS,
    T_FWD,
    T_INGRESS,
    T_ROUTE,
    Bucket,
    DesiredState,
    Flow,
    Group,
    Match,
    Meter,
    SwitchState,
    match,
)

GATEWAY_MAC = "02:4b:4e:44:00:01"  # the virtual router MAC every gateway address answers with
ETH_LLDP = 0x88CC
ETH_ARP = 0x0806
ETH_IP = 0x0800
ETH_VLAN = 0x8100
MULTICAST = ("01:00:00:00:00:00", "01:00:00:00:00:00")  # the group bit: broadcast and multicast
METADATA_MASK = 0xFFFFFFFF
# Group ids: a port's protection group has the port's number; its turn-back twin sets bit 16.
TURNBACK_GROUP = 0x10000
FLOOD_GROUP = 0xFFFF0001
MAX_DETOUR_VID = 4094
# Cookie tag of the flow that delivers to a host at its own switch: after a controller
# restart, these flows tell where the hosts are (see hosts_on_switch).
HOST_TAG = 0x1
# Cookie tag of an OPD's aggregate flows at the uplink switch when sharing is on: their
# counters (what the OPD offers to or from the Internet, before its aggregate meter drops
# anything) are read by this tag, and a meter re-size does not reset them.
SHARE_TAG = 0x2
# Control-plane policing, in packets per second per switch (Meter.pps). Ids at the top
# of the OPD range (OPD n uses 2n+1 and 2n+2), clear of the aggregate bit.
ARP_METER = Meter(0xFFF1, 200, 200, pps=True)
UNKNOWN_METER = Meter(0xFFF2, 50, 50, pps=True)
CONTROL_METERS = (ARP_METER, UNKNOWN_METER)
AGGREGATE_METER = 0x10000  # meter id bit: an OPD's aggregate meter at the uplink switch
OFPVID_PRESENT = 0x1000

# Meters count whole Ethernet frames, while an OPD's promise is what its applications
# get. A full-size TCP segment carries 1448 payload bytes in a 1514-byte frame (with
# timestamps), so the meter runs 1514/1448 above the cap to deliver the cap as goodput.
FRAME_OVERHEAD = 1514 / 1448
DEFAULT_BURST_SECONDS = 1.0
# Counting (Compiler(count=True)): an OPD without a policy, and a declared subnet no
# policy covers, get the same meter flows as a capped OPD with a meter no traffic can
# reach, so that its meter counts its traffic. Open vSwitch refuses a meter with no band
# (OFPMMFC_OUT_OF_BANDS, seen on 3.1), hence a drop band at the largest rate there is.
COUNT_ONLY_KBPS = 0xFFFFFFFF


class PolicyLike(Protocol):
    # Read-only properties, so that a frozen dataclass (policy.Policy) satisfies it.
    @property
    def id(self) -> str: ...
    @property
    def subnets(self) -> tuple[str, ...]: ...
    @property
    def download_kbps(self) -> int: ...
    @property
    def upload_kbps(self) -> int: ...
    @property
    def burst_kbit(self) -> int | None: ...


@dataclass(frozen=True)
class MeterPlan:
    opd: str
    upload_id: int
    download_id: int


@dataclass(frozen=True)
class Counted:
    """What one compile counts under one OPD id: a policy's OPD, or a declared subnet no policy covers."""

    opd: str
    kind: str  # "policy" or "subnet"
    subnets: tuple[str, ...]
    upload_kbps: int | None  # None: not capped (counted only)
    download_kbps: int | None
    burst_kbit: int | None = None


def meter_rate(cap_kbps: int) -> int:
    return int(round(cap_kbps * FRAME_OVERHEAD))


def meter_burst(rate_kbps: int, burst_kbit: int | None) -> int:
    return burst_kbit if burst_kbit else max(1, int(rate_kbps * DEFAULT_BURST_SECONDS))


class Compiler:
    """Keeps the few facts that must stay stable between compilations (meter ids)."""

    def __init__(
        self,
        meter_ids: dict[str, int] | None = None,
        count: bool = False,
        vids: dict[tuple[int, int], int] | None = None,
    ) -> None:
        # OPD -> meter number n (meters 2n+1, 2n+2); remembered across restarts so that a
        # restarted controller finds every meter where it left it.
        self._meter_ids: dict[str, int] = {}
        for opd, n in sorted((meter_ids or {}).items(), key=lambda kv: kv[1]):
            if isinstance(n, int) and 0 <= n < 0x7FF0 and n not in self._meter_ids.values():
                self._meter_ids[opd] = n
        self.count = count  # also count OPDs with no policy (see COUNT_ONLY_KBPS)
        self.counted: dict[str, Counted] = {}  # of the last compile, by OPD id
        # (dpid, port) of a link end -> the VLAN id of its detour: kept while the link is, so
        # that a change elsewhere does not renumber every detour.
        self.vids: dict[tuple[int, int], int] = dict(vids or {})
        self._free_vids: list[int] | None = None  # a heap, made when first needed
        # Of the last update: the entries it changed per switch, or None after a build.
        self.entries: dict[int, Entries] | None = None
        self.route_flows: dict[tuple[str, int], tuple[tuple[int, int, Match], Flow]] = {}
        self._engine: _Engine | None = None

    @property
    def meter_numbers(self) -> dict[str, int]:
        return dict(self._meter_ids)

    def meter_ids(self, opd: str) -> MeterPlan:
        n = self._meter_ids.get(opd)
        if n is None:
            used = set(self._meter_ids.values())
            n = next(i for i in range(len(used) + 1) if i not in used)
            self._meter_ids[opd] = n
        return MeterPlan(opd, 2 * n + 1, 2 * n + 2)

    def forget_meters(self, keep: Iterable[str]) -> None:
        keep = set(keep)
        for opd in [o for o in self._meter_ids if o not in keep]:
            del self._meter_ids[opd]

    def compile(
        self,
        net: Network,
        policies: Mapping[str, PolicyLike] | None = None,
        now: float = 0.0,
        protect: bool = True,
        shares: Mapping[str, tuple[int, int]] | None = None,
    ) -> DesiredState:
        """Everything from scratch (the oracle of ``update``).

        ``shares``: None with sharing off (the output is then exactly the static caps');
        with sharing on, OPD -> (download, upload) allocations in kbit/s (a policy's unit) for
        the aggregate meters every policy's OPD then has at the uplink switch (an OPD not in
        it: its caps)."""
        return self._build(net, policies or {}, now, protect, shares).state

    def _build(
        self,
        net: Network,
        policies: Mapping[str, PolicyLike],
        now: float,
        protect: bool,
        shares: Mapping[str, tuple[int, int]] | None,
    ) -> _Engine:
        self.counted = counted_opds(net, dict(policies), self.count)
        self.forget_meters(self.counted)
        eng = _Engine(net, self, protect)
        with _no_cycle_collection():
            eng.build(policies, now, shares)
        return eng

    def update(
        self,
        net: Network,
        policies: Mapping[str, PolicyLike] | None = None,
        now: float = 0.0,
        protect: bool = True,
        shares: Mapping[str, tuple[int, int]] | None = None,
    ) -> tuple[DesiredState, set[int]]:
        """Only what changed since the last update: the desired state (kept and changed in
        place) and the switches whose desired state changed. The first call, a new network,
        and a switch joining or leaving build from scratch."""
        eng = self._engine
        if eng is not None and eng.net is net and eng.protect == protect:
            with _no_cycle_collection():
                changed = eng.update(policies or {}, now, shares)
            if changed is not None:
                self.entries = eng.entries
                return eng.state, changed
            before = eng.state
        else:
            before = {}
        # The new engine follows the network from now on: what changed before is in its build.
        net.touched.clear()
        net.hosts.changed.clear()
        net.links.changed.clear()
        eng = self._engine = self._build(net, policies or {}, now, protect, shares)
        self.entries = None  # built anew: compare whole switches
        changed = {d for d in set(before) | set(eng.state) if before.get(d) != eng.state.get(d)}
        return eng.state, changed

    def adjacency(self) -> Mapping[int, Mapping[int, tuple[int, int]]]:
        """switch -> neighbour -> (cost, port) as the last update saw them."""
        return self._engine.adj if self._engine is not None else {}

    def can_protect(self, key: tuple[int, int]) -> bool:
        """A detour VLAN id is (or can be) given to this link end."""
        return key in self.vids or len(self.vids) < MAX_DETOUR_VID

    def detour_vid(self, key: tuple[int, int]) -> int | None:
        """The link end's detour VLAN id: its own, or the lowest free one."""
        got = self.vids.get(key)
        if got is not None:
            return got
        if self._free_vids is None:
            used = set(self.vids.values())
            self._free_vids = [v for v in range(1, MAX_DETOUR_VID + 1) if v not in used]  # sorted: a heap
        if not self._free_vids:
            return None
        vid = heapq.heappop(self._free_vids)
        self.vids[key] = vid
        return vid

    def release_vids(self, keep: set[tuple[int, int]] | dict[tuple[int, int], Any]) -> bool:
        """Forget the VLAN ids of link ends that are gone; True if any was."""
        gone = [k for k in self.vids if k not in keep]
        for k in gone:
            vid = self.vids.pop(k)
            if self._free_vids is not None:
                heapq.heappush(self._free_vids, vid)
        return bool(gone)

    def aggregate_meters(self, opd: str, policy: PolicyLike, down_kbps: int, up_kbps: int) -> tuple[Meter, Meter]:
        """An OPD's aggregate (download, upload) meters at the uplink switch at these rates
        (never above its caps; kbit/s of payload, as a cap), with a bucket as a cap's."""
        ids = self.meter_ids(opd)
        out = []
        for mid, kbps, cap in (
            (ids.download_id, down_kbps, policy.download_kbps),
            (ids.upload_id, up_kbps, policy.upload_kbps),
        ):
            rate = meter_rate(max(1, min(kbps, cap)))
            out.append(Meter(AGGREGATE_METER | mid, rate, meter_burst(rate, policy.burst_kbit)))
        return out[0], out[1]

    def meter_plans(self) -> dict[str, MeterPlan]:
        """The meter ids of every OPD the last compile counted (read-only: allocates nothing)."""
        return {o: MeterPlan(o, 2 * n + 1, 2 * n + 2) for o, n in self._meter_ids.items() if o in self.counted}


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off while compiling: a build makes millions of objects (none
    in a cycle: reference counting frees them) and the collector's passes over them took
    half the time of a 2,000-switch compile (2.5 s against 1.3 s)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def compile_network(
    net: Network, policies: dict[str, Any] | None = None, now: float = 0.0, protect: bool = True
) -> DesiredState:
    """One-shot compilation (fresh meter ids); the controller keeps a Compiler instead."""
    return Compiler().compile(net, policies, now, protect)


def counted_opds(net: Network, policies: dict[str, PolicyLike], count: bool) -> dict[str, Counted]:
    """Every policy's OPD; with ``count``, also each declared subnet that no policy overlaps
    (except the uplink's: that is the ISP, not an OPD), under its id, or ``<id>.subnet``
    when a policy already uses that id (policy ids cannot contain a dot)."""
    out = {
        o: Counted(o, "policy", tuple(p.subnets), p.upload_kbps, p.download_kbps, p.burst_kbit)
        for o, p in policies.items()
    }
    topo = net.topology
    if not count or not topo:
        return out
    covered = [ipaddress.IPv4Network(c) for p in policies.values() for c in p.subnets]
    uplink = topo.uplink.subnet if topo.uplink else None
    for s in topo.subnets.values():
        if s.id == uplink or any(s.network.overlaps(c) for c in covered):
            continue
        key = s.id if s.id not in out else f"{s.id}.subnet"
        out[key] = Counted(key, "subnet", (s.cidr,), None, None)
    return out


def hosts_on_switch(state: SwitchState) -> list[tuple[str, str | None, int, str]]:
    """(mac, ip, port, locator) of the hosts a switch's own flows say are attached to it
    (ip None where this switch does not route for the host's subnet)."""
    ip_of = {}
    for f in state.flows.values():
        if f.table == T_ROUTE and f.priority == 200:
            m = dict(f.match)
            loc = next((a[2] for a in f.actions if a[:2] == ("set_field", "eth_dst")), None)
            if loc and "ipv4_dst" in m:
                ip_of[loc] = m["ipv4_dst"]
    out = []
    for f in state.flows.values():
        if f.table == T_FWD and f.tag == HOST_TAG and f.metadata:
            loc = dict(f.match).get("eth_dst")
            mac = next((a[2] for a in f.actions if a[:2] == ("set_field", "eth_dst")), None)
            if isinstance(loc, str) and mac:
                out.append((mac, ip_of.get(loc), f.metadata[0], loc))
    return sorted(out)


# ---- paths -----------------------------------------------------------------------------


def best_edges(g: nx.MultiGraph) -> nx.Graph:
    """Collapse parallel links to the best one (lowest cost, then lowest key) per switch pair."""
    simple = nx.Graph()
    simple.add_nodes_from(g.nodes)
    for u, v, k, d in g.edges(keys=True, data=True):
        if u == v:
            continue
        cur = simple.get_edge_data(u, v)
        if cur is None or (d["cost"], k) < (cur["cost"], cur["key"]):
            simple.add_edge(u, v, key=k, ports=d["ports"], cost=d["cost"])
    return simple


def next_hops(g: nx.Graph, dst: int) -> dict[int, int]:
    """For every switch that can reach ``dst``: the neighbour on its shortest path to it.

    Ties are broken by the lowest neighbour dpid so the result is deterministic.
    """
    pred, _dist = nx.dijkstra_predecessor_and_distance(g, dst, weight="cost")
    return {s: min(p) for s, p in pred.items() if p}


# ---- the build ---------------------------------------------------------------------------


# ---- the build: fragments, composed per switch --------------------------------------------
#
# The desired state is the union of fragments, each owned by one thing: a switch's base
# flows, its flood group, its label routes, its egress groups, one detour, one host, one
# OPD, one first hop's routing. An update recomputes only the fragments whose inputs
# changed and swaps their entries in the composed state, so a change costs what it
# changes; ``Compiler.compile`` builds every fragment from scratch (the oracle the
# incremental path is tested against).

FragKey = tuple[Any, ...]


@dataclass
class Entries:
    """Which of a switch's entries an update changed (added, removed or replaced)."""

    flows: set[tuple[int, int, Match]]
    groups: set[int]
    meters: set[int]


Detour = tuple[int, tuple[tuple[int, int], ...], float]  # (vid, hops [(switch, out port)], cost)


def _base() -> SwitchState:
    """What every switch holds whatever the network: control traffic and table chaining."""
    st = SwitchState()
    ctrl = (("output", "controller"),)
    st.add_flow(Flow(T_INGRESS, 1000, match(eth_type=ETH_LLDP), ctrl))
    # Hosts decide how much ARP and unroutable traffic they send; the controller must
    # not drown in it: each switch may send it only so many packets a second.
    for m in CONTROL_METERS:
        st.add_meter(m)
    st.add_flow(Flow(T_INGRESS, 1000, match(eth_type=ETH_ARP), ctrl, meter=ARP_METER.meter_id))
    st.add_flow(Flow(T_INGRESS, 0, (), goto=T_ROUTE))
    st.add_flow(Flow(T_ROUTE, 0, (), goto=T_FWD))
    return st


BASE = _base()


def _pair(a: int, b: int) -> Pair:
    return (a, b) if a < b else (b, a)


class _Engine:
    def __init__(self, net: Network, comp: Compiler, protect: bool) -> None:
        self.net = net
        self.comp = comp
        self.protect = protect
        self.state: DesiredState = {}
        self.frags: dict[FragKey, dict[int, SwitchState]] = {}
        self.policies: dict[str, PolicyLike] = {}
        self.shares: Mapping[str, tuple[int, int]] | None = None
        self.switches: set[int] = set()
        self.edge: dict[int, tuple[int, ...]] = {}
        self.probation_due: dict[int, float] = {}
        self.link_costs: dict[LinkKey, int] = {}
        self.pair_links: dict[Pair, list[tuple[int, LinkKey]]] = {}  # all usable links of a pair, best first
        self.pairs: dict[Pair, PairLink] = {}
        self.peer_of: dict[tuple[int, int], tuple[int, int]] = {}  # link end -> the other end
        self.adj: dict[int, dict[int, tuple[int, int]]] = {}  # u -> v -> (cost, port at u)
        self.table: RouteTable | None = None
        self.modes: dict[int, int | None] = {}
        self.breakers: set[int] = set()
        self.routes: dict[int, SwitchRoutes] = {}
        self.routes_changed: set[int] = set()  # switches whose routes _swap_routes changed
        # Of the last update: per switch, the flow keys, group ids and meter ids it changed
        # (so that a diff can look at those only).
        self.entries: dict[int, Entries] = {}
        self.used: dict[int, set[int]] = {}  # switch -> link ports its routes use
        self.tree: set[Pair] = set()
        self.detours: dict[tuple[int, int], Detour] = {}
        self.uses: dict[Pair, set[tuple[int, int]]] = {}  # pair -> detours whose path uses it
        self.detour_pairs: dict[tuple[int, int], list[Pair]] = {}
        self.hosts: dict[str, HostEntry] = {}  # usable hosts
        self.opd_nets: dict[str, list[tuple[int, int]]] = {}  # opd -> its subnets as address ranges
        self._opd_index: dict[tuple[int, int], list[str]] | None = None  # (mask, network) -> opds
        self._opd_masks: list[int] = []
        self.members: dict[str, set[str]] = {}  # opd -> macs
        self.router: HostEntry | None = None
        self.router_loc: str | None = None
        self.lmacs: dict[int, str] = {}
        self.relabelled = 0
        self.route_cache: dict[tuple[int, int], tuple[tuple[int, int, Match], Flow]] = {}  # (dest, port)
        topo = net.topology
        self.subnet_switch: dict[str, int] = (
            {sub.id: topo.switches[sub.switch].dpid for sub in topo.subnets.values()} if topo else {}
        )
        # Subnet lookup by (mask, network): a host's subnet without going through every
        # subnet (a province declares thousands). Declared subnets do not overlap.
        self._subnet_index: dict[tuple[int, int], int] = {}
        for sub in topo.subnets.values() if topo else []:
            ((lo, hi),) = _ranges([sub.cidr])
            self._subnet_index.setdefault((0xFFFFFFFF ^ (hi - lo), lo), self.subnet_switch[sub.id])
        self._subnet_masks = sorted({m for m, _lo in self._subnet_index}, reverse=True)
        self.routed_by: dict[str, int] = {}  # mac -> the switch routing for it
        self.routed_at: dict[int, set[str]] = {}  # switch -> macs it routes for

    # ---- composing -------------------------------------------------------------------------
    def put(self, key: FragKey, out: dict[int, SwitchState]) -> set[int]:
        """Swap fragment ``key``'s entries for ``out``; the switches whose entries changed."""
        return self.put_all({key: out})

    def put_all(self, outs: Mapping[FragKey, dict[int, SwitchState]]) -> set[int]:
        """Swap several fragments at once: every entry that goes out first, then every one
        that comes in (one fragment's entry may move to another, e.g. a subnet's counting
        meter becoming a policy's). Only entries that differ are touched."""
        changed: set[int] = set()
        empty = SwitchState()
        for key, out in outs.items():
            for d, part in self.frags.get(key, {}).items():
                new = out.get(d, empty)
                if new == part:
                    continue
                changed.add(d)
                st = self.state.get(d)
                if st is None:
                    continue
                e = self._touched(d)
                for k in part.flows.keys() - new.flows.keys():
                    st.flows.pop(k, None)
                    e.flows.add(k)
                for g in part.groups.keys() - new.groups.keys():
                    st.groups.pop(g, None)
                    e.groups.add(g)
                for m in part.meters.keys() - new.meters.keys():
                    st.meters.pop(m, None)
                    e.meters.add(m)
        for key, out in outs.items():
            old = self.frags.get(key, {})
            for d, part in out.items():
                before = old.get(d, empty)
                if before is empty:  # a new part (all of them, in a build): no difference to take
                    changed.add(d)
                    st = self.state[d]
                    e = self._touched(d)
                    e.flows.update(part.flows)
                    e.groups.update(part.groups)
                    e.meters.update(part.meters)
                    n = len(st.flows)
                    st.flows.update(part.flows)
                    if len(st.flows) != n + len(part.flows):
                        self._check_conflicts(d, key, part)
                    st.groups.update(part.groups)
                    st.meters.update(part.meters)
                    continue
                if before == part:
                    continue
                changed.add(d)
                st = self.state[d]
                e = self._touched(d)
                for k, f in part.flows.items() - before.flows.items():
                    have = st.flows.get(k)
                    if have is not None and have != f and before.flows.get(k) != have:
                        raise ValueError(f"conflicting flows for {k}: {have} vs {f}")
                    st.flows[k] = f
                    e.flows.add(k)
                groups = dict(part.groups.items() - before.groups.items())
                st.groups.update(groups)
                e.groups.update(groups)
                meters = dict(part.meters.items() - before.meters.items())
                st.meters.update(meters)
                e.meters.update(meters)
            if out:
                self.frags[key] = out
            else:
                self.frags.pop(key, None)
        return changed

    def _touched(self, d: int) -> Entries:
        got = self.entries.get(d)
        if got is None:
            got = self.entries[d] = Entries(set(), set(), set())
        return got

    def _compose(self, key: FragKey, out: dict[int, SwitchState]) -> None:
        """A fragment into a state being built (nothing to take out first)."""
        for d, part in out.items():
            st = self.state[d]
            n = len(st.flows)
            st.flows.update(part.flows)
            if len(st.flows) != n + len(part.flows):
                self._check_conflicts(d, key, part)
            st.groups.update(part.groups)
            st.meters.update(part.meters)
        if out:
            self.frags[key] = out

    def _check_conflicts(self, d: int, key: FragKey, part: SwitchState) -> None:
        """Two fragments put the same flow entry on switch ``d``: the same entry is harmless
        only if nothing else claims it; a different one is a compiler bug."""
        for other, parts in self.frags.items():
            mine = parts.get(d)
            if other == key or mine is None:
                continue
            for k in mine.flows.keys() & part.flows.keys():
                if mine.flows[k] != part.flows[k]:
                    raise ValueError(f"conflicting flows for {k}: {mine.flows[k]} vs {part.flows[k]}")

    def lmac(self, dpid: int) -> str:
        got = self.lmacs.get(dpid)
        if got is None:
            got = self.lmacs[dpid] = label_mac(self.net.label(dpid))
        return got

    # ---- inputs ----------------------------------------------------------------------------
    def _present(self) -> set[int]:
        return {d for d in self.net.ports if self.net.declared(d)}

    def _edge_ports(self, d: int, now: float) -> tuple[int, ...]:
        ports = tuple(self.net.edge_ports(d, now))
        # When does a port of d leave its probation (and become an edge port)? Look again then.
        due = [
            info.since + self.net.edge_probation
            for p, info in self.net.ports.get(d, {}).items()
            if info.up and p not in ports and info.since + self.net.edge_probation > now
        ]
        if due:
            self.probation_due[d] = min(due)
        else:
            self.probation_due.pop(d, None)
        return ports

    def _link_cost(self, k: LinkKey) -> int | None:
        """The cost of a usable link (both ends present, not a loop), None if it is not one."""
        info = self.net.links.get(k)
        if info is None or k[0] not in self.switches or k[2] not in self.switches or k[0] == k[2]:
            return None
        return cost(info.capacity_mbps)

    def _set_links(self, keys: Iterable[LinkKey]) -> dict[Pair, tuple[PairLink | None, PairLink | None]]:
        """Take these links as they are now; returns every pair any of whose links changed,
        with its best link before and after (the same when only a parallel link changed)."""
        touched: set[Pair] = set()
        for key in keys:
            old, new = self.link_costs.get(key), self._link_cost(key)
            if old == new:
                continue
            pr = _pair(key[0], key[2])
            touched.add(pr)
            if old is not None:
                del self.link_costs[key]
                self.pair_links[pr] = [x for x in self.pair_links.get(pr, []) if x[1] != key]
                self.peer_of.pop((key[0], key[1]), None)
                self.peer_of.pop((key[2], key[3]), None)
            if new is not None:
                self.link_costs[key] = new
                self.pair_links.setdefault(pr, []).append((new, key))
                self.peer_of[(key[0], key[1])] = (key[2], key[3])
                self.peer_of[(key[2], key[3])] = (key[0], key[1])
        out: dict[Pair, tuple[PairLink | None, PairLink | None]] = {}
        for pr in touched:
            links = sorted(self.pair_links.get(pr, []))
            before = self.pairs.get(pr)
            after: PairLink | None = None
            if links:
                self.pair_links[pr] = links
                best_cost, best = links[0]
                ports = (best[1], best[3]) if best[0] == pr[0] else (best[3], best[1])
                after = PairLink(best_cost, best, ports)
                self.pairs[pr] = after
            else:
                self.pair_links.pop(pr, None)
                self.pairs.pop(pr, None)
            out[pr] = (before, after)
        self._adjacency({pr: ba for pr, ba in out.items() if ba[0] != ba[1]})
        return out

    def _adjacency(self, changed: Mapping[Pair, tuple[PairLink | None, PairLink | None]]) -> None:
        for (u, v), (_old, new) in changed.items():
            self.adj.setdefault(u, {}).pop(v, None)
            self.adj.setdefault(v, {}).pop(u, None)
            if new is not None:
                self.adj[u][v] = (new.cost, new.ports[0])
                self.adj[v][u] = (new.cost, new.ports[1])

    # ---- build from scratch ----------------------------------------------------------------
    def build(
        self, policies: Mapping[str, PolicyLike], now: float, shares: Mapping[str, tuple[int, int]] | None
    ) -> None:
        net = self.net
        self.relabelled = net.locators.relabelled
        self.switches = self._present()
        self.state = {d: SwitchState() for d in self.switches}
        self.frags = {}
        self.edge = {d: self._edge_ports(d, now) for d in sorted(self.switches)}
        self.link_costs = {}
        self.pairs, self.pair_links, self.adj, self.peer_of = {}, {}, {d: {} for d in self.switches}, {}
        self._set_links(list(net.links))
        self.table = RouteTable(self.switches, self.pairs)
        self.modes = {d: self.table.mode(d) for d in self.switches}
        self.breakers = cycle_breakers(self.modes, self.table.neighbour)
        self.routes = {d: self.table.routes(d, self._default(d)) for d in self.switches}
        self.tree = _kruskal(self.switches, self.pairs)
        self.detours, self.uses, self.detour_pairs = {}, {}, {}
        self.comp.release_vids(self._directed_links())
        if self.protect:
            for s, port in sorted(self._directed_links()):
                self._plan_detour(s, port)
        self.router = self._router()
        self.router_loc = net.locators.of(self.router.mac) if self.router else None
        self.hosts = {m: h for m, h in net.hosts.items() if self._usable(h)}
        for m, h in self.hosts.items():
            self._index_routed(m, h)
        self.policies = dict(policies)
        self.shares = dict(shares) if shares is not None else None
        self.opd_nets = {o: _ranges(c_.subnets) for o, c_ in self.comp.counted.items()}
        self.members = {o: set() for o in self.comp.counted}
        for m, h in self.hosts.items():
            for o in self._opds_of(h):
                self.members[o].add(m)
        for d in sorted(self.switches):
            self._compose(("base", d), self._f_base(d))
            self._compose(("flood", d), self._f_flood(d))
            self._compose(("routes", d), self._f_routes(d))
            self._compose(("edge_out", d), self._f_edge_out(d))
            self.used[d] = self._used_ports(d)
            for p in sorted(self.used[d]):
                self._compose(("port", d, p), self._f_port(d, p))
            self._compose(("routing", d), self._f_routing(d))
        for key in sorted(self.detours):
            self._compose(("detour", key), self._f_detour(key))
        for m in sorted(self.hosts):
            self._compose(("host", m), self._f_host(m))
        for o in sorted(self.comp.counted):
            self._compose(("opd", o), self._f_opd(o))

    # ---- update ----------------------------------------------------------------------------
    def update(
        self, policies: Mapping[str, PolicyLike], now: float, shares: Mapping[str, tuple[int, int]] | None
    ) -> set[int] | None:
        """Recompute what changed since the last build or update. Returns the switches whose
        desired state changed, or None when the set of switches changed (build again)."""
        net = self.net
        if self._present() != self.switches or net.locators.relabelled != self.relabelled:
            return None  # a switch came, went or took another label: every label route changes
        assert self.table is not None
        self.entries = {}
        changed: set[int] = set()
        dirty: set[FragKey] = set()
        touched = set(net.touched) | {d for d, t in self.probation_due.items() if t <= now}
        net.touched.clear()
        # edge ports
        edge_moved = set()
        first_hop_flipped = set()
        for d in touched & self.switches:
            ports = self._edge_ports(d, now)
            if ports != self.edge.get(d):
                if bool(ports) != bool(self.edge.get(d)):
                    first_hop_flipped.add(d)
                self.edge[d] = ports
                edge_moved.add(d)
            dirty.add(("flood", d))  # its links may have changed too
            dirty |= {("port", d, p) for p in self.used.get(d, ())}
        # links
        if net.links.changed:
            keys = list(net.links.changed)
            net.links.changed.clear()
            pairs_changed = self._set_links(keys)
            if pairs_changed:
                dirty |= self._graph_changed(pairs_changed)
        # hosts: those changed, those on switches whose edge ports moved, and those a changed
        # first hop routes for
        macs = set(net.hosts.changed)
        net.hosts.changed.clear()
        for d in edge_moved:
            dirty |= {("routing", d), ("edge_out", d)}
            for p in net.ports.get(d, {}):
                macs |= net.hosts.by_port.get((d, p), set())
        for d in first_hop_flipped:  # the hosts it routes for get (or lose) their first-hop entry
            macs |= self.routed_at.get(d, set())
        router = self._router()
        router_loc = net.locators.of(router.mac) if router else None
        if (router, router_loc) != (self.router, self.router_loc):
            self.router, self.router_loc = router, router_loc
            dirty |= {("routing", d) for d in self.switches} | {("opd", o) for o in self.comp.counted}
        for m in macs:
            old = self.hosts.get(m)
            h = net.hosts.get(m)
            new = h if h is not None and self._usable(h) else None
            if new is None:
                self.hosts.pop(m, None)
            else:
                self.hosts[m] = new
            self._index_routed(m, new)
            dirty.add(("host", m))
            for o in set(self._opds_of(old) if old else ()) | set(self._opds_of(new) if new else ()):
                dirty.add(("opd", o))
                self.members.setdefault(o, set()).discard(m)
            if new is not None:
                for o in self._opds_of(new):
                    self.members[o].add(m)
        # policies
        dirty |= self._policies_changed(policies, shares)
        changed |= self.put_all({key: self._fragment(key) for key in sorted(dirty, key=repr)})
        changed |= self.routes_changed
        self.routes_changed = set()
        return changed

    def _policies_changed(
        self, policies: Mapping[str, PolicyLike], shares: Mapping[str, tuple[int, int]] | None
    ) -> set[FragKey]:
        dirty: set[FragKey] = set()
        old_counted = dict(self.comp.counted)
        counted = old_counted
        # What is counted depends on the policies alone (the topology is fixed): most updates
        # (hosts, links) leave them as they were, and a province declares thousands of subnets.
        if dict(policies) != self.policies:
            counted = self.comp.counted = counted_opds(self.net, dict(policies), self.comp.count)
            self.comp.forget_meters(counted)
            for o in set(old_counted) | set(counted):
                before, after = old_counted.get(o), counted.get(o)
                if before != after or self.policies.get(o) != policies.get(o):
                    dirty.add(("opd", o))
                    if before is None or after is None or before.subnets != after.subnets:
                        self._members_of(o, after)
        old_shares = self.shares or {}
        new_shares = shares or {}
        if (self.shares is None) != (shares is None):
            dirty |= {("opd", o) for o in counted}
        else:
            dirty |= {("opd", o) for o in set(old_shares) | set(new_shares) if old_shares.get(o) != new_shares.get(o)}
        self.policies = dict(policies)
        self.shares = dict(shares) if shares is not None else None
        return dirty

    def _members_of(self, opd: str, c: Counted | None) -> None:
        if c is None:
            self._opd_index = None
            self.opd_nets.pop(opd, None)
            self.members.pop(opd, None)
            return
        self._opd_index = None
        nets = self.opd_nets[opd] = _ranges(c.subnets)
        self.members[opd] = {m for m, h in self.hosts.items() if h.ip and any(lo <= _ip(h.ip) <= hi for lo, hi in nets)}

    def _graph_changed(self, pairs_changed: dict[Pair, tuple[PairLink | None, PairLink | None]]) -> set[FragKey]:
        assert self.table is not None
        dirty: set[FragKey] = set()
        moved = self.table.change(self.pairs, {pr: ba for pr, ba in pairs_changed.items() if ba[0] != ba[1]})
        for d in moved:
            self.modes[d] = self.table.mode(d)
        breakers = cycle_breakers(self.modes, self.table.neighbour)
        flipped = breakers ^ self.breakers
        self.breakers = breakers
        for d in moved | flipped:
            routes = self.table.routes(d, self._default(d))
            if routes != self.routes.get(d):
                self._swap_routes(d, routes)
                used = self._used_ports(d)
                dirty |= {("port", d, p) for p in used ^ self.used.get(d, set())}
                self.used[d] = used
        tree = _kruskal_update(self.tree, self.switches, self.pairs, pairs_changed)
        for u, v in tree ^ self.tree:
            dirty |= {("flood", u), ("flood", v)}
        for pr, (old, new) in pairs_changed.items():
            if (old is None) != (new is None) or (old and new and old.ports != new.ports):
                dirty |= {("flood", pr[0]), ("flood", pr[1])}
        self.tree = tree
        if self.protect:
            for key in self._detours_to_redo(pairs_changed):
                before = self.detours.get(key)
                self._drop_detour(key)
                if key in self.peer_of:
                    self._plan_detour(*key)
                if self.detours.get(key) != before:
                    dirty |= {("detour", key), ("port", key[0], key[1])}
        return dirty

    def _detours_to_redo(
        self, pairs_changed: Mapping[Pair, tuple[PairLink | None, PairLink | None]]
    ) -> list[tuple[int, int]]:
        assert self.table is not None
        directed = self._directed_links()
        redo: set[tuple[int, int]] = {k for k in self.detours if k not in directed}
        released = self.comp.release_vids(directed)
        shorter = False
        for pr, (old, new) in pairs_changed.items():
            redo |= self.uses.get(pr, set())
            for _c, k in self.pair_links.get(pr, []):  # the pair's own links, both ways
                redo |= {(k[0], k[1]), (k[2], k[3])}
            if new is not None and (old is None or new.cost < old.cost):
                shorter = True
                # A new (or cheaper) link can only shorten a detour that passes near it.
                a, b = pr
                dist = self.table.distance
                for key, (_vid, _hops, dcost) in self.detours.items():
                    n = self._far(key)
                    if n is None:
                        continue
                    s = key[0]
                    near = min(dist(s, a) + dist(b, n), dist(s, b) + dist(a, n)) + new.cost
                    if near <= dcost:
                        redo.add(key)
        if shorter or released:
            # Unprotected directions may be protectable now (a new path, or a free VLAN id).
            redo |= {k for k in directed if k not in self.detours}
        return sorted(redo)

    # ---- graph pieces ----------------------------------------------------------------------
    def _default(self, d: int) -> int | None:
        return None if d in self.breakers else self.modes.get(d)

    def _directed_links(self) -> set[tuple[int, int]]:
        return set(self.peer_of)

    def _far(self, key: tuple[int, int]) -> int | None:
        """The switch at the other end of the link leaving ``key[0]`` by ``key[1]``."""
        got = self.peer_of.get(key)
        return got[0] if got else None

    def _plan_detour(self, s: int, port: int) -> None:
        """A path from s to the far end of its link on ``port`` that avoids that link (or
        its pair: a parallel link is the shortest detour there is)."""
        far = self.peer_of.get((s, port))
        if far is None or not self.comp.can_protect((s, port)):
            return
        n = far[0]
        pr = _pair(s, n)
        link = (s, port, n, far[1]) if (s, port) < far else (n, far[1], s, port)
        others = sorted(k for _c, k in self.pair_links.get(pr, []) if k != link)
        if others:
            o = others[0]
            hops: tuple[tuple[int, int], ...] = ((s, o[1] if o[0] == s else o[3]),)
            dcost = float(self.link_costs[o])
            used: list[Pair] = [pr]
        else:
            table = self.table
            assert table is not None
            col, row = table.col, table.dist[table.col[s]]
            found = _detour_path(self.adj, s, n, lambda x: float(row[col[x]]))
            if found is None:
                return
            path, dcost = found
            hops = tuple((a, self.adj[a][b][1]) for a, b in pairwise(path))
            used = [_pair(a, b) for a, b in pairwise(path)]
        vid = self.comp.detour_vid((s, port))
        if vid is None:
            return
        self.detours[(s, port)] = (vid, hops, dcost)
        self.detour_pairs[(s, port)] = used
        for u in used:
            self.uses.setdefault(u, set()).add((s, port))

    def _drop_detour(self, key: tuple[int, int]) -> None:
        self.detours.pop(key, None)
        for u in self.detour_pairs.pop(key, []):
            self.uses.get(u, set()).discard(key)

    def _router(self) -> HostEntry | None:
        r = self.net.uplink_router()
        return r if r is not None and r.dpid in self.switches else None

    def _usable(self, h: HostEntry) -> bool:
        return h.dpid in self.switches and h.port in self.edge.get(h.dpid, ())

    def _index_routed(self, mac: str, h: HostEntry | None) -> None:
        """Which switch routes for each host (its subnet's), both ways."""
        old = self.routed_by.pop(mac, None)
        if old is not None:
            self.routed_at.get(old, set()).discard(mac)
        at = self._subnet_at(h) if h is not None else None
        if at is not None:
            self.routed_by[mac] = at
            self.routed_at.setdefault(at, set()).add(mac)

    def _subnet_at(self, h: HostEntry) -> int | None:
        """The switch that routes for the host's subnet (present), if it has a declared one."""
        if not h.ip or not self._subnet_masks:
            return None
        ip = _ip(h.ip)
        for mask in self._subnet_masks:
            at = self._subnet_index.get((mask, ip & mask))
            if at is not None:
                return at if at in self.switches else None
        return None

    def _opds_of(self, h: HostEntry) -> list[str]:
        if not h.ip:
            return []
        ip = _ip(h.ip)
        if self._opd_index is None:
            index: dict[tuple[int, int], list[str]] = {}
            for o, nets in self.opd_nets.items():
                for lo, hi in nets:
                    mask = 0xFFFFFFFF ^ (hi - lo)
                    index.setdefault((mask, lo), []).append(o)
            self._opd_index = index
            self._opd_masks = sorted({m for m, _lo in index})
        out: list[str] = []
        for mask in self._opd_masks:
            out += self._opd_index.get((mask, ip & mask), [])
        return out

    # ---- fragments ---------------------------------------------------------------------------
    def _fragment(self, key: FragKey) -> dict[int, SwitchState]:
        kind, what = key[0], key[1]
        if kind in ("base", "flood", "routes", "edge_out", "routing", "port") and what not in self.switches:
            return {}
        if kind == "port":
            return self._f_port(what, key[2]) if key[2] in self.used.get(what, ()) else {}
        if kind == "base":
            return self._f_base(what)
        if kind == "flood":
            return self._f_flood(what)
        if kind == "routes":
            return self._f_routes(what)
        if kind == "edge_out":
            return self._f_edge_out(what)
        if kind == "routing":
            return self._f_routing(what)
        if kind == "detour":
            return self._f_detour(what) if what in self.detours else {}
        if kind == "host":
            return self._f_host(what) if what in self.hosts else {}
        if kind == "opd":
            return self._f_opd(what) if what in self.comp.counted else {}
        raise ValueError(f"unknown fragment {key!r}")

    def _f_base(self, d: int) -> dict[int, SwitchState]:
        st = SwitchState(dict(BASE.flows), dict(BASE.groups), dict(BASE.meters))
        # Frames with this switch's own label and a host number it does not know stop here
        # (a default route must never send them on).
        st.add_flow(Flow(T_FWD, 90, match(eth_dst=(self.lmac(d), LABEL_MASK)), ()))
        return {d: st}

    def _f_flood(self, d: int) -> dict[int, SwitchState]:
        st = SwitchState()
        tree_ports = set()
        for v, (_c, port) in self.adj.get(d, {}).items():
            if _pair(d, v) in self.tree:
                tree_ports.add(port)
        out = sorted(set(self.edge.get(d, ())) | tree_ports)
        # An ALL group never sends a frame back out of its in_port (OVS drops that).
        st.add_group(Group(FLOOD_GROUP, "all", tuple(Bucket((("output", p),)) for p in out)))
        st.add_flow(Flow(T_FWD, 50, match(eth_dst=MULTICAST), (("group", FLOOD_GROUP),)))
        for p in sorted(self.net.link_ports(d) - tree_ports):
            st.add_flow(Flow(T_INGRESS, 500, match(in_port=p, eth_dst=MULTICAST), ()))
        return {d: st}

    def _swap_routes(self, d: int, new: SwitchRoutes) -> None:
        """A switch's routes changed: only the entries that differ are swapped, in its
        fragment and in its state (a core link's loss moves thousands of routes on hundreds
        of switches; going through every route of each would cost more than the change)."""
        old = self.routes.get(d)
        self.routes[d] = new
        self.routes_changed.add(d)
        part = self.frags.get(("routes", d), {}).get(d)
        if old is None or part is None:
            self.put(("routes", d), self._f_routes(d))
            return
        st = self.state[d]
        e = self._touched(d)
        if old.default != new.default:
            for f in self._default_route(old.default):
                part.flows.pop(f.key, None)
                st.flows.pop(f.key, None)
                e.flows.add(f.key)
            for f in self._default_route(new.default):
                part.flows[f.key] = st.flows[f.key] = f
                e.flows.add(f.key)
        for dest in old.exceptions.keys() - new.exceptions.keys():
            key = self._route(dest, old.exceptions[dest])[0]
            part.flows.pop(key, None)
            st.flows.pop(key, None)
            e.flows.add(key)
        for dest, port in new.exceptions.items():
            if old.exceptions.get(dest) != port:
                key, f = self._route(dest, port)
                part.flows[key] = st.flows[key] = f
                e.flows.add(key)

    def _default_route(self, port: int | None) -> list[Flow]:
        if port is None:
            return []
        return [
            Flow(T_FWD, 10, match(eth_dst=(PREFIX_MAC, PREFIX_MASK)), metadata=(port, METADATA_MASK), goto=T_EGRESS)
        ]

    def _route(self, dest: int, port: int) -> tuple[tuple[int, int, Match], Flow]:
        """The flow (and its key) for a route to ``dest``'s label by ``port``; one object
        wherever it is used."""
        lm = self.lmacs.get(dest) or self.lmac(dest)
        got = self.comp.route_flows.get((lm, port))
        if got is None:
            f = Flow(T_FWD, 100, (("eth_dst", (lm, LABEL_MASK)),), metadata=(port, METADATA_MASK), goto=T_EGRESS)
            got = self.comp.route_flows[(lm, port)] = (f.key, f)
        self.route_cache[(dest, port)] = got
        return got

    def _f_routes(self, d: int) -> dict[int, SwitchState]:
        """Label routes (controller.core.routes): a default route and its exceptions. The
        same route is one Flow object wherever it is used (the comp's cache): a province's
        400,000 routes are a few thousand objects."""
        st = SwitchState()
        r = self.routes.get(d)
        if r is None:
            return {}
        for f in self._default_route(r.default):
            st.add_flow(f)
        cache = self.route_cache
        # one route per destination label: keys cannot clash
        st.flows.update([cache.get(dp) or self._route(*dp) for dp in r.exceptions.items()])
        return {d: st}

    def _used_ports(self, d: int) -> set[int]:
        r = self.routes.get(d)
        if r is None:
            return set()
        return set(r.exceptions.values()) | ({r.default} if r.default is not None else set())

    def _f_edge_out(self, d: int) -> dict[int, SwitchState]:
        """Out port -> a plain output, for edge ports."""
        st = SwitchState()
        for p in self.edge.get(d, ()):
            st.add_flow(Flow(T_EGRESS, 100, match(metadata=(p, METADATA_MASK)), (("output", p),)))
        return {d: st}

    def _f_port(self, d: int, port: int) -> dict[int, SwitchState]:
        """Out port -> its fast-failover group, for a link port the routes use."""
        st = SwitchState()
        if port in self.net.link_ports(d) and self.protect:
            for f in self._protection_groups(st, d, port):
                st.add_flow(f)
            # A detour ends at the far side of the failed link and may have passed
            # the destination's side: the frame must then go back the way it came.
            st.add_flow(
                Flow(T_EGRESS, 105, match(metadata=(port, METADATA_MASK), in_port=port), (("output", "in_port"),))
            )
        elif port not in self.edge.get(d, ()):
            st.add_flow(Flow(T_EGRESS, 100, match(metadata=(port, METADATA_MASK)), (("output", port),)))
        return {d: st}

    def _protection_groups(self, st: SwitchState, s: int, port: int) -> list[Flow]:
        """The FF group for ``port`` (and its turn-back twin); returns the egress flows using them."""
        entry = self.detours.get((s, port))
        primary = Bucket((("output", port),), watch_port=port)
        if not entry:
            st.add_group(Group(port, "ff", (primary,)))
            return [Flow(T_EGRESS, 100, match(metadata=(port, METADATA_MASK)), (("group", port),))]
        vid, hops, _cost = entry
        first = hops[0][1]
        tag = (("push_vlan", ETH_VLAN), ("set_field", "vlan_vid", vid | OFPVID_PRESENT))
        st.add_group(Group(port, "ff", (primary, Bucket(tag + (("output", first),), watch_port=first))))
        # A frame that came in by the detour's first port has to turn back: OpenFlow only
        # sends a frame out of its own in_port when told so explicitly.
        back = TURNBACK_GROUP | port
        st.add_group(Group(back, "ff", (primary, Bucket(tag + (("output", "in_port"),), watch_port=first))))
        return [
            Flow(T_EGRESS, 100, match(metadata=(port, METADATA_MASK)), (("group", port),)),
            Flow(T_EGRESS, 110, match(metadata=(port, METADATA_MASK), in_port=first), (("group", back),)),
        ]

    def _f_detour(self, key: tuple[int, int]) -> dict[int, SwitchState]:
        vid, hops, _cost = self.detours[key]
        tagged = vid | OFPVID_PRESENT
        out: dict[int, SwitchState] = {}
        # After the first hop, switches follow the tag; the last one pops it and forwards as usual.
        for (prev_sw, prev_out), (sw, port) in pairwise(hops):
            in_port = self._peer_port(prev_sw, prev_out)
            out.setdefault(sw, SwitchState()).add_flow(
                Flow(T_INGRESS, 900, match(in_port=in_port, vlan_vid=tagged), (("output", port),))
            )
        last_sw, last_out = hops[-1]
        end_sw, end_port = self._peer(last_sw, last_out)
        out.setdefault(end_sw, SwitchState()).add_flow(
            Flow(T_INGRESS, 900, match(in_port=end_port, vlan_vid=tagged), (("pop_vlan",),), goto=T_FWD)
        )
        return out

    def _peer(self, d: int, port: int) -> tuple[int, int]:
        return self.peer_of[(d, port)]

    def _peer_port(self, d: int, port: int) -> int:
        return self._peer(d, port)[1]

    def _f_host(self, mac: str) -> dict[int, SwitchState]:
        """The host's own entry at its switch (its real MAC put back), and its address at
        the switch that routes for its subnet."""
        h = self.hosts[mac]
        loc = self.net.locator(mac)
        out = {h.dpid: SwitchState()}
        out[h.dpid].add_flow(
            Flow(
                T_FWD,
                150,
                match(eth_dst=loc),
                (("set_field", "eth_dst", h.mac),),
                metadata=(h.port, METADATA_MASK),
                goto=T_EGRESS,
                tag=HOST_TAG,
            )
        )
        at = self._subnet_at(h)
        if at is not None and h.ip:
            st = out.setdefault(at, SwitchState())
            to_loc = (("set_field", "eth_dst", loc),)
            here = match(eth_type=ETH_IP, eth_dst=self.lmac(at), ipv4_dst=h.ip)
            st.add_flow(Flow(T_ROUTE, 200, here, to_loc, goto=T_FWD))
            if self.edge.get(at):
                first = match(eth_type=ETH_IP, eth_dst=GATEWAY_MAC, ipv4_dst=h.ip)
                acts = (("set_field", "eth_src", GATEWAY_MAC),) + to_loc + (("dec_nw_ttl",),)
                st.add_flow(Flow(T_ROUTE, 200, first, acts, goto=T_FWD))
        return out

    def _f_routing(self, d: int) -> dict[int, SwitchState]:
        """First-hop routing, without an entry per host at every switch.

        A frame to the gateway MAC for a declared subnet is rewritten (source the gateway,
        destination the locator of the subnet's switch, TTL decremented) and goes there by
        label. The subnet's switch holds its hosts' addresses (host fragments): it rewrites
        the destination to the host's locator, or asks the controller to ARP for an
        unknown one. Everything else to the gateway goes to the ISP router (default route)."""
        topo = self.net.topology
        if not topo or not topo.subnets:
            return {}
        st = SwitchState()
        first_hop = bool(self.edge.get(d))
        to_gateway = (("set_field", "eth_src", GATEWAY_MAC),)
        for sub in topo.subnets.values():
            at = self.subnet_switch.get(sub.id)
            if at is None or at not in self.switches:
                continue
            net = _masked(ipaddress.IPv4Network(sub.cidr))
            ask = (("output", "controller"),)
            if at == d:
                here = match(eth_type=ETH_IP, eth_dst=self.lmac(at), ipv4_dst=net)
                st.add_flow(Flow(T_ROUTE, 100, here, ask, meter=UNKNOWN_METER.meter_id))
            if not first_hop:
                continue
            m = match(eth_type=ETH_IP, eth_dst=GATEWAY_MAC, ipv4_dst=net)
            if at == d:
                st.add_flow(Flow(T_ROUTE, 100, m, ask, meter=UNKNOWN_METER.meter_id))
            else:
                acts = to_gateway + (("set_field", "eth_dst", self.lmac(at)), ("dec_nw_ttl",))
                st.add_flow(Flow(T_ROUTE, 100, m, acts, goto=T_FWD))
        if first_hop and self.router is not None and self.router_loc is not None:
            acts = to_gateway + (("set_field", "eth_dst", self.router_loc), ("dec_nw_ttl",))
            st.add_flow(Flow(T_ROUTE, 50, match(eth_type=ETH_IP, eth_dst=GATEWAY_MAC), acts, goto=T_FWD))
        return {d: st} if st.flows else {}

    def _f_opd(self, opd: str) -> dict[int, SwitchState]:
        """Where an OPD's caps are enforced.

        At every switch with hosts of the OPD: its upload meter on frames entering from
        those hosts' ports, its download meter on frames delivered to those hosts. Traffic
        between the OPD's own subnets is neither. When the OPD's hosts sit behind more than
        one switch, each switch caps its own share, and a second pair of meters at the
        uplink switch caps the OPD's Internet traffic (to and from the ISP router) in
        aggregate.

        With sharing on (``shares`` given), every policy's OPD has that aggregate pair, at
        its allocation: only Internet traffic is shared by need (the uplink is what is
        scarce), while the edge meters stay at the caps, the ceiling on all of its traffic.
        """
        pol = self.comp.counted[opd]
        ids = self.comp.meter_ids(opd)
        nets = [_masked(ipaddress.IPv4Network(c)) for c in pol.subnets]
        members = sorted((self.hosts[m] for m in self.members.get(opd, ()) if m in self.hosts), key=lambda h: h.mac)
        if pol.upload_kbps is None or pol.download_kbps is None:
            up = Meter(ids.upload_id, COUNT_ONLY_KBPS, COUNT_ONLY_KBPS)
            down = Meter(ids.download_id, COUNT_ONLY_KBPS, COUNT_ONLY_KBPS)
        else:
            up_rate, down_rate = meter_rate(pol.upload_kbps), meter_rate(pol.download_kbps)
            up = Meter(ids.upload_id, up_rate, meter_burst(up_rate, pol.burst_kbit))
            down = Meter(ids.download_id, down_rate, meter_burst(down_rate, pol.burst_kbit))
        out: dict[int, SwitchState] = {}
        switches = sorted({h.dpid for h in members})
        for d in switches:
            st = out.setdefault(d, SwitchState())
            st.add_meter(up)
            st.add_meter(down)
            here = [h for h in members if h.dpid == d]
            for port in sorted({h.port for h in here}):
                for src in nets:
                    for dst in nets:  # inside the OPD: not its upload
                        st.add_flow(
                            Flow(
                                T_INGRESS,
                                310,
                                match(in_port=port, eth_type=ETH_IP, ipv4_src=src, ipv4_dst=dst),
                                goto=T_ROUTE,
                            )
                        )
                    st.add_flow(
                        Flow(
                            T_INGRESS,
                            300,
                            match(in_port=port, eth_type=ETH_IP, ipv4_src=src),
                            meter=up.meter_id,
                            goto=T_ROUTE,
                        )
                    )
            for h in here:
                meta = (h.port, METADATA_MASK)
                loc = self.net.locator(h.mac)
                real = (("set_field", "eth_dst", h.mac),)
                for src in nets:  # inside the OPD: not its download
                    st.add_flow(
                        Flow(
                            T_FWD,
                            210,
                            match(eth_dst=loc, eth_type=ETH_IP, ipv4_src=src),
                            real,
                            metadata=meta,
                            goto=T_EGRESS,
                        )
                    )
                st.add_flow(
                    Flow(
                        T_FWD,
                        200,
                        match(eth_dst=loc, eth_type=ETH_IP),
                        real,
                        meter=down.meter_id,
                        metadata=meta,
                        goto=T_EGRESS,
                    )
                )
        router = self.router
        if router is None or self.router_loc is None or pol.kind != "policy":
            return out
        if self.shares is not None:
            p = self.policies[opd]
            down_kbps, up_kbps = self.shares.get(opd, (p.download_kbps, p.upload_kbps))
            agg_down, agg_up = self.comp.aggregate_meters(opd, p, down_kbps, up_kbps)
            self._uplink_aggregate(out, router, nets, agg_up, agg_down, SHARE_TAG)
        elif len(switches) > 1:
            agg_up = Meter(AGGREGATE_METER | up.meter_id, up.rate_kbps, up.burst_kbit)
            agg_down = Meter(AGGREGATE_METER | down.meter_id, down.rate_kbps, down.burst_kbit)
            self._uplink_aggregate(out, router, nets, agg_up, agg_down)
        return out

    def _uplink_aggregate(
        self,
        out: dict[int, SwitchState],
        router: HostEntry,
        nets: list[tuple[str, str]],
        agg_up: Meter,
        agg_down: Meter,
        tag: int = 0,
    ) -> None:
        assert self.router_loc is not None
        st = out.setdefault(router.dpid, SwitchState())
        st.add_meter(agg_up)
        st.add_meter(agg_down)
        for n in nets:
            st.add_flow(
                Flow(
                    T_INGRESS,
                    320,
                    match(in_port=router.port, eth_type=ETH_IP, ipv4_dst=n),
                    meter=agg_down.meter_id,
                    goto=T_ROUTE,
                    tag=tag,
                )
            )
            st.add_flow(
                Flow(
                    T_FWD,
                    220,
                    match(eth_dst=self.router_loc, eth_type=ETH_IP, ipv4_src=n),
                    (("set_field", "eth_dst", router.mac),),
                    meter=agg_up.meter_id,
                    metadata=(router.port, METADATA_MASK),
                    goto=T_EGRESS,
                    tag=tag,
                )
            )


def _kruskal(switches: Iterable[int], pairs: Mapping[Pair, PairLink]) -> set[Pair]:
    """The minimum spanning forest, ties broken by link key: one answer for one graph."""
    parent = {d: d for d in switches}

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    out = set()
    for _order, pr in sorted(((pl.cost, pl.key), pr) for pr, pl in pairs.items()):
        a, b = root(pr[0]), root(pr[1])
        if a != b:
            parent[a] = b
            out.add(pr)
    return out


def _kruskal_update(
    tree: set[Pair],
    switches: Iterable[int],
    pairs: Mapping[Pair, PairLink],
    changed: Mapping[Pair, tuple[PairLink | None, PairLink | None]],
) -> set[Pair]:
    """The same forest as _kruskal on the new links, from the old one: a link that left the
    tree is replaced by the lightest link across the cut; a new or cheaper link replaces
    the heaviest link on the tree path between its ends when lighter."""
    order = {pr: (pl.cost, pl.key) for pr, pl in pairs.items()}
    tree = set(tree)
    adj: dict[int, set[int]] = {}
    for u, v in tree:
        adj.setdefault(u, set()).add(v)
        adj.setdefault(v, set()).add(u)

    def side(start: int) -> set[int]:
        seen, todo = {start}, [start]
        while todo:
            x = todo.pop()
            for y in adj.get(x, ()):
                if y not in seen:
                    seen.add(y)
                    todo.append(y)
        return seen

    def path(a: int, b: int) -> list[Pair] | None:
        prev: dict[int, int] = {a: a}
        todo = [a]
        while todo:
            x = todo.pop()
            if x == b:
                break
            for y in adj.get(x, ()):
                if y not in prev:
                    prev[y] = x
                    todo.append(y)
        if b not in prev:
            return None
        out = []
        while b != a:
            out.append(_pair(b, prev[b]))
            b = prev[b]
        return out

    def cut(pr: Pair) -> None:
        adj[pr[0]].discard(pr[1])
        adj[pr[1]].discard(pr[0])
        tree.discard(pr)

    def join(pr: Pair) -> None:
        adj.setdefault(pr[0], set()).add(pr[1])
        adj.setdefault(pr[1], set()).add(pr[0])
        tree.add(pr)

    # First every change that can only remove or make heavier, then every one that can add.
    for pr, (old, new) in sorted(changed.items()):
        if pr in tree and (new is None or (old is not None and (new.cost, new.key) > (old.cost, old.key))):
            cut(pr)
            mine = side(pr[0])
            across = [(order[q], q) for q in pairs if (q[0] in mine) != (q[1] in mine)]
            if across:
                join(min(across)[1])
    for pr, (_old, new) in sorted(changed.items()):
        if new is None or pr in tree:
            continue
        on_path = path(pr[0], pr[1])
        if on_path is None:
            join(pr)
            continue
        worst = max(on_path, key=lambda q: order[q])
        if order[pr] < order[worst]:
            cut(worst)
            join(pr)
    return tree


def _detour_path(
    adj: Mapping[int, Mapping[int, tuple[int, int]]], s: int, n: int, guess: Callable[[int], float]
) -> tuple[list[int], float] | None:
    """The shortest path s ... n that does not take the direct link s-n; among equal ones,
    each hop goes to the lowest dpid.

    A* from n towards s: ``guess(x)`` is x's distance to s with the link (a lower bound
    without it, and consistent), so only switches near a shortest detour are visited.
    Every switch that can be on a shortest detour is settled before stopping, so the
    walk back from s sees all of them and the answer does not depend on the order the
    adjacency happens to be in."""
    dist: dict[int, float] = {n: 0.0}
    done: set[int] = set()
    heap = [(guess(n), 0.0, n)]
    best = float("inf")
    while heap:
        f, dx, x = heapq.heappop(heap)
        if f > best:
            break
        if x in done:
            continue
        done.add(x)
        if x == s:
            best = dx
        for y, (c, _p) in adj.get(x, {}).items():
            if (x == s and y == n) or (x == n and y == s):
                continue
            nd = dx + c
            if nd < dist.get(y, float("inf")):
                dist[y] = nd
                heapq.heappush(heap, (nd + guess(y), nd, y))
    if s not in done:
        return None
    path = [s]
    x = s
    while x != n:
        x = min(
            y
            for y, (c, _p) in adj[x].items()
            if not ((x == s and y == n) or (x == n and y == s)) and y in done and dist[y] + c == dist[x]
        )
        path.append(x)
    return path, dist[s]


def _ip(addr: str) -> int:
    return int.from_bytes(socket.inet_aton(addr), "big")


def _ranges(cidrs: Iterable[str]) -> list[tuple[int, int]]:
    nets = [ipaddress.IPv4Network(c) for c in cidrs]
    return [(int(n.network_address), int(n.broadcast_address)) for n in nets]


def _masked(net: ipaddress.IPv4Network) -> tuple[str, str]:
    return (str(net.network_address), str(net.netmask))
