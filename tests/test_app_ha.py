"""The os-ken shell with --etcd (controller.openflow.app with an Ha): a follower never changes a
switch, a new leader asks every switch for MASTER with its generation before anything else
and reads it back, a switch's refusal makes the leader step down. A fake datapath, a fake Ha."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

if os.environ.get("OSKEN_HUB_TYPE") != "eventlet":  # pragma: no cover - conftest sets it
    pytest.skip("needs the eventlet hub", allow_module_level=True)

from os_ken.base import app_manager  # noqa: E402
from os_ken.controller import ofp_event  # noqa: E402
from os_ken.controller.handler import register_instance  # noqa: E402
from os_ken.lib import hub  # noqa: E402
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser  # noqa: E402

from controller.core.election import SwitchRole  # noqa: E402
from controller.core.state import SwitchState  # noqa: E402
from controller.openflow import app as app_mod  # noqa: E402
from controller.openflow.app import EventPolicies, KendaliApp  # noqa: E402
from tests.test_app_loop import FakeDatapath, _state, _wait  # noqa: E402


class FakeElection:
    def __init__(self) -> None:
        self.leading, self.generation = False, 3

    def switch_role(self, now: float) -> SwitchRole:
        return SwitchRole(self.leading, self.generation)


class FakeHa:
    def __init__(self) -> None:
        self.election = FakeElection()
        self.fences = 0
        self.remembered: list[bytes] = []

    def leading(self) -> bool:
        return self.election.leading

    def start(self, on_role: Any, on_policies: Any) -> list[Any]:
        return []

    def status(self) -> dict[str, Any]:
        return {"role": "leader" if self.election.leading else "follower"}

    def remember(self, data: bytes) -> None:
        self.remembered.append(data)

    def fenced(self) -> None:
        self.fences += 1
        self.election.leading = False


@pytest.fixture
def app() -> Iterator[tuple[KendaliApp, FakeDatapath, FakeHa]]:
    ha = FakeHa()
    app_mod.SETTINGS.ha = ha
    try:
        a = KendaliApp()
    finally:
        app_mod.SETTINGS.ha = None
    register_instance(a)
    app_manager.SERVICE_BRICKS[a.name] = a
    a.settings.lldp_interval = 0.05
    dp = FakeDatapath()
    a.datapaths[dp.id] = dp
    a.core.net.switch_up(dp.id, {1: True, 2: True}, 0.0)
    a.core.recon.actual[dp.id] = SwitchState()
    a.start()
    yield a, dp, ha
    a.stop()
    del app_manager.SERVICE_BRICKS[a.name]


def names(dp: FakeDatapath) -> list[str]:
    return [type(m).__name__ for m in dp.sent]


def test_a_follower_never_changes_a_switch(app) -> None:
    a, dp, ha = app
    a.core.compiler.compile = lambda *args, **kw: {dp.id: _state(5, 1)}  # type: ignore[method-assign]
    a.send_event(a.name, EventPolicies({}))
    hub.sleep(0.3)  # several LLDP ticks too
    assert not {"OFPFlowMod", "OFPGroupMod", "OFPMeterMod", "OFPPacketOut"} & set(names(dp)), names(dp)


def test_a_new_leader_asks_for_master_first_then_reads_back_and_sends_only_then(app) -> None:
    a, dp, ha = app
    ha.election.leading, ha.election.generation = True, 42
    a._role_changed(True, 42, {"hosts": [], "meter_ids": {}, "switches": [dp.id]})
    _wait(lambda: "OFPFlowStatsRequest" in names(dp))
    first = dp.sent[0]
    assert type(first).__name__ == "OFPRoleRequest"
    assert first.role == ofproto_v1_3.OFPCR_ROLE_MASTER and first.generation_id == 42
    assert names(dp).index("OFPPortDescStatsRequest") < names(dp).index("OFPFlowStatsRequest")
    assert "OFPFlowMod" not in names(dp)  # nothing sent before the switch is read back


def test_a_switch_refusing_the_leader_makes_it_step_down_and_ask_for_slave(app) -> None:
    a, dp, ha = app
    ha.election.leading = True
    err = ofproto_v1_3_parser.OFPErrorMsg(
        dp, type_=ofproto_v1_3.OFPET_ROLE_REQUEST_FAILED, code=ofproto_v1_3.OFPRRFC_STALE
    )
    a.send_event(a.name, ofp_event.EventOFPErrorMsg(err))
    _wait(lambda: ha.fences == 1)
    a._role_changed(False, ha.election.generation, None)
    _wait(lambda: "OFPRoleRequest" in names(dp))
    req = next(m for m in dp.sent if type(m).__name__ == "OFPRoleRequest")
    assert req.role == ofproto_v1_3.OFPCR_ROLE_SLAVE and req.generation_id == ha.election.generation


def test_health_says_the_role(app) -> None:
    a, _dp, ha = app
    assert a.health()["ha"] == {"role": "follower", "master_on": 0, "switches": 1, "master_on_all_at": None}
    ha.election.leading = True
    assert a.health()["ha"]["role"] == "leader"


def test_health_says_when_every_switch_confirmed_the_new_leader_as_master(app) -> None:
    a, dp, ha = app
    ha.election.leading, ha.election.generation = True, 42
    a._role_changed(True, 42, {"hosts": [], "meter_ids": {}, "switches": [dp.id]})
    _wait(lambda: "OFPRoleRequest" in names(dp))
    assert a.health()["ha"]["master_on_all_at"] is None  # asked, not yet confirmed
    slave = ofproto_v1_3_parser.OFPRoleReply(dp, ofproto_v1_3.OFPCR_ROLE_SLAVE, 41)
    a.send_event(a.name, ofp_event.EventOFPRoleReply(slave))
    hub.sleep(0.05)
    assert a.health()["ha"]["master_on"] == 0  # another role is no confirmation
    master = ofproto_v1_3_parser.OFPRoleReply(dp, ofproto_v1_3.OFPCR_ROLE_MASTER, 42)
    a.send_event(a.name, ofp_event.EventOFPRoleReply(master))
    _wait(lambda: a.health()["ha"]["master_on_all_at"] is not None)
    assert a.health()["ha"]["master_on"] == 1 == a.health()["ha"]["switches"]
