"""Incremental compilation, checked against the full compile (the oracle).

A Compiler's ``update`` recomputes only what an event affects (controller.core.compiler
_Engine: fragments owned by a switch, a host, an OPD, a detour). After every step of a
random sequence of events (hosts joining, moving and leaving, links going down and up,
ports flapping, policies put and deleted, time passing edge-port probation), its state
must equal a fresh full compile of the same network with the same sticky numbering
(meter ids, detour VLAN ids, locators), and every switch whose state changed must be
among the switches ``update`` says changed (those are the only ones the controller diffs).
"""

from __future__ import annotations

import copy

import networkx as nx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core.compiler import Compiler
from controller.core.state import Changes, DesiredState, diff, diff_entries
from controller.lab.tablemodel import Fabric, links_of
from tests.builders import NOW, Built, Pol, all_pairs, from_graph, located

SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)

EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["host", "move", "unplug", "replug", "link_down", "link_up", "put", "delete", "wait", "share"]),
        st.integers(0, 1_000_000),
    ),
    min_size=1,
    max_size=14,
)


@st.composite
def networks(draw):
    n = draw(st.integers(3, 8))
    g = nx.MultiGraph()
    nx.add_cycle(g, range(1, n + 1))
    for _ in range(draw(st.integers(0, 3))):
        u, v = draw(st.integers(1, n)), draw(st.integers(1, n))
        if u != v:
            g.add_edge(u, v)
    hosts = draw(st.lists(st.integers(1, n), min_size=2, max_size=6))
    return g, hosts


def _oracle(c: Compiler, b: Built, policies: dict, now: float, shares: dict | None = None) -> DesiredState:
    fresh = Compiler(meter_ids=c.meter_numbers, count=c.count, vids=dict(c.vids))
    return fresh.compile(b.net, policies, now, shares=shares)


def _step(b: Built, kind: str, r: int, policies: dict, spare: dict, now: float) -> float:
    net = b.net
    switches = sorted(net.ports)
    hosts = sorted(net.hosts)
    if kind == "host":
        d = switches[r % len(switches)]
        port = 100 + len(net.ports[d])
        net.port_status(d, port, True, now - 100)  # long past probation
        i = r % 250 + 1
        mac = f"02:aa:00:00:{i >> 8:02x}:{i & 255:02x}"
        net.learn_host(mac, f"10.0.{d}.{100 + i % 100}", d, port, now)
    elif kind == "move" and hosts:
        mac = hosts[r % len(hosts)]
        h = net.hosts[mac]
        d = switches[r % len(switches)]
        port = 200 + len(net.ports[d])
        net.port_status(h.dpid, h.port, False, now)  # the old place is gone: no verification
        net.port_status(d, port, True, now - 100)
        net.learn_host(mac, h.ip, d, port, now)
    elif kind == "unplug" and hosts:
        h = net.hosts[hosts[r % len(hosts)]]
        spare[(h.dpid, h.port)] = h
        net.port_status(h.dpid, h.port, False, now)
    elif kind == "replug" and spare:
        key = sorted(spare)[r % len(spare)]
        h = spare.pop(key)
        net.port_status(h.dpid, h.port, True, now)
        net.learn_host(h.mac, h.ip, h.dpid, h.port, now + 3)
        return now + 3  # past probation, so the host counts
    elif kind == "link_down" and net.links:
        k = sorted(net.links)[r % len(net.links)]
        net.port_status(k[0], k[1], False, now)
        net.port_status(k[2], k[3], False, now)
    elif kind == "link_up":
        cabled = [k for k in b.links if k not in net.links]
        if cabled:
            k = cabled[r % len(cabled)]
            net.port_status(k[0], k[1], True, now)
            net.port_status(k[2], k[3], True, now)
            net.link_seen(k[0], k[1], k[2], k[3], now)
    elif kind == "put":
        topo = net.topology
        assert topo is not None
        subs = sorted(topo.subnets)
        sub = topo.subnets[subs[r % len(subs)]]
        opd = f"opd{r % 3}"
        policies[opd] = Pol(opd, (sub.cidr,), 1000 + r % 5000, 500 + r % 3000)
        # one subnet per policy at most: drop any other policy on the same subnet
        for other in [o for o, p in policies.items() if o != opd and p.subnets == (sub.cidr,)]:
            del policies[other]
    elif kind == "delete" and policies:
        del policies[sorted(policies)[r % len(policies)]]
    elif kind == "wait":
        return now + 1 + r % 3
    return now + 0.1


@SETTINGS
@given(networks(), EVENTS)
def test_incremental_equals_full_compile_after_every_event(graph_hosts, events):
    g, host_switches = graph_hosts
    b = from_graph(g, host_switches, subnets=True, uplink=True)
    c = Compiler(count=True)
    policies: dict = {}
    now = NOW
    state, _changed = c.update(b.net, policies, now)
    assert state == _oracle(c, b, policies, now)
    spare: dict = {}
    shares: dict | None = None
    for kind, r in events:
        before = copy.deepcopy(state)
        if kind == "share":  # sharing on with new allocations, or off
            shares = None if r % 4 == 0 else {o: (1 + r % 5000, 1 + r % 3000) for o in sorted(policies)[: r % 3]}
        now = _step(b, kind, r, policies, spare, now)
        state, changed = c.update(b.net, policies, now, shares=shares)
        want = _oracle(c, b, policies, now, shares)
        assert state == want, f"after {kind} {r}: {_differences(state, want)}"
        moved = {d for d in set(before) | set(state) if before.get(d) != state.get(d)}
        assert moved <= changed, f"after {kind}: switches {sorted(moved - changed)} changed unannounced"
        # The entries it says changed are all a diff needs to look at (controller.compile
        # diffs only those): the same changes as comparing whole tables.
        if c.entries is not None:
            for d in moved:
                e = c.entries[d]
                assert _same(diff_entries(before[d], state[d], e.flows, e.groups, e.meters), diff(before[d], state[d]))


@SETTINGS
@given(networks(), EVENTS)
def test_incremental_state_still_forwards(graph_hosts, events):
    """The incremental state is a working network, not only equal to the oracle: every
    known host reaches every other (table model), after the events."""
    g, host_switches = graph_hosts
    b = from_graph(g, host_switches)
    c = Compiler()
    now = NOW
    c.update(b.net, {}, now)
    spare: dict = {}
    for kind, r in events:
        if kind in ("put", "delete", "host"):
            continue  # no declared subnets here: pure L2
        now = _step(b, kind, r, {}, spare, now)
    state, _ = c.update(b.net, {}, now)
    if not nx.is_connected(b.net.graph()):
        return
    live = [h for h in located(b.net, b.hosts) if h.mac in b.net.hosts and b.net.hosts[h.mac].dpid == h.dpid]
    live = [h for h in live if b.net.hosts[h.mac].port == h.port]
    assert all_pairs(Fabric(state, links_of(b.net)), live) == []


def _same(a: Changes, b: Changes) -> bool:
    return all(
        sorted(map(repr, getattr(a, f))) == sorted(map(repr, getattr(b, f)))
        for f in ("meters_add", "meters_mod", "meters_del", "groups_add", "groups_mod", "groups_del")
        + ("flows_add", "flows_mod", "flows_del")
    )


def _differences(a: DesiredState, b: DesiredState) -> str:
    out = []
    for d in sorted(set(a) | set(b)):
        x, y = a.get(d), b.get(d)
        if x == y:
            continue
        if x is None or y is None:
            out.append(f"switch {d}: only in {'oracle' if x is None else 'incremental'}")
            continue
        for name in ("flows", "groups", "meters"):
            xs, ys = getattr(x, name), getattr(y, name)
            extra = [xs[k] for k in xs if k not in ys or xs[k] != ys[k]]
            missing = [ys[k] for k in ys if k not in xs or xs[k] != ys[k]]
            if extra or missing:
                out.append(f"switch {d} {name}: incremental has {extra[:3]}, oracle has {missing[:3]}")
    return "\n".join(out)


def test_a_switch_that_takes_another_label_is_compiled_anew():
    """After a restart a switch may take back the label its flows carry (Locators.adopt):
    every route to it changes, so the next update rebuilds."""
    g = nx.MultiGraph()
    nx.add_cycle(g, [1, 2, 3, 4])
    b = from_graph(g, [1, 3], subnets=True)
    c = Compiler(count=True)
    state, _ = c.update(b.net, {}, NOW)
    old = b.net.label(3)
    b.net.locators._set_label(3, 999)  # what adopt does when it takes a label back
    state, changed = c.update(b.net, {}, NOW)
    assert state == _oracle(c, b, {}, NOW)
    assert {1, 2, 3, 4} <= changed
    assert old != b.net.label(3) == 999
