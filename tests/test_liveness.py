"""controller.core.liveness: rounds decide, and a switch busy with our changes is not judged."""

from __future__ import annotations

from controller.core.graph import Network
from controller.core.liveness import BUSY_MAX_S, Liveness


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
