"""The route table's repairs (one link lost or added) against a table computed afresh.

Random graphs with costs 1-3 (many equal-cost paths, so the lowest-dpid rule for ties is
exercised), random sequences of links lost, added and given other ports; after each
change the repaired distances, out ports and next hops must equal a fresh table's, and
the switches ``change`` reports must include every switch whose out ports changed.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.routes import PairLink, RouteTable, cycle_breakers

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, print_blob=True)


@st.composite
def graphs(draw):
    n = draw(st.integers(2, 9))
    pairs = [(u, v) for u in range(1, n + 1) for v in range(u + 1, n + 1)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, min_size=1, max_size=len(pairs)))
    links = {
        pr: PairLink(draw(st.integers(1, 3)), (pr[0], 10 + pr[1], pr[1], 10 + pr[0]), (10 + pr[1], 10 + pr[0]))
        for pr in chosen
    }
    ops = draw(
        st.lists(
            st.tuples(st.sampled_from(pairs), st.integers(1, 3), st.sampled_from(["toggle", "ports"])), max_size=10
        )
    )
    return n, links, ops


@SETTINGS
@given(graphs())
def test_repaired_table_equals_a_fresh_one(case):
    n, links, ops = case
    switches = list(range(1, n + 1))
    table = RouteTable(switches, links)
    for pr, c, what in ops:
        old = links.get(pr)
        if what == "ports" and old is not None:
            new: PairLink | None = PairLink(old.cost, old.key, (old.ports[0] + 100, old.ports[1] + 100))
        elif old is not None:
            new = None
        else:
            new = PairLink(c, (pr[0], 10 + pr[1], pr[1], 10 + pr[0]), (10 + pr[1], 10 + pr[0]))
        links = dict(links)
        if new is None:
            del links[pr]
        else:
            links[pr] = new
        before = table.ports.copy()
        moved = table.change(links, {pr: (old, new)})
        fresh = RouteTable(switches, links)
        assert np.array_equal(table.dist, fresh.dist), (pr, old, new)
        assert np.array_equal(table.ports, fresh.ports), (pr, old, new)
        assert np.array_equal(table.nh, fresh.nh), (pr, old, new)
        really = {table.switches[j] for j in np.flatnonzero((before != table.ports).any(axis=0)).tolist()}
        assert really <= moved


def test_default_routes_never_form_a_cycle():
    # A triangle where each switch's most used port points at the next one.
    neighbour = {(1, 2): 2, (2, 3): 3, (3, 1): 1}
    assert cycle_breakers({1: 2, 2: 3, 3: 1}, neighbour) == {1}
    assert cycle_breakers({1: 2, 2: 3, 3: None}, neighbour) == set()
