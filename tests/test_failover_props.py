"""Fast failover, proven on random 2-edge-connected topologies (a ring plus random chords,
parallel links allowed).

The switches are table-model switches holding what the controller sent them (the
OpenFlow messages, encoded and parsed back). For every single link failure both ports of
the link are marked dead while the switches keep the *pre-failure* tables: this is the
window between the carrier loss and the controller's recompilation, where only the
fast-failover groups (a bucket is live iff its watch port is up) and their VLAN-tagged
detours act. Then the controller's own view (ports down, link gone) is recompiled, the
difference is sent on top of the pre-failure tables, and everything must work again.

A detour for the link s->n ends at n, which then forwards by its normal shortest path;
when that path leaves by the port the detour came in on, n must send the frame back out
of its in_port, which OpenFlow only does for OFPP_IN_PORT (the U-turn group; see
test_ring4_detour_past_destination, once a counterexample).
"""

from __future__ import annotations

import copy

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core.state import Flow
from controller.lab.tablemodel import Fabric, update
from tests.builders import NOW, Built, all_pairs, check_network, from_graph, two_edge_connected, unicast

SETTINGS = settings(
    max_examples=30, deadline=None, derandomize=True, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def ring_networks(draw, min_switches: int = 3, max_switches: int = 10):
    n = draw(st.integers(min_switches, max_switches))
    g = nx.MultiGraph()
    nx.add_cycle(g, range(1, n + 1))
    node = st.integers(1, n)
    for u, v in draw(st.lists(st.tuples(node, node), max_size=n)):
        if u != v:
            g.add_edge(u, v)
    caps = {}
    if draw(st.booleans()):
        for e in sorted(g.edges(keys=True)):
            caps[e] = draw(st.sampled_from([100, 1000, 10000]))
    hosts = draw(st.lists(node, min_size=2, max_size=6))
    b = from_graph(g, hosts, subnets=draw(st.booleans()), capacities=caps)
    assert two_edge_connected(g)
    return b


def failures(b: Built):
    """(link, dead ports) for every single link of the network."""
    for d1, p1, d2, p2 in sorted(b.net.links):
        yield (d1, p1, d2, p2), {(d1, p1), (d2, p2)}


def safety_violations(b: Built, base: Fabric | None = None) -> list[str]:
    """During each single failure: no loop, no duplicate, no wrong host, no packet-in, no tag leak."""
    base = base or b.fabric()
    bad = []
    for link, dead in failures(b):
        fab = base.with_liveness(dead)
        for a in b.hosts:
            for c in b.hosts:
                if a is c:
                    continue
                res = fab.inject(a.dpid, a.port, unicast(a, c))
                if (
                    res.looped
                    or res.delivered_to() not in ([], [(c.dpid, c.port)])
                    or res.packet_ins
                    or res.ambiguous
                    or any(d.packet.vlan_vid is not None for d in res.deliveries)
                ):
                    bad.append(f"link {link} down, {a.name}->{c.name}:\n{res.format_trace()}")
    return bad


def delivery_failures(b: Built) -> list[str]:
    base = b.fabric()
    return [
        f"link {link} down: {why}" for link, dead in failures(b) for why in all_pairs(base.with_liveness(dead), b.hosts)
    ]


def after_recompile(b: Built) -> list[str]:
    """The controller's view after each failure (ports down, link and its hosts gone), recompiled
    and sent as a difference to switches that hold the pre-failure tables."""
    bad = []
    before = b.compile()
    held = b.fabric(before).switches
    for link, dead in failures(b):
        net = copy.deepcopy(b.net)
        for d, p in sorted(dead):
            net.port_status(d, p, False, NOW)
        assert link not in net.links
        nb = Built(net, b.hosts, [other for other in b.links if other != link])
        fab = nb.fabric(update(held, before, nb.compile()), dead)
        bad += [f"after recompiling without {link}: {why}" for why in check_network(nb, fab)]
    return bad


@SETTINGS
@given(ring_networks())
def test_single_failure_never_loops_or_misdelivers(b):
    bad = safety_violations(b)
    assert not bad, "\n".join(bad[:3])


@SETTINGS
@given(ring_networks())
def test_single_failure_every_pair_still_delivered(b):
    bad = delivery_failures(b)
    assert not bad, "\n".join(bad[:3])


@SETTINGS
@given(ring_networks())
def test_recompiled_after_failure_delivers_everything(b):
    bad = after_recompile(b)
    assert not bad, "\n".join(bad[:3])


def ring4() -> Built:
    g = nx.MultiGraph()
    nx.add_cycle(g, [1, 2, 3, 4])  # ports: s1:1-s2:1, s1:2-s4:1, s2:2-s3:1, s3:2-s4:2; hosts on port 3
    return from_graph(g, [1, 3])


def test_ring4_detour_past_destination():
    """Once a minimal counterexample: s1's shortest path to s3 is via s2 (tie broken by lowest
    dpid). With s1-s2 down, s1's FF group tags the frame onto the detour s1 -> s4 -> s3 -> s2,
    which passes the destination switch s3; s2 pops the tag and must send the frame back to
    s3 out of its in_port, which OpenFlow only does when told so (the U-turn egress flow)."""
    b = ring4()
    h0, h1 = b.hosts
    fab = b.fabric(dead={(1, 1), (2, 1)})
    res = fab.inject(h0.dpid, h0.port, unicast(h0, h1))
    assert res.delivered_to() == [(h1.dpid, h1.port)], res.format_trace()


def test_ring4_other_failures_and_recompile_are_fine():
    b = ring4()
    assert not safety_violations(b)
    assert not after_recompile(b)
    h0, h1 = b.hosts
    assert not all_pairs(b.fabric(dead={(3, 2), (4, 2)}), b.hosts)


def test_failover_checks_can_fail():
    """Deliberately broken states must be reported (guards against vacuous properties)."""
    b = ring4()
    # Without protection (plain outputs), a failure on the path loses frames.
    assert all_pairs(b.fabric(b.compile(protect=False), dead={(2, 2), (3, 1)}), b.hosts)
    # FF groups without their detour bucket: lost too.
    state = b.compile()
    for s in state.values():
        for gid, grp in list(s.groups.items()):
            if grp.type == "ff" and len(grp.buckets) == 2:
                s.groups[gid] = grp.__class__(gid, "ff", grp.buckets[:1])
    assert all_pairs(b.fabric(state, dead={(2, 2), (3, 1)}), b.hosts)
    # Detour ends that forget to pop the tag: tagged frames reach hosts (a safety violation).
    state = b.compile()
    for s in state.values():
        for k, f in list(s.flows.items()):
            if f.actions == (("pop_vlan",),):
                s.flows[k] = Flow(f.table, f.priority, f.match, (), goto=f.goto)
    assert safety_violations(b, b.fabric(state))
