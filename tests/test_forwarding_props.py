"""Property tests: on random looped topologies the compiled tables deliver every host pair
exactly once, route between subnets, flood broadcast loop-free, and punt ARP.

Topologies are random trees plus random extra edges (parallel links allowed), with random
link capacities (so costs and shortest-path ties vary) and hosts on random switches. The
OpenFlow messages the shell would send for the compiled state (encoded, parsed back) are
applied to controller.lab.tablemodel switches, and frames are run through those.
"""

from __future__ import annotations

import dataclasses

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core import topology
from controller.core.state import T_FWD, Flow
from tests.builders import all_pairs, broadcast_ok, check_network, check_pair, from_graph, from_topology

SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def looped_networks(draw, min_switches: int = 3, max_switches: int = 15):
    n = draw(st.integers(min_switches, max_switches))
    g = nx.MultiGraph()
    g.add_nodes_from(range(1, n + 1))
    for i in range(2, n + 1):  # a random tree ...
        g.add_edge(draw(st.integers(1, i - 1)), i)
    node = st.integers(1, n)
    for u, v in draw(st.lists(st.tuples(node, node), max_size=n)):  # ... plus extra (maybe parallel) links
        if u != v:
            g.add_edge(u, v)
    caps = {}
    if draw(st.booleans()):
        for e in sorted(g.edges(keys=True)):
            caps[e] = draw(st.sampled_from([100, 300, 1000, 10000]))
    hosts = draw(st.lists(node, min_size=2, max_size=8))
    subnets = draw(st.booleans())
    return from_graph(g, hosts, subnets=subnets, capacities=caps)


@SETTINGS
@given(looped_networks())
def test_random_looped_networks_forward_correctly(b):
    bad = check_network(b)
    assert not bad, "\n".join(bad[:3])


def test_ppu_all_pairs_routed_and_broadcast():
    b = from_topology(topology.load(topology.DEFAULT_TOPOLOGY))
    assert len(b.hosts) >= 10
    bad = check_network(b)
    assert not bad, "\n".join(bad[:3])


def mac_matches(f: Flow, mac: str) -> bool:
    """``f`` matches frames to ``mac`` on eth_dst (exactly or masked)."""
    want = dict(f.match).get("eth_dst")
    if want is None:
        return False
    value, mask = want if isinstance(want, tuple) else (want, "ff:ff:ff:ff:ff:ff")
    v, m, x = (int(a.replace(":", ""), 16) for a in (value, mask, mac))
    return x & m == v & m


def test_checks_can_fail():
    """A deliberately broken state must be caught (guards against vacuous properties)."""
    g = nx.MultiGraph()
    nx.add_path(g, [1, 2, 3, 4, 1])
    b = from_graph(g, [1, 3, 3], subnets=True)
    state = b.compile()
    fab = b.fabric(state)
    assert not all_pairs(fab, b.hosts) and not check_network(b)
    # Send every frame for h1 (on s3) back where it came from on s2, on the label route to
    # s3 that the frames from s1 take: a loop (or a drop).
    h1 = b.hosts[1]
    assert h1.loc is not None and h1.dpid == 3
    s2 = state[2]
    routes = [k for k, f in s2.flows.items() if f.table == T_FWD and f.priority in (100, 10) and mac_matches(f, h1.loc)]
    assert routes
    for k in routes:
        f = s2.flows[k]
        s2.flows[k] = f.__class__(f.table, f.priority, f.match, (("output", "in_port"),))
    broken = b.fabric(state)
    assert any(check_pair(broken, a, h1) for a in b.hosts if a is not h1)
    # h1's own entry at s3 delivering without putting its real MAC back: caught as well.
    state = b.compile()
    (k,) = [k for k, f in state[3].flows.items() if f.table == T_FWD and dict(f.match).get("eth_dst") == h1.loc]
    f = state[3].flows[k]
    state[3].flows[k] = dataclasses.replace(f, actions=())
    broken = b.fabric(state)
    assert all(check_pair(broken, a, h1) for a in b.hosts if a is not h1)
    # Add the spanning-tree-breaking port back to a flood group: broadcast must loop or duplicate.
    from controller.core.compiler import FLOOD_GROUP
    from controller.core.state import Bucket, Group

    state = b.compile()
    for s in state.values():
        ports = sorted({p for p in range(1, 5)})
        s.groups[FLOOD_GROUP] = Group(FLOOD_GROUP, "all", tuple(Bucket((("output", p),)) for p in ports))
        for k in [k for k, f in s.flows.items() if f.priority == 500]:
            del s.flows[k]
    assert broadcast_ok(b.fabric(state), b.hosts, b.hosts[0])


@pytest.mark.parametrize("n", [3, 8])
def test_pure_l2_full_mesh_with_parallel_links(n):
    g = nx.MultiGraph(nx.complete_graph(range(1, n + 1)))
    g.add_edge(1, 2)
    g.add_edge(1, 2)
    b = from_graph(g, list(range(1, n + 1)) + [1, 2])
    bad = check_network(b)
    assert not bad, "\n".join(bad[:3])
