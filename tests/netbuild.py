"""Build a controller.graph.Network (and optionally a declared Topology) from a networkx graph,
the way the os-ken shell would feed it: switches up, LLDP sightings, host sightings.

Used by the property tests; plain functions so a failing example can be rebuilt by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

from controller.core import topology as topo_mod
from controller.core.compiler import GATEWAY_MAC, compile_network
from controller.core.graph import Network
from controller.core.state import DesiredState
from controller.lab.tablemodel import Fabric, Packet, links_of

NOW = 10.0  # compile time: well past the edge-port probation of ports brought up at 0


@dataclass(frozen=True)
class H:
    name: str
    mac: str
    ip: str | None
    dpid: int
    port: int
    subnet: str | None = None


@dataclass
class Built:
    net: Network
    hosts: list[H]
    links: list[tuple[int, int, int, int]] = field(default_factory=list)  # as cabled (d1, p1, d2, p2)

    def compile(self, **kw) -> DesiredState:
        return compile_network(self.net, {}, now=NOW, **kw)

    def fabric(self, state: DesiredState | None = None, dead=None) -> Fabric:
        return Fabric(state if state is not None else self.compile(), links_of(self.net), dead)


def host_mac(i: int) -> str:
    return f"02:00:00:00:{i >> 8:02x}:{i & 0xff:02x}"


def build(g: nx.MultiGraph, host_switches: list[int], subnets: bool = False,
          capacities: dict | None = None) -> Built:
    """Switches = nodes of ``g`` (ints), one link per edge (parallel edges allowed).

    Ports are numbered per switch in edge order, hosts get the next free ports. With
    ``subnets``, each host switch gets its own declared /24 (10.0.<dpid>.0/24, gateway .1)
    and the hosts on it addresses in it; without, the network is pure L2 (no topology).
    ``capacities`` maps an edge key (u, v, k) to Mbit/s (changes costs, so shortest paths).
    """
    next_port = {n: 1 for n in g.nodes}
    cabled = []
    for u, v, k in sorted(g.edges(keys=True)):
        pu = next_port[u]; next_port[u] += 1
        pv = next_port[v]; next_port[v] += 1
        cabled.append((u, pu, v, pv, (capacities or {}).get((u, v, k))))
    hosts: list[H] = []
    per_switch: dict[int, int] = {}
    for i, s in enumerate(host_switches):
        port = next_port[s]; next_port[s] += 1
        n = per_switch[s] = per_switch.get(s, 0) + 1
        ip = f"10.0.{s}.{9 + n}" if subnets else None
        hosts.append(H(f"h{i}", host_mac(i + 1), ip, s, port, f"sn{s}" if subnets else None))

    topo = None
    if subnets:
        name = {n: f"s{n}" for n in g.nodes}
        topo = topo_mod.Topology(name="generated")
        topo.switches = {name[n]: topo_mod.Switch(name[n], n) for n in g.nodes}
        topo.links = [topo_mod.Link(name[u], pu, name[v], pv, cap) for u, pu, v, pv, cap in cabled]
        for s in sorted({h.dpid for h in hosts}):
            mine = tuple(topo_mod.Host(h.name, h.ip, h.mac, name[s], h.port, f"sn{s}") for h in hosts if h.dpid == s)
            topo.subnets[f"sn{s}"] = topo_mod.Subnet(f"sn{s}", f"sn{s}", f"10.0.{s}.0/24", f"10.0.{s}.1",
                                                     name[s], mine)
    return _feed(Network(topo), g.nodes, next_port, cabled, hosts)


def _feed(net: Network, switches, next_port: dict[int, int], cabled, hosts: list[H]) -> Built:
    for s in switches:
        net.switch_up(s, {p: True for p in range(1, next_port[s])}, 0.0)
    for u, pu, v, pv, _cap in cabled:
        assert net.link_seen(u, pu, v, pv, 0.0)
        if _cap is not None and net.links[(u, pu, v, pv)].capacity_mbps is None:
            net.links[(u, pu, v, pv)].capacity_mbps = _cap  # undeclared: set as if configured
    for h in hosts:
        assert net.learn_host(h.mac, h.ip, h.dpid, h.port, NOW), h
    return Built(net, hosts, [c[:4] for c in cabled])


def from_topology(t: topo_mod.Topology) -> Built:
    """A Network for a declared topology with every switch, link and host present."""
    net = Network(t)
    next_port: dict[int, int] = {s.dpid: 1 for s in t.switches.values()}
    for l in t.links:
        for sw, p in ((l.a, l.a_port), (l.b, l.b_port)):
            d = t.switches[sw].dpid
            next_port[d] = max(next_port[d], p + 1)
    hosts = []
    for h in t.hosts:
        d = t.switches[h.switch].dpid
        next_port[d] = max(next_port[d], h.port + 1)
        hosts.append(H(h.name, h.mac, h.ip, d, h.port, h.subnet))
    cabled = [(t.switches[l.a].dpid, l.a_port, t.switches[l.b].dpid, l.b_port, None) for l in t.links]
    return _feed(net, list(next_port), next_port, cabled, hosts)


# ---- packets and checks shared by the property tests -----------------------------------

def unicast(a: H, b: H) -> Packet:
    return Packet(eth_src=a.mac, eth_dst=b.mac, eth_type=0x0800, ipv4_src=a.ip or "192.0.2.1",
                  ipv4_dst=b.ip or "192.0.2.2")


def routed(a: H, b: H) -> Packet:
    return Packet(eth_src=a.mac, eth_dst=GATEWAY_MAC, eth_type=0x0800, ipv4_src=a.ip, ipv4_dst=b.ip, ip_ttl=64)


def check_pair(fab: Fabric, a: H, b: H, pkt: Packet | None = None) -> str | None:
    """None if ``a``'s packet reaches exactly ``b`` once, untagged and loop-free; else why not."""
    res = fab.inject(a.dpid, a.port, pkt or unicast(a, b))
    got = res.delivered_to()
    ok = (not res.looped and got == [(b.dpid, b.port)] and not res.packet_ins and not res.ambiguous
          and res.deliveries[0].packet.vlan_vid is None)
    if ok:
        return None
    return f"{a.name}@s{a.dpid}:{a.port} -> {b.name}@s{b.dpid}:{b.port}: got {got}\n{res.format_trace()}"


def all_pairs(fab: Fabric, hosts: list[H]) -> list[str]:
    return [why for a in hosts for b in hosts if a is not b for why in [check_pair(fab, a, b)] if why]


BROADCAST = "ff:ff:ff:ff:ff:ff"


def broadcast_ok(fab: Fabric, hosts: list[H], a: H) -> str | None:
    res = fab.inject(a.dpid, a.port, _bcast(a, 0x86DD))
    want = sorted((b.dpid, b.port) for b in hosts if b is not a)
    got = sorted(res.delivered_to())
    if res.looped or got != want or res.packet_ins:
        return f"broadcast from {a.name}@s{a.dpid}: want {want} got {got}\n{res.format_trace()}"
    return None


def _bcast(a: H, eth_type: int) -> Packet:
    return Packet(eth_src=a.mac, eth_dst=BROADCAST, eth_type=eth_type, ipv4_src=None, ipv4_dst=None)


def check_network(b: Built, fab: Fabric | None = None) -> list[str]:
    """Every failure of: all pairs, broadcast from each host, ARP punted, routed pairs, unknown IP punted."""
    fab = fab or b.fabric()
    bad = all_pairs(fab, b.hosts)
    for a in b.hosts:
        why = broadcast_ok(fab, b.hosts, a)
        if why:
            bad.append(why)
        arp = fab.inject(a.dpid, a.port, _bcast(a, 0x0806))
        if [(p.dpid, p.in_port) for p in arp.packet_ins] != [(a.dpid, a.port)] or arp.deliveries or arp.looped:
            bad.append(f"ARP from {a.name} not punted at s{a.dpid}:\n{arp.format_trace()}")
    if b.net.topology:
        for a in b.hosts:
            for c in b.hosts:
                if a.subnet == c.subnet:
                    continue
                res = fab.inject(a.dpid, a.port, routed(a, c))
                d = res.deliveries
                if (res.looped or res.delivered_to() != [(c.dpid, c.port)] or d[0].packet.eth_dst != c.mac
                        or d[0].packet.eth_src != GATEWAY_MAC or d[0].packet.ip_ttl != 63 or res.packet_ins):
                    bad.append(f"routed {a.name}->{c.name}: got {res.delivered_to()}\n{res.format_trace()}")
            # An address of a declared subnet nobody has been seen with: the controller ARPs for it.
            sub = b.net.topology.subnets[a.subnet]
            used = {h.ip for h in sub.hosts} | {sub.gateway}
            ghost = next(str(ip) for ip in reversed(list(sub.network.hosts())) if str(ip) not in used)
            res = fab.inject(a.dpid, a.port, routed(a, H("ghost", "02:ff:00:00:00:01", ghost, 0, 0)))
            if [p.dpid for p in res.packet_ins] != [a.dpid] or res.deliveries:
                bad.append(f"unknown {ghost} from {a.name} not punted:\n{res.format_trace()}")
    return bad


def two_edge_connected(g: nx.MultiGraph) -> bool:
    return nx.is_connected(g) and not any(
        g.number_of_edges(u, v) == 1 for u, v in nx.bridges(nx.Graph(g)))

