"""controller.core.compiler: what each switch gets, checked structurally and by running frames
through controller.lab.tablemodel (which is sent the compiled state as OpenFlow messages)."""

from __future__ import annotations

import dataclasses
import ipaddress

import networkx as nx
import pytest

from controller.core import address
from controller.core import topology as topo_mod
from controller.core.address import LABEL_MASK, PREFIX_MAC, PREFIX_MASK, label_mac
from controller.core.compiler import (
    CONTROL_METERS,
    ETH_ARP,
    ETH_IP,
    ETH_LLDP,
    FLOOD_GROUP,
    GATEWAY_MAC,
    HOST_TAG,
    METADATA_MASK,
    MULTICAST,
    OFPVID_PRESENT,
    TURNBACK_GROUP,
    Compiler,
    compile_network,
    meter_rate,
)
from controller.core.state import T_EGRESS, T_FWD, T_INGRESS, T_ROUTE, Flow, SwitchState, diff, match
from controller.lab.tablemodel import Fabric, Packet, Result, links_of
from tests.builders import NOW, Pol, from_topology, load

RATIO = 1514 / 1448


@pytest.fixture(scope="module")
def ring():
    t = load("ring4")
    net = from_topology(t).net
    return t, net, compile_network(net, {}, now=NOW)


@pytest.fixture(scope="module")
def ppu():
    t = load("ppu")
    net = from_topology(t).net
    return t, net, compile_network(net, {}, now=NOW)


def dp(t, name):
    return t.switches[name].dpid


def hosts_of(t):
    return [(h, dp(t, h.switch)) for h in t.hosts]


def unicast(net, src, dst):
    """What ``src`` sends ``dst`` once ARP told it ``dst``'s locator MAC."""
    return Packet(eth_src=src.mac, eth_dst=net.locator(dst.mac), eth_type=ETH_IP, ipv4_src="192.0.2.1", ipv4_dst=dst.ip)


def label_route(net, sw: SwitchState, dest: int) -> int | None:
    """The out port ``sw`` sends frames for switch ``dest``'s label by: its exception for that
    label, else its default route; None where it has neither."""
    f = sw.flows.get((T_FWD, 100, match(eth_dst=(label_mac(net.label(dest)), LABEL_MASK))))
    if f is None:
        f = sw.flows.get((T_FWD, 10, match(eth_dst=(PREFIX_MAC, PREFIX_MASK))))
    if f is None:
        return None
    assert f.metadata[1] == METADATA_MASK and f.goto == T_EGRESS and f.actions == (), f
    return f.metadata[0]


def mentions(f: Flow, mac: str) -> bool:
    """The flow matches on ``mac`` (exactly) or writes it."""
    return dict(f.match).get("eth_dst") == mac or any(a[2:] == (mac,) for a in f.actions if a[0] == "set_field")


def routed(src, dst_ip):
    return Packet(eth_src=src.mac, eth_dst=GATEWAY_MAC, eth_type=ETH_IP, ipv4_src=src.ip, ipv4_dst=dst_ip)


def fabric(st, net, dead=()) -> Fabric:
    """The compiled state on switches cabled like ``net``; ``dead`` (dpid, port) lose what is sent to them."""
    return Fabric(st, links_of(net), dead)


def reached(res: Result) -> tuple[int, int] | None:
    """Where the one frame came out: None unless exactly one copy was delivered to a host port
    and nothing was dropped, sent to the controller or looped on the way."""
    if res.looped or res.drops or res.packet_ins or len(res.deliveries) != 1:
        return None
    return res.delivered_to()[0]


def path(res: Result) -> list[int]:
    """The switches the frame entered, in order."""
    return [h.dpid for h in res.trace]


# ---- the pipeline skeleton -------------------------------------------------------------------


@pytest.mark.parametrize("which", ["ring", "ppu"])
def test_every_switch_sends_lldp_and_arp_to_the_controller_and_chains_tables(which, request):
    t, net, st = request.getfixturevalue(which)
    assert set(st) == {s.dpid for s in t.switches.values()}
    ctrl = (("output", "controller"),)
    for sw in st.values():
        assert sw.flows[(T_INGRESS, 1000, match(eth_type=ETH_LLDP))].actions == ctrl
        assert sw.flows[(T_INGRESS, 1000, match(eth_type=ETH_ARP))].actions == ctrl
        assert sw.flows[(T_INGRESS, 0, ())].goto == T_ROUTE
        assert sw.flows[(T_ROUTE, 0, ())].goto == T_FWD
        for f in sw.flows.values():
            assert f.goto is None or f.goto > f.table, f  # a pipeline only goes forward
            for a in f.actions:
                if a[0] == "group":
                    assert a[1] in sw.groups, f


@pytest.mark.parametrize("which", ["ring", "ppu"])
def test_per_host_entries_only_at_the_hosts_own_switch(which, request):
    """A host's entry (its locator -> its real MAC, its port) is at its own switch only;
    every other switch reaches it by its switch's label, over an inter-switch port."""
    t, net, st = request.getfixturevalue(which)
    router = t.subnets[t.uplink.subnet].hosts[0] if t.uplink else None
    routed_at: dict[int, list] = {}
    for sub in t.subnets.values():
        routed_at.setdefault(dp(t, sub.switch), []).append(sub)
    for h, hd in hosts_of(t):
        loc = net.locator(h.mac)
        assert address.parse(loc)[0] == net.label(hd)
        for dpid, sw in st.items():
            if dpid == hd:
                f = sw.flows[(T_FWD, 150, match(eth_dst=loc))]
                assert f.actions == (("set_field", "eth_dst", h.mac),)
                assert f.metadata == (h.port, METADATA_MASK) and f.goto == T_EGRESS and f.tag == HOST_TAG
                assert (T_EGRESS, 100, match(metadata=(h.port, METADATA_MASK))) in sw.flows
                continue
            # Nothing about h here: neither its locator nor its MAC, except where its
            # subnet is routed (that switch holds its subnet's addresses).
            about = [
                f
                for f in sw.flows.values()
                if (mentions(f, loc) or mentions(f, h.mac.lower())) and not (h.mac == router.mac and f.priority == 50)
            ]
            if any(ipaddress.ip_address(h.ip) in sub.network for sub in routed_at.get(dpid, [])):
                assert about and all(f.table == T_ROUTE for f in about), about
            else:
                assert not about, about
            port = label_route(net, sw, hd)
            assert port in net.link_ports(dpid)
            assert (T_EGRESS, 100, match(metadata=(port, METADATA_MASK))) in sw.flows


@pytest.mark.parametrize("which", ["ring", "ppu"])
def test_forwarding_entries_grow_with_switches_not_hosts(which, request):
    """T_FWD at a switch: its own hosts' entries, one drop for its own label, at most one
    label route per other switch and a default; nothing per host elsewhere."""
    t, net, st = request.getfixturevalue(which)
    for dpid, sw in st.items():
        mine = sum(1 for _h, hd in hosts_of(t) if hd == dpid)
        fwd = [f for f in sw.flows.values() if f.table == T_FWD]
        assert sum(1 for f in fwd if f.priority == 150) == mine
        assert all(f.tag == HOST_TAG for f in fwd if f.priority == 150)
        own = sw.flows[(T_FWD, 90, match(eth_dst=(label_mac(net.label(dpid)), LABEL_MASK)))]
        assert own.actions == () and own.goto is None  # a number this switch does not know: dropped
        labels = [f for f in fwd if f.priority == 100]
        assert len(labels) <= len(st) - 1
        assert all(dict(f.match)["eth_dst"][1] == LABEL_MASK for f in labels)
        assert sum(1 for f in fwd if f.priority == 10) <= 1
        assert not [f for f in fwd if f.priority not in (150, 100, 90, 50, 10, 0)], fwd


@pytest.mark.parametrize("which", ["ring", "ppu"])
def test_every_host_reaches_every_host(which, request):
    t, net, st = request.getfixturevalue(which)
    hs = hosts_of(t)
    fab = fabric(st, net)
    for a, ad in hs:
        for b, bd in hs:
            if a is not b:
                res = fab.inject(ad, a.port, unicast(net, a, b))
                assert reached(res) == (bd, b.port), res.format_trace()
                out = res.deliveries[0].packet
                # Delivered as sent, but to the host's own MAC (it only takes frames to it).
                assert out.vlan_vid is None and out.eth_dst == b.mac.lower(), res.format_trace()


def test_unknown_destination_misses_in_t_fwd(ring):
    t, net, st = ring
    res = fabric(st, net).inject(
        1, 3, Packet(eth_src="02:99:00:00:00:02", eth_dst="02:99:00:00:00:01", eth_type=ETH_IP)
    )
    assert not res.deliveries and not res.packet_ins, res.format_trace()
    assert res.drops == [(1, f"table {T_FWD} miss")], res.format_trace()


@pytest.mark.parametrize("which", ["ring", "ppu"])
def test_a_locator_nobody_has_is_dropped_and_never_loops(which, request):
    """A stale or forged locator: an unknown number on a known switch, or a label nobody has."""
    t, net, st = request.getfixturevalue(which)
    fab = fabric(st, net)
    free = max(net.locators.labels.values()) + 1
    wanted = {hd for _h, hd in hosts_of(t)} | {dp(t, s.switch) for s in t.subnets.values()}  # with routes to them
    for h, hd in hosts_of(t):
        res = fab.inject(hd, h.port, Packet(eth_src=h.mac, eth_dst=address.locator(free, 1), eth_type=ETH_IP))
        assert not res.looped and not res.deliveries and not res.packet_ins, res.format_trace()
        assert len({x.dpid for x in res.trace}) == len(res.trace), res.format_trace()  # no switch twice
        for dest in sorted(st):
            loc = address.locator(net.label(dest), 4000)
            res = fab.inject(hd, h.port, Packet(eth_src=h.mac, eth_dst=loc, eth_type=ETH_IP))
            assert not res.looped and not res.deliveries and not res.packet_ins, res.format_trace()
            assert len({x.dpid for x in res.trace}) == len(res.trace), res.format_trace()
            if dest in wanted:  # it gets to its label's switch, which drops it (a number it lacks)
                last = res.trace[-1]
                assert last.dpid == dest and (last.flows[-1].table, last.flows[-1].priority) == (T_FWD, 90), (
                    res.format_trace()
                )


# ---- flooding ----------------------------------------------------------------------------------


def flood_ports(sw: SwitchState) -> set[int]:
    g = sw.groups[FLOOD_GROUP]
    assert g.type == "all"
    out = set()
    for b in g.buckets:
        (act,) = b.actions
        assert act[0] == "output"
        out.add(act[1])
    return out


@pytest.mark.parametrize("which", ["ring", "ppu"])
def test_flood_group_is_edge_ports_plus_a_spanning_tree(which, request):
    t, net, st = request.getfixturevalue(which)
    tree = nx.Graph()
    tree.add_nodes_from(st)
    excluded = set()
    for dpid, sw in st.items():
        fp = flood_ports(sw)
        assert sw.flows[(T_FWD, 50, match(eth_dst=MULTICAST))].actions == (("group", FLOOD_GROUP),)
        edge = set(net.edge_ports(dpid, NOW))
        linked = net.link_ports(dpid)
        assert edge == {h.port for h, hd in hosts_of(t) if hd == dpid}
        assert fp - linked == edge
        for p in linked - fp:
            excluded.add((dpid, p))
            # Broadcast arriving on a non-tree link is dropped at once.
            f = sw.flows[(T_INGRESS, 500, match(in_port=p, eth_dst=MULTICAST))]
            assert f.actions == () and f.goto is None
        for p in fp & linked:
            assert (T_INGRESS, 500, match(in_port=p, eth_dst=MULTICAST)) not in sw.flows
    for d1, p1, d2, p2 in net.links:
        in1, in2 = (d1, p1) not in excluded, (d2, p2) not in excluded
        assert in1 == in2, "a link is in the tree at both ends or at neither"
        if in1:
            tree.add_edge(d1, d2)
    assert nx.is_tree(tree)
    assert len(excluded) == 2 * (len(net.links) - (len(st) - 1))


def test_ring_excludes_exactly_one_link(ring):
    t, net, st = ring
    out = {(d, p) for d, sw in st.items() for p in net.link_ports(d) - flood_ports(sw)}
    assert len(out) == 2
    (a, pa), (b, pb) = sorted(out)
    assert (a, pa, b, pb) in net.links


def test_broadcast_reaches_each_other_host_once(ppu):
    t, net, st = ppu
    peer = {}
    for d1, p1, d2, p2 in net.links:
        peer[(d1, p1)], peer[(d2, p2)] = (d2, p2), (d1, p1)
    h, hd = hosts_of(t)[5]
    delivered, queue, steps = [], [(hd, h.port)], 0
    while queue:
        steps += 1
        assert steps < 500, "flood loops"
        d, inp = queue.pop()
        sw = st[d]
        if (T_INGRESS, 500, match(in_port=inp, eth_dst=MULTICAST)) in sw.flows:
            continue
        for p in sorted(flood_ports(sw) - {inp}):
            if (d, p) in peer:
                queue.append(peer[(d, p)])
            else:
                delivered.append((d, p))
    expected = sorted((bd, b.port) for b, bd in hosts_of(t) if b is not h)
    assert sorted(delivered) == expected


# ---- path choice follows capacity --------------------------------------------------------------

TRIANGLE = {
    "switches": [{"name": "a", "dpid": 1}, {"name": "b", "dpid": 2}, {"name": "c", "dpid": 3}],
    "links": [
        {"a": "a", "b": "b", "capacity_mbps": 10},
        {"a": "a", "b": "c", "capacity_mbps": 10000},
        {"a": "c", "b": "b", "capacity_mbps": 10000},
    ],
    "subnets": [
        {
            "id": "sa",
            "cidr": "10.1.0.0/24",
            "gateway": "10.1.0.1",
            "switch": "a",
            "hosts": [{"name": "ha", "ip": "10.1.0.10"}],
        },
        {
            "id": "sb",
            "cidr": "10.2.0.0/24",
            "gateway": "10.2.0.1",
            "switch": "b",
            "hosts": [{"name": "hb", "ip": "10.2.0.10"}],
        },
    ],
}


def test_shortest_path_follows_declared_capacity():
    t = topo_mod.parse(TRIANGLE, "triangle")
    net = from_topology(t).net
    st = compile_network(net, {}, now=NOW)
    port = {(l.a, l.b): (l.a_port, l.b_port) for l in t.links}
    ha, hb = t.subnets["sa"].hosts[0], t.subnets["sb"].hosts[0]
    # a -> b goes through c (2 x 10 Gbit/s), not over the direct 10 Mbit/s link; and back.
    assert label_route(net, st[1], 2) == port[("a", "c")][0]
    assert label_route(net, st[2], 1) == port[("c", "b")][1]
    res = fabric(st, net).inject(1, ha.port, unicast(net, ha, hb))
    assert reached(res) == (2, hb.port), res.format_trace()
    assert path(res) == [1, 3, 2], res.format_trace()
    # The spanning tree leaves out the slow link too.
    assert port[("a", "b")][0] not in flood_ports(st[1])
    # Without declared capacities the direct link wins.
    bare = from_topology(t, declare=False).net
    for info in bare.links.values():
        assert info.capacity_mbps is None
    st2 = compile_network(bare, {}, now=NOW)
    assert label_route(bare, st2[1], 2) == port[("a", "b")][0]


# ---- fast failover -----------------------------------------------------------------------------


def test_fast_failover_groups_on_inter_switch_ports(ring):
    t, net, st = ring
    vids = set()
    for dpid, sw in st.items():
        for port in net.link_ports(dpid):
            f = sw.flows[(T_EGRESS, 100, match(metadata=(port, METADATA_MASK)))]
            assert f.actions == (("group", port),)
            g = sw.groups[port]
            assert g.type == "ff" and len(g.buckets) == 2
            primary, backup = g.buckets
            assert primary.actions == (("output", port),) and primary.watch_port == port
            assert backup.actions[0] == ("push_vlan", 0x8100)
            kind, fld, vid = backup.actions[1]
            assert (kind, fld) == ("set_field", "vlan_vid") and vid & OFPVID_PRESENT
            vids.add(vid)
            other = backup.actions[2][1]
            assert backup.actions[2] == ("output", other) and backup.watch_port == other
            assert other in net.link_ports(dpid) and other != port
            # The turn-back twin for frames that came in by the detour's first port.
            tb = sw.groups[TURNBACK_GROUP | port]
            assert tb.buckets[0] == primary and tb.buckets[1].actions[-1] == ("output", "in_port")
            f110 = sw.flows[(T_EGRESS, 110, match(metadata=(port, METADATA_MASK), in_port=other))]
            assert f110.actions == (("group", TURNBACK_GROUP | port),)
            # A detour may end past the destination's side: the frame must U-turn explicitly.
            f105 = sw.flows[(T_EGRESS, 105, match(metadata=(port, METADATA_MASK), in_port=port))]
            assert f105.actions == (("output", "in_port"),)
        for port in net.edge_ports(dpid, NOW):
            f = sw.flows[(T_EGRESS, 100, match(metadata=(port, METADATA_MASK)))]
            assert f.actions == (("output", port),)
    assert len(vids) == 2 * len(net.links)  # one detour per directed link


def test_no_protect_means_plain_outputs(ring):
    t, net, _ = ring
    st = compile_network(net, {}, now=NOW, protect=False)
    for dpid, sw in st.items():
        assert set(sw.groups) == {FLOOD_GROUP}
        assert not any("vlan_vid" in dict(f.match) for f in sw.flows.values())
        for port in net.link_ports(dpid):
            assert sw.flows[(T_EGRESS, 100, match(metadata=(port, METADATA_MASK)))].actions == (("output", port),)


def test_bridge_links_get_a_single_bucket_group(ppu):
    t, net, st = ppu
    d = dp(t, "sw-dinkes")
    (port,) = net.link_ports(d)
    g = st[d].groups[port]
    assert g.type == "ff" and len(g.buckets) == 1


def test_detour_to_the_neighbour_delivers_when_the_link_dies(ring):
    t, net, st = ring
    h = {x.name: x for x in t.hosts}
    dead = {(1, 1), (2, 1)}  # r1:1 - r2:1
    assert (1, 1, 2, 1) in net.links
    res = fabric(st, net, dead).inject(1, h["h1"].port, unicast(net, h["h1"], h["h2"]))
    assert reached(res) == (2, h["h2"].port), res.format_trace()
    assert res.deliveries[0].packet.vlan_vid is None, res.format_trace()
    assert len(path(res)) == 4, res.format_trace()  # r1 r4 r3 r2


@pytest.mark.parametrize("which", ["ring", "ppu"])
def test_any_single_link_failure_is_survived_before_recompiling(which, request):
    """Regression: a detour's last switch sending the frame back out of its in_port (dropped by OpenFlow)."""
    t, net, st = request.getfixturevalue(which)
    g = nx.MultiGraph([(k[0], k[2]) for k in net.links])
    keep = {"h1", "h2", "h3", "h4", "isp", "spbe", "setda1", "kecwaru1", "kecbabul1", "kecsepak1", "rsud1", "diskomin1"}
    hs = [(h, d) for h, d in hosts_of(t) if h.name in keep]
    failures = []
    fab = fabric(st, net)
    for d1, p1, d2, p2 in sorted(net.links):
        rest = g.copy()
        rest.remove_edge(d1, d2)
        if not nx.is_connected(rest):
            continue
        cut = fab.with_liveness({(d1, p1), (d2, p2)})
        for a, ad in hs:
            for b, bd in hs:
                if a is not b:
                    res = cut.inject(ad, a.port, unicast(net, a, b))
                    if reached(res) != (bd, b.port):
                        failures.append((d1, p1, d2, p2, a.name, b.name, res.format_trace()))
    assert not failures, failures[:3]


def test_detour_tags_are_followed_and_popped(ring):
    t, net, st = ring
    for sw in st.values():
        for f in sw.flows.values():
            m = dict(f.match)
            if "vlan_vid" in m:
                assert f.table == T_INGRESS and f.priority == 900 and "in_port" in m
                assert (f.actions == (("pop_vlan",),) and f.goto == T_FWD) or (
                    len(f.actions) == 1 and f.actions[0][0] == "output" and f.goto is None
                )


# ---- routing -----------------------------------------------------------------------------------


def test_routing_rewrites_to_gateway_and_host_mac(ppu):
    """First hops send a subnet's traffic to its switch's label; only the subnet's switch
    holds its hosts' addresses (-> their locators) and asks the controller for unknown ones."""
    t, net, st = ppu
    first_hops = {dp(t, h.switch) for h in t.hosts}
    at = {s.id: dp(t, s.switch) for s in t.subnets.values()}
    router = t.subnets[t.uplink.subnet].hosts[0]
    gw_src = ("set_field", "eth_src", GATEWAY_MAC)
    unknown = (("output", "controller"),)
    for dpid, sw in st.items():
        route = [f for f in sw.flows.values() if f.table == T_ROUTE and f.priority > 0]
        if dpid not in first_hops and dpid not in at.values():
            assert not route, route
            continue
        mine = [s for s in t.subnets.values() if at[s.id] == dpid]
        label = label_mac(net.label(dpid))
        for s in mine:
            cidr = (str(s.network.network_address), str(s.network.netmask))
            f = sw.flows[(T_ROUTE, 100, match(eth_type=ETH_IP, eth_dst=label, ipv4_dst=cidr))]
            assert f.actions == unknown and f.meter is not None
            for h in s.hosts:
                loc = ("set_field", "eth_dst", net.locator(h.mac))
                f = sw.flows[(T_ROUTE, 200, match(eth_type=ETH_IP, eth_dst=label, ipv4_dst=h.ip))]
                assert f.actions == (loc,) and f.goto == T_FWD
                if dpid in first_hops:  # routed here from the first hop: both rewrites at once
                    f = sw.flows[(T_ROUTE, 200, match(eth_type=ETH_IP, eth_dst=GATEWAY_MAC, ipv4_dst=h.ip))]
                    assert f.actions == (gw_src, loc, ("dec_nw_ttl",)) and f.goto == T_FWD
        # Per-host routes only for the subnets routed here: they do not grow with other hosts.
        per_host = [f for f in route if f.priority == 200]
        assert len(per_host) == sum(len(s.hosts) for s in mine) * (2 if dpid in first_hops else 1)
        if dpid not in first_hops:
            continue
        for s in t.subnets.values():
            cidr = (str(s.network.network_address), str(s.network.netmask))
            f = sw.flows[(T_ROUTE, 100, match(eth_type=ETH_IP, eth_dst=GATEWAY_MAC, ipv4_dst=cidr))]
            if at[s.id] == dpid:
                assert f.actions == unknown and f.meter is not None
            else:
                to = ("set_field", "eth_dst", label_mac(net.label(at[s.id])))
                assert f.actions == (gw_src, to, ("dec_nw_ttl",)) and f.goto == T_FWD
        f = sw.flows[(T_ROUTE, 50, match(eth_type=ETH_IP, eth_dst=GATEWAY_MAC))]
        assert f.actions[1] == ("set_field", "eth_dst", net.locator(router.mac)) and f.goto == T_FWD


def test_routed_frames_arrive_rewritten(ppu):
    t, net, st = ppu
    hs = dict((h.name, (h, d)) for h, d in hosts_of(t))
    (a, ad), (b, bd), (isp, ispd) = hs["dinkes1"], hs["kecwaru1"], hs["isp"]
    fab = fabric(st, net)
    res = fab.inject(ad, a.port, routed(a, b.ip))
    assert reached(res) == (bd, b.port), res.format_trace()
    out = res.deliveries[0].packet
    assert out.eth_dst == b.mac.lower() and out.eth_src == GATEWAY_MAC.lower(), res.format_trace()
    # An unknown address of a declared subnet goes to the controller (to ARP for it).
    res = fab.inject(ad, a.port, routed(a, "10.10.15.77"))
    assert not res.deliveries and len(res.packet_ins) == 1, res.format_trace()
    # Anything else leaves by the ISP router.
    res = fab.inject(ad, a.port, routed(a, "8.8.8.8"))
    assert reached(res) == (ispd, isp.port), res.format_trace()
    assert res.deliveries[0].packet.eth_dst == isp.mac.lower(), res.format_trace()


def test_no_default_route_without_an_uplink(ring):
    t, net, st = ring
    for sw in st.values():
        assert (T_ROUTE, 50, match(eth_type=ETH_IP, eth_dst=GATEWAY_MAC)) not in sw.flows


# ---- per-OPD meters ----------------------------------------------------------------------------

DINKES = Pol("dinkes", ("10.10.7.0/24",), download_kbps=20000, upload_kbps=10000)
SETDA = Pol("setda", ("10.10.1.0/24",), download_kbps=8000, upload_kbps=4000, burst_kbit=2000)
BPKAD = Pol("bpkad", ("10.10.5.0/24",), download_kbps=5000, upload_kbps=5000)


def policy_meters(sw):
    """A switch's OPD meters (every switch also has the control-plane policing meters)."""
    control = {m.meter_id for m in CONTROL_METERS}
    return {i: m for i, m in sw.meters.items() if i not in control}


def opd_meters(st, t, sw_name):
    return policy_meters(st[dp(t, sw_name)])


def test_meter_rate_formula():
    assert meter_rate(20000) == round(20000 * RATIO) == 20912
    assert meter_rate(1448) == 1514


def test_policy_meters_and_flows(ppu):
    t, net, _ = ppu
    st = Compiler().compile(net, {"dinkes": DINKES, "setda": SETDA}, now=NOW)
    d = dp(t, "sw-dinkes")
    meters = policy_meters(st[d])
    up, down = sorted(meters)
    assert meters[up].rate_kbps == round(10000 * RATIO) and meters[up].burst_kbit == meters[up].rate_kbps
    assert meters[down].rate_kbps == round(20000 * RATIO) and meters[down].burst_kbit == meters[down].rate_kbps
    sm = opd_meters(st, t, "sw-setda")
    assert sorted((m.rate_kbps, m.burst_kbit) for m in sm.values()) == [
        (round(4000 * RATIO), 2000),
        (round(8000 * RATIO), 2000),
    ]
    assert set(sm).isdisjoint(meters)
    # Meters only where the OPD's hosts are.
    for dpid, sw in st.items():
        if dpid not in (d, dp(t, "sw-setda")):
            assert not policy_meters(sw)
            assert not any(f.meter and f.meter in policy_meters(st[d]) for f in sw.flows.values())
    sub = ("10.10.7.0", "255.255.255.0")
    for h in t.subnets["dinkes"].hosts:
        f = st[d].flows[(T_INGRESS, 300, match(in_port=h.port, eth_type=ETH_IP, ipv4_src=sub))]
        assert f.meter == up and f.goto == T_ROUTE and f.actions == ()
        ex = st[d].flows[(T_INGRESS, 310, match(in_port=h.port, eth_type=ETH_IP, ipv4_src=sub, ipv4_dst=sub))]
        assert ex.meter is None and ex.goto == T_ROUTE
        loc, real = net.locator(h.mac), (("set_field", "eth_dst", h.mac),)
        f = st[d].flows[(T_FWD, 200, match(eth_dst=loc, eth_type=ETH_IP))]
        assert f.meter == down and f.metadata == (h.port, METADATA_MASK) and f.goto == T_EGRESS
        assert f.actions == real
        ex = st[d].flows[(T_FWD, 210, match(eth_dst=loc, eth_type=ETH_IP, ipv4_src=sub))]
        assert ex.meter is None and ex.metadata == (h.port, METADATA_MASK) and ex.actions == real
        assert ex.priority > f.priority


def test_meters_apply_to_inter_opd_traffic_only(ppu):
    t, net, _ = ppu
    st = Compiler().compile(net, {"dinkes": DINKES}, now=NOW)
    hs = dict((h.name, (h, d)) for h, d in hosts_of(t))
    (d1, dd), (d2, _), (s1, sd) = hs["dinkes1"], hs["dinkes2"], hs["setda1"]
    up, down = sorted(policy_meters(st[dd]))
    fab = fabric(st, net)
    # dinkes1 -> setda1 (routed): upload meter only.
    res = fab.inject(dd, d1.port, routed(d1, s1.ip))
    assert reached(res) == (sd, s1.port) and res.meters == [(dd, up)], res.format_trace()
    # setda1 -> dinkes1: download meter only.
    res = fab.inject(sd, s1.port, routed(s1, d1.ip))
    assert reached(res) == (dd, d1.port) and res.meters == [(dd, down)], res.format_trace()
    # dinkes1 -> dinkes2: none.
    pkt = Packet(eth_src=d1.mac, eth_dst=net.locator(d2.mac), eth_type=ETH_IP, ipv4_src=d1.ip, ipv4_dst=d2.ip)
    res = fab.inject(dd, d1.port, pkt)
    assert reached(res) == (dd, d2.port) and res.meters == [], res.format_trace()


def test_policy_without_present_hosts_adds_nothing(ppu):
    t, net, st0 = ppu
    st = Compiler().compile(net, {"x": Pol("x", ("172.16.0.0/16",), 1000, 1000)}, now=NOW)
    assert st == st0


def meter_ids(st, t, sw_name):
    return sorted(opd_meters(st, t, sw_name))


def test_meter_ids_stable_when_other_opds_come_and_go(ppu):
    t, net, _ = ppu
    c = Compiler()
    st1 = c.compile(net, {"dinkes": DINKES, "setda": SETDA}, now=NOW)
    ids = {n: meter_ids(st1, t, f"sw-{n}") for n in ("dinkes", "setda")}
    assert len({i for v in ids.values() for i in v}) == 4
    st2 = c.compile(net, {"dinkes": DINKES, "setda": SETDA, "bpkad": BPKAD}, now=NOW)
    assert {n: meter_ids(st2, t, f"sw-{n}") for n in ("dinkes", "setda")} == ids
    bp = meter_ids(st2, t, "sw-bpkad")
    assert set(bp).isdisjoint(ids["dinkes"] + ids["setda"])
    st3 = c.compile(net, {"setda": SETDA, "bpkad": BPKAD}, now=NOW)
    assert meter_ids(st3, t, "sw-setda") == ids["setda"] and meter_ids(st3, t, "sw-bpkad") == bp
    assert not opd_meters(st3, t, "sw-dinkes")
    # Nothing but dinkes' flows and meters changed.
    changed = {d for d in st2 if diff(st2[d], st3[d])}
    assert changed == {dp(t, "sw-dinkes")}


@pytest.mark.parametrize("which", ["ring", "ppu"])
def test_compiling_twice_gives_identical_state(which, request):
    t, net, st = request.getfixturevalue(which)
    assert compile_network(net, {}, now=NOW) == st
    c = Compiler()
    pols = {"dinkes": DINKES, "setda": SETDA}
    assert c.compile(net, pols, now=NOW) == c.compile(net, pols, now=NOW)


@pytest.fixture(scope="module")
def ppu_with_policies(ppu):
    c = Compiler()
    return c, c.compile(ppu[1], {"dinkes": DINKES, "setda": SETDA}, now=NOW)


@pytest.mark.parametrize(
    "change,n",
    [
        (dict(download_kbps=30000), 1),
        (dict(upload_kbps=3000), 1),
        (dict(download_kbps=30000, upload_kbps=3000), 2),
        (dict(burst_kbit=999), 2),
    ],
)
def test_rate_change_is_only_meter_modifications(ppu, ppu_with_policies, change, n):
    t, net, _ = ppu
    c, before = ppu_with_policies
    after = c.compile(net, {"dinkes": dataclasses.replace(DINKES, **change), "setda": SETDA}, now=NOW)
    d = dp(t, "sw-dinkes")
    total = 0
    for dpid in before:
        ch = diff(before[dpid], after[dpid])
        total += ch.count()
        if dpid != d:
            assert not ch
    ch = diff(before[d], after[d])
    assert ch.count() == len(ch.meters_mod) == n == total
    for m in ch.meters_mod:
        assert before[d].meters[m.meter_id] != m


def test_conflicting_flow_is_refused():
    s = SwitchState()
    s.add_flow(Flow(T_FWD, 1, match(eth_dst="x"), goto=T_EGRESS))
    s.add_flow(Flow(T_FWD, 1, match(eth_dst="x"), goto=T_EGRESS))  # the same again is fine
    with pytest.raises(ValueError):
        s.add_flow(Flow(T_FWD, 1, match(eth_dst="x"), goto=T_ROUTE))
