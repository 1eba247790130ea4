"""The Mininet lab without a controller: standalone bridges with Open vSwitch RSTP.

The topology-mapping tests need only an importable Mininet; the `lab` ones need root and
running Open vSwitch daemons (bash scripts/setup.sh) and take a few real seconds.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

mininet = pytest.importorskip("mininet.topo", reason="Mininet not importable: run scripts/setup.sh, use .venv")

from controller.core.topology import load  # noqa: E402
from controller.lab.mntopo import IFNAMSIZ, KendaliTopo, flat_network  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RING4 = ROOT / "topologies" / "ring4.yaml"
PPU = ROOT / "topologies" / "ppu.yaml"


def test_topo_keeps_declared_dpids_ports_and_hosts() -> None:
    t = load(PPU)
    k = KendaliTopo(t, prefix="kt")
    assert len(k.switches()) == len(t.switches) and len(k.hosts()) == len(t.hosts)
    for sw in t.switches.values():
        assert k.nodeInfo(k.names[sw.name])["dpid"] == f"{sw.dpid:016x}"
    for l in t.links:
        info = k.linkInfo(k.names[l.a], k.names[l.b])
        ports = {info["node1"]: info["port1"], info["node2"]: info["port2"]}
        assert ports == {k.names[l.a]: l.a_port, k.names[l.b]: l.b_port}
    for h in t.hosts:
        info = k.nodeInfo(k.names[h.name])
        sub = t.subnets[h.subnet]
        assert info["ip"] == f"{h.ip}/{sub.network.prefixlen}" and info["mac"] == h.mac
        assert info["defaultRoute"] == f"via {sub.gateway}"
    for l in t.links:  # every switch interface name fits Linux's limit
        assert len(f"{k.names[l.a]}-eth{l.a_port}") <= IFNAMSIZ


def test_flat_mode_puts_all_hosts_on_link() -> None:
    t = load(PPU)
    k = KendaliTopo(t, flat=True)
    assert str(flat_network(t)) == "10.0.0.0/8"
    assert all(k.nodeInfo(k.names[h.name])["ip"].endswith("/8") for h in t.hosts)
    assert all("defaultRoute" not in k.nodeInfo(k.names[h.name]) for h in t.hosts)


@pytest.mark.lab
def test_ring4_standalone_rstp_reaches_fails_over_and_cleans_up() -> None:
    from controller.lab.mininet_lab import Lab

    lab = Lab(RING4, prefix="ktst", standalone=True)
    with lab:
        elapsed, matrix = lab.wait_reachable(30, wait_s=0.25)
        assert matrix.complete, lab.report(matrix)
        assert lab.timings["reachable_after_start_s"] < 15
        assert "ALL REACHABLE" in lab.report(matrix)
        # A stray non-UTF-8 byte in a shell's output is replaced, not a crash of the lab.
        assert "odd \ufffd\ufffd bytes" in lab.host("h1").cmd("printf 'odd \\377\\376 bytes\\n'")
        assert lab.reachability(hosts=["h1", "h2"]).complete
        # RSTP must re-route around any single ring link.
        for a, b in (("r1", "r2"), ("r3", "r4")):
            lab.link_down(a, b)
            _, m = lab.wait_reachable(15, wait_s=0.25)
            assert m.complete, lab.report(m)
            lab.link_up(a, b)
            assert lab.wait_reachable(15, wait_s=0.25)[1].complete
    assert lab.leftovers() == []
    assert not any(
        b.startswith("ktsts")
        for b in subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()
    )


@pytest.mark.lab
def test_teardown_on_exception_leaves_nothing() -> None:
    from controller.lab.mininet_lab import Lab

    lab = Lab(RING4, prefix="ktex", standalone=True)
    with pytest.raises(RuntimeError):
        with lab:
            raise RuntimeError("boom")
    assert lab.leftovers() == []
