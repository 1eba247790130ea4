"""Failover in a real lab: ring4 with a Kendali controller process, probe streams across cuts.

One lab for the module, as the lab runs by default: the controller's LLDP every 0.1 s finds
a silent failure within about half a second (with KENDALI_LAB_BFD=100x3, BFD on the ring
links and the controller with --switch-liveness: the switches bypass it in about 0.3 s;
tests/test_lab_bfd.py runs that case). Each test uses a different ring
link, so flap damping (a link that failed repeatedly is held back) does not couple them:

    r1-r2  carrier loss          h1 -> h2
    r2-r3  carrier back          h2 -> h3
    r3-r4  silent failure        h3 -> h4   (tc egress drop on both veth ends, carrier up)
    r4-r1  capped OPD after cut  h4 -> h1   (opd1 download capped at 5 Mbit/s via REST)

Bounds are generous: this is a shared two-CPU machine; the benchmark
(`kendali bench failover`) has the real numbers.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RING4 = ROOT / "topologies" / "ring4.yaml"
INTERVAL = 0.001  # probe every ms


pytestmark = pytest.mark.lab  # tests/conftest.py skips (or, under CI, refuses) without a lab


@pytest.fixture(scope="module")
def ring():
    from controller.lab.labctl import ControllerProcess
    from controller.lab.mininet_lab import LAB_BFD_MS, Lab, controller_args

    with ControllerProcess(RING4, extra=controller_args(bool(LAB_BFD_MS))) as ctl:
        with Lab(RING4, controller_port=ctl.ofp_port, prefix="kfo") as lab:
            _, m = lab.wait_reachable(60, wait_s=0.5)
            assert m.complete, lab.report(m) + "\n" + ctl.log_tail(30)
            yield ctl, lab
            assert ctl.proc.poll() is None, "controller died: " + ctl.log_tail()


def _ready(ctl, a: str, b: str) -> None:
    from controller.lab.bench_failover import wait_link_in_use

    assert wait_link_in_use(ctl, a, b, timeout=40) is not None, f"{a}-{b} not in use: " + ctl.log_tail(20)


def _on_path(lab, src: str, dst: str, a: str, b: str) -> None:
    from controller.lab.bench_failover import crosses, path_switches

    path = path_switches(lab.topology, src, dst)
    assert crosses(path, a, b), f"{src}->{dst} goes {path}, not over {a}-{b}"


def _why(ctl, res: dict) -> str:
    return f"{res}\n--- controller log ---\n{ctl.log_tail(25)}"


def test_carrier_loss_mid_stream_traffic_continues(ring) -> None:
    from controller.lab.bench_failover import one_event

    ctl, lab = ring
    _ready(ctl, "r1", "r2")
    _on_path(lab, "h1", "h2", "r1", "r2")
    res = one_event(lab, "carrier", ("r1", "r2"), ("h1", "h2"), seconds=3.0, at=1.0, port=9101)
    sent = res["sent"]
    assert sent and sent > 1000, _why(ctl, res)
    assert res["lost"] < 0.05 * sent, _why(ctl, res)
    assert res["max_gap_ms"] < 500, _why(ctl, res)  # fast failover, not a controller round trip
    assert res["duplicates"] == 0, _why(ctl, res)
    # the controller logged this very failover, with its timing (with BFD on the link, Open
    # vSwitch may clear the port's LIVE bit a moment before it reports the carrier gone)
    assert re.search(
        r"failover: link (r1:\d+-r2:\d+|r2:\d+-r1:\d+) (lost carrier|is not live)[^;]*; .* in [0-9.]+ ms",
        ctl.log_tail(60),
    ), ctl.log_tail(60)
    # one_event restored the carrier: the link comes back into use and everything is reachable
    _ready(ctl, "r1", "r2")
    _, m = lab.wait_reachable(20, wait_s=0.5)
    assert m.complete, lab.report(m)


def test_link_comes_back_mid_stream_traffic_continues(ring) -> None:
    from controller.lab.bench_failover import one_event, wait_link_in_use

    ctl, lab = ring
    _ready(ctl, "r2", "r3")
    _on_path(lab, "h2", "h3", "r2", "r3")
    res = one_event(
        lab,
        "recovery",
        ("r2", "r3"),
        ("h2", "h3"),
        seconds=5.0,
        at=1.5,
        port=9102,
        after=lambda: {"back_in_use_s": wait_link_in_use(ctl, "r2", "r3", timeout=3.0)},
    )
    assert res["back_in_use_s"] is not None, _why(ctl, res)  # paths moved back during the stream
    assert res["lost"] < 0.05 * res["sent"], _why(ctl, res)
    assert res["max_gap_ms"] < 500, _why(ctl, res)


def test_silent_failure_is_routed_around_after_lldp_timeout(ring) -> None:
    from controller.lab.bench_failover import carrier, one_event, silent_fail, silent_restore

    ctl, lab = ring
    _ready(ctl, "r3", "r4")
    _on_path(lab, "h3", "h4", "r3", "r4")
    res = one_event(lab, "silent", ("r3", "r4"), ("h3", "h4"), seconds=4.0, at=1.0, port=9103)
    # Traffic stops when the link goes silent and resumes once BFD (the lab's default; the
    # switches themselves) or LLDP (without BFD, 0.5 s of silence) declares it dead, not
    # later; the stream runs on to its end.
    assert res["max_gap_ms"] < 2000, _why(ctl, res)
    assert res["last_seq"] >= res["sent"] - 50, _why(ctl, res)
    assert res["lost"] < 0.5 * res["sent"], _why(ctl, res)
    assert re.search(r"silent for|is not live", ctl.log_tail(80)), ctl.log_tail(30)
    # While it stays silent (carrier up!), every host still reaches every other.
    silent_fail(lab, "r3", "r4")
    try:
        assert carrier(lab, "r3", "r4")
        time.sleep(1.0)
        _, m = lab.wait_reachable(10, wait_s=0.5)
        assert m.complete, lab.report(m)
    finally:
        silent_restore(lab, "r3", "r4")
    _ready(ctl, "r3", "r4")


def test_capped_opd_stays_capped_after_failover(ring) -> None:
    from controller.lab import traffic

    ctl, lab = ring
    cap_kbps = 5000
    policy = {
        "id": "opd1",
        "name": "OPD 1",
        "subnets": ["10.20.1.0/24"],
        "download_kbps": cap_kbps,
        "upload_kbps": 50000,
    }
    status, body = ctl.request("PUT", "/v1/policies/opd1", policy)
    assert status in (200, 201), body
    try:
        _ready(ctl, "r4", "r1")
        _on_path(lab, "h4", "h1", "r4", "r1")
        lab.link_down("r4", "r1")
        try:
            _, m = lab.wait_reachable(20, wait_s=0.5)
            assert m.complete, lab.report(m)
            (g,) = traffic.run(lab, [traffic.Load(src="h4", dst="h1")], seconds=5, omit=2, base_port=5401)
            mbps = g.mean_bps / 1e6
            # Wide tolerance: a 1 s meter bucket and a busy machine; the cap must hold, and
            # traffic must flow at all (the detour works).
            assert 0.4 * cap_kbps / 1000 < mbps < 1.35 * cap_kbps / 1000, (g.per_second_bps, ctl.log_tail(20))
        finally:
            lab.link_up("r4", "r1")
    finally:
        ctl.request("DELETE", "/v1/policies/opd1")
