"""controller.core.arp.ArpResponder: answers, proxy answers, edge-only flooding, dedup, probes.

Hosts are only ever told locator MACs (controller.core.address): answers carry the
target's, requests and replies passed on carry their sender's."""

from __future__ import annotations

import pytest

from controller.core import address
from controller.core.arp import BROADCAST, REPLY, REQUEST, Arp, ArpResponder, Send
from controller.core.compiler import GATEWAY_MAC
from tests.builders import NOW, from_topology, load

SPARE = 9  # an extra edge port on r1, up since 0


@pytest.fixture
def env():
    t = load("ring4")
    net = from_topology(t, hosts=False).net
    net.port_status(1, SPARE, True, 0.0)
    hosts = {h.name: (h, t.switches[h.switch].dpid) for h in t.hosts}
    return t, net, ArpResponder(net), hosts


def request(h, target_ip, src_mac=None):
    return Arp(REQUEST, src_mac or h.mac, h.ip, "00:00:00:00:00:00", target_ip)


def test_gateway_request_is_answered_with_the_gateway_mac(env):
    t, net, arp, hs = env
    h1, d1 = hs["h1"]
    changed, out = arp.handle(d1, h1.port, request(h1, "10.20.1.1"), NOW)
    assert changed and net.hosts[h1.mac].ip == h1.ip
    assert out == [Send(d1, h1.port, Arp(REPLY, GATEWAY_MAC, "10.20.1.1", h1.mac, h1.ip))]
    # Asked again at once: still answered (replies are not deduplicated), nothing learned anew.
    changed, out2 = arp.handle(d1, h1.port, request(h1, "10.20.1.1"), NOW + 0.1)
    assert not changed and out2 == out


def test_known_host_is_answered_by_proxy(env):
    t, net, arp, hs = env
    (h1, d1), (h3, d3) = hs["h1"], hs["h3"]
    net.learn_host(h3.mac, h3.ip, d3, h3.port, NOW)
    changed, out = arp.handle(d1, h1.port, request(h1, h3.ip), NOW)
    loc = net.locator(h3.mac)
    assert out == [Send(d1, h1.port, Arp(REPLY, loc, h3.ip, h1.mac, h1.ip))]
    # The answer is h3's locator, not its MAC: the label of h3's switch and h3's number there.
    assert loc != h3.mac and address.parse(loc) == (net.label(d3), net.locators.hosts[h3.mac][1])


def test_unknown_target_is_flooded_to_edge_ports_only_except_the_in_port(env):
    t, net, arp, hs = env
    h1, d1 = hs["h1"]
    changed, out = arp.handle(d1, h1.port, request(h1, "10.20.3.99"), NOW)
    expected = {(d1, SPARE)} | {(d, h.port) for n, (h, d) in hs.items() if n != "h1"}
    assert {(s.dpid, s.port) for s in out} == expected
    assert len(out) == len(expected)
    # The request goes out carrying the requester's locator, never its real MAC.
    ask = Arp(REQUEST, net.locator(h1.mac), h1.ip, "00:00:00:00:00:00", "10.20.3.99")
    assert all(s.arp == ask for s in out)
    assert address.parse(ask.src_mac) == (net.label(d1), net.locators.hosts[h1.mac][1])
    for s in out:
        assert s.port not in net.link_ports(s.dpid)


def test_duplicate_request_within_the_window_is_not_reflooded(env):
    t, net, arp, hs = env
    h1, d1 = hs["h1"]
    assert arp.handle(d1, h1.port, request(h1, "10.20.3.99"), NOW)[1]
    # A copy of it (e.g. from another port, or a retransmission) inside the window.
    assert arp.handle(d1, h1.port, request(h1, "10.20.3.99"), NOW + arp.dedup_seconds / 2) == (False, [])
    assert arp.handle(d1, h1.port, request(h1, "10.20.3.98"), NOW + 0.1)[1]  # another target is news
    assert arp.handle(d1, h1.port, request(h1, "10.20.3.99"), NOW + arp.dedup_seconds + 0.01)[1]


def test_arp_from_a_non_edge_port_is_ignored(env):
    t, net, arp, hs = env
    h1, d1 = hs["h1"]
    link_port = sorted(net.link_ports(d1))[0]
    assert arp.handle(d1, link_port, request(h1, "10.20.1.1"), NOW) == (False, [])
    assert arp.handle(d1, link_port, request(h1, "10.20.3.99"), NOW) == (False, [])
    assert not net.hosts
    # A port still in its edge probation is not an edge port either.
    net.port_status(d1, 10, True, NOW)
    assert arp.handle(d1, 10, request(h1, "10.20.1.1"), NOW + 0.5) == (False, [])
    assert not net.hosts


def test_reply_is_delivered_to_the_requester(env):
    t, net, arp, hs = env
    (h1, d1), (h2, d2) = hs["h1"], hs["h2"]
    _, flooded = arp.handle(d1, h1.port, request(h1, h2.ip), NOW)
    asked = next(s.arp for s in flooded if (s.dpid, s.port) == (d2, h2.port))
    # h2 answers the locator it was asked by (what Linux does); the controller passes the
    # reply on to h1's real MAC at h1's port, with h2's locator as the answer.
    changed, out = arp.handle(d2, h2.port, Arp(REPLY, h2.mac, h2.ip, asked.src_mac, h1.ip), NOW + 0.01)
    assert changed and net.hosts[h2.mac].ip == h2.ip  # the replier is learned
    loc2 = net.locator(h2.mac)
    assert out == [Send(d1, h1.port, Arp(REPLY, loc2, h2.ip, h1.mac, h1.ip))]
    assert address.parse(loc2) == (net.label(d2), net.locators.hosts[h2.mac][1])
    # Addressed to h1's real MAC (a host that learned it some other way): the same.
    assert arp.handle(d2, h2.port, Arp(REPLY, h2.mac, h2.ip, h1.mac, h1.ip), NOW + 0.02)[1] == out
    # A reply to someone unknown goes nowhere, to a locator nobody has neither.
    assert arp.handle(d2, h2.port, Arp(REPLY, h2.mac, h2.ip, "02:99:99:99:99:99", "10.20.1.77"), NOW)[1] == []
    nobody = address.locator(net.label(d1), 999)
    assert arp.handle(d2, h2.port, Arp(REPLY, h2.mac, h2.ip, nobody, "10.20.1.77"), NOW)[1] == []


def test_reply_to_a_probe_teaches_the_host_and_goes_nowhere(env):
    t, net, arp, hs = env
    h4, d4 = hs["h4"]
    changed, out = arp.handle(d4, h4.port, Arp(REPLY, h4.mac, h4.ip, GATEWAY_MAC.upper(), "10.20.4.1"), NOW)
    assert changed and out == [] and net.host_by_ip(h4.ip).mac == h4.mac


def test_gratuitous_and_probe_arp_only_teach(env):
    t, net, arp, hs = env
    (h1, d1), (h2, d2) = hs["h1"], hs["h2"]
    changed, out = arp.handle(d1, h1.port, Arp(REQUEST, h1.mac, h1.ip, BROADCAST, h1.ip), NOW)
    assert changed and out == [] and net.hosts[h1.mac].ip == h1.ip
    # RFC 5227 probe: sender IP 0.0.0.0 - the MAC is learned without an address, nothing is sent.
    # (An undeclared MAC: a declared host always has its declared address.)
    mac = "02:00:00:00:77:01"
    changed, out = arp.handle(d2, h2.port, Arp(REQUEST, mac, "0.0.0.0", "00:00:00:00:00:00", h2.ip), NOW)
    assert changed and out == [] and net.hosts[mac].ip is None


def test_a_declared_host_never_moves(env):
    t, net, arp, hs = env
    h1, d1 = hs["h1"]
    arp.handle(d1, h1.port, request(h1, "10.20.1.1"), NOW)
    changed, out = arp.handle(d1, SPARE, request(h1, "10.20.1.1"), NOW + 1)
    assert not changed and out == [] and (net.hosts[h1.mac].dpid, net.hosts[h1.mac].port) == (d1, h1.port)
    assert not net.verify_due(NOW + 10) and net.hosts[h1.mac].port == h1.port


MOVER, MOVER_IP = "02:00:00:00:55:01", "10.20.1.77"


def test_a_host_moving_is_relearned_once_its_old_place_stays_silent(env):
    t, net, arp, hs = env
    h1, d1 = hs["h1"]
    arp.handle(d1, h1.port, Arp(REQUEST, MOVER, MOVER_IP, "00:00:00:00:00:00", "10.20.1.1"), NOW)
    changed, out = arp.handle(d1, SPARE, Arp(REQUEST, MOVER, MOVER_IP, "00:00:00:00:00:00", "10.20.1.1"), NOW + 1)
    # Not yet: an ARP probe asks the old place first.
    assert not changed and net.hosts[MOVER].port == h1.port
    assert out == [Send(d1, h1.port, Arp(REQUEST, GATEWAY_MAC, "10.20.1.1", "00:00:00:00:00:00", MOVER_IP))]
    assert not net.verify_due(NOW + 1.5)
    assert net.verify_due(NOW + 2.1)  # no answer in time: it really moved
    assert (net.hosts[MOVER].dpid, net.hosts[MOVER].port, net.hosts[MOVER].ip) == (d1, SPARE, MOVER_IP)


def test_an_impostor_is_refused_when_the_real_host_answers_the_probe(env):
    t, net, arp, hs = env
    h1, d1 = hs["h1"]
    arp.handle(d1, h1.port, Arp(REQUEST, MOVER, MOVER_IP, "00:00:00:00:00:00", "10.20.1.1"), NOW)
    for i in range(3):  # gratuitous replies with the victim's MAC and IP from another port
        arp.handle(d1, SPARE, Arp(REPLY, MOVER, MOVER_IP, "ff:ff:ff:ff:ff:ff", MOVER_IP), NOW + 0.1 * i)
    changed, _ = arp.handle(d1, h1.port, Arp(REPLY, MOVER, MOVER_IP, GATEWAY_MAC, "10.20.1.1"), NOW + 0.5)
    assert not changed and not net.pending and net.refused_claims >= 1
    assert not net.verify_due(NOW + 5) and net.hosts[MOVER].port == h1.port


def test_an_address_taken_by_another_mac_is_verified_first(env):
    t, net, arp, hs = env
    h1, d1 = hs["h1"]
    arp.handle(d1, h1.port, Arp(REQUEST, MOVER, MOVER_IP, "00:00:00:00:00:00", "10.20.1.1"), NOW)
    thief = "02:00:00:00:66:01"
    changed, out = arp.handle(d1, SPARE, Arp(REPLY, thief, MOVER_IP, "ff:ff:ff:ff:ff:ff", MOVER_IP), NOW + 1)
    assert changed and net.hosts[thief].ip is None and net.host_by_ip(MOVER_IP).mac == MOVER  # learned, no address
    assert out and out[0].port == h1.port
    was = {thief: (net.locator(thief), None)}  # what the controller holds before verifying
    assert net.verify_due(NOW + 3)  # the owner stayed silent: the address is the new MAC's (DHCP gave it away)
    assert net.host_by_ip(MOVER_IP).mac == thief and net.hosts[MOVER].ip is None
    # Other hosts' ARP caches give the address the old owner's locator: told the new one.
    news = Arp(REQUEST, net.locator(thief), MOVER_IP, "00:00:00:00:00:00", MOVER_IP)
    told = arp.announce_moves(was, NOW + 3)
    assert told and all(s.arp == news for s in told) and (d1, SPARE) not in {(s.dpid, s.port) for s in told}
    assert arp.announce_moves({thief: (net.locator(thief), MOVER_IP)}, NOW + 3) == []  # nothing changed


def test_probe_for_an_unknown_host_of_a_declared_subnet(env):
    t, net, arp, hs = env
    out = arp.probe("10.20.2.50", NOW)
    want = Arp(REQUEST, GATEWAY_MAC, "10.20.2.1", "00:00:00:00:00:00", "10.20.2.50")
    assert {(s.dpid, s.port) for s in out} == {(1, SPARE)} | {(d, h.port) for h, d in hs.values()}
    assert all(s.arp == want for s in out)
    assert arp.probe("10.20.2.50", NOW + 0.1) == []  # once per window
    assert arp.probe("10.20.2.50", NOW + arp.dedup_seconds + 0.01)
    assert arp.probe("192.168.7.7", NOW) == []  # not ours to ask for


def test_without_a_declaration_nothing_is_a_gateway(env):
    from controller.core.graph import Network

    net = Network()
    net.switch_up(1, {1: True, 2: True}, 0.0)
    arp = ArpResponder(net)
    changed, out = arp.handle(1, 1, Arp(REQUEST, "02:00:00:00:00:01", "10.0.0.5", "00:00:00:00:00:00", "10.0.0.1"), NOW)
    # Nobody answers for 10.0.0.1: the request is flooded (with the asker's locator).
    loc = net.locator("02:00:00:00:00:01")
    assert changed and out == [Send(1, 2, Arp(REQUEST, loc, "10.0.0.5", "00:00:00:00:00:00", "10.0.0.1"))]
    assert arp.probe("10.0.0.9", NOW) == []


def test_a_host_posing_as_the_gateway_mac_is_ignored():
    from controller.core.arp import REQUEST, Arp, ArpResponder
    from controller.core.compiler import GATEWAY_MAC
    from controller.core.graph import Network

    net = Network(edge_probation=0.0)
    net.switch_up(1, {1: True}, 0.0)
    changed, sends = ArpResponder(net).handle(
        1, 1, Arp(REQUEST, GATEWAY_MAC, "10.0.0.9", "00:00:00:00:00:00", "10.0.0.1"), 1.0
    )
    assert (changed, sends) == (False, []) and not net.hosts


def test_declared_hosts_are_asked_for_at_their_own_port_once_per_window():
    from controller.core.arp import REQUEST, ArpResponder
    from controller.core.compiler import GATEWAY_MAC
    from controller.core.graph import Network
    from controller.core.topology import load

    t = load("topologies/ring4.yaml")
    net = Network(t)
    for s in t.switches.values():
        net.switch_up(s.dpid, {p: True for p in range(1, 4)}, 0.0)
    responder = ArpResponder(net)
    sends = responder.probe_declared(1.0)
    assert sorted((s.dpid, s.port, s.arp.dst_ip) for s in sends) == sorted(
        (t.switches[h.switch].dpid, h.port, h.ip) for h in t.hosts
    )
    assert all(s.arp.op == REQUEST and s.arp.src_mac == GATEWAY_MAC for s in sends)
    assert responder.probe_declared(1.2) == []  # within the dedup window
    h1 = t.subnets["opd1"].hosts[0]
    net.learn_host(h1.mac, h1.ip, t.switches["r1"].dpid, h1.port, 2.0)
    assert h1.ip not in [s.arp.dst_ip for s in responder.probe_declared(2.0)]  # learned: not asked again


def test_a_host_that_moved_to_another_switch_is_announced_with_its_new_locator(env):
    t, net, arp, hs = env
    (_h1, d1), (_h2, d2) = hs["h1"], hs["h2"]
    assert d1 != d2
    net.port_status(d2, SPARE, True, 0.0)
    arp.handle(d1, SPARE, Arp(REQUEST, MOVER, MOVER_IP, "00:00:00:00:00:00", "10.20.1.1"), NOW)
    old = net.locator(MOVER)
    # Unplugged (forgotten with its port) and plugged in at another switch: a move all the same.
    net.port_status(d1, SPARE, False, NOW + 1)
    changed, out = arp.handle(d2, SPARE, Arp(REQUEST, MOVER, MOVER_IP, "00:00:00:00:00:00", "10.20.1.1"), NOW + 2)
    new = net.locator(MOVER)
    assert changed and (net.hosts[MOVER].dpid, net.hosts[MOVER].port) == (d2, SPARE)
    assert address.parse(old)[0] == net.label(d1) and address.parse(new)[0] == net.label(d2)
    # Everyone else's ARP cache holds the old locator: a gratuitous ARP with the new one goes
    # out of every edge port but its own, and the gateway question is answered as usual.
    news = Arp(REQUEST, new, MOVER_IP, "00:00:00:00:00:00", MOVER_IP)
    flooded = [s for s in out if s.arp == news]
    assert {(s.dpid, s.port) for s in flooded} == {(d, h.port) for h, d in hs.values()}
    assert out[-1] == Send(d2, SPARE, Arp(REPLY, GATEWAY_MAC, "10.20.1.1", MOVER, MOVER_IP))
    assert len(out) == len(flooded) + 1
    # Speaking again from the new place announces nothing more.
    assert arp.handle(d2, SPARE, Arp(REQUEST, MOVER, MOVER_IP, "00:00:00:00:00:00", "10.20.1.1"), NOW + 3)[1] == [
        out[-1]
    ]


def test_a_host_that_moved_on_its_own_switch_keeps_its_locator(env):
    t, net, arp, hs = env
    h1, d1 = hs["h1"]
    net.port_status(d1, 10, True, 0.0)
    arp.handle(d1, SPARE, Arp(REQUEST, MOVER, MOVER_IP, "00:00:00:00:00:00", "10.20.1.1"), NOW)
    old = net.locator(MOVER)
    net.port_status(d1, SPARE, False, NOW + 1)
    changed, out = arp.handle(d1, 10, Arp(REQUEST, MOVER, MOVER_IP, "00:00:00:00:00:00", "10.20.1.1"), NOW + 2)
    assert changed and net.hosts[MOVER].port == 10 and net.locator(MOVER) == old
    assert out == [Send(d1, 10, Arp(REPLY, GATEWAY_MAC, "10.20.1.1", MOVER, MOVER_IP))]  # nothing to announce


def test_a_locator_mac_is_never_learned_as_a_host(env):
    t, net, arp, hs = env
    (_h1, d1), (h2, d2) = hs["h1"], hs["h2"]
    arp.handle(d2, h2.port, request(h2, "10.20.2.1"), NOW)
    forged = net.locator(h2.mac)  # someone on h1's port claiming h2's locator
    changed, out = arp.handle(d1, SPARE, Arp(REQUEST, forged, "10.20.1.66", "00:00:00:00:00:00", h2.ip), NOW + 1)
    assert not changed and forged not in net.hosts and net.host_by_ip("10.20.1.66") is None
    # It may be answered where it asked, but nothing is passed on in its name.
    assert out == [Send(d1, SPARE, Arp(REPLY, net.locator(h2.mac), h2.ip, forged, "10.20.1.66"))]
    assert arp.handle(d1, SPARE, Arp(REQUEST, forged, "10.20.1.66", "00:00:00:00:00:00", "10.20.3.99"), NOW + 2) == (
        False,
        [],
    )
