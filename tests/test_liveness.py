"""controller.core.liveness: rounds decide, a switch busy with our changes is not judged, a port
is up as the switch's fast-failover groups see it (OFPPS_LIVE), and LLDP slows down when the
switches judge liveness."""

from __future__ import annotations

from controller.core.graph import Network
from controller.core.liveness import (
    BUSY_MAX_S,
    SWITCH_LIVENESS_LLDP_INTERVAL,
    TICK_MAX,
    Liveness,
    PortState,
    timers,
)


def _one_link() -> Network:
    net = Network(edge_probation=0.0)
    net.switch_up(1, {1: True}, 0.0)
    net.switch_up(2, {1: True}, 0.0)
    assert net.link_seen(1, 1, 2, 1, 1.0)
    return net


def _judge(live: Liveness, net: Network, now: float) -> list:
    r = live.round(now)
    return net.expire_unseen_since(r.cutoff, now, spare=r.spare) if r.cutoff is not None else []


def test_a_link_missing_enough_rounds_is_dead_and_a_stall_judges_nothing():
    live, net = Liveness(0.1, 0.5), _one_link()
    t = 1.0
    for _ in range(5):
        t += 0.1
        assert _judge(live, net, t) == []  # not enough rounds yet
    assert _judge(live, net, t + 1.0) == []  # the controller itself stalled: no verdict this round
    t += 1.1
    for _ in range(5):
        t += 0.1
        dead = _judge(live, net, t)
        if dead:
            break
    assert dead == [(1, 1, 2, 1)]


def test_rounds_handled_close_together_do_not_shorten_the_timeout():
    live, net = Liveness(0.1, 0.5), _one_link()
    net.links[(1, 1, 2, 1)].last_seen = 10.0
    for i in range(6):
        assert _judge(live, net, 10.1 + i * 0.01) == []  # six rounds in 60 ms (a busy loop)


def test_a_switch_busy_with_our_changes_is_not_judged_on_lldp():
    live, net = Liveness(0.1, 0.5), _one_link()
    live.barrier_sent(1, 7, 9.8)  # switch 1 still installing what we sent at 9.8
    assert 1 in live.busy(9.5, 10.0)
    assert net.expire_unseen_since(9.5, 10.0, spare=live.busy(9.5, 10.0)) == []
    live.barrier_reply(1, 6, 9.85)  # an older barrier: still busy
    assert 1 in live.busy(9.5, 10.0)
    live.barrier_reply(1, 7, 9.9)  # answered after the cutoff: this round is still spared
    assert 1 in live.busy(9.5, 10.0)
    assert 1 not in live.busy(10.0, 10.5)  # a round with nothing outstanding judges it


def test_a_switch_that_never_answers_is_judged_anyway():
    live = Liveness(0.1, 0.5)
    live.barrier_sent(1, 7, 10.0 - BUSY_MAX_S - 0.1)
    assert 1 not in live.busy(9.5, 10.0)


# ---- the LIVE rule: a port is up as the switch's fast-failover groups see it ----------------
UP = PortState(link_down=False, admin_down=False, live=True)
NOT_LIVE = PortState(link_down=False, admin_down=False, live=False)  # carrier up, BFD down
NO_CARRIER = PortState(link_down=True, admin_down=False, live=False)
SWITCHED_OFF = PortState(link_down=False, admin_down=True, live=False)


def test_on_a_switch_that_reports_liveness_a_port_without_live_is_down():
    live = Liveness()
    assert live.ports_up(1, {1: UP, 2: NOT_LIVE, 3: NO_CARRIER, 4: SWITCHED_OFF}) == {
        1: True,
        2: False,
        3: False,
        4: False,
    }
    assert live.port_up(1, NOT_LIVE) is False  # BFD timed out: PortStatus clears LIVE only
    assert live.port_up(1, UP) is True  # BFD back: LIVE again


def test_the_whole_port_list_decides_whether_a_switch_reports_liveness():
    # Port 1 comes first and is not live; port 2 shows the switch does set LIVE at all.
    assert Liveness().ports_up(1, {1: NOT_LIVE, 2: UP}) == {1: False, 2: True}


def test_a_switch_that_never_sets_live_is_judged_on_carrier_alone():
    live = Liveness()
    assert live.ports_up(7, {1: NOT_LIVE, 2: NOT_LIVE, 3: NO_CARRIER}) == {1: True, 2: True, 3: False}
    assert live.port_up(7, NOT_LIVE) is True
    assert live.port_up(7, SWITCHED_OFF) is False
    # The first LIVE it shows makes it a switch that reports liveness, until it disconnects.
    assert live.port_up(7, UP) is True and live.port_up(7, NOT_LIVE) is False
    assert live.port_up(8, NOT_LIVE) is True  # another switch is not affected
    live.forget(7)
    assert live.port_up(7, NOT_LIVE) is True


def test_why_a_port_is_down_reads_as_the_failover_log_says():
    assert Liveness.why_down(NO_CARRIER) == "lost carrier"
    assert "not live" in Liveness.why_down(NOT_LIVE) and "BFD" in Liveness.why_down(NOT_LIVE)
    assert "switched off" in Liveness.why_down(SWITCHED_OFF)


# ---- the LLDP rate: fast when the controller judges, slow when the switches' BFD does ---------
def test_timers_from_the_flags():
    assert timers(None, None, False) == (0.1, 0.5)
    assert timers(None, None, True) == (SWITCH_LIVENESS_LLDP_INTERVAL, 5 * SWITCH_LIVENESS_LLDP_INTERVAL)
    assert timers(0.2, None, True) == (0.2, 1.0)  # given flags mean what they say
    assert timers(None, 3.0, False) == (0.1, 3.0)


def test_fast_lldp_probes_and_judges_links_every_round():
    live = Liveness(0.1, 0.5)
    assert live.tick == 0.1
    rounds = [live.round(1.0 + i * 0.1) for i in range(20)]
    assert all(r.links for r in rounds)
    assert sum(r.full for r in rounds) == 2  # other ports about once a second
    assert all(r.cutoff is not None for r in rounds[5:])


def test_slow_lldp_probes_links_every_interval_and_rounds_still_tick():
    live = Liveness(2.0, 10.0)
    assert live.tick == TICK_MAX  # compile wakes and the audit do not wait 2 s
    t, rounds = 0.0, []
    for _ in range(int(20 / live.tick)):
        t += live.tick
        rounds.append((t, live.round(t)))
    probed = [t for t, r in rounds if r.links]
    assert len(probed) == 10  # 20 s: links probed every 2 s, not 200 times
    assert all(r.full for _t, r in rounds if r.links)  # other ports with them, every 2 s
    assert all(r.cutoff is None for _t, r in rounds if not r.links)  # judged only after a probe
    judged = [(t, r.cutoff) for t, r in rounds if r.cutoff is not None]
    assert judged and all(cutoff <= t - 10.0 for t, cutoff in judged)


def test_slow_lldp_still_drops_a_link_silent_for_the_timeout_and_not_before():
    live, net = Liveness(2.0, 10.0), _one_link()
    t, dead = 1.0, []
    while not dead and t < 30:
        t = round(t + live.tick, 6)
        dead = _judge(live, net, t)
        if t <= 11.0:
            assert dead == [], t  # heard at 1.0: 10 s of silence have not passed
    assert dead == [(1, 1, 2, 1)] and t <= 1.0 + 10.0 + 2 * 2.0 + 0.01


def test_a_discovery_burst_probes_every_port_every_round_even_when_slow():
    live = Liveness(2.0, 10.0)
    live.discover(5.0, 1.0)
    rounds = [live.round(5.0 + i * live.tick) for i in range(4)]
    assert all(r.full and r.links for r in rounds)
