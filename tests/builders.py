"""Networks for the unit tests, and the forwarding checks the property tests share.

One way in: a topology (a file in topologies/, or a parsed Topology) or a networkx graph
becomes a cabling (switches with their ports, links, hosts), and ``_feed`` gives it to a
controller.core.graph.Network the way the os-ken shell would: switches up with exactly
their cabled ports, every link seen by LLDP, every host learned. Both return a ``Built``.

The checks run frames through controller.lab.tablemodel, which is fed the OpenFlow
messages the shell would send for the compiled state (encoded and parsed back), never the
compiled data itself. Plain functions, so a failing example can be rebuilt by hand.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import networkx as nx

from controller.core import topology as topo_mod
from controller.core.compiler import GATEWAY_MAC, compile_network
from controller.core.graph import Network
from controller.core.state import DesiredState
from controller.lab.tablemodel import Fabric, Packet, PortLive, Switch, links_of

ROOT = Path(__file__).resolve().parent.parent
TOPOS = ROOT / "topologies"
NOW = 10.0  # compile time: well past the edge-port probation of ports brought up at 0

Cable = tuple[int, int, int, int, "float | None"]  # (dpid, port, dpid, port, capacity in Mbit/s)


def load(name: str) -> topo_mod.Topology:
    """A topology file of topologies/ by name ("ring4", "ppu")."""
    return topo_mod.load(TOPOS / f"{name}.yaml")


@dataclass(frozen=True)
class Pol:
    """A minimal PolicyLike (what the compiler reads of a controller.core.policy.Policy)."""

    id: str
    subnets: tuple[str, ...]
    download_kbps: int
    upload_kbps: int
    burst_kbit: int | None = None


@dataclass(frozen=True)
class H:
    name: str
    mac: str
    ip: str | None
    dpid: int
    port: int
    subnet: str | None = None
    loc: str | None = None  # its locator MAC (what the controller's ARP gives out for it)


@dataclass
class Built:
    net: Network
    hosts: list[H]
    links: list[tuple[int, int, int, int]] = field(default_factory=list)  # as cabled (d1, p1, d2, p2)

    def compile(self, **kw: Any) -> DesiredState:
        return compile_network(self.net, {}, now=NOW, **kw)

    def fabric(self, state: DesiredState | dict[int, Switch] | None = None, dead: PortLive = None) -> Fabric:
        """Switches cabled like the network, holding what the controller sent for ``state``."""
        return Fabric(state if state is not None else self.compile(), links_of(self.net), dead)


def host_mac(i: int) -> str:
    return f"02:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}"


def from_topology(t: topo_mod.Topology | str, links: bool = True, hosts: bool = True, declare: bool = True) -> Built:
    """A declared topology (or the name of one in topologies/) with every switch present.

    ``links``/``hosts``: whether LLDP has seen every link and every host has been learned;
    ``declare``: whether the Network knows the topology (else it is discovered only).
    """
    if isinstance(t, str):
        t = load(t)
    cabled: list[Cable] = [(t.switches[k.a].dpid, k.a_port, t.switches[k.b].dpid, k.b_port, None) for k in t.links]
    hs = [H(h.name, h.mac, h.ip, t.switches[h.switch].dpid, h.port, h.subnet) for h in t.hosts]
    ports: dict[int, set[int]] = {s.dpid: set() for s in t.switches.values()}
    for d1, p1, d2, p2, _ in cabled:
        ports[d1].add(p1)
        ports[d2].add(p2)
    for h in hs:
        ports[h.dpid].add(h.port)
    return _feed(Network(t if declare else None), ports, cabled if links else [], hs if hosts else [])


def from_graph(
    g: nx.MultiGraph,
    host_switches: list[int],
    subnets: bool = False,
    capacities: dict | None = None,
    uplink: bool = False,
) -> Built:
    """Switches = nodes of ``g`` (ints), one link per edge (parallel edges allowed).

    Ports are numbered per switch in edge order, hosts get the next free ports. With
    ``subnets``, each host switch gets its own declared /24 (10.0.<dpid>.0/24, gateway .1)
    and the hosts on it addresses in it; without, the network is pure L2 (no topology).
    ``capacities`` maps an edge key (u, v, k) to Mbit/s (changes costs, so shortest paths).
    ``uplink`` (with ``subnets``): the first host is the ISP router, its subnet the uplink.
    """
    ports: dict[int, set[int]] = {n: set() for n in g.nodes}

    def next_port(n: int) -> int:
        p = len(ports[n]) + 1
        ports[n].add(p)
        return p

    cabled: list[Cable] = []
    for u, v, k in sorted(g.edges(keys=True)):
        pu, pv = next_port(u), next_port(v)
        cabled.append((u, pu, v, pv, (capacities or {}).get((u, v, k))))
    hosts: list[H] = []
    per_switch: dict[int, int] = {}
    for i, s in enumerate(host_switches):
        n = per_switch[s] = per_switch.get(s, 0) + 1
        ip = f"10.0.{s}.{9 + n}" if subnets else None
        hosts.append(H(f"h{i}", host_mac(i + 1), ip, s, next_port(s), f"sn{s}" if subnets else None))
    topo = _declare(g, cabled, hosts, uplink) if subnets else None
    return _feed(Network(topo), ports, cabled, hosts)


def _declare(g: nx.MultiGraph, cabled: list[Cable], hosts: list[H], uplink: bool) -> topo_mod.Topology:
    """The Topology a graph with one subnet per host switch would be declared as."""
    name = {n: f"s{n}" for n in g.nodes}
    topo = topo_mod.Topology(name="generated")
    topo.switches = {name[n]: topo_mod.Switch(name[n], n) for n in g.nodes}
    topo.links = [topo_mod.Link(name[u], pu, name[v], pv, cap) for u, pu, v, pv, cap in cabled]
    for s in sorted({h.dpid for h in hosts}):
        mine = tuple(topo_mod.Host(h.name, h.ip or "", h.mac, name[s], h.port, f"sn{s}") for h in hosts if h.dpid == s)
        topo.subnets[f"sn{s}"] = topo_mod.Subnet(f"sn{s}", f"sn{s}", f"10.0.{s}.0/24", f"10.0.{s}.1", name[s], mine)
    if uplink and hosts:
        topo.uplink = topo_mod.Uplink(name[hosts[0].dpid], f"sn{hosts[0].dpid}")
    return topo


def _feed(net: Network, ports: dict[int, set[int]], cabled: Iterable[Cable], hosts: list[H]) -> Built:
    for dpid, ps in ports.items():
        net.switch_up(dpid, {p: True for p in sorted(ps)}, 0.0)
    links = []
    for u, pu, v, pv, cap in cabled:
        assert net.link_seen(u, pu, v, pv, 0.0), (u, pu, v, pv)
        if cap is not None and net.links[(u, pu, v, pv)].capacity_mbps is None:
            net.links[(u, pu, v, pv)].capacity_mbps = cap  # undeclared: set as if configured
        links.append((u, pu, v, pv))
    for h in hosts:
        assert net.learn_host(h.mac, h.ip, h.dpid, h.port, NOW), h
    return Built(net, located(net, hosts), links)


def located(net: Network, hosts: list[H]) -> list[H]:
    """The hosts with the locator MACs the network gave them (unknown hosts unchanged)."""
    return [replace(h, loc=net.locators.of(h.mac.lower())) for h in hosts]


# ---- packets and checks shared by the property tests -----------------------------------

BROADCAST = "ff:ff:ff:ff:ff:ff"


def unicast(a: H, b: H) -> Packet:
    """What ``a`` sends ``b`` once ARP told it ``b``'s locator MAC."""
    return Packet(
        eth_src=a.mac,
        eth_dst=b.loc or b.mac,
        eth_type=0x0800,
        ipv4_src=a.ip or "192.0.2.1",
        ipv4_dst=b.ip or "192.0.2.2",
    )


def routed(a: H, b: H) -> Packet:
    return Packet(eth_src=a.mac, eth_dst=GATEWAY_MAC, eth_type=0x0800, ipv4_src=a.ip, ipv4_dst=b.ip, ip_ttl=64)


def check_pair(fab: Fabric, a: H, b: H, pkt: Packet | None = None) -> str | None:
    """None if ``a``'s packet reaches exactly ``b`` once, untagged and loop-free; else why not."""
    res = fab.inject(a.dpid, a.port, pkt or unicast(a, b))
    got = res.delivered_to()
    ok = (
        not res.looped
        and got == [(b.dpid, b.port)]
        and res.deliveries[0].packet.eth_dst == b.mac
        and not res.packet_ins
        and not res.ambiguous
        and res.deliveries[0].packet.vlan_vid is None
    )
    if ok:
        return None
    return f"{a.name}@s{a.dpid}:{a.port} -> {b.name}@s{b.dpid}:{b.port}: got {got}\n{res.format_trace()}"


def all_pairs(fab: Fabric, hosts: list[H]) -> list[str]:
    return [why for a in hosts for b in hosts if a is not b for why in [check_pair(fab, a, b)] if why]


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
    topo = b.net.topology
    if topo:
        for a in b.hosts:
            for c in b.hosts:
                if a.subnet == c.subnet:
                    continue
                res = fab.inject(a.dpid, a.port, routed(a, c))
                d = res.deliveries
                if (
                    res.looped
                    or res.delivered_to() != [(c.dpid, c.port)]
                    or d[0].packet.eth_dst != c.mac
                    or d[0].packet.eth_src != GATEWAY_MAC
                    or d[0].packet.ip_ttl != 63
                    or res.packet_ins
                ):
                    bad.append(f"routed {a.name}->{c.name}: got {res.delivered_to()}\n{res.format_trace()}")
            # An address of a declared subnet nobody has been seen with: the controller ARPs for it.
            assert a.subnet is not None
            sub = topo.subnets[a.subnet]
            used = {h.ip for h in sub.hosts} | {sub.gateway}
            ghost = next(str(ip) for ip in reversed(list(sub.network.hosts())) if str(ip) not in used)
            res = fab.inject(a.dpid, a.port, routed(a, H("ghost", "02:ff:00:00:00:01", ghost, 0, 0)))
            # Asked at the subnet's switch, which holds the subnet's addresses.
            if [p.dpid for p in res.packet_ins] != [topo.switches[sub.switch].dpid] or res.deliveries:
                bad.append(f"unknown {ghost} from {a.name} not punted:\n{res.format_trace()}")
    return bad


def two_edge_connected(g: nx.MultiGraph) -> bool:
    return nx.is_connected(g) and not any(g.number_of_edges(u, v) == 1 for u, v in nx.bridges(nx.Graph(g)))
