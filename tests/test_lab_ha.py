"""High availability in a real lab: a local etcd, two controllers (--etcd), ring4's switches
connected to both (controller.lab.hapair). In order, on one lab:

    follower write   a policy PUT on the follower is enforced: the meter is on the switch
    kill -9          the leader dies under a 1 ms UDP probe stream: no probe lost, and the
                     other serves REST writes within TTL + 1 s
    SIGSTOP          the leader is paused past its lease; the other takes over and changes a
                     cap; SIGCONT: the switches keep the new leader's state (the old one is
                     their slave) and the old leader rejoins as follower
    etcd stopped     forwarding goes on, writes get a clear 503; etcd back: writes again

Bounds are generous (a shared two-CPU machine); what was measured is printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RING4 = ROOT / "topologies" / "ring4.yaml"
TTL = 2
INTERVAL = 0.001  # a probe every ms

pytestmark = pytest.mark.lab


@dataclass
class Env:
    pair: Any
    lab: Any

    def bridge(self, switch: str) -> str:
        return str(self.lab.switch(switch).name)


@pytest.fixture(scope="module")
def env() -> Iterator[Env]:
    from controller.lab.hapair import HaPair
    from controller.lab.mininet_lab import LAB_BFD_MS, Lab, controller_args

    with HaPair(RING4, ttl=TTL, extra=controller_args(bool(LAB_BFD_MS))) as pair:
        a, b = pair.ctls
        with Lab(RING4, controller_port=a.ofp_port, more_controller_ports=(b.ofp_port,), prefix="kha") as lab:
            _, m = lab.wait_reachable(60, wait_s=0.5)
            assert m.complete, lab.report(m) + "\n" + "\n".join(c.log_tail(20) for c in pair.ctls)
            yield Env(pair, lab)


def policy(kbps: int) -> dict[str, Any]:
    return {"name": "OPD 1", "subnets": ["10.20.1.0/24"], "download_kbps": kbps, "upload_kbps": kbps}


def meter_rates(bridge: str) -> list[int]:
    out = subprocess.run(
        ["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", bridge], capture_output=True, text=True, check=True
    ).stdout
    return [int(x) for x in re.findall(r"rate=(\d+)", out)]


def wait_meter(bridge: str, kbps: int, timeout: float = 15.0) -> float:
    from controller.core.compiler import meter_rate

    t0 = time.monotonic()
    while meter_rate(kbps) not in meter_rates(bridge):
        assert time.monotonic() - t0 < timeout, f"no meter at {kbps} kbit/s on {bridge}: {meter_rates(bridge)}"
        time.sleep(0.1)
    return time.monotonic() - t0


def _ovs_rows(table: str, columns: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["ovs-vsctl", "--format=json", f"--columns={columns}", "list", table],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    doc = json.loads(out)
    return [dict(zip(doc["headings"], row, strict=True)) for row in doc["data"]]


def roles(bridges: list[str]) -> dict[str, dict[int, str]]:
    """bridge -> {OpenFlow port of each controller: the role Open vSwitch gives its connection}."""
    ctl = {r["_uuid"][1]: r for r in _ovs_rows("controller", "_uuid,target,role")}
    out: dict[str, dict[int, str]] = {}
    for br in _ovs_rows("bridge", "name,controller"):
        if br["name"] not in bridges:
            continue
        refs = br["controller"]
        uuids = [refs[1]] if refs[0] == "uuid" else [u for _, u in refs[1]]
        out[br["name"]] = {int(ctl[u]["target"].rsplit(":", 1)[1]): ctl[u]["role"] for u in uuids if u in ctl}
    return out


def wait_roles(bridges: list[str], want: dict[int, str], timeout: float = 12.0) -> None:
    """Every bridge gives each controller port its wanted role (Open vSwitch writes the role into
    its database every few seconds: this waits for that, it is not a measure of the takeover)."""
    t0 = time.monotonic()
    while True:
        got = roles(bridges)
        if len(got) == len(bridges) and all(r.get(p) == w for r in got.values() for p, w in want.items()):
            return
        assert time.monotonic() - t0 < timeout, got
        time.sleep(0.2)


def put(ctl: Any, kbps: int) -> int:
    status, _ = ctl.request("PUT", "/v1/policies/opd1", policy(kbps))
    return int(status)


def test_a_policy_put_on_the_follower_is_enforced(env: Env) -> None:
    leader = env.pair.leader()
    follower = next(c for c in env.pair.ctls if c is not leader)
    assert put(follower, 5000) in (200, 201)
    took = wait_meter(env.bridge("r1"), 5000)
    print(f"follower PUT -> meter on r1 after {took * 1000:.0f} ms")
    assert follower.get("/v1/policies/opd1")["download_kbps"] == 5000


def test_kill_9_of_the_leader_loses_no_probe_and_the_other_leads_within_ttl_plus_1_s(env: Env) -> None:
    from controller.lab.bench_failover import ProbeStream

    leader = env.pair.leader()
    other = next(c for c in env.pair.ctls if c is not leader)
    stream = ProbeStream(env.lab, "h1", "h3", seconds=8.0, interval=INTERVAL).start()
    stream.at(2.0)
    t_kill = time.monotonic()
    leader.stop(kill=True)
    # Any node takes a write at once (it goes into etcd); what needs the new leader is enforcing it.
    assert put(other, 6000) in (200, 201)
    from controller.core.compiler import meter_rate

    bridges = [env.bridge(s) for s in ("r1", "r2", "r3", "r4")]
    leader_at = enforced_at = None
    while time.monotonic() - t_kill < 20 and enforced_at is None:
        t = time.monotonic() - t_kill
        if leader_at is None and (env.pair.health(other) or {}).get("ha", {}).get("role") == "leader":
            leader_at = t
        if meter_rate(6000) in meter_rates(env.bridge("r1")):
            enforced_at = t
        time.sleep(0.01)
    res = stream.finish()
    print(f"takeover: leader {leader_at} s, the write enforced on the switch {enforced_at} s after kill -9; {res}")
    assert res["lost"] == 0, f"{res}\n{other.log_tail(30)}"
    assert leader_at is not None and leader_at <= TTL + 1.0, other.log_tail(30)
    # The new leader reads every switch back and sends only additions until they settle (1 s,
    # controller.core.controller.SWITCH_SETTLE): the new cap is a change, so it comes after.
    assert enforced_at is not None and enforced_at <= TTL + 3.0, other.log_tail(30)
    assert env.pair.leader(timeout=1) is other
    wait_roles(bridges, {other.ofp_port: "master"})
    leader.start()  # the same node again: it joins as follower
    time.sleep(2 * TTL)
    assert env.pair.health(leader)["ha"]["role"] == "follower"  # type: ignore[index]
    assert env.pair.leader() is other


def test_a_leader_paused_past_its_lease_is_refused_and_rejoins_as_follower(env: Env) -> None:
    old = env.pair.leader()
    new = next(c for c in env.pair.ctls if c is not old)
    assert old.proc is not None
    os.kill(old.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        env.pair.leader(timeout=TTL + 3, besides=old)
        print(f"paused leader replaced after {time.monotonic() - t0:.2f} s")
        assert put(new, 7000) in (200, 201)
        wait_meter(env.bridge("r1"), 7000)
        time.sleep(1.0)
    finally:
        os.kill(old.proc.pid, signal.SIGCONT)
    time.sleep(2 * TTL)  # whatever it had queued is on the wire by now
    from controller.core.compiler import meter_rate

    rates = meter_rates(env.bridge("r1"))
    assert meter_rate(7000) in rates and meter_rate(6000) not in rates, rates  # the old cap never came back
    wait_roles([env.bridge(s) for s in ("r1", "r2", "r3", "r4")], {new.ofp_port: "master", old.ofp_port: "slave"})
    h = env.pair.health(old)
    assert h is not None and h["ha"]["role"] == "follower" and h["ha"]["leader"] == new.node, h
    assert old.proc.poll() is None, old.log_tail()


def test_etcd_stopped_forwarding_goes_on_writes_are_refused_then_recover(env: Env) -> None:
    from controller.lab.bench_failover import ProbeStream

    env.pair.etcd.stop()
    try:
        stream = ProbeStream(env.lab, "h2", "h4", seconds=4.0, interval=INTERVAL).start()
        for c in env.pair.ctls:
            status, body = c.request("PUT", "/v1/policies/opd1", policy(8000))
            assert status == 503 and "etcd is unreachable" in body["error"]["problem"], (status, body)
        res = stream.finish()
        print(f"etcd stopped: probes {res}")
        assert res["lost"] == 0, res
        for c in env.pair.ctls:
            h = env.pair.health(c)
            assert h is not None and h["ha"]["etcd"] == "unreachable" and h["ha"]["role"] == "follower", h
    finally:
        env.pair.etcd.start()
    leader = env.pair.leader(timeout=TTL * 3 + 5)
    t0 = time.monotonic()
    while put(leader, 8000) not in (200, 201):
        assert time.monotonic() - t0 < 10
        time.sleep(0.1)
    wait_meter(env.bridge("r1"), 8000)
