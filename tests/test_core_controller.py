"""controller.core.controller.Controller end to end on a simulated network (tests/sim.py):
restart, audit and repair, forged and replayed LLDP, impersonation, odd frames. No switch,
no socket, no clock: milliseconds each."""

from __future__ import annotations

import copy

from controller.core import frames
from controller.core.controller import PacketOut, SendChanges
from controller.core.state import Flow, Meter, SwitchState, match
from tests.builders import Pol, load
from tests.sim import SimNet

POLICIES = {
    "opd1": Pol("opd1", ("10.20.1.0/24",), 4000, 2000),
    "opd3": Pol("opd3", ("10.20.3.0/24",), 8000, 8000),
}


def steady(topology: bool = False, **config: object) -> tuple[SimNet, object]:
    t = load("ring4")
    sim = SimNet.from_topology(t)
    c = sim.controller(t if topology else None, POLICIES, **config)
    sim.connect(c)
    sim.run(c, 3.0)
    sim.arp_from_hosts(c)
    sim.run(c, 3.0)
    assert len(c.net.links) == 4 and len(c.net.hosts) == 4
    return sim, c


def desired(c) -> dict:
    return c.compiler.compile(c.net, c.policies, 100.0, protect=c.config.protect)


def capped_meters(sim: SimNet) -> set[int]:
    return {m for s in sim.held.values() for m in s.meters if m < 0xFFF0}


def only_additions(sent: list) -> bool:
    return all(
        not (
            a.changes.flows_del
            or a.changes.flows_mod
            or a.changes.meters_del
            or a.changes.meters_mod
            or a.changes.groups_del
            or a.changes.groups_mod
        )
        for _t, a in sent
    )


def test_restart_in_discovery_mode_keeps_every_cap_and_meter_and_changes_nothing():
    sim, a = steady()
    assert capped_meters(sim), "the caps are on the switches before the restart"
    memory = a.memory(sim.now)
    assert memory and memory["meter_ids"] and all(h["ip"] for h in memory["hosts"])
    before = copy.deepcopy(sim.held)
    sim.sent.clear()
    b = sim.controller(None, POLICIES, memory)  # kill -9 and the same command again
    sim.connect(b)
    sim.run(b, 5.0)
    assert sim.sent == [] and sim.held == before
    assert b.compiler.meter_numbers == a.compiler.meter_numbers
    assert {h.mac: h.ip for h in b.net.hosts.values()} == {h.mac: h.ip for h in a.net.hosts.values()}


def test_without_the_memory_a_discovery_mode_restart_would_compile_the_caps_away():
    # The failure issue 13 reported, kept as the control for the test above.
    sim, a = steady()
    b = sim.controller(None, POLICIES, None)
    sim.connect(b)
    sim.run(b, 5.0)
    assert not capped_meters(sim)


def test_restart_waits_for_the_switches_last_seen_and_sends_only_additions_meanwhile():
    sim, a = steady()
    memory = a.memory(sim.now)
    before = copy.deepcopy(sim.held)
    sim.sent.clear()
    b = sim.controller(None, dict(POLICIES, opd2=Pol("opd2", ("10.20.2.0/24",), 3000, 3000)), memory)
    sim.connect(b, [1, 2, 3])  # switch 4 takes its time to reconnect (Open vSwitch backs off)
    sim.run(b, 4.0)
    assert only_additions(sim.sent) and any(a.changes.meters_add for _t, a in sim.sent)  # opd2 enforced at once
    assert all(sim.held[d].flows.keys() >= before[d].flows.keys() for d in (1, 2, 3))  # nothing removed
    sim.connect(b, [4])
    sim.run(b, 3.0)
    want = desired(b)
    assert all(sim.held[d] == want[d] for d in want)


def test_audit_repairs_a_wiped_switch_a_deleted_group_and_a_hand_edited_meter():
    sim, c = steady(audit_interval=2.0)
    want = copy.deepcopy(sim.held)
    sim.held[2] = SwitchState()  # ovs-ofctl del-flows, del-groups, del-meters
    gid = next(iter(sim.held[1].groups))
    del sim.held[1].groups[gid]  # ovs-ofctl del-groups on one group
    mid = max(capped_meters(sim))
    sw = next(d for d, s in sim.held.items() if mid in s.meters)
    m = sim.held[sw].meters[mid]
    sim.held[sw].meters[mid] = Meter(mid, m.rate_kbps * 10, m.burst_kbit)  # ovs-ofctl mod-meter
    sim.run(c, 2.5)
    assert sim.held == want
    assert c.recon.repairs["missing"] > 10 and c.recon.repairs["changed"] >= 1
    sim.sent.clear()
    sim.run(c, 5.0)
    assert sim.sent == []  # nothing differs: the audit sends nothing


def test_foreign_flows_are_removed_unless_kept():
    stray = Flow(0, 5000, match(eth_type=0x86DD), ())
    for keep in (False, True):
        sim, c = steady(audit_interval=1.0, keep_foreign=keep)
        sim.foreign[3] = [stray]
        sim.run(c, 2.5)
        assert (sim.foreign[3] == [stray]) is keep
        assert c.recon.repairs["foreign"] == (0 if keep else 1)


def test_forged_and_replayed_lldp_never_change_the_graph():
    sim, c = steady()
    links = dict(c.net.links)
    h1 = load("ring4").subnets["opd1"].hosts[0]  # at switch 1, port 3
    forged = frames.lldp_frame(2, 1, "02:00:00:00:00:99")  # unsigned, a real port of switch 2
    assert c.packet_in(1, h1.port, forged, sim.now) == []
    # A genuine frame, captured on a link and replayed from the host's port.
    genuine = next(a for a in c.tick(sim.now + 0.1) if isinstance(a, PacketOut) and (a.dpid, a.port) == (2, 1))
    sim.now += 0.1
    sim.deliver(c, genuine)  # the original arrives where it should
    assert c.packet_in(1, h1.port, genuine.data, sim.now) == []
    # A genuine frame sent out of an edge port (discovery), replayed at another host's port
    # before it could ever come back: refused, hosts were seen there.
    edge = c.signer.frame(2, 3, "02:00:00:00:02:03", sim.now)  # what a discovery round sends out of 2:3
    c.packet_in(1, h1.port, edge, sim.now)
    assert c.net.links.keys() == links.keys()
    assert c.counters.lldp_refused == 2 and c.net.refused_links == 1


def test_an_impostor_is_refused_and_a_host_that_really_moves_is_relearned():
    sim, c = steady()
    h1 = load("ring4").subnets["opd1"].hosts[0]
    impostor = frames.arp_frame(frames.Arp(2, h1.mac, h1.ip, "ff:ff:ff:ff:ff:ff", h1.ip))
    sim.ports[2].append(9)  # a spare port on switch 2, up since the start
    sim.do(c, c.port_status(2, 9, True, "02:00:00:00:02:09", sim.now))
    sim.run(c, 3.0)
    for _ in range(10):
        sim.do(c, c.packet_in(2, 9, impostor, sim.now))
        sim.run(c, 0.2)
    assert (c.net.hosts[h1.mac].dpid, c.net.hosts[h1.mac].port) == (1, h1.port)
    assert c.net.refused_claims >= 1
    sim.run(c, 10.0)  # claims from that port were rate-limited meanwhile
    # Now it really moves (behind another port; its old port stays up): it is silent there.
    sim.hosts = [(m, ip, 2, 9) if m == h1.mac else (m, ip, d, p) for m, ip, d, p in sim.hosts]
    old = c.net.locator(h1.mac)
    outs: list[PacketOut] = []
    deliver = sim.deliver
    sim.deliver = lambda c, a: outs.append(a) or deliver(c, a)  # type: ignore[method-assign]
    sim.do(c, c.packet_in(2, 9, frames.arp_frame(frames.Arp(1, h1.mac, h1.ip, "00:00:00:00:00:00", h1.ip)), sim.now))
    sim.run(c, 1.5)
    assert (c.net.hosts[h1.mac].dpid, c.net.hosts[h1.mac].port) == (2, 9)
    # Its locator changed with its switch; the other hosts' ARP caches hold the old one, so
    # a gratuitous ARP with the new one goes out of every edge port but its own, once.
    new = c.net.locator(h1.mac)
    assert new != old
    told = [
        (a.dpid, a.port)
        for a in outs
        if isinstance(p := frames.parse(a.data).payload, frames.Arp)
        and (p.op, p.src_mac, p.src_ip, p.dst_ip) == (1, new, h1.ip, h1.ip)
        and frames.parse(a.data).eth_src == new
    ]
    edge = {(d, port) for d in c.net.ports for port in c.net.edge_ports(d, sim.now)}
    assert {(d, port) for m, _ip, d, port in sim.hosts if m != h1.mac} <= edge
    assert sorted(told) == sorted(edge - {(2, 9)})  # its old port too: it may be cabled anew


def test_odd_frames_are_dropped_counted_and_never_raise():
    sim, c = steady()
    for data in (
        b"",
        b"\x00" * 13,
        b"\xff" * 64,
        frames.lldp_frame(1, 1, "02:00:00:00:00:01")[:20],
        b"\x01\x80\xc2\x00\x00\x0e\x02\x00\x00\x00\x00\x01\x81\x00\x00\x05\x88\xcc" + b"\x00" * 40,
    ):
        assert c.packet_in(1, 3, data, sim.now) == []
    assert c.counters.frames_dropped >= 4


def test_a_failover_compiles_at_once_and_every_change_is_recorded_as_held():
    sim, c = steady()
    sim.sent.clear()
    out = c.port_status(1, 1, False, "02:00:00:00:01:01", sim.now)
    assert out and all(isinstance(a, SendChanges) for a in out) and c.counters.failovers == 1
    sim.do(c, out)
    assert sim.held == {d: c.recon.actual[d] for d in sim.held}


def test_after_a_loss_the_far_switches_are_updated_first_and_for_a_new_link_its_ends_first():
    # A switch already on its new path must not hand frames to a neighbour still on the
    # old one that leads back (a transient loop while the differences are applied).
    sim, c = steady()
    sim.sent.clear()
    sim.do(c, c.port_status(1, 1, False, "02:00:00:00:01:01", sim.now))  # r1:1-r2:1 loses carrier
    sim.do(c, c.port_status(2, 1, False, "02:00:00:00:02:01", sim.now))
    order = [a.dpid for _t, a in sim.sent]
    assert order and set(order[-2:]) <= {1, 2} and order[0] in (3, 4), order
    sim.sent.clear()
    sim.do(c, c.port_status(1, 1, True, "02:00:00:00:01:01", sim.now))
    sim.do(c, c.port_status(2, 1, True, "02:00:00:00:02:01", sim.now))
    sim.run(c, 1.5)
    order = [a.dpid for _t, a in sim.sent]
    assert (1, 1, 2, 1) in c.net.links and order and set(order[:2]) <= {1, 2}, order
