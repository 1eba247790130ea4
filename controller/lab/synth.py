"""Synthetic regency-like intranets of any size, for benchmarks and scale tests.

Shape (like PPU, grown): a core pair, distribution switches in rings of eight that are
closed through the core, and edge switches dual-homed to two neighbouring distribution
switches, so every single link failure leaves the network connected. Hosts are spread
over the edge switches in turn, each on its own port (ports 1 up), links on the ports after.
"""

from __future__ import annotations

from itertools import pairwise

import networkx as nx

from controller.core.graph import Network

HOST_PORT = 1  # the first host port on edge switches; links use the ports after the hosts'


def regency_graph(n_switches: int) -> nx.MultiGraph:
    """A 2-edge-connected MultiGraph of ``n_switches`` (>= 6) dpids 1..n."""
    if n_switches < 6:
        raise ValueError("need at least 6 switches")
    n_dist = max(4, n_switches // 12)
    core = [1, 2]
    dist = list(range(3, 3 + n_dist))
    edges = list(range(3 + n_dist, n_switches + 1))
    g = nx.MultiGraph()
    g.add_nodes_from(range(1, n_switches + 1))
    g.add_edge(1, 2)
    for i in range(0, len(dist), 8):
        ring = dist[i : i + 8]
        for a, b in pairwise(ring):
            g.add_edge(a, b)
        g.add_edge(core[0], ring[0])
        g.add_edge(core[1], ring[-1])
    for j, e in enumerate(edges):
        a = dist[j % n_dist]
        b = dist[(j + 1) % n_dist]
        g.add_edge(e, a)
        g.add_edge(e, b)
    return g


def network_from_graph(g: nx.MultiGraph, hosts_on: list[int], now: float = 100.0) -> Network:
    """A fully discovered Network: on each switch, its hosts on ports 1.., then its links.
    Host addresses are 10.<dpid>.<port> (a /24 per switch, as an office has its own)."""
    net = Network(edge_probation=0.0)
    net.max_hosts = max(net.max_hosts, len(hosts_on))
    host_port: dict[int, int] = {}
    places = []
    for d in hosts_on:
        host_port[d] = host_port.get(d, 0) + 1
        places.append((d, host_port[d]))
    next_port = {d: host_port.get(d, 0) + 1 for d in g.nodes}
    ends = []
    for u, v in g.edges():
        pu, pv = next_port[u], next_port[v]
        next_port[u] += 1
        next_port[v] += 1
        ends.append((u, pu, v, pv))
    for d in g.nodes:
        net.switch_up(d, {p: True for p in range(1, next_port[d])}, 0.0)
    for u, pu, v, pv in ends:
        net.link_seen(u, pu, v, pv, now)
    for i, (d, port) in enumerate(places):
        ip = f"10.{(d >> 8) & 255}.{d & 255}.{port}"  # a /24 per switch: one office, one subnet
        mac = f"02:00:{(i >> 24) & 255:02x}:{(i >> 16) & 255:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}"
        net.learn_host(mac, ip, d, port, now)
    return net


def regency_network(n_switches: int, hosts: int) -> Network:
    g = regency_graph(n_switches)
    n_dist = max(4, n_switches // 12)
    edge_switches = list(range(3 + n_dist, n_switches + 1))
    return network_from_graph(g, [edge_switches[i % len(edge_switches)] for i in range(hosts)])
