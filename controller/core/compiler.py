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

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol

import networkx as nx

from controller.core.address import LABEL_MASK, PREFIX_MAC, PREFIX_MASK, label_mac
from controller.core.graph import HostEntry, Network
from controller.core.routes import Edge, NextHops, SwitchRoutes
from controller.core.state import (
    T_EGRESS,
    T_FWD,
    T_INGRESS,
    T_ROUTE,
    Bucket,
    DesiredState,
    Flow,
    Group,
    Meter,
    Match,
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

    def __init__(self, meter_ids: dict[str, int] | None = None, count: bool = False) -> None:
        # OPD -> meter number n (meters 2n+1, 2n+2); remembered across restarts so that a
        # restarted controller finds every meter where it left it.
        self._meter_ids: dict[str, int] = {}
        for opd, n in sorted((meter_ids or {}).items(), key=lambda kv: kv[1]):
            if isinstance(n, int) and 0 <= n < 0x7FF0 and n not in self._meter_ids.values():
                self._meter_ids[opd] = n
        self.count = count  # also count OPDs with no policy (see COUNT_ONLY_KBPS)
        self.counted: dict[str, Counted] = {}  # of the last compile, by OPD id

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
        policies: dict[str, PolicyLike] | None = None,
        now: float = 0.0,
        protect: bool = True,
        shares: Mapping[str, tuple[int, int]] | None = None,
    ) -> DesiredState:
        """``shares``: None with sharing off (the output is then exactly the static caps');
        with sharing on, OPD -> (download, upload) allocations in kbit/s (a policy's unit) for
        the aggregate meters every policy's OPD then has at the uplink switch (an OPD not in
        it: its caps)."""
        policies = policies or {}
        self.counted = counted_opds(net, policies, self.count)
        self.forget_meters(self.counted)
        return _Build(net, policies, now, self, protect, shares).run()

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


def spanning_tree(g: nx.Graph) -> set[tuple[int, int]]:
    """(dpid, port) of every inter-switch port on the broadcast spanning tree."""
    tree = nx.minimum_spanning_tree(g, weight="cost", algorithm="kruskal")
    out = set()
    for u, v in tree.edges():
        ports = g[u][v]["ports"]
        out.add((u, ports[u]))
        out.add((v, ports[v]))
    return out


# ---- the build ---------------------------------------------------------------------------


class _Build:
    def __init__(
        self,
        net: Network,
        policies: dict[str, PolicyLike],
        now: float,
        comp: Compiler,
        protect: bool,
        shares: Mapping[str, tuple[int, int]] | None = None,
    ) -> None:
        self.net = net
        self.shares = shares
        self.policies = policies
        self.now = now
        self.comp = comp
        self.protect = protect
        self.mg = net.graph()
        self.g = best_edges(self.mg)
        # Plain dicts: NetworkX adjacency views are too slow for the per-host inner loop.
        self.nbr_port = {u: {v: d["ports"][u] for v, d in nbrs.items()} for u, nbrs in self.g.adjacency()}
        self.state: DesiredState = {dpid: SwitchState() for dpid in self.g.nodes}
        self.edge = {dpid: net.edge_ports(dpid, now) for dpid in self.g.nodes}
        self.peer: dict[tuple[int, int], tuple[int, int]] = {}
        for d1, p1, d2, p2 in net.links:
            self.peer[(d1, p1)] = (d2, p2)
            self.peer[(d2, p2)] = (d1, p1)
        self.detours = self._plan_detours() if protect else {}
        topo = net.topology
        self._lmacs: dict[int, str] = {}
        # Each declared subnet is routed at its own switch (see _routing).
        self._subnet_switch: dict[str, int] = (
            {sub.id: topo.switches[sub.switch].dpid for sub in topo.subnets.values()} if topo else {}
        )
        # Hosts are only usable where their switch is present and their port is an edge port.
        self.hosts: list[HostEntry] = sorted(
            (h for h in net.hosts.values() if h.dpid in self.state and h.port in self.edge[h.dpid]),
            key=lambda h: h.mac,
        )

    def run(self) -> DesiredState:
        for dpid in self.state:
            self._base(dpid)
        self._flood()
        self._forwarding()
        self._routing()
        self._meters()
        return self.state

    def add(self, dpid: int, flow: Flow) -> None:
        self.state[dpid].add_flow(flow)

    # control traffic and table chaining
    def _base(self, dpid: int) -> None:
        ctrl = (("output", "controller"),)
        self.add(dpid, Flow(T_INGRESS, 1000, match(eth_type=ETH_LLDP), ctrl))
        # Hosts decide how much ARP and unroutable traffic they send; the controller must
        # not drown in it: each switch may send it only so many packets a second.
        for m in CONTROL_METERS:
            self.state[dpid].add_meter(m)
        self.add(dpid, Flow(T_INGRESS, 1000, match(eth_type=ETH_ARP), ctrl, meter=ARP_METER.meter_id))
        self.add(dpid, Flow(T_INGRESS, 0, (), goto=T_ROUTE))
        self.add(dpid, Flow(T_ROUTE, 0, (), goto=T_FWD))

    def _flood(self) -> None:
        tree: dict[int, list[int]] = {}
        for d, p in spanning_tree(self.g):
            tree.setdefault(d, []).append(p)
        for dpid in self.state:
            tree_ports = sorted(tree.get(dpid, []))
            out = sorted(set(self.edge[dpid]) | set(tree_ports))
            # An ALL group never sends a frame back out of its in_port (OVS drops that).
            self.state[dpid].add_group(Group(FLOOD_GROUP, "all", tuple(Bucket((("output", p),)) for p in out)))
            self.add(dpid, Flow(T_FWD, 50, match(eth_dst=MULTICAST), (("group", FLOOD_GROUP),)))
            for p in sorted(self.net.link_ports(dpid) - set(tree_ports)):
                self.add(dpid, Flow(T_INGRESS, 500, match(in_port=p, eth_dst=MULTICAST), ()))

    def _out_port(self, s: int, nh: int) -> int:
        port: int = self.nbr_port[s][nh]
        return port

    def _forwarding(self) -> None:
        """Label routes at every switch, and the hosts' own entries at their own switch.

        A frame to a host carries the host's locator MAC (controller.core.address): the
        label of the host's switch and the host's number there. Every switch forwards on
        the label (routes.NextHops: a default route and exceptions); the host's switch
        puts the host's real MAC back and delivers. Frames with this switch's own label
        and a number it does not know are dropped (never sent on by a default route)."""
        used_ports: dict[int, set[int]] = {d: set() for d in self.state}
        for h in self.hosts:
            used_ports[h.dpid].add(h.port)
            self.add(
                h.dpid,
                Flow(
                    T_FWD,
                    150,
                    match(eth_dst=self.net.locator(h.mac)),
                    (("set_field", "eth_dst", h.mac),),
                    metadata=(h.port, METADATA_MASK),
                    goto=T_EGRESS,
                    tag=HOST_TAG,
                ),
            )
        for d in self.state:
            self.add(d, Flow(T_FWD, 90, match(eth_dst=(self._lmac(d), LABEL_MASK)), ()))
        table = self._label_routes()
        # The same route (destination, out port) is one Flow object wherever it is used:
        # ports are small numbers, so a province's 400,000 routes are a few thousand objects.
        made: dict[tuple[int, int], tuple[tuple[int, int, Match], Flow]] = {}
        for s, r in table.items():
            table_of = self.state[s].flows
            if r.default is not None:
                used_ports[s].add(r.default)
                self.add(
                    s,
                    Flow(
                        T_FWD,
                        10,
                        match(eth_dst=(PREFIX_MAC, PREFIX_MASK)),
                        metadata=(r.default, METADATA_MASK),
                        goto=T_EGRESS,
                    ),
                )
            used_ports[s].update(r.exceptions.values())
            for dest, port in r.exceptions.items():
                got = made.get((dest, port))
                if got is None:
                    f = Flow(
                        T_FWD,
                        100,
                        (("eth_dst", (self._lmac(dest), LABEL_MASK)),),
                        metadata=(port, METADATA_MASK),
                        goto=T_EGRESS,
                    )
                    got = made[(dest, port)] = (f.key, f)
                table_of[got[0]] = got[1]  # one route per destination label: keys cannot clash
        for s, ports in used_ports.items():
            linked = self.net.link_ports(s)
            for port in sorted(ports):
                if port in linked and self.protect:
                    flows = self._protection_groups(s, port)
                    # A detour ends at the far side of the failed link and may have passed
                    # the destination's side: the frame must then go back the way it came.
                    flows.append(
                        Flow(
                            T_EGRESS, 105, match(metadata=(port, METADATA_MASK), in_port=port), (("output", "in_port"),)
                        )
                    )
                else:
                    flows = [Flow(T_EGRESS, 100, match(metadata=(port, METADATA_MASK)), (("output", port),))]
                for f in flows:
                    self.add(s, f)
        if self.protect:
            self._detour_flows()

    def _lmac(self, dpid: int) -> str:
        got = self._lmacs.get(dpid)
        if got is None:
            got = self._lmacs[dpid] = label_mac(self.net.label(dpid))
        return got

    def destinations(self) -> set[int]:
        """Switches frames are addressed to: those with hosts, and those that route for a
        declared subnet (its switch)."""
        out = {h.dpid for h in self.hosts}
        out |= {d for d in self._subnet_switch.values() if d in self.state}
        return out

    def _label_routes(self) -> dict[int, SwitchRoutes]:
        edges = [
            Edge(u, v, d["cost"], d["ports"][u]) for u, nbrs in self.g.adjacency() for v, d in nbrs.items() if u != v
        ]
        return NextHops(list(self.state), edges, self.destinations()).table()

    # fast failover: detours around each inter-switch link --------------------------
    def _protection_groups(self, s: int, port: int) -> list[Flow]:
        """The FF group for ``port`` (and its turn-back twin); returns the egress flows using them."""
        entry = self.detours.get((s, port))
        primary = Bucket((("output", port),), watch_port=port)
        if not entry:
            self.state[s].add_group(Group(port, "ff", (primary,)))
            return [Flow(T_EGRESS, 100, match(metadata=(port, METADATA_MASK)), (("group", port),))]
        vid, hops = entry
        first = hops[0][1]
        tag = (("push_vlan", ETH_VLAN), ("set_field", "vlan_vid", vid | OFPVID_PRESENT))
        self.state[s].add_group(Group(port, "ff", (primary, Bucket(tag + (("output", first),), watch_port=first))))
        # A frame that came in by the detour's first port has to turn back: OpenFlow only
        # sends a frame out of its own in_port when told so explicitly.
        back = TURNBACK_GROUP | port
        self.state[s].add_group(Group(back, "ff", (primary, Bucket(tag + (("output", "in_port"),), watch_port=first))))
        return [
            Flow(T_EGRESS, 100, match(metadata=(port, METADATA_MASK)), (("group", port),)),
            Flow(T_EGRESS, 110, match(metadata=(port, METADATA_MASK), in_port=first), (("group", back),)),
        ]

    def _plan_detours(self) -> dict[tuple[int, int], tuple[int, list[tuple[int, int]]]]:
        """For each directed link (s -> n, leaving s by port): a path s ... n that avoids it.

        Returns (s, port) -> (vid, [(switch, out_port), ...]). Ending the detour at n keeps
        it loop-free: s only sends to n what n is nearer to, so n's own shortest path
        never comes back over the failed link.
        """
        plan: dict[tuple[int, int], tuple[int, list[tuple[int, int]]]] = {}
        vid = 1
        for key in sorted(self.net.links):
            d1, p1, d2, p2 = key
            if d1 == d2:
                continue
            parallel = sorted(k for k in self.mg[d1][d2] if k != key)
            for s, port, n in ((d1, p1, d2), (d2, p2, d1)):
                if vid > MAX_DETOUR_VID:
                    return plan  # beyond 4094 directed links the rest stay unprotected
                if parallel:
                    # A parallel link is the shortest detour there is.
                    other = self.mg[d1][d2][parallel[0]]["ports"][s]
                    plan[(s, port)] = (vid, [(s, other)])
                    vid += 1
                    continue
                hidden = {d1, d2}
                try:
                    path = nx.bidirectional_dijkstra(
                        self.g, s, n, weight=lambda u, v, d, hidden=hidden: None if {u, v} == hidden else d["cost"]
                    )[1]
                except nx.NetworkXNoPath:
                    continue
                plan[(s, port)] = (vid, [(a, self.g[a][b]["ports"][a]) for a, b in pairwise(path)])
                vid += 1
        return plan

    def _detour_flows(self) -> None:
        for vid, hops in self.detours.values():
            tagged = vid | OFPVID_PRESENT
            # After the first hop, switches follow the tag; the last one pops it and forwards as usual.
            for (prev_sw, prev_out), (sw, out) in pairwise(hops):
                in_port = self.peer[(prev_sw, prev_out)][1]
                self.add(sw, Flow(T_INGRESS, 900, match(in_port=in_port, vlan_vid=tagged), (("output", out),)))
            end_sw, end_port = self.peer[hops[-1]]
            self.add(
                end_sw, Flow(T_INGRESS, 900, match(in_port=end_port, vlan_vid=tagged), (("pop_vlan",),), goto=T_FWD)
            )

    # routing between subnets -------------------------------------------------------
    def _routing(self) -> None:
        """First-hop routing, without an entry per host at every switch.

        A frame to the gateway MAC for a declared subnet is rewritten (source the gateway,
        destination the locator of the subnet's switch, TTL decremented) and goes there by
        label. The subnet's switch holds its hosts' addresses: it rewrites the destination
        to the host's locator (or asks the controller to ARP for an unknown one). A first
        hop that is the subnet's switch does both at once. Everything else to the gateway
        goes to the ISP router (default route)."""
        topo = self.net.topology
        if not topo or not topo.subnets:
            return
        first_hops = [d for d in self.state if self.edge[d]]
        router = self.net.uplink_router()
        to_gateway = (("set_field", "eth_src", GATEWAY_MAC),)
        for h in self.hosts:
            sub = topo.subnet_of(h.ip) if h.ip else None
            at = self._subnet_switch.get(sub.id) if sub else None
            if at is None or at not in self.state:
                continue
            loc = (("set_field", "eth_dst", self.net.locator(h.mac)),)
            here = match(eth_type=ETH_IP, eth_dst=self._lmac(at), ipv4_dst=h.ip)
            self.add(at, Flow(T_ROUTE, 200, here, loc, goto=T_FWD))
            if self.edge[at]:
                first = match(eth_type=ETH_IP, eth_dst=GATEWAY_MAC, ipv4_dst=h.ip)
                self.add(at, Flow(T_ROUTE, 200, first, to_gateway + loc + (("dec_nw_ttl",),), goto=T_FWD))
        for sub in topo.subnets.values():
            net = _masked(ipaddress.IPv4Network(sub.cidr))
            at = self._subnet_switch.get(sub.id)
            if at is None or at not in self.state:
                continue
            unknown = ((("output", "controller"),), UNKNOWN_METER.meter_id)
            label = self._lmac(at)
            self.add(
                at,
                Flow(T_ROUTE, 100, match(eth_type=ETH_IP, eth_dst=label, ipv4_dst=net), unknown[0], meter=unknown[1]),
            )
            for d in first_hops:
                m = match(eth_type=ETH_IP, eth_dst=GATEWAY_MAC, ipv4_dst=net)
                if d == at:
                    self.add(d, Flow(T_ROUTE, 100, m, unknown[0], meter=unknown[1]))
                else:
                    acts = to_gateway + (("set_field", "eth_dst", label), ("dec_nw_ttl",))
                    self.add(d, Flow(T_ROUTE, 100, m, acts, goto=T_FWD))
        if router and router.dpid in self.state:
            acts = to_gateway + (("set_field", "eth_dst", self.net.locator(router.mac)), ("dec_nw_ttl",))
            for d in first_hops:
                self.add(d, Flow(T_ROUTE, 50, match(eth_type=ETH_IP, eth_dst=GATEWAY_MAC), acts, goto=T_FWD))

    # per-OPD meters -----------------------------------------------------------------
    def _meters(self) -> None:
        """Where each OPD's caps are enforced.

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
        router = self.net.uplink_router()
        for opd in sorted(self.comp.counted):
            pol = self.comp.counted[opd]
            ids = self.comp.meter_ids(opd)
            networks = [ipaddress.IPv4Network(c) for c in pol.subnets]  # parsed once per policy
            nets = [_masked(n) for n in networks]
            members = [h for h in self.hosts if h.ip and any(ipaddress.IPv4Address(h.ip) in n for n in networks)]
            if pol.upload_kbps is None or pol.download_kbps is None:
                up = Meter(ids.upload_id, COUNT_ONLY_KBPS, COUNT_ONLY_KBPS)
                down = Meter(ids.download_id, COUNT_ONLY_KBPS, COUNT_ONLY_KBPS)
            else:
                up_rate, down_rate = meter_rate(pol.upload_kbps), meter_rate(pol.download_kbps)
                up = Meter(ids.upload_id, up_rate, meter_burst(up_rate, pol.burst_kbit))
                down = Meter(ids.download_id, down_rate, meter_burst(down_rate, pol.burst_kbit))
            switches = sorted({h.dpid for h in members})
            for d in switches:
                self.state[d].add_meter(up)
                self.state[d].add_meter(down)
                here = [h for h in members if h.dpid == d]
                for port in sorted({h.port for h in here}):
                    for src in nets:
                        for dst in nets:  # inside the OPD: not its upload
                            self.add(
                                d,
                                Flow(
                                    T_INGRESS,
                                    310,
                                    match(in_port=port, eth_type=ETH_IP, ipv4_src=src, ipv4_dst=dst),
                                    goto=T_ROUTE,
                                ),
                            )
                        self.add(
                            d,
                            Flow(
                                T_INGRESS,
                                300,
                                match(in_port=port, eth_type=ETH_IP, ipv4_src=src),
                                meter=up.meter_id,
                                goto=T_ROUTE,
                            ),
                        )
                for h in here:
                    meta = (h.port, METADATA_MASK)
                    loc = self.net.locator(h.mac)
                    real = (("set_field", "eth_dst", h.mac),)
                    for src in nets:  # inside the OPD: not its download
                        self.add(
                            d,
                            Flow(
                                T_FWD,
                                210,
                                match(eth_dst=loc, eth_type=ETH_IP, ipv4_src=src),
                                real,
                                metadata=meta,
                                goto=T_EGRESS,
                            ),
                        )
                    self.add(
                        d,
                        Flow(
                            T_FWD,
                            200,
                            match(eth_dst=loc, eth_type=ETH_IP),
                            real,
                            meter=down.meter_id,
                            metadata=meta,
                            goto=T_EGRESS,
                        ),
                    )
            if not router or router.dpid not in self.state or pol.kind != "policy":
                continue
            if self.shares is not None:
                p = self.policies[opd]
                down_kbps, up_kbps = self.shares.get(opd, (p.download_kbps, p.upload_kbps))
                agg_down, agg_up = self.comp.aggregate_meters(opd, p, down_kbps, up_kbps)
                self._uplink_aggregate(router, nets, agg_up, agg_down, SHARE_TAG)
            elif len(switches) > 1:
                agg_up = Meter(AGGREGATE_METER | up.meter_id, up.rate_kbps, up.burst_kbit)
                agg_down = Meter(AGGREGATE_METER | down.meter_id, down.rate_kbps, down.burst_kbit)
                self._uplink_aggregate(router, nets, agg_up, agg_down)

    def _uplink_aggregate(
        self, router: HostEntry, nets: list[tuple[str, str]], agg_up: Meter, agg_down: Meter, tag: int = 0
    ) -> None:
        u = router.dpid
        self.state[u].add_meter(agg_up)
        self.state[u].add_meter(agg_down)
        for n in nets:
            self.add(
                u,
                Flow(
                    T_INGRESS,
                    320,
                    match(in_port=router.port, eth_type=ETH_IP, ipv4_dst=n),
                    meter=agg_down.meter_id,
                    goto=T_ROUTE,
                    tag=tag,
                ),
            )
            self.add(
                u,
                Flow(
                    T_FWD,
                    220,
                    match(eth_dst=self.net.locator(router.mac), eth_type=ETH_IP, ipv4_src=n),
                    (("set_field", "eth_dst", router.mac),),
                    meter=agg_up.meter_id,
                    metadata=(router.port, METADATA_MASK),
                    goto=T_EGRESS,
                    tag=tag,
                ),
            )


def _masked(net: ipaddress.IPv4Network) -> tuple[str, str]:
    return (str(net.network_address), str(net.netmask))
