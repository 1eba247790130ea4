"""controller.core.routes: label routes (a default and exceptions per switch) forward exactly as
the full next-hop table, default routes never form a cycle, and a frame to a label nobody has
is dropped, never looped (checked on compiled tables with controller.lab.tablemodel)."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core import address
from controller.core.routes import Pair, PairLink, RouteTable, SwitchRoutes, cycle_breakers
from controller.lab.tablemodel import Packet
from tests.builders import Built, from_graph

SETTINGS = settings(
    max_examples=40, deadline=None, derandomize=True, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)


Edge = tuple[int, int, int, int]  # (src, dst, cost, port at src)


def pairs_of(g: nx.MultiGraph, cost: dict | None = None) -> dict[Pair, PairLink]:
    """The link each switch pair uses (the cheapest, then the lowest key, as the compiler
    picks), ports numbered per switch in edge order (as from_graph)."""
    used: dict[int, int] = {}
    best: dict[Pair, PairLink] = {}
    for u, v, k in sorted(g.edges(keys=True)):
        pu = used[u] = used.get(u, 0) + 1
        pv = used[v] = used.get(v, 0) + 1
        c = (cost or {}).get((u, v, k), 1)
        a, b, pa, pb = (u, v, pu, pv) if u < v else (v, u, pv, pu)
        cand = PairLink(c, (a, pa, b, pb), (pa, pb))
        cur = best.get((a, b))
        if cur is None or (c, cand.key) < (cur.cost, cur.key):
            best[(a, b)] = cand
    return best


def edges_of(pairs: dict[Pair, PairLink]) -> list[Edge]:
    return [e for (u, v), pl in pairs.items() for e in ((u, v, pl.cost, pl.ports[0]), (v, u, pl.cost, pl.ports[1]))]


def routes_of(switches: list[int], pairs: dict[Pair, PairLink]) -> tuple[RouteTable, dict[int, SwitchRoutes]]:
    """What the compiler gives each switch: the port most routes use as its default (none
    where defaults would cycle), and exceptions."""
    t = RouteTable(switches, pairs)
    modes = {s: t.mode(s) for s in t.switches}
    breakers = cycle_breakers(modes, t.neighbour)
    return t, {s: t.routes(s, None if s in breakers else modes[s]) for s in t.switches}


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


def check_table(switches: list[int], pairs: dict[Pair, PairLink]) -> dict[int, SwitchRoutes]:
    """The compressed table forwards as the full one, and every hop is on a shortest path."""
    hops, table = routes_of(switches, pairs)
    edges = edges_of(pairs)
    g = nx.DiGraph()
    g.add_nodes_from(switches)
    for src, dst, c, _p in edges:
        g.add_edge(src, dst, cost=c)
    dist = {d: nx.single_source_dijkstra_path_length(g.reverse(), d, weight="cost") for d in switches}
    by_port = {(e[0], e[3]): e for e in edges}
    for s in switches:
        for d in switches:
            full = int(hops.ports[hops.col[d], hops.col[s]])
            got = table[s].port_to(d)
            if s == d or s not in dist[d]:
                assert full == -1, (s, d, full)  # no route to itself or to what it cannot reach
                continue
            assert got == full, (s, d, got, full)
            e = by_port[(s, got)]
            assert e[2] + dist[d][e[1]] == dist[d][s], (s, d, e)  # on a shortest path
            # Ties go to the lowest dpid neighbour (the paths NetworkX-based code chose).
            best = min(x[1] for x in edges if x[0] == s and x[2] + dist[d].get(x[1], 1e18) == dist[d][s])
            assert e[1] == best, (s, d, e, best)
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
    pairs = pairs_of(g)
    table = check_table([1, 2, 3, 4], pairs)
    assert table[1] == SwitchRoutes(1, {})  # one uplink: everything by default
    assert table[4] == SwitchRoutes(1, {})
    # 2 and 3 send two destinations each towards the other: their defaults would point at
    # each other (an unknown label would bounce between them), so the lower dpid has none.
    assert table[3] == SwitchRoutes(1, {4: 2})
    assert table[2] == SwitchRoutes(None, {1: 1, 3: 2, 4: 2})
    assert default_walk_has_no_cycle(table, RouteTable([1, 2, 3, 4], pairs).neighbour)


def test_a_ring_breaks_its_cycle_of_default_routes_at_the_lowest_dpid():
    # Every switch's most used port leads clockwise: without a breaker, an unknown label
    # would go round for ever.
    g = nx.MultiGraph()
    nx.add_cycle(g, [1, 2, 3, 4, 5])
    pairs = pairs_of(g)
    hops = RouteTable([1, 2, 3, 4, 5], pairs)
    table = check_table([1, 2, 3, 4, 5], pairs)
    assert default_walk_has_no_cycle(table, hops.neighbour)
    none = [s for s, r in table.items() if r.default is None]
    for s in none:  # no default there: every destination is explicit
        assert set(table[s].exceptions) == {1, 2, 3, 4, 5} - {s}


def test_no_links_or_a_link_to_a_stranger():
    assert routes_of([1, 2], {})[1] == {1: SwitchRoutes(None, {}), 2: SwitchRoutes(None, {})}
    g = nx.MultiGraph([(1, 2)])
    # A link to a switch that is not one of ours is left out.
    pairs = pairs_of(g) | {(2, 9): PairLink(1, (2, 7, 9, 1), (7, 1))}
    table = routes_of([1, 2], pairs)[1]
    # Each one's default would lead to the other: the lower dpid has none.
    assert table == {1: SwitchRoutes(None, {2: 1}), 2: SwitchRoutes(1, {})}


def test_two_islands_route_only_within_themselves():
    g = nx.MultiGraph([(1, 2), (3, 4)])
    check_table([1, 2, 3, 4], pairs_of(g))


@SETTINGS
@given(two_edge_connected())
def test_default_and_exceptions_equal_the_full_table_and_defaults_never_cycle(net):
    g, cost = net
    switches = sorted(g.nodes)
    pairs = pairs_of(g, cost)
    table = check_table(switches, pairs)
    assert default_walk_has_no_cycle(table, RouteTable(switches, pairs).neighbour)


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
