"""Sharing enforced (issue 12): the aggregate meters the compiler installs with sharing on,
the period step of the controller core on a simulated network (tests/sim.py), demand from
the aggregate flows' counters, and what /v1/usage and /metrics show. No switch, no clock."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from controller.api.metrics import Metrics, Snapshot
from controller.core.compiler import AGGREGATE_METER, FRAME_OVERHEAD, SHARE_TAG, Compiler, meter_rate
from controller.core.controller import SendChanges, purchased_uplink_kbps
from controller.core.policy import load_file
from controller.core.sharing import Measured, Settings
from controller.core.state import T_FWD, T_INGRESS, DesiredState, Meter
from controller.core.usage import FlowSample, MeterSample, Usage
from tests.builders import NOW, ROOT, Pol, from_topology, load
from tests.sim import SimNet

POLICIES = load_file(ROOT / "policies" / "lab-sharing.yaml")
CORE = 1  # the uplink switch of topologies/lab-sharing.yaml


def compiled(shares: dict | None, policies: dict | None = None, name: str = "lab-sharing") -> DesiredState:
    b = from_topology(name)
    return Compiler(count=True).compile(b.net, dict(policies or POLICIES), NOW, shares=shares)


def aggregate_meters(state: DesiredState) -> dict[tuple[int, int], Meter]:
    return {(d, m): meter for d, s in state.items() for m, meter in s.meters.items() if m & AGGREGATE_METER}


def test_without_sharing_the_compile_is_exactly_the_static_caps() -> None:
    static = Compiler(count=True).compile(from_topology("lab-sharing").net, dict(POLICIES), NOW)
    assert compiled(None) == static
    assert not aggregate_meters(static)  # one switch per OPD: no aggregate pair with static caps


def test_with_sharing_every_opd_gets_the_aggregate_pair_at_its_allocation_and_edge_meters_stay() -> None:
    static = compiled(None)
    shared = compiled({"opd-a": (7000, 3000)})
    ids = Compiler(count=True)
    ids.compile(from_topology("lab-sharing").net, dict(POLICIES), NOW)
    agg = aggregate_meters(shared)
    assert {d for d, _ in agg} == {CORE} and len(agg) == 2 * len(POLICIES)
    for opd, p in POLICIES.items():
        plan = ids.meter_plans()[opd]
        down, up = (7000, 3000) if opd == "opd-a" else (p.download_kbps, p.upload_kbps)  # none given: the caps
        assert agg[(CORE, AGGREGATE_METER | plan.download_id)].rate_kbps == meter_rate(down)
        assert agg[(CORE, AGGREGATE_METER | plan.upload_id)].rate_kbps == meter_rate(up)
    # Everything static caps install is there unchanged (edge meters at the caps included);
    # all that is added is the aggregate pair: its meters and the flows that feed them.
    for d, s in static.items():
        assert {k: v for k, v in shared[d].meters.items() if k in s.meters} == s.meters
        assert {k: v for k, v in shared[d].flows.items() if k in s.flows} == s.flows
        assert s.groups == shared[d].groups
        added = [f for k, f in shared[d].flows.items() if k not in s.flows]
        assert all(f.tag == SHARE_TAG and f.meter and f.meter & AGGREGATE_METER for f in added)
        assert len(added) == (2 * len(POLICIES) if d == CORE else 0)
        assert set(shared[d].meters) - set(s.meters) == ({m for _, m in agg} if d == CORE else set())
    tables = sorted({(f.table, f.priority) for f in shared[CORE].flows.values() if f.tag == SHARE_TAG})
    assert tables == [(T_INGRESS, 320), (T_FWD, 220)]  # only Internet traffic: from the ISP port / to its MAC


def test_an_allocation_never_puts_a_meter_above_its_cap() -> None:
    agg = aggregate_meters(compiled({"opd-a": (10**9, 10**9)}))
    a = POLICIES["opd-a"]
    assert meter_rate(a.download_kbps) in {m.rate_kbps for m in agg.values()}
    assert max(m.rate_kbps for m in agg.values()) == meter_rate(max(p.download_kbps for p in POLICIES.values()))


def test_an_opd_behind_two_switches_keeps_its_aggregate_pair_and_gets_it_tagged() -> None:
    t = load("ppu")
    subnets = [s for s in t.subnets.values() if s.id != t.uplink.subnet and s.hosts]
    two = [s for s in subnets if s.switch != subnets[0].switch][:1] + subnets[:1]
    pol = {"both": Pol("both", tuple(s.cidr for s in two), 8000, 4000)}
    static, shared = compiled(None, pol, "ppu"), compiled({}, pol, "ppu")
    core = t.switches[t.uplink.switch].dpid
    assert aggregate_meters(static) == aggregate_meters(shared) and aggregate_meters(static)
    flows = {k: f for k, f in static[core].flows.items() if f.meter and f.meter & AGGREGATE_METER}
    assert flows and all(shared[core].flows[k] == dataclasses.replace(f, tag=SHARE_TAG) for k, f in flows.items())


def gauge(text: str, what: str, opd: str) -> float:
    head = f'kendali_opd_{what}_bits_per_second{{direction="down",opd="{opd}"}} '
    return float(next(line[len(head) :] for line in text.splitlines() if line.startswith(head)))


# --- the period step on a simulated network -----------------------------------------------------


def sharing_controller(period: float = 5.0) -> tuple[SimNet, object]:
    t = load("lab-sharing")
    sim = SimNet.from_topology(t)
    c = sim.controller(t, dict(POLICIES), sharing=Settings(period=period), uplink_kbps=purchased_uplink_kbps(t))
    sim.connect(c)
    sim.run(c, 3.0)
    sim.arp_from_hosts(c)
    sim.run(c, 3.0)
    assert len(c.net.hosts) == 4
    return sim, c


def saturated(opds: dict[str, float]) -> dict[str, dict[str, Measured]]:
    """Each OPD offers this many kbit/s of payload download, 5 % above what it got; no upload."""
    return {
        o: {"download": Measured(kbps * 1000 * FRAME_OVERHEAD, kbps * 50 * FRAME_OVERHEAD, None)}
        for o, kbps in opds.items()
    }


def test_a_period_re_sizes_only_the_aggregate_meters_and_nothing_else() -> None:
    sim, c = sharing_controller()
    held = copy.deepcopy(sim.held)
    # Everyone offers its cap: 65 Mbit/s of caps on a 30 Mbit/s uplink.
    actions = c.share(sim.now, saturated({o: p.download_kbps for o, p in POLICIES.items()}))
    assert len(actions) == 1 and isinstance(actions[0], SendChanges) and actions[0].dpid == CORE
    ch = actions[0].changes
    assert ch.meters_mod and ch.count() == len(ch.meters_mod)  # meters only: no flow, group or other meter
    assert all(m.meter_id & AGGREGATE_METER for m in ch.meters_mod)
    sim.do(c, actions)
    assert {d: s.flows for d, s in sim.held.items()} == {d: s.flows for d, s in held.items()}
    # The meters now add up to the uplink (never more), and each OPD is at its allocation.
    down = {o: c.sharing.rate(o, "download") for o in POLICIES}
    assert sum(down.values()) * FRAME_OVERHEAD <= 30000 + len(POLICIES)
    assert down["opd-a"] > down["opd-b"] >= 5000 and down["opd-c"] >= 5000  # guarantees, then priority 1
    plans = c.compiler.meter_plans()
    for o, kbps in down.items():
        assert sim.held[CORE].meters[AGGREGATE_METER | plans[o].download_id].rate_kbps == meter_rate(kbps)
        edge = next(s for d, s in sim.held.items() if d != CORE and plans[o].download_id in s.meters)
        assert edge.meters[plans[o].download_id].rate_kbps == meter_rate(POLICIES[o].download_kbps)
    # A later compile (a host moves, a policy changes) keeps the allocations.
    sim.do(c, c.compile(sim.now))
    assert sim.held[CORE].meters[AGGREGATE_METER | plans["opd-a"].download_id].rate_kbps == meter_rate(down["opd-a"])


def test_steady_demand_changes_nothing_once_settled_hysteresis() -> None:
    sim, c = sharing_controller()
    sent = []
    for k in range(8):
        got = {o: float(c.sharing.rate(o, "download") or 0) for o in POLICIES}
        actions = c.share(sim.now + 5 * k, saturated(got) if k else saturated({o: 30000.0 for o in POLICIES}))
        sim.do(c, actions)
        sent.append(len(actions))
    assert sent[0] == 1 and sent[-3:] == [0, 0, 0], sent


def test_sharing_off_does_nothing_in_a_period() -> None:
    t = load("lab-sharing")
    sim = SimNet.from_topology(t)
    c = sim.controller(t, dict(POLICIES))
    assert c.sharing is None and c.share(0.0, saturated({"opd-a": 5000.0})) == []


def test_sharing_without_a_purchased_uplink_is_refused() -> None:
    t = load("ring4")
    with pytest.raises(ValueError, match="uplink"):
        SimNet.from_topology(t).controller(t, {}, sharing=Settings())
    assert purchased_uplink_kbps(t) is None and purchased_uplink_kbps(None) is None
    assert purchased_uplink_kbps(load("lab-sharing")) == 30000
    assert purchased_uplink_kbps(load("lab-sharing"), override_mbps=50) == 50000  # the hook for a setting


# --- demand from counters a re-size does not reset ------------------------------------------------


def usage_with_plan() -> tuple[Usage, int, int]:
    comp = Compiler(count=True)
    comp.compile(from_topology("lab-sharing").net, dict(POLICIES), NOW, shares={})
    u = Usage()
    u.plan(comp.counted, comp.meter_plans(), {}, 0.0)
    plan = comp.meter_plans()["opd-a"]
    return u, AGGREGATE_METER | plan.download_id, AGGREGATE_METER | plan.upload_id


def test_demand_is_the_flow_counters_rate_and_survives_a_meter_re_size() -> None:
    u, down, _up = usage_with_plan()
    key = (0, 320, (("in_port", 1),))
    u.flow_samples(CORE, [FlowSample(key, down, 0, 0, 1.0)], 100.0)
    u.meter_samples(CORE, [MeterSample(down, 0, 0, 0, 0, 1.0)], 100.0)
    assert u.share_take(100.0) is None  # the first poll is the baseline
    # 5 s at 12.5 MB offered, the aggregate meter dropped 2.5 MB of it ...
    u.flow_samples(CORE, [FlowSample(key, down, 0, 12_500_000, 6.0)], 105.0)
    u.meter_samples(CORE, [MeterSample(down, 0, 12_500_000, 0, 2_500_000, 6.0)], 105.0)
    m = u.share_take(105.0)
    assert m is not None
    got = m["opd-a"]["download"]
    assert (round(got.delivered_bps), round(got.dropped_bps), got.since) == (16_000_000, 4_000_000, 100.0)
    # ... then the meter is re-sized (Open vSwitch: a new meter, counters from 0); the flow's go on.
    u.meters_reset(CORE, [down], 106.0)
    u.flow_samples(CORE, [FlowSample(key, down, 0, 25_000_000, 11.0)], 110.0)
    u.meter_samples(CORE, [MeterSample(down, 0, 8_000_000, 0, 500_000, 4.0)], 110.0)
    got = u.share_take(110.0)["opd-a"]["download"]  # type: ignore[index]
    assert (round(got.delivered_bps), round(got.dropped_bps)) == (19_200_000, 800_000)


def test_usage_and_metrics_show_allocation_guarantee_and_demand_only_with_sharing_on() -> None:
    sim, c = sharing_controller()
    c.share(sim.now, saturated({o: p.download_kbps for o, p in POLICIES.items()}))
    u, _d, _u = usage_with_plan()
    rows = u.view(1.0)
    assert "allocation_kbps" not in Usage.add_shares(copy.deepcopy(rows), None)[0]["down"]
    shown = {r["opd"]: r for r in Usage.add_shares(rows, c.sharing.shares)}
    a = shown["opd-a"]["down"]
    assert a["meter_kbps"] == c.sharing.rate("opd-a", "download")
    assert a["allocation_kbps"] == round(c.sharing.shares["opd-a"]["download"].in_force_kbps)
    assert a["meter_kbps"] >= a["allocation_kbps"]  # the meter: the allocation, or the reserve when higher
    assert a["guarantee_kbps"] == POLICIES["opd-a"].download_min_kbps
    assert a["demand_bps"] > a["allocation_kbps"] * 1000  # saturated: it asks for more than it gets
    text = Metrics(lambda: Snapshot(list(shown.values()))).exposition()[0].decode()
    assert gauge(text, "allocation", "opd-a") == a["allocation_kbps"] * 1000
    assert gauge(text, "meter", "opd-a") == a["meter_kbps"] * 1000
    assert gauge(text, "guarantee", "opd-a") == 10_000_000
    assert gauge(text, "demand", "opd-a") == a["demand_bps"]
    static = Metrics(lambda: Snapshot(u.view(1.0))).exposition()[0].decode()
    assert "kendali_opd_allocation_bits_per_second" not in static


# --- the purchased uplink bounds the guarantees (REST and the policy file) -------------------------


def test_rest_refuses_guarantees_the_uplink_cannot_carry(tmp_path) -> None:
    from webob import Request

    from controller.api.rest import make_app
    from controller.api.store import PolicyStore

    class View:
        def topology(self) -> dict:
            return {}

        def health(self) -> dict:
            return {}

        def recent_events(self, since: float | None, limit: int | None) -> list:
            return []

    app = make_app(PolicyStore(tmp_path / "state"), lambda p: None, View(), {"noc": "t" * 32}, uplink_kbps=30000)

    def put(opd: str, min_kbps: int) -> tuple[int, dict]:
        body = {"id": opd, "name": opd, "subnets": [f"10.40.{len(opd)}{opd[-1] == 'b':d}.0/24"]}
        body.update(download_kbps=20000, upload_kbps=8000, download_min_kbps=min_kbps)
        req = Request.blank(f"/v1/policies/{opd}", method="PUT", body=__import__("json").dumps(body).encode())
        req.headers["Authorization"] = "Bearer " + "t" * 32
        resp = req.get_response(app)
        return resp.status_code, resp.json

    assert put("opd-a", 15000)[0] == 201
    status, body = put("opd-b", 15000)  # 30,000 of guarantees: more than 30 Mbit/s carries as payload
    assert status == 409 and "28,692" in body["error"]["problem"], body
    assert put("opd-b", 13000)[0] == 201


def test_the_policy_file_is_checked_against_the_uplink_at_start(tmp_path) -> None:
    from controller.cli import main

    bad = tmp_path / "p.yaml"
    bad.write_text((ROOT / "policies" / "lab-sharing.yaml").read_text().replace("10000", "25000"))
    topo = ROOT / "topologies" / "lab-sharing.yaml"
    args = ["controller", "--topology", str(topo), "--policies", str(bad), "--state-dir", str(tmp_path / "s")]
    assert main(args) == 2
