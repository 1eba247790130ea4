"""controller.core.graph.Network: the semantics of each event and the discrepancy report."""

from __future__ import annotations

import pytest

from controller.core.graph import Network, PortInfo, cost, link_key
from tests.builders import NOW, from_topology, load

A, B, C = 1, 2, 3
M1, M2 = "02:00:00:00:00:01", "02:00:00:00:00:02"


def three() -> Network:
    """Undeclared: A:1-B:1, B:2-C:1; ports A:2, B:3, C:2 free for hosts (up since 0)."""
    net = Network()
    net.switch_up(A, {1: True, 2: True}, 0)
    net.switch_up(B, {1: True, 2: True, 3: True}, 0)
    net.switch_up(C, {1: True, 2: True, 3: False}, 0)
    assert net.link_seen(A, 1, B, 1, 0)
    assert net.link_seen(C, 1, B, 2, 0)
    return net


def test_link_key_and_cost():
    assert link_key(2, 1, 1, 5) == (1, 5, 2, 1) == link_key(1, 5, 2, 1)
    assert cost(None) == cost(1000) == 100
    assert cost(10) == 10_000 and cost(10_000) == 10 and cost(1e6) == 1


def test_new_link_is_reported_once_then_refreshed():
    net = three()
    v = net.version
    assert not net.link_seen(B, 1, A, 1, 5)  # the other direction of the same link
    assert not net.link_seen(A, 1, B, 1, 6)
    assert net.version == v
    assert net.links[(A, 1, B, 1)].last_seen == 6
    assert set(net.links) == {(A, 1, B, 1), (B, 2, C, 1)}
    assert net.link_ports(B) == {1, 2}


def test_link_needs_both_switches_and_live_ports():
    net = three()
    assert not net.link_seen(A, 2, 9, 1, 0)  # unknown switch
    assert not net.link_seen(C, 3, A, 2, 0)  # C:3 is down
    assert (A, 2, C, 3) not in net.links


def test_recabled_port_replaces_its_old_link():
    net = three()
    assert net.link_seen(A, 1, C, 2, 1)  # A:1 now goes to C:2
    assert (A, 1, B, 1) not in net.links and (A, 1, C, 2) in net.links


def test_port_down_removes_its_links_and_hosts():
    net = three()
    assert net.learn_host(M1, "10.0.0.1", C, 2, NOW)
    v = net.version
    assert net.port_status(B, 2, False, NOW) == [(B, 2, C, 1)]
    assert set(net.links) == {(A, 1, B, 1)}
    assert net.version > v
    assert net.port_status(C, 2, False, NOW) == []
    assert M1 not in net.hosts
    # Down again: no change, no version bump.
    v = net.version
    net.port_status(C, 2, False, NOW)
    assert net.version == v
    # Back up: probation starts again.
    assert net.port_status(C, 2, True, NOW) == []
    assert not net.is_edge_port(C, 2, NOW + 1)
    assert net.is_edge_port(C, 2, NOW + net.edge_probation)


def test_switch_down_forgets_links_and_hosts():
    net = three()
    net.learn_host(M1, None, C, 2, NOW)
    net.switch_down(C)
    assert C not in net.ports and set(net.links) == {(A, 1, B, 1)} and not net.hosts


def test_expire_unseen_links():
    net = three()
    net.link_seen(A, 1, B, 1, 5)
    v = net.version
    assert net.expire_unseen_since(0.0, 5.0) == []  # B-C seen at 0: exactly the cutoff is not late
    assert net.version == v
    assert net.expire_unseen_since(0.5, 5.5) == [(B, 2, C, 1)]
    assert net.version == v + 1
    assert set(net.links) == {(A, 1, B, 1)}
    # A silent link's ports still face a switch: never edge ports, hosts not learned there.
    assert not net.is_edge_port(C, 1, NOW)
    assert not net.learn_host(M1, None, C, 1, NOW)


def test_edge_ports_and_probation():
    net = three()
    assert net.edge_ports(A, 1.0) == []  # A:2 is in probation
    assert net.edge_ports(A, 2.0) == [2]
    assert net.edge_ports(B, NOW) == [3]
    assert net.edge_ports(C, NOW) == [2]  # C:3 is down, C:1 a link
    assert not net.learn_host(M1, None, A, 2, 1.0)
    assert not net.learn_host(M1, None, A, 1, NOW)  # link port
    assert not net.learn_host(M1, None, 9, 1, NOW)  # unknown switch
    assert not net.hosts
    assert net.learn_host(M1, None, A, 2, 2.0)


def test_lldp_at_a_port_where_hosts_were_seen_never_makes_a_link_until_it_is_replugged():
    # TopoGuard's port classification: a host can send any LLDP it likes from its port.
    net = three()
    assert net.learn_host(M1, None, A, 2, NOW)
    net.switch_up(C, {1: True, 2: True, 3: True}, 0)
    assert net.learn_host(M2, None, C, 3, NOW)
    assert not net.link_seen(A, 2, C, 3, NOW)
    assert net.refused_links == 1 and (A, 2, C, 3) not in net.links and len(net.hosts) == 2
    net.port_status(C, 3, False, NOW + 1)  # re-cabled: whatever comes next is new
    net.port_status(A, 2, False, NOW + 1)
    net.port_status(C, 3, True, NOW + 2)
    net.port_status(A, 2, True, NOW + 2)
    assert net.link_seen(A, 2, C, 3, NOW + 2.1)


def test_declared_host_port_skips_probation_declared_link_port_waits_for_it():
    t = load("ring4")
    net = Network(t)
    h1 = t.subnets["opd1"].hosts[0]
    r1 = t.switches["r1"].dpid
    net.switch_up(r1, {1: True, 2: True, h1.port: True, 9: True}, 0)
    assert h1.port not in (1, 2)
    assert net.edge_ports(r1, 0.1) == [h1.port]  # 9 and the declared link ports 1, 2 in probation
    assert net.learn_host(h1.mac, h1.ip, r1, h1.port, 0.1)
    assert not net.learn_host(M2, None, r1, 1, 0.1)  # declared link port, no LLDP yet
    assert net.link_seen(r1, 2, t.switches["r4"].dpid, 2, 0.2) is False  # r4 not connected
    # No LLDP ever came on port 1: discovery wins, a host there is served and reported.
    assert net.edge_ports(r1, NOW) == [1, 2, h1.port, 9]
    assert net.learn_host(M2, None, r1, 1, NOW)
    assert any(d.startswith("unexpected host: " + M2) and "r1:1" in d for d in net.discrepancies())


def test_host_move_is_relearned_and_bumps_version():
    net = three()
    assert net.learn_host(M1.upper(), "10.0.0.1", A, 2, NOW)
    assert M1 in net.hosts  # MACs are kept lower case
    v = net.version
    assert not net.learn_host(M1, "10.0.0.1", A, 2, NOW + 1)  # same place: no news
    assert not net.learn_host(M1, None, A, 2, NOW + 1)  # no IP keeps the known one
    assert net.version == v
    assert net.hosts[M1].ip == "10.0.0.1"
    assert not net.learn_host(M1, None, B, 3, NOW + 2)  # a move waits for the old place to stay silent
    assert M1 in net.pending and net.verify_requests == [net.hosts[M1]]
    assert net.verify_due(NOW + 2 + net.verify_seconds)
    assert net.version == v + 1
    assert net.hosts[M1] == net.host_by_ip("10.0.0.1")
    assert (net.hosts[M1].dpid, net.hosts[M1].port, net.hosts[M1].ip) == (B, 3, "10.0.0.1")


def test_a_host_whose_old_port_went_down_moves_at_once():
    net = three()
    assert net.learn_host(M1, "10.0.0.1", A, 2, NOW)
    net.port_status(A, 2, False, NOW + 1)
    assert net.learn_host(M1, None, B, 3, NOW + 2)
    assert (net.hosts[M1].dpid, net.hosts[M1].ip) == (B, None)


def test_mac_flooding_is_bounded_per_port_and_rate_limited():
    net = three()
    net.max_hosts_per_port = 100
    learned = sum(net.learn_host(f"02:00:00:01:{i // 256:02x}:{i % 256:02x}", None, A, 2, NOW) for i in range(5000))
    assert learned == net.learn_burst  # the burst, then the rate
    later = NOW + 1000
    learned += sum(
        net.learn_host(f"02:00:00:02:{i // 256:02x}:{i % 256:02x}", None, A, 2, later + i) for i in range(500)
    )
    assert len([h for h in net.hosts.values() if h.port == 2]) == 100  # full, idle ones evicted for new ones
    assert net.refused_claims > 4000


def test_ip_taken_by_a_new_mac_replaces_the_old_owner_once_it_stays_silent():
    net = three()
    net.learn_host(M1, "10.0.0.1", A, 2, NOW)
    assert net.learn_host(M2, "10.0.0.1", B, 3, NOW)
    assert net.host_by_ip("10.0.0.1").mac == M1 and net.hosts[M2].ip is None
    assert net.verify_due(NOW + net.verify_seconds)
    assert net.hosts[M1].ip is None and net.host_by_ip("10.0.0.1").mac == M2
    assert net.host_by_ip("10.0.0.9") is None


def test_graph_view_carries_ports_and_costs():
    t = load("ppu")
    net = from_topology(t).net
    g = net.graph()
    assert set(g.nodes) == {s.dpid for s in t.switches.values()}
    assert g.number_of_edges() == len(t.links)
    core, dc = t.switches["core"].dpid, t.switches["dc"].dpid
    ((key, data),) = g[core][dc].items()
    assert data["capacity_mbps"] == 10000 and data["cost"] == 10
    assert data["ports"] == {core: key[1] if key[0] == core else key[3], dc: key[3] if key[0] == core else key[1]}
    assert all(info.declared for info in net.links.values())


def test_views_from_the_declaration():
    t = load("ppu")
    net = from_topology(t).net
    assert net.gateways()["10.10.7.1"] == "10.10.7.0/24"
    assert net.subnet_of("10.10.7.99") == "10.10.7.0/24" and net.subnet_of("192.168.1.1") is None
    assert net.same_subnet("10.10.7.10", "10.10.7.11") and not net.same_subnet("10.10.7.10", "10.10.8.10")
    assert net.uplink_router().ip == "10.255.255.2"
    bare = Network()
    assert bare.gateways() == {} and bare.subnet_of("10.0.0.1") is None and bare.uplink_router() is None
    assert bare.discrepancies() == []


# ---- discrepancies -----------------------------------------------------------------------------


def test_no_discrepancy_when_all_is_as_declared():
    assert from_topology("ppu").net.discrepancies() == []
    assert from_topology("ring4").net.discrepancies() == []


def test_discrepancies_missing_unexpected_wrong_port_missing_switch():
    t = load("ring4")
    d = {n: s.dpid for n, s in t.switches.items()}
    net = from_topology(t, links=False, hosts=False).net
    links = {(l.a, l.b): l for l in t.links}
    l12, l23, l34 = links[("r1", "r2")], links[("r2", "r3")], links[("r3", "r4")]
    net.link_seen(d["r1"], l12.a_port, d["r2"], l12.b_port, 0)  # as declared
    for sw in (d["r2"], d["r3"]):
        net.ports[sw][8] = PortInfo(True, 0)
    net.link_seen(d["r2"], 8, d["r3"], l23.b_port, 0)  # r2-r3 on a wrong port of r2
    net.ports[d["r1"]][8] = PortInfo(True, 0)
    net.link_seen(d["r1"], 8, d["r3"], 8, 0)  # undeclared r1-r3
    # r3-r4 never seen; r4 then disappears.
    assert net.discrepancies() == sorted(
        [
            f"missing link: declared r3:{l34.a_port} - r4:{l34.b_port} not discovered",
            f"missing link: declared r1:{links[('r4', 'r1')].b_port} - r4:{links[('r4', 'r1')].a_port} not discovered",
            "unexpected link: discovered r1:8 - r3:8 not declared",
            f"wrong port: declared r2:{l23.a_port} - r3:{l23.b_port}, discovered r2:8 - r3:{l23.b_port}",
        ]
    )
    net.switch_down(d["r4"])
    net.switch_up(0x99, {1: True}, 0)
    out = net.discrepancies()
    assert "missing switch: r4 (dpid 4) not connected" in out
    assert "unexpected switch: dpid 0x99 not declared" in out
    assert not any("missing link" in line and "r4" in line for line in out)  # reported as the switch


@pytest.mark.parametrize("name", ["ring4", "ppu"])
def test_silent_failure_expiry_is_a_missing_link(name):
    t = load(name)
    net = from_topology(t).net
    l = t.links[0]
    a, b = t.switches[l.a].dpid, t.switches[l.b].dpid
    for k in list(net.links):
        if {k[0], k[2]} != {a, b}:
            net.links[k].last_seen = 100
    assert net.expire_unseen_since(97.5, 101) == [link_key(a, l.a_port, b, l.b_port)]
    assert net.discrepancies() == [
        f"missing link: declared {l.a}:{l.a_port} - {l.b}:{l.b_port} not discovered"
    ] or net.discrepancies() == [f"missing link: declared {l.b}:{l.b_port} - {l.a}:{l.a_port} not discovered"]


def test_reconnected_switch_starts_with_fresh_ports():
    net = three()
    net.switch_down(C)
    net.switch_up(C, {1: True, 2: True}, NOW)  # C:1 now has a host (B:2 is unplugged)
    net.port_status(B, 2, False, NOW)
    assert net.is_edge_port(C, 1, NOW + net.edge_probation)


def _two_switches(**kw):
    net = Network(edge_probation=0.0, **kw)
    net.switch_up(1, {1: True, 2: True}, 0.0)
    net.switch_up(2, {1: True, 2: True}, 0.0)
    assert net.link_seen(1, 1, 2, 1, 1.0)
    return net


def test_links_of_spared_switches_are_not_expired():
    net = _two_switches()
    assert net.expire_unseen_since(5.0, 5.0, spare={2}) == []
    assert net.expire_unseen_since(5.0, 5.0, spare={3}) == [(1, 1, 2, 1)]


def test_first_return_of_a_link_is_immediate():
    net = _two_switches()
    assert net.expire_unseen_since(5.0, 5.0) == [(1, 1, 2, 1)]
    assert net.link_seen(1, 1, 2, 1, 5.1)


def test_flapping_link_is_held_back_and_hold_grows():
    net = _two_switches(hold_base=1.0)
    net.port_status(1, 1, False, 2.0)
    net.port_status(1, 1, True, 2.1)
    assert net.link_seen(1, 1, 2, 1, 2.2)  # first flap: back at once
    net.port_status(1, 1, False, 3.0)
    net.port_status(1, 1, True, 3.1)
    assert net.hold_time((1, 1, 2, 1), 3.2) == 1.0
    assert not net.link_seen(1, 1, 2, 1, 3.2)  # second flap: held for 1 s of steady LLDP
    assert (1, 1, 2, 1) in net.damped()
    assert not net.link_seen(1, 1, 2, 1, 3.8)
    assert net.link_seen(1, 1, 2, 1, 4.3)
    assert net.damped() == {}
    net.port_status(1, 1, False, 5.0)
    net.port_status(1, 1, True, 5.1)
    assert net.hold_time((1, 1, 2, 1), 5.2) == 2.0  # third flap: twice as long


def test_held_link_that_falls_silent_starts_its_hold_again():
    net = _two_switches(hold_base=1.0, returning_gap=0.5)
    for t in (2.0, 3.0):
        net.port_status(1, 1, False, t)
        net.port_status(1, 1, True, t + 0.1)
        net.link_seen(1, 1, 2, 1, t + 0.2)
    assert not net.link_seen(1, 1, 2, 1, 3.3)
    assert not net.link_seen(1, 1, 2, 1, 4.5)  # unheard for 1.2 s: hold restarts at 4.5
    assert not net.link_seen(1, 1, 2, 1, 4.9)
    assert not net.link_seen(1, 1, 2, 1, 5.3)
    assert net.link_seen(1, 1, 2, 1, 5.6)


def test_old_flaps_are_forgotten():
    net = _two_switches(flap_window=10.0, hold_base=0.01)
    for t in (2.0, 3.0, 4.0):
        net.port_status(1, 1, False, t)
        net.port_status(1, 1, True, t + 0.1)
        net.link_seen(1, 1, 2, 1, t + 0.2)
        assert net.link_seen(1, 1, 2, 1, t + 0.5) or (1, 1, 2, 1) in net.links
    net.hold_base = 1.0
    assert net.hold_time((1, 1, 2, 1), 4.2) == 2.0
    assert net.hold_time((1, 1, 2, 1), 30.0) == 0.0


def test_recovered_host_is_used_at_once_but_never_on_a_switch_port():
    net = Network(edge_probation=5.0)
    net.switch_up(1, {1: True, 2: True, 3: True}, 0.0)
    net.switch_up(2, {1: True}, 0.0)
    assert net.link_seen(1, 1, 2, 1, 0.1)
    assert net.recover_host("02:00:00:00:00:0a", "10.0.0.10", 1, 2)
    assert 2 in net.edge_ports(1, 0.2)  # no probation: the switch's own flows vouch for it
    assert 3 not in net.edge_ports(1, 0.2)
    assert not net.recover_host("02:00:00:00:00:0b", None, 1, 1)  # faces switch 2
    net.port_status(1, 2, False, 1.0)
    assert "02:00:00:00:00:0a" not in net.hosts


def test_odd_source_addresses_are_never_learned_as_hosts():
    t = load("ring4")
    net = Network(t)
    h1 = t.subnets["opd1"].hosts[0]
    r1 = t.switches["r1"].dpid
    net.switch_up(r1, {h1.port: True}, 0)
    for mac in ("ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "00:00:00:00:00:00", "zz:zz"):
        assert not net.learn_host(mac, h1.ip, r1, h1.port, NOW)
    assert not net.hosts
    gw = t.subnets["opd1"].gateway
    mac = "02:00:00:00:88:01"  # undeclared (a declared host always has its declared address)
    assert net.learn_host(mac, gw, r1, h1.port, NOW)  # the MAC is learned, the claim to the gateway is not
    assert net.hosts[mac].ip is None and net.host_by_ip(gw) is None


def test_an_undeclared_switch_is_reported_and_never_forwarded_through():
    t = load("ring4")
    net = Network(t)
    r1 = t.switches["r1"].dpid
    net.switch_up(r1, {1: True, 2: True}, 0.0)
    net.switch_up(0x99, {1: True}, 0.0)
    assert not net.link_seen(0x99, 1, r1, 1, 0.5)
    assert 0x99 not in net.graph().nodes and r1 in net.graph().nodes
    assert any("unexpected switch" in d for d in net.discrepancies())
