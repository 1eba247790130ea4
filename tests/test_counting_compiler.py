"""Compiler(count=True): OPDs without a policy get counting meters, and forwarding does not change."""

from __future__ import annotations

from controller.core import topology
from controller.core.compiler import AGGREGATE_METER, CONTROL_METERS, COUNT_ONLY_KBPS, Compiler
from controller.core.state import T_FWD, T_INGRESS
from controller.lab.tablemodel import Fabric, links_of
from tests.builders import NOW, Pol, check_network, from_topology, load, routed
from tests.test_meter_placement import DOC

LAB = load("lab-meters")
A = Pol("opd-a", ("10.30.1.0/24",), 10000, 4000)


def opd_meters(sw):  # noqa: ANN001, ANN201
    control = {m.meter_id for m in CONTROL_METERS}
    return {i: m for i, m in sw.meters.items() if i not in control}


def test_without_count_nothing_changes():
    built = from_topology(LAB)
    plain = Compiler().compile(built.net, {"opd-a": A}, now=NOW)
    c = Compiler(count=False)
    assert c.compile(built.net, {"opd-a": A}, now=NOW) == plain
    assert set(c.counted) == {"opd-a"} and set(c.meter_plans()) == {"opd-a"}


def test_every_declared_subnet_without_policy_is_counted_except_the_uplink():
    built = from_topology(LAB)
    c = Compiler(count=True)
    st = c.compile(built.net, {"opd-a": A}, now=NOW)
    assert set(c.counted) == {"opd-a", "opd-b", "opd-c", "free"}  # not "isp": the Internet is no OPD
    assert c.counted["opd-a"].kind == "policy" and c.counted["opd-a"].download_kbps == 10000
    assert c.counted["free"].kind == "subnet" and c.counted["free"].upload_kbps is None
    plans = c.meter_plans()
    edge_b = LAB.switches["edge-b"].dpid
    meters = opd_meters(st[edge_b])
    for opd in ("opd-b", "free"):
        up, down = meters[plans[opd].upload_id], meters[plans[opd].download_id]
        assert up.rate_kbps == down.rate_kbps == COUNT_ONLY_KBPS
    f1 = LAB.subnets["free"].hosts[0]
    flow = st[edge_b].flows[
        next(
            k
            for k, f in st[edge_b].flows.items()
            if k[:2] == (T_INGRESS, 300) and dict(f.match).get("in_port") == f1.port
        )
    ]
    assert flow.meter == plans["free"].upload_id
    down = [
        f
        for f in st[edge_b].flows.values()
        if f.table == T_FWD and f.priority == 200 and dict(f.match)["eth_dst"] == built.net.locator(f1.mac)
    ]
    assert [f.meter for f in down] == [plans["free"].download_id]
    assert down[0].actions == (("set_field", "eth_dst", f1.mac),)  # delivered to its real MAC
    # The capped OPD keeps exactly the meters it had without counting.
    plain = Compiler().compile(built.net, {"opd-a": A}, now=NOW)
    edge_a = LAB.switches["edge-a"].dpid
    a_ids = {plans["opd-a"].upload_id, plans["opd-a"].download_id}
    rates = sorted((m.rate_kbps, m.burst_kbit) for i, m in opd_meters(st[edge_a]).items() if i in a_ids)
    assert rates == sorted((m.rate_kbps, m.burst_kbit) for m in opd_meters(plain[edge_a]).values())


def test_a_subnet_a_policy_covers_is_counted_under_the_policy_only():
    built = from_topology(LAB)
    c = Compiler(count=True)
    c.compile(built.net, {"x": Pol("x", ("10.30.9.128/25",), 5000, 5000)}, now=NOW)
    assert "free" not in c.counted and "x" in c.counted


def test_a_subnet_whose_id_a_policy_uses_elsewhere_gets_its_own_key():
    built = from_topology(LAB)
    c = Compiler(count=True)
    c.compile(built.net, {"free": Pol("free", ("172.16.0.0/16",), 5000, 5000)}, now=NOW)
    assert c.counted["free"].kind == "policy" and c.counted["free.subnet"].subnets == ("10.30.9.0/24",)
    assert len({p.upload_id for p in c.meter_plans().values()}) == len(c.counted)


def test_counting_changes_no_forwarding_and_an_uncapped_opds_frames_hit_its_counting_meter():
    built = from_topology(topology.parse(DOC, "t.yaml"))
    c = Compiler(count=True)
    st = c.compile(built.net, {"bappeda": Pol("bappeda", ("10.10.4.0/24",), 5000, 5000)}, now=NOW)
    fab = Fabric(st, links_of(built.net))
    assert check_network(built, fab) == []
    plans = c.meter_plans()
    assert set(plans) == {"bappeda", "dinkes"}
    h = {x.name: x for x in built.hosts}
    # dinkes (no policy, two switches) to bappeda: dinkes' counting upload, bappeda's download cap.
    res = fab.inject(h["dk2"].dpid, h["dk2"].port, routed(h["dk2"], h["bp1"]))
    assert sorted(res.meters) == sorted(
        [(h["dk2"].dpid, plans["dinkes"].upload_id), (h["bp1"].dpid, plans["bappeda"].download_id)]
    )
    # A counted-only OPD on two switches gets no aggregate meter at the uplink.
    assert not [m for m in st[1].meters if m & AGGREGATE_METER]
