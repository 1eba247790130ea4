"""ofmsg both ways: desired state -> OpenFlow wire -> what a switch reports -> the same state.

On reconnect the controller reads the switch's flows, groups and meters back and sends
only the difference; a flow that came back looking different would be deleted and
re-added, so the round trip must be exact.
"""

from dataclasses import replace

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.core.compiler import Compiler
from controller.core.graph import Network
from controller.core.state import Changes, SwitchState, diff
from controller.lab import wire
from controller.openflow import ofmsg
from tests.builders import NOW, Pol, from_topology

DP = wire.FakeDatapath()


def ppu_state():
    built = from_topology("ppu")
    pols = {
        "dinkes": Pol("dinkes", ("10.10.7.0/24",), 20000, 10000),
        "rsud": Pol("rsud", ("10.10.11.0/24",), 150000, 80000, 50000),
    }
    return Compiler().compile(built.net, pols, now=NOW)


# What a switch reports holds what it was sent: a FlowMod, GroupMod or MeterMod parsed back
# from its bytes has the attributes of a flow stats, group desc or meter config entry.


def wire_flow(flow):
    return wire.round_trip(DP, ofmsg.flow_mod(DP, flow, "add"))


def wire_group(group):
    return wire.round_trip(DP, ofmsg.group_mod(DP, group, "add"))


def wire_meter(meter):
    return wire.round_trip(DP, ofmsg.meter_mod(DP, meter, "add"))


def test_every_compiled_flow_group_and_meter_survives_the_wire():
    state = ppu_state()
    n = 0
    for sw in state.values():
        for flow in sw.flows.values():
            assert ofmsg.flow_from_stats(ofp, wire_flow(flow)) == flow
            n += 1
        for group in sw.groups.values():
            assert ofmsg.group_from_desc(ofp, wire_group(group)) == group
        for meter in sw.meters.values():
            assert ofmsg.meter_from_config(ofp, wire_meter(meter)) == meter
    assert n > 1000


def test_a_switch_that_kept_its_state_gets_no_changes_on_reconnect():
    for want in ppu_state().values():
        read_back = SwitchState(
            {f.key: f for f in (ofmsg.flow_from_stats(ofp, wire_flow(x)) for x in want.flows.values())},
            {g.group_id: ofmsg.group_from_desc(ofp, wire_group(g)) for g in want.groups.values()},
            {m.meter_id: ofmsg.meter_from_config(ofp, wire_meter(m)) for m in want.meters.values()},
        )
        assert not diff(read_back, want)


def test_foreign_state_is_replaced_not_kept():
    foreign = parser.OFPMeterConfigStats(
        flags=ofp.OFPMF_KBPS, meter_id=7, bands=[parser.OFPMeterBandDscpRemark(rate=10, burst_size=0, prec_level=1)]
    )
    m = ofmsg.meter_from_config(ofp, foreign)
    assert m.rate_kbps == -1
    ch = diff(SwitchState(meters={7: m}), SwitchState())
    assert ch.meters_del == [7]
    assert isinstance(ch, Changes)


def test_hosts_are_recovered_from_a_switch_flows_after_a_restart():
    from controller.core.compiler import hosts_on_switch

    built = from_topology("ppu")
    state = Compiler().compile(built.net, {}, now=NOW)
    read_back = {
        d: SwitchState({f.key: f for f in (ofmsg.flow_from_stats(ofp, wire_flow(x)) for x in sw.flows.values())})
        for d, sw in state.items()
    }
    found = sorted((mac, ip, d, port, loc) for d, sw in read_back.items() for mac, ip, port, loc in hosts_on_switch(sw))
    # The address comes from the routes: only at the switch that routes for the host's subnet.
    routed = {s.id: built.net.topology.switches[s.switch].dpid for s in built.net.topology.subnets.values()}
    assert routed and built.hosts
    want = []
    for h in built.hosts:
        at = routed.get(h.subnet) if h.subnet else None
        want.append((h.mac, h.ip if at == h.dpid else None, h.dpid, h.port, h.loc))
    assert found == sorted(want)
    assert all(h.loc for h in built.hosts)
    # A controller started afresh meets the switches in another order (so it would number
    # them differently), and takes the locators the flows give: other hosts' ARP caches
    # hold them.
    fresh = Network(built.net.topology)
    for d in sorted(read_back, reverse=True):
        fresh.switch_up(d, {p: True for p in built.net.ports[d]}, 0.0)
    for d, sw in read_back.items():
        for mac, ip, port, loc in hosts_on_switch(sw):
            assert fresh.recover_host(mac, ip, d, port, loc)
    assert {h.mac: fresh.locator(h.mac) for h in built.hosts} == {h.mac: h.loc for h in built.hosts}


def test_changes_are_the_messages_of_plan_in_its_order():
    """The table model sends ofmsg.plan step by step; the shell sends ofmsg.changes: the same bytes."""
    state = ppu_state()
    dpid = max(state, key=lambda d: len(state[d].meters))
    was = state[dpid]
    now = SwitchState(
        {k: f for i, (k, f) in enumerate(was.flows.items()) if i % 3},
        {gid: g for i, (gid, g) in enumerate(was.groups.items()) if i % 2},
    )
    for k, f in list(now.flows.items())[:5]:
        now.flows[k] = replace(f, tag=f.tag ^ 1)
    ch = diff(was, now)
    assert ch.flows_mod and ch.flows_del and ch.groups_del and ch.meters_del
    strip = [wire.encode(DP, m)[8:] for m in ofmsg.changes(DP, ch)]  # without the header (its xid)
    assert strip == [wire.encode(DP, ofmsg.message(DP, *step))[8:] for step in ofmsg.plan(ch)]
