"""controller.core.routes: label routes (a default and exceptions per switch) forward exactly as
the full next-hop table, default routes never form a cycle, and a frame to a label nobody has
is dropped, never looped (checked on compiled tables with controller.lab.tablemodel)."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core import address
from controller.core.routes import Edge, NextHops, SwitchRoutes
from controller.lab.tablemodel import Packet
from tests.builders import Built, from_graph

SETTINGS = settings(
    max_examples=40, deadline=None, derandomize=True, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)


def edges_of(g: nx.MultiGraph, cost: dict | None = None) -> list[Edge]:
    """Both directions of every link, ports numbered per switch in edge order (as from_graph)."""
    used: dict[int, int] = {}
    out = []
    for u, v, k in sorted(g.edges(keys=True)):
        pu = used[u] = used.get(u, 0) + 1
        pv = used[v] = used.get(v, 0) + 1
        c = (cost or {}).get((u, v, k), 1)
        out += [Edge(u, v, c, pu), Edge(v, u, c, pv)]
    return out


@st.composite
def two_edge_connected(draw, max_switches: int = 12):
    """A ring through the switches in a random order plus random chords (parallel links
    allowed), with random costs: no single link cut disconnects it."""
    n = draw(st.integers(3, max_switches))
    order = draw(st.permutations(list(range(1, n + 1))))
    g = nx.MultiGraph()
    g.add_nodes_from(range(1, n + 1))
    nx.add_cycle(g, order)
    node = st.integers(1, n)
    for u, v in draw(st.lists(st.tuples(node, node), max_size=n)):
        if u != v:
            g.add_edge(u, v)
    cost = {e: draw(st.sampled_from([1, 3, 10, 100])) for e in sorted(g.edges(keys=True))}
    return g, cost


def check_table(switches: list[int], edges: list[Edge], dests: list[int]) -> dict[int, SwitchRoutes]:
    """The compressed table forwards as the full one, and every hop is on a shortest path."""
    hops = NextHops(switches, edges, dests)
    table = hops.table()
    g = nx.DiGraph()
    g.add_nodes_from(switches)
    for e in edges:
        if not g.has_edge(e.src, e.dst) or g[e.src][e.dst]["cost"] > e.cost:
            g.add_edge(e.src, e.dst, cost=e.cost)
    dist = {d: nx.single_source_dijkstra_path_length(g.reverse(), d, weight="cost") for d in dests}
    col = {s: j for j, s in enumerate(hops.switches)}
    row = {d: i for i, d in enumerate(hops.dests)}
    by_port = {(e.src, e.port): e for e in edges}
    for s in switches:
        for d in dests:
            full = int(hops.ports[row[d], col[s]])
            got = table[s].port_to(d)
            if s == d or s not in dist[d]:
                assert full == -1, (s, d, full)  # no route to itself or to what it cannot reach
                continue
            assert got == full, (s, d, got, full)
            e = by_port[(s, got)]
            assert e.cost + dist[d][e.dst] == dist[d][s], (s, d, e)  # on a shortest path
            # Ties go to the lowest dpid neighbour (the paths NetworkX-based code chose).
            best = min(x.dst for x in edges if x.src == s and x.cost + dist[d].get(x.dst, 1e18) == dist[d][s])
            assert e.dst == best, (s, d, e, best)
        # Exceptions only where they differ from the default.
        r = table[s]
        assert all(p != r.default for p in r.exceptions.values())
    return table


def default_walk_has_no_cycle(table: dict[int, SwitchRoutes], neighbour: dict[tuple[int, int], int]) -> bool:
    for start in table:
        seen, s = set(), start
        while s is not None and table[s].default is not None:
            if s in seen:
                return False
            seen.add(s)
            s = neighbour.get((s, table[s].default))
    return True


def test_a_line_gets_defaults_towards_the_middle_and_exceptions():
    g = nx.MultiGraph([(1, 2), (2, 3), (3, 4)])
    edges = edges_of(g)
    table = check_table([1, 2, 3, 4], edges, [1, 2, 3, 4])
    assert table[1] == SwitchRoutes(1, {})  # one uplink: everything by default
    assert table[4] == SwitchRoutes(1, {})
    # 2 and 3 send two destinations each towards the other: their defaults would point at
    # each other (an unknown label would bounce between them), so the lower dpid has none.
    assert table[3] == SwitchRoutes(1, {4: 2})
    assert table[2] == SwitchRoutes(None, {1: 1, 3: 2, 4: 2})
    assert default_walk_has_no_cycle(table, NextHops([1, 2, 3, 4], edges, [1]).neighbour)


def test_a_ring_breaks_its_cycle_of_default_routes_at_the_lowest_dpid():
    # Every switch's most used port leads clockwise: without a breaker, an unknown label
    # would go round for ever.
    g = nx.MultiGraph()
    nx.add_cycle(g, [1, 2, 3, 4, 5])
    edges = edges_of(g)
    hops = NextHops([1, 2, 3, 4, 5], edges, [1, 2, 3, 4, 5])
    table = check_table([1, 2, 3, 4, 5], edges, [1, 2, 3, 4, 5])
    assert default_walk_has_no_cycle(table, hops.neighbour)
    none = [s for s, r in table.items() if r.default is None]
    for s in none:  # no default there: every destination is explicit
        assert set(table[s].exceptions) == {1, 2, 3, 4, 5} - {s}


def test_no_destinations_or_no_links():
    assert NextHops([1, 2], [], [1, 2]).table() == {1: SwitchRoutes(None, {}), 2: SwitchRoutes(None, {})}
    g = nx.MultiGraph([(1, 2)])
    assert NextHops([1, 2], edges_of(g), []).table() == {1: SwitchRoutes(None, {}), 2: SwitchRoutes(None, {})}
    # A destination that is not a switch is left out; an edge to a stranger too.
    table = NextHops([1, 2], edges_of(g) + [Edge(2, 9, 1, 7)], [2, 9]).table()
    assert table == {1: SwitchRoutes(1, {}), 2: SwitchRoutes(None, {})}


def test_two_islands_route_only_within_themselves():
    g = nx.MultiGraph([(1, 2), (3, 4)])
    check_table([1, 2, 3, 4], edges_of(g), [1, 2, 3, 4])


@SETTINGS
@given(two_edge_connected(), st.data())
def test_default_and_exceptions_equal_the_full_table_and_defaults_never_cycle(net, data):
    g, cost = net
    switches = sorted(g.nodes)
    dests = data.draw(st.lists(st.sampled_from(switches), min_size=1, unique=True))
    edges = edges_of(g, cost)
    table = check_table(switches, edges, dests)
    assert default_walk_has_no_cycle(table, NextHops(switches, edges, dests).neighbour)


# ---- on compiled tables: a label nobody has --------------------------------------------------


def unknown_label_never_loops(b: Built, fab=None, detours: bool = False) -> list[str]:
    """Frames to labels nobody has, from every host. ``detours``: a link is dead, and a
    frame on a detour may pass a switch twice (it turns back at the dead link)."""
    fab = fab or b.fabric()
    free = max(b.net.locators.labels.values()) + 1
    bad = []
    for h in b.hosts:
        for loc in (address.locator(free, 1), address.locator(address.MAX_LABEL, 77)):
            res = fab.inject(h.dpid, h.port, Packet(eth_src=h.mac, eth_dst=loc, eth_type=0x0800))
            twice = len({x.dpid for x in res.trace}) != len(res.trace)
            if res.looped or res.deliveries or res.packet_ins or (twice and not detours) or not res.trace:
                bad.append(f"{loc} from {h.name}:\n{res.format_trace()}")
    return bad


@pytest.mark.parametrize("n", [3, 4, 6])
def test_a_frame_to_an_unknown_label_is_dropped_on_a_ring(n):
    g = nx.MultiGraph()
    nx.add_cycle(g, range(1, n + 1))
    b = from_graph(g, list(range(1, n + 1)), subnets=True)
    assert not unknown_label_never_loops(b)
    # Also while any one link is dead (frames on detours).
    fab = b.fabric()
    for d1, p1, d2, p2 in b.links:
        assert not unknown_label_never_loops(b, fab.with_liveness({(d1, p1), (d2, p2)}), detours=True)


@SETTINGS
@given(two_edge_connected(max_switches=9), st.data())
def test_a_frame_to_an_unknown_label_is_dropped_on_random_graphs(net, data):
    g, cost = net
    hosts = data.draw(st.lists(st.sampled_from(sorted(g.nodes)), min_size=2, max_size=6))
    b = from_graph(g, hosts, subnets=data.draw(st.booleans()), capacities={e: 10000 // c for e, c in cost.items()})
    bad = unknown_label_never_loops(b)
    assert not bad, bad[0]
