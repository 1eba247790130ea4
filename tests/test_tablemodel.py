"""The table model itself, on hand-built switch states sent over the wire: if these hold, its
verdicts on the compiler's output can be trusted."""

import pytest

from controller.core.state import (
    T_EGRESS,
    T_FWD,
    T_INGRESS,
    T_ROUTE,
    Bucket,
    Changes,
    Flow,
    Group,
    Meter,
    SwitchState,
    match,
)
from controller.lab import wire
from controller.lab.tablemodel import (
    OFPVID_PRESENT,
    Fabric,
    ModelError,
    ModelMeter,
    Packet,
    flow_matches,
    install,
    update,
)
from controller.openflow import ofmsg

A, B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
PKT = Packet(eth_src=A, eth_dst=B, eth_type=0x0800, ipv4_src="10.0.1.5", ipv4_dst="10.0.2.7")


def sw(*flows: Flow, groups: tuple[Group, ...] = (), meters: tuple[Meter, ...] = ()) -> SwitchState:
    st = SwitchState()
    for f in flows:
        st.add_flow(f)
    for g in groups:
        st.add_group(g)
    for m in meters:
        st.add_meter(m)
    return st


def out(port, table=T_INGRESS, prio=10, **m) -> Flow:
    return Flow(table, prio, match(**m), (("output", port),))


def test_highest_priority_wins_and_miss_drops():
    fab = Fabric({1: sw(out(2, prio=10), out(3, prio=20, eth_dst=B), out(4, prio=30, eth_dst=A))}, {})
    r = fab.inject(1, 1, PKT)
    assert r.delivered_to() == [(1, 3)]
    r = fab.inject(1, 1, Packet(eth_src=B, eth_dst="02:00:00:00:00:99"))
    assert r.delivered_to() == [(1, 2)]
    r = Fabric({1: sw(out(3, eth_dst=A))}, {}).inject(1, 1, PKT)
    assert r.deliveries == [] and r.drops == [(1, "table 0 miss")]


def test_equal_priority_overlap_is_reported():
    r = Fabric({1: sw(out(2, eth_dst=B), out(3, eth_type=0x0800))}, {}).inject(1, 1, PKT)
    assert r.ambiguous and len(r.deliveries) == 1


IP = 0x0800


@pytest.mark.parametrize(
    "m, hit",
    [
        (dict(eth_type=IP, ipv4_dst=("10.0.2.0", "255.255.255.0")), True),
        (dict(eth_type=IP, ipv4_dst=("10.0.3.0", "255.255.255.0")), False),
        (dict(eth_type=IP, ipv4_dst="10.0.2.7"), True),
        (dict(eth_type=IP, ipv4_src=("10.0.0.0", "255.255.0.0")), True),
        (dict(eth_type=0x0806), False),
        (dict(eth_dst=("01:00:00:00:00:00", "01:00:00:00:00:00")), False),  # multicast bit
        (dict(eth_dst=("02:00:00:00:00:00", "ff:ff:ff:00:00:00")), True),
        (dict(eth_dst="02:00:00:00:00:0B"), True),  # case-insensitive
        (dict(in_port=1, eth_type=0x0800), True),
        (dict(in_port=2), False),
        (dict(vlan_vid=OFPVID_PRESENT | 5), False),  # untagged never matches a tagged vid
        (dict(vlan_vid=0), True),  # OFPVID_NONE matches untagged
    ],
)
def test_match_semantics(m, hit):
    assert flow_matches(Flow(0, 1, match(**m)), PKT, in_port=1) is hit


def test_missing_field_never_matches_and_unknown_or_unprepared_fields_are_errors():
    no_ip = Packet(eth_src=A, eth_dst=B, eth_type=IP)
    assert not flow_matches(Flow(0, 1, match(eth_type=IP, ipv4_dst=("0.0.0.0", "0.0.0.0"))), no_ip, 1)
    with pytest.raises(ModelError, match="not modelled"):
        flow_matches(Flow(0, 1, match(tcp_dst=80)), PKT, 1)
    with pytest.raises(ModelError, match="OFPBMC_BAD_PREREQ"):  # a switch refuses ipv4_* without eth_type
        flow_matches(Flow(0, 1, match(ipv4_dst="10.0.2.7")), PKT, 1)


def test_vlan_push_set_match_pop():
    tagged = OFPVID_PRESENT | 7
    s1 = sw(Flow(0, 1, (), (("push_vlan", 0x8100), ("set_field", "vlan_vid", tagged), ("output", 2))))
    s2 = sw(
        Flow(0, 9, match(in_port=1, vlan_vid=tagged), (("pop_vlan",),), goto=T_FWD),
        Flow(0, 1, (), ()),  # untagged would be dropped here
        out(5, table=T_FWD, eth_dst=B),
    )
    r = Fabric({1: s1, 2: s2}, {(1, 2): (2, 1)}).inject(1, 1, PKT)
    assert r.delivered_to() == [(2, 5)] and r.deliveries[0].packet == PKT
    assert r.trace[1].packet.vlan_vid == tagged and r.trace[1].packet.eth_type == 0x0800


def test_goto_metadata_and_meter():
    s = sw(
        Flow(T_INGRESS, 1, (), goto=T_ROUTE, meter=3),
        Flow(T_ROUTE, 1, (), metadata=(7, 0xFFFF), goto=T_FWD),
        Flow(T_FWD, 1, (), metadata=(0x70000, 0xF0000), goto=T_EGRESS),
        out(9, table=T_EGRESS, metadata=(7, 0xFFFF)),
        out(8, table=T_EGRESS, prio=20, metadata=(0x70007, 0xFFFFF)),
        meters=(Meter(3, 2000, 500),),
    )
    fab = Fabric({1: s}, {})
    r = fab.inject(1, 1, PKT)
    assert r.delivered_to() == [(1, 8)] and r.meters == [(1, 3)]
    assert fab.switches[1].meters[3] == ModelMeter(pps=False, rate=2000, burst=500)
    backwards = sw(Flow(T_FWD, 1, (), goto=T_INGRESS), Flow(T_INGRESS, 1, (), goto=T_FWD))
    with pytest.raises(ModelError, match="OFPBIC_BAD_TABLE_ID"):
        Fabric({1: backwards}, {}).inject(1, 1, PKT)


def test_actions_apply_in_order_and_ttl():
    s = sw(Flow(0, 1, (), (("output", 2), ("set_field", "eth_dst", A), ("dec_nw_ttl",), ("output", 3))))
    r = Fabric({1: s}, {}).inject(1, 1, PKT)
    assert [(d.port, d.packet.eth_dst, d.packet.ip_ttl) for d in r.deliveries] == [(2, B, 64), (3, A, 63)]
    r = Fabric({1: s}, {}).inject(1, 1, Packet(eth_src=A, eth_dst=B, ip_ttl=1))
    assert r.delivered_to() == [(1, 2)] and (1, "ttl expired") in r.drops


def test_output_to_in_port_needs_in_port_action():
    r = Fabric({1: sw(out(1))}, {}).inject(1, 1, PKT)
    assert r.deliveries == [] and "without OFPP_IN_PORT" in r.drops[0][1]
    r = Fabric({1: sw(out("in_port"))}, {}).inject(1, 1, PKT)
    assert r.delivered_to() == [(1, 1)]


def test_all_group_never_echoes_to_in_port():
    flood = Group(1, "all", tuple(Bucket((("output", p),)) for p in (1, 2, 3)))
    r = Fabric({1: sw(Flow(0, 1, (), (("group", 1),)), groups=(flood,))}, {}).inject(1, 2, PKT)
    assert sorted(r.delivered_to()) == [(1, 1), (1, 3)]


def test_ff_group_takes_first_live_bucket():
    ff = Group(5, "ff", (Bucket((("output", 2),), watch_port=2), Bucket((("output", 3),), watch_port=3)))
    s = {1: sw(Flow(0, 1, (), (("group", 5),)), groups=(ff,))}
    assert Fabric(s, {}).inject(1, 1, PKT).delivered_to() == [(1, 2)]
    assert Fabric(s, {}, {(1, 2)}).inject(1, 1, PKT).delivered_to() == [(1, 3)]
    assert Fabric(s, {}, lambda d, p: p == 3).inject(1, 1, PKT).delivered_to() == [(1, 3)]
    r = Fabric(s, {}, {(1, 2), (1, 3)}).inject(1, 1, PKT)
    assert r.deliveries == [] and "no live bucket" in r.drops[0][1]
    with pytest.raises(ModelError):
        Fabric({1: sw(Flow(0, 1, (), (("group", 6),)))}, {}).inject(1, 1, PKT)


def test_dead_port_and_dead_peer_lose_the_packet():
    links = {(1, 2): (2, 1)}
    s = {1: sw(out(2)), 2: sw(out(3))}
    assert Fabric(s, links).inject(1, 1, PKT).delivered_to() == [(2, 3)]
    assert Fabric(s, links, {(1, 2)}).inject(1, 1, PKT).deliveries == []
    assert Fabric(s, links, {(2, 1)}).inject(1, 1, PKT).deliveries == []


def test_controller_output_is_a_packet_in():
    r = Fabric({1: sw(out("controller", eth_type=0x0806))}, {}).inject(
        1, 4, Packet(eth_src=A, eth_dst="ff:ff:ff:ff:ff:ff", eth_type=0x0806)
    )
    assert [(p.dpid, p.in_port) for p in r.packet_ins] == [(1, 4)] and not r.deliveries


def test_loops_are_detected():
    # Two switches bouncing a frame between them for ever.
    links = {(1, 2): (2, 1)}
    s = {1: sw(out(2, in_port=1), out("in_port", in_port=2)), 2: sw(out("in_port"))}
    r = Fabric(s, links).inject(1, 1, PKT)
    assert r.looped
    # A TTL-decrementing loop changes the packet each time: caught by max_hops instead.
    s = {1: sw(Flow(0, 1, (), (("dec_nw_ttl",), ("output", "in_port")))), 2: sw(out("in_port"))}
    r = Fabric(s, links).inject(2, 1, Packet(eth_src=A, eth_dst=B, ip_ttl=255), max_hops=20)
    assert r.looped and len(r.trace) == 21
    # A flood over a triangle with no tree loops; a duplicate arrival counts as looping too.
    tri = {(1, 2): (2, 1), (2, 2): (3, 1), (3, 2): (1, 3)}
    flood = Group(1, "all", tuple(Bucket((("output", p),)) for p in (1, 2, 3, 9)))
    s = {d: sw(Flow(0, 1, (), (("group", 1),)), groups=(flood,)) for d in (1, 2, 3)}
    assert Fabric(s, tri).inject(1, 9, PKT).looped


# ---- applying messages: what a switch does with each FlowMod, GroupMod and MeterMod --------------

FF = Group(5, "ff", (Bucket((("output", 2),), watch_port=2), Bucket((("output", 3),), watch_port=3)))
CAP = Meter(7, 1000, 100)


def test_a_switch_refuses_flows_whose_meter_or_group_is_missing():
    with pytest.raises(ModelError, match="OFPMMFC_UNKNOWN_METER"):
        install({1: sw(Flow(0, 1, (), goto=1, meter=7))})
    with pytest.raises(ModelError, match="OFPBAC_BAD_OUT_GROUP"):
        install({1: sw(Flow(0, 1, (), (("group", 5),)))})
    with pytest.raises(ModelError, match="watch port"):
        install({1: sw(groups=(Group(5, "ff", (Bucket((("output", 2),)),)),))})
    assert install({1: sw(Flow(0, 1, (), (("group", 5),), meter=7), groups=(FF,), meters=(CAP,))})[1].flows


def test_add_twice_and_modify_before_add_are_refused_for_groups_and_meters():
    s = install({1: sw(groups=(FF,), meters=(CAP,))})[1]
    for ch, err in (
        (Changes(groups_add=[FF]), "OFPGMFC_GROUP_EXISTS"),
        (Changes(groups_mod=[Group(6, "all", ())]), "OFPGMFC_UNKNOWN_GROUP"),
        (Changes(meters_add=[CAP]), "OFPMMFC_METER_EXISTS"),
        (Changes(meters_mod=[Meter(8, 10, 10)]), "OFPMMFC_UNKNOWN_METER"),
    ):
        with pytest.raises(ModelError, match=err):
            s.copy().send(ch)


def modify_strict(flow: Flow):
    """What ofmsg once sent for a changed flow (it sends an ADD now: see ofmsg.flow_mod)."""
    msg = ofmsg.flow_mod(wire.FakeDatapath(), flow, "delete")
    msg.command = msg.datapath.ofproto.OFPFC_MODIFY_STRICT
    msg.instructions = ofmsg.flow_mod(msg.datapath, flow, "add").instructions
    return msg


def test_modify_strict_keeps_the_cookie_and_add_replaces_it():
    """OpenFlow 1.3 (and OVS): MODIFY_STRICT changes instructions only; an ADD of the same
    table, priority and match replaces the whole entry."""
    old = Flow(T_FWD, 100, match(eth_dst=B), (("output", 2),), tag=1)
    new = Flow(T_FWD, 100, match(eth_dst=B), (("output", 3),), tag=0)
    s = install({1: sw(old)})[1]
    s.receive(modify_strict(new))
    (entry,) = s.flows.values()
    assert entry.actions == (("output", 3),) and entry.cookie & 0xFFFFFFFF == 1
    s.receive(ofmsg.flow_mod(wire.FakeDatapath(), new, "add"))
    (entry,) = s.flows.values()
    assert entry.actions == (("output", 3),) and entry.cookie & 0xFFFFFFFF == 0
    # A strict modify or delete of an entry that is not there does nothing.
    other = Flow(T_FWD, 100, match(eth_dst=A), (("output", 4),))
    s.receive(modify_strict(other))
    s.receive(ofmsg.flow_mod(wire.FakeDatapath(), other, "delete"))
    assert len(s.flows) == 1
    s.receive(ofmsg.flow_mod(wire.FakeDatapath(), new, "delete"))
    assert not s.flows


def test_deleting_a_group_or_meter_removes_the_flows_that_use_it():
    f_group = Flow(0, 2, match(eth_dst=B), (("group", 5),))
    f_meter = Flow(0, 1, (), goto=1, meter=7)
    s = install({1: sw(f_group, f_meter, groups=(FF,), meters=(CAP,))})[1]
    s.send(Changes(groups_del=[5]))
    assert [e.priority for e in s.flows.values()] == [1]
    s.send(Changes(meters_del=[7]))
    assert not s.flows and not s.groups and not s.meters


def test_a_diff_sent_over_the_wire_gives_the_same_switch_as_a_fresh_send():
    a = {1: sw(out(2, eth_dst=B), Flow(0, 1, (), goto=1, meter=7), meters=(CAP,), groups=(FF,))}
    b = {
        1: sw(
            out(3, eth_dst=B),
            Flow(0, 1, (), (("group", 6),), meter=8),
            groups=(Group(6, "all", (Bucket((("output", 4),)),)),),
            meters=(Meter(8, 50, 50, pps=True),),
        )
    }
    assert update(install(a), a, b) == install(b)
    assert update(install(a), a, b)[1] != install(a)[1]


def test_group_and_meter_mods_parse_back_from_their_bytes():
    dp = wire.FakeDatapath()
    g = wire.round_trip(dp, ofmsg.group_mod(dp, FF, "add"))
    assert (g.group_id, g.type, [b.watch_port for b in g.buckets]) == (5, dp.ofproto.OFPGT_FF, [2, 3])
    m = wire.round_trip(dp, ofmsg.meter_mod(dp, Meter(9, 1234, 56, pps=True), "add"))
    assert (m.meter_id, m.bands[0].rate, m.bands[0].burst_size) == (9, 1234, 56)
    assert m.flags & dp.ofproto.OFPMF_PKTPS
    with pytest.raises(wire.WireError):
        wire.decode(wire.encode(dp, ofmsg.meter_mod(dp, CAP, "add"))[:-4])


def test_two_flows_that_are_one_entry_on_a_switch_are_an_error():
    st = sw(out(1, eth_dst="02:00:00:00:00:0B"), out(2, eth_dst="02:00:00:00:00:0b"))
    assert len(st.flows) == 2
    with pytest.raises(ModelError, match="same flow entry"):
        install({1: st})
