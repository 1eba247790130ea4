"""The controller core with the switches judging liveness (BFD, ``--switch-liveness``) and
without, on the simulated ring4 (tests/sim.py): what LLDP costs at idle, and a link whose
port loses OFPPS_LIVE (carrier still up) goes at once and comes back only with LIVE."""

from __future__ import annotations

from controller.core.controller import PacketOut
from controller.core.liveness import Liveness, PortState, timers
from tests.sim import SimNet
from tests.test_core_controller import POLICIES, load

NOT_LIVE = PortState(link_down=False, admin_down=False, live=False)


def _ring(switch_liveness: bool) -> tuple[SimNet, object]:
    t = load("ring4")
    sim = SimNet.from_topology(t)
    interval, timeout = timers(None, None, switch_liveness)
    c = sim.controller(None, POLICIES, lldp_interval=interval, link_timeout=timeout)
    sim.connect(c)
    sim.run(c, 6.0, step=c.liveness.tick)  # past the discovery bursts
    assert len(c.net.links) == 4
    return sim, c


def _lldp_per_second(sim: SimNet, c, seconds: float = 20.0) -> float:
    n, end = 0, sim.now + seconds
    while sim.now < end - 1e-9:
        sim.now = round(sim.now + c.liveness.tick, 6)
        actions = c.tick(sim.now)
        n += sum(1 for a in actions if isinstance(a, PacketOut) and a.port in sim.ports[a.dpid])
        sim.do(c, actions)
        if c.dirty:
            sim.do(c, c.compile(sim.now))
    return n / seconds


def test_idle_lldp_is_per_link_end_ten_times_a_second_unless_the_switches_judge():
    sim, fast = _ring(switch_liveness=False)
    ends = 2 * len(fast.net.links)
    ports = sum(len(p) for p in sim.ports.values())
    assert _lldp_per_second(sim, fast) >= 10 * ends  # 0.1 s on every link end
    sim, slow = _ring(switch_liveness=True)
    rate = _lldp_per_second(sim, slow)
    assert 0 < rate <= ports / 2 + 0.5  # every port once per 2 s, links or not
    assert len(slow.net.links) == 4  # and no link was lost for it


def test_a_port_that_loses_live_takes_its_link_down_at_once_and_back_only_with_live():
    sim, c = _ring(switch_liveness=True)
    d1, p1, d2, p2 = sim.cables[0]
    # BFD timed out on d1:p1: Open vSwitch's PortStatus clears LIVE, carrier stays.
    assert c.liveness.ports_up(d1, {p: PortState(False, False, True) for p in sim.ports[d1]})[p1]
    up = c.liveness.port_up(d1, NOT_LIVE)
    assert up is False
    actions = c.port_status(d1, p1, up, "02:00:00:00:00:01", sim.now, Liveness.why_down(NOT_LIVE))
    assert not any((k[0], k[1]) == (d1, p1) or (k[2], k[3]) == (d1, p1) for k in c.net.links)
    assert actions, "paths are recomputed right away"
    event = c.events.query(None, 1)[0]
    assert event["kind"] == "failover" and "not live (BFD" in event["text"], event
    # LLDP still crosses (carrier up, frames pass again) but the port is down: no link.
    sim.run(c, 3.0, step=c.liveness.tick)
    assert not any((k[0], k[1]) == (d1, p1) or (k[2], k[3]) == (d1, p1) for k in c.net.links)
    # BFD up on both ends: LIVE comes back; the link is found within a round or two.
    sim.do(
        c, c.port_status(d1, p1, c.liveness.port_up(d1, PortState(False, False, True)), "02:00:00:00:00:01", sim.now)
    )
    sim.run(c, 0.5, step=c.liveness.tick)
    assert any((k[0], k[1]) == (d1, p1) or (k[2], k[3]) == (d1, p1) for k in c.net.links)


def test_with_the_switches_judging_a_link_whose_lldp_stops_is_still_dropped_in_the_end():
    sim, c = _ring(switch_liveness=True)
    cut = sim.cables.pop(0)  # frames stop both ways; the switches (here) say nothing
    sim.run(c, c.config.link_timeout - 1.0, step=c.liveness.tick)
    assert len(c.net.links) == 4  # not judged on LLDP's 0.5 s any more
    sim.run(c, 2 * c.config.lldp_interval + 1.5, step=c.liveness.tick)
    assert len(c.net.links) == 3 and cut[:2] not in {k[:2] for k in c.net.links}


def _link_of(c, dpid: int, port: int) -> bool:
    return any((k[0], k[1]) == (dpid, port) or (k[2], k[3]) == (dpid, port) for k in c.net.links)


def test_a_link_held_by_flap_damping_comes_back_with_slow_lldp_too():
    # A held link must be heard with no gap of returning_gap (2 s) for its hold; LLDP every
    # 2 s would keep restarting the hold, so the ends of held links are probed every round.
    sim, c = _ring(switch_liveness=True)
    d1, p1, _d2, _p2 = sim.cables[0]
    for _ in range(4):  # the fourth loss within the minute earns a 4 s hold
        assert _link_of(c, d1, p1)
        sim.do(c, c.port_status(d1, p1, False, "02:00:00:00:00:01", sim.now, "lost carrier"))
        sim.do(c, c.port_status(d1, p1, True, "02:00:00:00:00:01", sim.now))
        up_at = sim.now
        late = c.liveness.tick * 1.04  # a real loop's rounds come a little late, never early
        while not _link_of(c, d1, p1) and sim.now < up_at + 10:
            sim.run(c, late, step=late)
    assert sim.now - up_at >= 4.0  # it was held
    assert sim.now - up_at <= 4.0 + 3 * c.liveness.tick, sim.now - up_at  # and only for the hold
