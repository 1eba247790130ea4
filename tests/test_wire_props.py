"""Changes sent over the wire on top of what a switch holds end where a fresh send ends.

The controller never reinstalls a switch: after each change of the network or of the
policies it sends diff(believed, desired), as FlowMod, GroupMod and MeterMod messages in
ofmsg.plan's order. Here a random network (state A) gets random changes (state B); the
model switches that were sent A and then diff(A, B) must hold exactly what switches sent
B from scratch hold: the same flow entries (cookies included), groups and meters; and B
must still forward correctly from them. Every message is encoded and parsed back.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.core import address
from controller.core.compiler import HOST_TAG, Compiler
from controller.core.state import T_FWD, DesiredState, SwitchState, diff
from controller.lab.tablemodel import ModelError, Switches, install, update, wire_op
from controller.openflow import ofmsg
from tests.builders import NOW, Built, Pol, check_network, from_graph, from_topology

SETTINGS = settings(
    max_examples=100, deadline=None, derandomize=True, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Built, dict, list[tuple]]:
    n = draw(st.integers(2, 8))
    g = nx.MultiGraph()
    g.add_nodes_from(range(1, n + 1))
    for i in range(2, n + 1):
        g.add_edge(draw(st.integers(1, i - 1)), i)
    node = st.integers(1, n)
    for u, v in draw(st.lists(st.tuples(node, node), max_size=n)):
        if u != v:
            g.add_edge(u, v)
    hosts = draw(st.lists(node, min_size=2, max_size=7))
    # Declared subnets (pure L2 is covered by the forwarding proofs): OPD policies get members.
    built = from_graph(g, hosts, subnets=True, uplink=draw(st.booleans()))
    # An OPD's subnets are those of host switches (so it has members); it may span several.
    cidrs = st.lists(st.sampled_from(sorted(set(hosts))), min_size=1, max_size=3, unique=True).map(
        lambda ss: tuple(f"10.0.{s}.0/24" for s in ss)
    )
    policy = st.tuples(
        st.just("policy"),
        st.integers(0, 2),
        cidrs,
        st.sampled_from([1000, 5000, 20000]),
        st.sampled_from([1000, 8000]),
        st.sampled_from([None, 300]),
    )
    before: dict[str, Pol] = {}
    for p in draw(st.lists(policy, max_size=2)):
        _set_policy(before, f"opd{p[1]}", p[2:])
    change = st.one_of(  # what can happen between two compiles, as the controller sees it
        st.tuples(st.just("link_down"), st.integers(0, 99)),
        st.tuples(st.just("link_up"), node, node),
        st.tuples(st.just("host_move"), st.integers(0, 99), node),
        st.tuples(st.just("host_gone"), st.integers(0, 99)),
        policy,
        policy,  # twice as likely: meters added, changed and removed
        st.tuples(st.just("policy_gone"), st.integers(0, 99)),
    )
    return built, before, draw(st.lists(change, min_size=1, max_size=3))


def _set_policy(pols: dict[str, Pol], opd: str, spec: tuple) -> None:
    """Add or replace an OPD's policy, without the subnets another OPD has (the REST API refuses overlaps)."""
    subnets, down, up, burst = spec
    taken = {s for o, p in pols.items() if o != opd for s in p.subnets}
    mine = tuple(s for s in subnets if s not in taken)
    if mine:
        pols[opd] = Pol(opd, mine, down, up, burst)


def apply_changes(built: Built, policies: dict, changes: list[tuple]) -> tuple[Built, dict]:
    """A copy of the network and policies after ``changes`` (the original is not touched)."""
    net = copy.deepcopy(built.net)
    pols = dict(policies)
    for ch in changes:
        kind = ch[0]
        if kind == "link_down" and net.links:
            d1, p1, d2, p2 = sorted(net.links)[ch[1] % len(net.links)]
            net.port_status(d1, p1, False, NOW)
            net.port_status(d2, p2, False, NOW)
        elif kind == "link_up" and ch[1] != ch[2]:
            p1, p2 = _new_port(net, ch[1]), _new_port(net, ch[2])
            net.link_seen(ch[1], p1, ch[2], p2, NOW)
        elif kind == "host_move" and net.hosts:  # unplugged, and plugged in at a new port
            h = sorted(net.hosts.values(), key=lambda h: h.mac)[ch[1] % len(net.hosts)]
            net.port_status(h.dpid, h.port, False, NOW)
            if not (net.topology and any(x.mac == h.mac for x in net.topology.hosts)):  # declared: never moves
                net.learn_host(h.mac, h.ip, ch[2], _new_port(net, ch[2]), NOW)
        elif kind == "host_gone" and net.hosts:
            h = sorted(net.hosts.values(), key=lambda h: h.mac)[ch[1] % len(net.hosts)]
            net.port_status(h.dpid, h.port, False, NOW)
        elif kind == "policy":
            _set_policy(pols, f"opd{ch[1]}", ch[2:])  # a new OPD, or new caps and subnets for one
        elif kind == "policy_gone" and pols:
            del pols[sorted(pols)[ch[1] % len(pols)]]
    now_at = {mac: (e.dpid, e.port) for mac, e in net.hosts.items()}
    hosts = [replace(h, dpid=now_at[h.mac][0], port=now_at[h.mac][1]) for h in built.hosts if h.mac in now_at]
    return Built(net, hosts), pols


def _new_port(net, dpid: int) -> int:
    """A port that just came up on ``dpid`` (up since 0, so past the edge probation at NOW)."""
    port = max(net.ports[dpid], default=0) + 1
    net.port_status(dpid, port, True, 0.0)
    return port


def differences(got: Switches, want: Switches) -> list[str]:
    out = [f"s{d} missing" for d in want if d not in got]
    for d, sw in want.items():
        if d in got:
            out += got[d].differences(sw)
    return out


def compile_both(built: Built, before: dict, after_built: Built, after: dict) -> tuple[DesiredState, DesiredState]:
    comp = Compiler()  # one compiler, as in the controller: meter ids stay stable
    return comp.compile(built.net, before, now=NOW), comp.compile(after_built.net, after, now=NOW)


@SETTINGS
@given(scenarios())
def test_a_diff_over_the_wire_ends_where_a_fresh_send_ends(scenario):
    built, before, changes = scenario
    after_built, after = apply_changes(built, before, changes)
    a, b = compile_both(built, before, after_built, after)
    updated = update(install(a), a, b)
    bad = differences(updated, install(b))
    assert not bad, "\n".join(bad[:5])
    if nx.is_connected(after_built.net.graph()):  # a failure may have cut the network in two
        bad = check_network(after_built, after_built.fabric(updated))
        assert not bad, "\n".join(bad[:3])


DINKES, RSUD, BAPPEDA = "10.10.7.0/24", "10.10.11.0/24", "10.10.4.0/24"


@pytest.mark.parametrize(
    "change",
    [
        [("policy", 1, (DINKES, RSUD), 20000, 8000, None)],  # one OPD at two switches: aggregate meters at the uplink
        [("policy_gone", 0)],
        [("policy", 0, (DINKES, BAPPEDA), 5000, 2000, 300)],  # new caps: the same meters modified
        [("policy", 0, (DINKES,), 5000, 1000, 300), ("link_down", 3)],
        [("host_move", 5, 111)],
    ],
)
def test_ppu_policy_and_network_changes_over_the_wire(change):
    built = from_topology("ppu")
    before = {"opd0": Pol("opd0", (DINKES, BAPPEDA), 20000, 10000)}
    after_built, after = apply_changes(built, before, change)
    a, b = compile_both(built, before, after_built, after)
    assert b != a
    updated = update(install(a), a, b)
    bad = differences(updated, install(b))
    assert not bad, "\n".join(bad[:5])


def test_the_wire_checks_can_fail():
    """A diff sent out of order, or partly, must be caught (guards against vacuous checks)."""
    built = from_topology("ppu")
    pols = {"opd0": Pol("opd0", (BAPPEDA,), 20000, 10000)}
    after_built, after = apply_changes(built, pols, [("policy", 1, (DINKES,), 5000, 1000, None), ("link_down", 0)])
    a, b = compile_both(built, {}, after_built, after)
    start = install(a)
    # Flows first, meters and groups after: a switch refuses a flow whose meter or group it
    # does not have yet.
    with pytest.raises(ModelError, match="OFPMMFC_UNKNOWN_METER|OFPBAC_BAD_OUT_GROUP"):
        for dpid, want in b.items():
            sw = start[dpid].copy()
            steps = ofmsg.plan(diff(a[dpid], want))
            for step in sorted(steps, key=lambda s: s[0] != "flow"):
                sw.apply(wire_op(*step))
    # Without the modifications the switches end elsewhere.
    partial: Switches = {}
    for dpid, want in b.items():
        sw = start[dpid].copy()
        ch = diff(a.get(dpid, SwitchState()), want)
        ch.flows_mod = []
        sw.send(ch)
        partial[dpid] = sw
    assert differences(partial, install(b))


def test_a_host_that_moved_is_tagged_at_its_new_switch_only():
    """Found by the wire proof: a changed flow was sent as MODIFY_STRICT, which keeps the
    entry's cookie, so the old switch kept HOST_TAG for a host that had moved away (and
    would have recovered it there after a controller restart)."""
    g = nx.MultiGraph([(1, 2)])
    built = from_graph(g, [1, 2])
    mover = built.hosts[0]
    after_built, _ = apply_changes(built, {}, [("host_move", 0, 2)])
    a, b = compile_both(built, {}, after_built, {})
    updated = update(install(a), a, b)
    real = ("set_field", "eth_dst", mover.mac.lower())
    tags = {
        d: e.cookie & 0xFFFFFFFF
        for d, sw in updated.items()
        for e in sw.flows.values()
        if e.table == T_FWD and real in e.actions
    }
    # Delivered (its real MAC put back) at its new switch only, tagged as its place there.
    assert tags == {2: HOST_TAG}
    new = after_built.net.locator(mover.mac)
    assert new != mover.loc and address.parse(new)[0] == after_built.net.label(2)
    # A flow whose tag alone changes (same match, same actions) must change its cookie too.
    (key,) = [k for k, f in b[2].flows.items() if k[:2] == (T_FWD, 150) and real in f.actions]
    assert b[2].flows[key].tag == HOST_TAG
    flipped = {d: SwitchState(dict(sw.flows), dict(sw.groups), dict(sw.meters)) for d, sw in b.items()}
    flipped[2].flows[key] = replace(b[2].flows[key], tag=0)
    again = update(updated, b, flipped)
    held = [e.cookie & 0xFFFFFFFF for e in again[2].flows.values() if e.table == T_FWD and real in e.actions]
    assert held == [0]
