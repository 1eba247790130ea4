"""The os-ken app's reconciler: recomputes never interleave their messages to a switch,
and a switch busy with our changes is not judged on LLDP.

Sending yields (os-ken's send queue holds 16 messages), so a failover or a REST change
can start a recompute while another is still sending. Interleaved, the two would leave a
switch holding a mix while the controller believes it holds the later state; a lab start
once cut an OPD switch off for a minute that way. No switch or socket here: a fake
datapath records which recompute sent each message and waits a moment per message, as a
full send queue does.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from controller.core.state import Flow, SwitchState, match
from controller.lab import wire
from controller.openflow.app import KendaliApp


class FakeDatapath(wire.FakeDatapath):
    """Records which recompute (thread) sent each message, and waits as a full send queue does."""

    def __init__(self) -> None:
        super().__init__(1)
        self.by_thread: list[tuple[str, str]] = []  # (thread, message type) per message sent

    def send_msg(self, msg: Any) -> None:
        self.by_thread.append((threading.current_thread().name, type(msg).__name__))
        time.sleep(0.001)


def _state(n: int, port: int) -> SwitchState:
    flows = [Flow(2, 100, match(eth_dst=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"), (("output", port),))
             for i in range(n)]
    return SwitchState({f.key: f for f in flows})


def test_concurrent_recomputes_send_one_after_the_other_and_end_in_the_last_state() -> None:
    app = KendaliApp()
    dp = FakeDatapath()
    app.datapaths[dp.id] = dp
    app.actual[dp.id] = SwitchState()
    # Each compile sees the network as it is then: the first 40 flows out port 1, the
    # second (a link went down meanwhile) the same flows out port 2.
    states = iter([_state(40, 1), _state(40, 2)])
    app.compiler.compile = lambda *a, **k: {dp.id: next(states)}  # type: ignore[method-assign]

    first = threading.Thread(target=app.recompute, name="first")
    second = threading.Thread(target=app.recompute, name="second")
    first.start()
    time.sleep(0.005)  # the first is sending when the second starts
    second.start()
    first.join(5)
    second.join(5)

    senders = [name for name, _ in dp.by_thread]
    assert senders == sorted(senders, key=["first", "second"].index), "messages interleaved"
    assert senders.count("first") == 41 and senders.count("second") == 41  # 40 flows + a barrier each
    assert dp.by_thread[40] == ("first", "OFPBarrierRequest")
    assert app.actual[dp.id] == _state(40, 2)


class _Reply:
    def __init__(self, dp: Any, xid: int) -> None:
        self.msg = type("Msg", (), {"datapath": dp, "xid": xid})()


def _app_with_one_link() -> tuple[KendaliApp, Any]:
    """An app whose graph has one link 1:1-2:1, last heard at t=1.0; recompute is a no-op."""
    from controller.core.graph import Network

    app = KendaliApp()
    app.recompute = lambda: None  # type: ignore[method-assign]
    net = Network(edge_probation=0.0)
    net.switch_up(1, {1: True}, 0.0)
    net.switch_up(2, {1: True}, 0.0)
    assert net.link_seen(1, 1, 2, 1, 1.0)
    app.net = net
    return app, net


def test_a_switch_busy_with_our_changes_is_not_judged_on_lldp() -> None:
    app, net = _app_with_one_link()
    dp = FakeDatapath()
    app._barrier_pending[1] = (7, 9.8)  # switch 1 still installing what we sent at 9.8
    app._expire(cutoff=9.5, now=10.0)
    assert (1, 1, 2, 1) in net.links  # silent since 1.0, but spared while busy
    app._barrier_reply(_Reply(dp, 6))  # an older barrier: still busy
    assert 1 in app._barrier_pending
    app._barrier_reply(_Reply(dp, 7))
    app._barrier_done[1] = 9.9  # it answered after the cutoff: this round is still spared
    app._expire(cutoff=9.5, now=10.0)
    assert (1, 1, 2, 1) in net.links
    app._expire(cutoff=10.0, now=10.5)  # a round with nothing outstanding judges it
    assert (1, 1, 2, 1) not in net.links


def test_a_switch_that_never_answers_is_judged_anyway() -> None:
    from controller.openflow.app import BUSY_MAX_S

    app, net = _app_with_one_link()
    app._barrier_pending[1] = (7, 10.0 - BUSY_MAX_S - 0.1)
    app._expire(cutoff=9.5, now=10.0)
    assert (1, 1, 2, 1) not in net.links
