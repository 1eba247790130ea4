"""Per-OPD caps enforced end to end: real controller process, Mininet lab, real TCP.

topologies/lab-meters.yaml with policies/lab-meters.yaml: the Internet host ``inet`` on
the core; OPD A (a1, a2; 10/4 Mbit/s) and OPD C (c1; 20/8) on edge-a; OPD B (b1, b2;
6/3) and the uncapped ``f1`` on edge-b. ONE controller and ONE lab serve the whole
module (a few minutes at most); the controller-restart test runs last.

Goodput is iperf3's at the receiver after a 2 s warm-up (-O) that drops slow start and
the full meter bucket. Tolerances are wide on purpose (0.85-1.10 of the cap): these
tests prove enforcement and must never flake on a busy 2-core machine; precision is
what `kendali bench meters` measures.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parent.parent
TOPO = ROOT / "topologies" / "lab-meters.yaml"
POLICIES = ROOT / "policies" / "lab-meters.yaml"
LOW, HIGH = 0.85, 1.10
SECONDS, OMIT = 6, 2
MBIT = 1e6


class Env:
    """The module's controller (replaced by the restart test) and lab."""

    def __init__(self, ctl: Any, lab: Any) -> None:
        self.ctl = ctl
        self.lab = lab

    def policy(self, opd: str) -> dict:
        return self.ctl.get(f"/v1/policies/{opd}")

    def put(self, opd: str, **change: int) -> dict:
        status, body = self.ctl.request("PUT", f"/v1/policies/{opd}", {**self.policy(opd), **change})
        assert status == 200, body
        return body

    def load(self, *loads: tuple[str, str, int]) -> list[Any]:
        from controller.lab import traffic

        return traffic.run(self.lab, [traffic.Load(s, d, n) for s, d, n in loads], seconds=SECONDS, omit=OMIT)


def total_bps(results: list[Any]) -> float:
    return sum(r.mean_bps for r in results)


def near(got_bps: float, cap_kbps: int) -> bool:
    return LOW <= got_bps / (cap_kbps * 1000) <= HIGH


def show(results: list[Any]) -> str:
    return "; ".join(
        f"{r.load.src}->{r.load.dst} x{r.load.streams}: {r.mean_bps / MBIT:.2f} Mbit/s "
        f"(per s {[round(x / MBIT, 2) for x in r.per_second_bps]}, retr {r.retransmits})"
        for r in results
    )


@contextmanager
def running(state: Path, prefix: str) -> Iterator[Env]:
    """A controller with the lab-meters policies and its lab, every host reachable.
    (tests/test_lab_console.py starts its own with this too.)"""
    from controller.lab.labctl import ControllerProcess
    from controller.lab.mininet_lab import Lab

    ctl = ControllerProcess(TOPO, POLICIES, state_dir=state).start()
    e = Env(ctl, None)
    try:
        with Lab(TOPO, controller_port=ctl.ofp_port, prefix=prefix) as lab:
            e.lab = lab
            took, matrix = lab.wait_reachable(60)
            assert matrix.complete, lab.report(matrix) + f"\ncontroller log:\n{ctl.log_tail()}"
            yield e
    finally:
        e.ctl.cleanup()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with running(tmp_path_factory.mktemp("kendali-lab-policies") / "state", "ktp") as e:
        yield e


def test_capped_opd_download_aggregate_holds_its_cap(env: Env) -> None:
    cap = env.policy("opd-a")["download_kbps"]
    r = env.load(("inet", "a1", 2), ("inet", "a2", 2))
    assert near(total_bps(r), cap), f"cap {cap} kbit/s; {show(r)}"
    assert all(x.mean_bps > 0.1 * cap * 1000 for x in r), f"one host starved: {show(r)}"


def test_uncapped_host_gets_far_more_than_any_cap(env: Env) -> None:
    largest = max(p["download_kbps"] for p in env.ctl.get("/v1/policies")["policies"])
    r = env.load(("inet", "f1", 2))
    assert total_bps(r) > 3 * largest * 1000, show(r)


def test_traffic_inside_an_opd_is_not_capped(env: Env) -> None:
    cap = env.policy("opd-a")
    r = env.load(("a1", "a2", 2))
    assert total_bps(r) > 3 * max(cap["download_kbps"], cap["upload_kbps"]) * 1000, show(r)


def test_two_opds_saturating_at_once_each_keep_their_own_cap(env: Env) -> None:
    cap_a, cap_b = env.policy("opd-a")["download_kbps"], env.policy("opd-b")["download_kbps"]
    assert cap_a != cap_b
    r = env.load(("inet", "a1", 2), ("inet", "a2", 2), ("inet", "b1", 2), ("inet", "b2", 2))
    assert near(total_bps(r[:2]), cap_a), f"A cap {cap_a} kbit/s; {show(r[:2])}"
    assert near(total_bps(r[2:]), cap_b), f"B cap {cap_b} kbit/s; {show(r[2:])}"


def test_upload_cap_holds_in_aggregate(env: Env) -> None:
    cap = env.policy("opd-a")["upload_kbps"]
    # a1 to the Internet, a2 to another office: both leave OPD A, so both are its upload.
    r = env.load(("a1", "inet", 2), ("a2", "f1", 2))
    assert near(total_bps(r), cap), f"cap {cap} kbit/s; {show(r)}"


def test_put_changes_the_achieved_rate(env: Env) -> None:
    env.put("opd-c", download_kbps=20000)
    before = env.load(("inet", "c1", 2))
    assert near(total_bps(before), 20000), show(before)
    env.put("opd-c", download_kbps=5000)
    after = env.load(("inet", "c1", 2))
    assert near(total_bps(after), 5000), show(after)
    env.put("opd-c", download_kbps=12000)  # and back up: a raised cap is enforced too
    again = env.load(("inet", "c1", 2))
    assert near(total_bps(again), 12000), show(again)


def test_a_new_policy_caps_and_deleting_it_uncaps(env: Env) -> None:
    body = {
        "id": "free",
        "name": "Uncapped office",
        "subnets": ["10.30.9.0/24"],
        "download_kbps": 5000,
        "upload_kbps": 2000,
    }
    status, resp = env.ctl.request("PUT", "/v1/policies/free", body)
    assert status == 201, resp
    try:
        capped = env.load(("inet", "f1", 2))
        assert near(total_bps(capped), 5000), show(capped)
    finally:
        status, resp = env.ctl.request("DELETE", "/v1/policies/free")
        assert status == 204, resp
    free = env.load(("inet", "f1", 2))
    assert total_bps(free) > 3 * 20000 * 1000, show(free)


def test_controller_restart_keeps_the_rest_policy_enforced(env: Env) -> None:
    from controller.lab.labctl import ControllerProcess

    cap = 3000  # differs from the policy file's 20000: only the saved state knows it
    env.put("opd-c", download_kbps=cap)
    old = env.ctl
    old.cleanup()  # stops it and removes its log; the state dir is the fixture's
    # Same state dir and the same OpenFlow port (argparse: the last --ofp-port wins), so
    # the lab's switches reconnect to the new process; the file is passed again and must
    # not override the saved state.
    new = ControllerProcess(TOPO, POLICIES, state_dir=old.state_dir, extra=["--ofp-port", str(old.ofp_port)])
    new.ofp_port = old.ofp_port
    env.ctl = new.start()
    assert env.policy("opd-c")["download_kbps"] == cap
    deadline = time.monotonic() + 40  # Open vSwitch backs off up to 8 s between attempts
    while env.ctl.get("/v1/health")["switches_connected"] < 3:
        assert time.monotonic() < deadline, f"switches did not reconnect:\n{env.ctl.log_tail()}"
        time.sleep(0.2)
    took, matrix = env.lab.wait_reachable(30)
    assert matrix.complete, env.lab.report(matrix)
    r = env.load(("inet", "c1", 2))
    assert near(total_bps(r), cap), f"cap {cap} kbit/s after restart; {show(r)}\n{env.ctl.log_tail()}"
