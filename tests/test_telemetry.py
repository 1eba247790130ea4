"""openflow.stats.Telemetry, the glue the app calls: a compile's plan, meter changes sent,
replies from switches, and what /v1/usage, /v1/topology and /metrics read. No switches:
replies are real OpenFlow bytes (controller.lab.switchstats)."""

from __future__ import annotations

import time

from controller.core.compiler import Compiler
from controller.core.state import Changes, Meter
from controller.lab.switchstats import datapath, meter_reply, parse, port_reply
from controller.openflow.stats import Telemetry
from tests.builders import NOW, Pol, from_topology, load

LAB = load("lab-meters")
POLICIES = {"opd-c": Pol("opd-c", ("10.30.3.0/24",), 20000, 8000)}


def setup():  # noqa: ANN201
    net = from_topology(LAB).net
    comp = Compiler(count=True)
    comp.compile(net, POLICIES, now=NOW)
    dps = {s.dpid: datapath(s.dpid) for s in LAB.switches.values()}
    tel = Telemetry(net, dps, interval=10.0)
    tel.planned(comp, POLICIES, time.time(), 0.002)
    return net, comp, dps, tel


def answer(tel: Telemetry, dp, meters, ports) -> None:  # noqa: ANN001
    dp.sent.clear()
    tel.poller.poll(dp, time.time())
    mx, px = (m.xid for m in dp.sent)
    tel.reply(parse(dp, meter_reply(mx, meters)), "meter")
    tel.reply(parse(dp, port_reply(px, ports)), "port")


def test_replies_become_usage_rest_and_metrics_read():
    net, comp, dps, tel = setup()
    edge_a = LAB.switches["edge-a"].dpid
    plan = comp.meter_plans()["opd-c"]
    answer(tel, dps[edge_a], [(plan.download_id, 0, 0, 0, 0, 1.0)], [(1, 0, 0, 0, 0, 1.0)])
    time.sleep(0.01)
    answer(tel, dps[edge_a], [(plan.download_id, 100, 150_000, 10, 15_000, 2.0)], [(1, 5, 90, 500, 90_000, 2.0)])
    row = next(r for r in tel.usage_view()["opds"] if r["opd"] == "opd-c")
    assert row["down"]["bytes"] == 135_000 and row["down"]["dropped_bytes"] == 15_000 and row["name"] == "opd-c"
    assert {r["opd"] for r in tel.usage_view()["opds"]} == {"opd-a", "opd-b", "opd-c", "free"}
    free = next(r for r in tel.usage_view()["opds"] if r["opd"] == "free")
    assert free["kind"] == "subnet" and free["name"] == LAB.subnets["free"].name
    # edge-a's port 1 faces the core: link bytes each way, named in /metrics
    links = tel.link_usage()
    key = next(k for k in net.links if (k[0], k[1]) == (edge_a, 1) or (k[2], k[3]) == (edge_a, 1))
    side = "a_to_b" if key[0] == edge_a else "b_to_a"
    assert links[key][side]["bytes"] == 90_000
    text = tel.metrics.exposition()[0].decode()
    assert 'kendali_opd_dropped_bytes_total{direction="down",opd="opd-c"} 15000.0' in text
    assert 'link="core:1-edge-a:1"' in text
    assert "kendali_compile_duration_seconds_count 1.0" in text and "kendali_poll_duration_seconds_count 2.0" in text


def test_a_meter_the_app_modified_counts_from_zero():
    net, comp, dps, tel = setup()
    edge_a = LAB.switches["edge-a"].dpid
    plan = comp.meter_plans()["opd-c"]
    answer(tel, dps[edge_a], [(plan.download_id, 0, 100_000, 0, 0, 5.0)], [])
    tel.sent(edge_a, Changes(meters_mod=[Meter(plan.download_id, 5000, 5000)]), time.time())
    time.sleep(0.01)
    answer(tel, dps[edge_a], [(plan.download_id, 0, 300_000, 0, 0, 6.0)], [])  # 300 kB since the change
    row = next(r for r in tel.usage_view()["opds"] if r["opd"] == "opd-c")
    assert row["down"]["bytes"] == 300_000


def test_a_reply_to_a_request_telemetry_did_not_send_is_left_alone():
    net, comp, dps, tel = setup()
    dp = dps[LAB.switches["edge-a"].dpid]
    tel.reply(parse(dp, meter_reply(4242, [(1, 1, 1, 0, 0, 1.0)])), "meter")
    tel.forget(dp.id)
    assert all(r["window"] is None for r in tel.usage_view()["opds"])
