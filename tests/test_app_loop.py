"""The os-ken shell on the production hub (eventlet): events, REST changes and timers are
handled one at a time on the app's own loop, so two compiles never interleave their
messages to a switch, even while sending yields (os-ken's send queue holds 16 messages).

Interleaved, two differences would leave a switch holding a mix while the controller
believes it holds the later state; a lab start once cut an OPD switch off for a minute
that way. No switch or socket: a fake datapath records what is sent and yields per
message, as a full send queue does.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

if os.environ.get("OSKEN_HUB_TYPE") != "eventlet":  # pragma: no cover - conftest sets it
    pytest.skip("needs the eventlet hub", allow_module_level=True)

from os_ken.base import app_manager  # noqa: E402
from os_ken.controller import ofp_event  # noqa: E402
from os_ken.controller.handler import register_instance  # noqa: E402
from os_ken.lib import hub  # noqa: E402
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser  # noqa: E402

from controller.core.state import Flow, SwitchState, match  # noqa: E402
from controller.openflow.app import EventPolicies, KendaliApp  # noqa: E402


class FakeDatapath:
    id = 1
    ofproto = ofproto_v1_3
    ofproto_parser = ofproto_v1_3_parser

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.xid = 0

    def set_xid(self, msg: Any) -> int:
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid

    def send_msg(self, msg: Any) -> None:
        self.sent.append(msg)
        hub.sleep(0.001)  # a full send queue: the sender yields to other green threads


def _state(n: int, port: int) -> SwitchState:
    flows = [
        Flow(2, 100, match(eth_dst=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}"), (("output", port),)) for i in range(n)
    ]
    return SwitchState({f.key: f for f in flows})


def _wait(cond: Any, timeout: float = 10.0) -> None:
    waited = 0.0
    while not cond() and waited < timeout:
        hub.sleep(0.01)
        waited += 0.01
    assert cond(), "timed out"


@pytest.fixture
def app():
    a = KendaliApp()
    # What os-ken's AppManager does for an app it starts: its handlers, and its name for events.
    register_instance(a)
    app_manager.SERVICE_BRICKS[a.name] = a
    a.settings.lldp_interval = 0.05
    dp = FakeDatapath()
    a.datapaths[dp.id] = dp
    a.core.net.switch_up(dp.id, {1: True, 2: True}, 0.0)
    a.core.recon.actual[dp.id] = SwitchState()
    a.start()
    yield a, dp
    a.stop()
    del app_manager.SERVICE_BRICKS[a.name]


def _out_port(msg: Any) -> int | None:
    for inst in msg.instructions:
        for act in getattr(inst, "actions", []):
            return act.port
    return None


def test_changes_and_a_failover_posted_while_sending_are_handled_one_after_the_other(app):
    a, dp = app
    states = iter([_state(40, 1), _state(40, 2), _state(40, 1)])
    a.core.compiler.update = lambda *args, **kw: ({dp.id: next(states)}, {dp.id})  # type: ignore[method-assign]
    a.send_event(a.name, EventPolicies({}))
    a.send_event(a.name, EventPolicies({}))
    # A carrier loss while the first difference is being sent.
    _wait(lambda: any(type(m).__name__ == "OFPFlowMod" for m in dp.sent))
    desc = ofproto_v1_3_parser.OFPPort(2, "02:00:00:00:00:02", "p2", 0, ofproto_v1_3.OFPPS_LINK_DOWN, 0, 0, 0, 0, 0, 0)
    status = ofproto_v1_3_parser.OFPPortStatus(dp, ofproto_v1_3.OFPPR_MODIFY, desc)
    a.send_event(a.name, ofp_event.EventOFPPortStatus(status))
    _wait(lambda: sum(type(m).__name__ == "OFPBarrierRequest" for m in dp.sent) >= 3)
    seq = [
        ("B" if type(m).__name__ == "OFPBarrierRequest" else _out_port(m))
        for m in dp.sent
        if type(m).__name__ in ("OFPFlowMod", "OFPBarrierRequest")
    ]
    assert seq == [1] * 40 + ["B"] + [2] * 40 + ["B"] + [1] * 40 + ["B"], "messages interleaved"
    assert a.core.recon.actual[dp.id] == _state(40, 1)


def test_ticks_never_pile_up_behind_a_busy_loop(app):
    a, dp = app
    ticks = []
    real_tick = a.core.tick

    def slow_tick(now: float) -> list:
        ticks.append(now)
        hub.sleep(0.2)  # a handler four intervals long
        return real_tick(now)

    a.core.tick = slow_tick  # type: ignore[method-assign]
    hub.sleep(1.0)
    assert 3 <= len(ticks) <= 6  # one per busy handler, not one per interval queued behind it
