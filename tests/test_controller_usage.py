"""Usage endpoints of a real `kendali controller` child process (no switches, no Mininet):
every counted OPD is listed from the start, its history answers, /metrics is served, and
the history file is made in the state directory."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.core import topology
from controller.core.policy import load_file
from controller.lab.labctl import ControllerProcess

ROOT = Path(__file__).resolve().parent.parent
TOPO = ROOT / "topologies" / "ppu.yaml"
POLICIES = ROOT / "policies" / "ppu.yaml"


@pytest.fixture(scope="module")
def ctl() -> Iterator[ControllerProcess]:
    c = ControllerProcess(TOPO, POLICIES, extra=["--stats-interval", "0.5"]).start()
    try:
        yield c
    finally:
        c.cleanup()


def test_every_policy_and_every_uncovered_declared_subnet_is_listed(ctl: ControllerProcess) -> None:
    rows = {r["opd"]: r for r in ctl.get("/v1/usage")["opds"]}
    policies = load_file(POLICIES)
    t = topology.load(TOPO)
    covered = {c for p in policies.values() for c in p.subnets}
    subnets = {s.id for s in t.subnets.values() if s.cidr not in covered and s.id != t.uplink.subnet}
    assert set(rows) == set(policies) | subnets and "dc" in subnets
    assert rows["dc"]["kind"] == "subnet" and rows["dc"]["down"]["cap_kbps"] is None
    some = next(iter(policies.values()))
    assert rows[some.id]["name"] == some.name and rows[some.id]["down"]["cap_kbps"] == some.download_kbps
    assert all(r["up"]["bytes"] == 0 and r["window"] is None for r in rows.values())  # no switch: nothing counted


def test_history_and_metrics_are_served(ctl: ControllerProcess) -> None:
    series = ctl.get("/v1/usage/dc?from=now-1h&step=1m")
    assert series["opd"] == "dc" and series["tier"] == "raw" and series["step"] == 60
    status, body = ctl.request("GET", "/v1/usage/nobody")
    assert status == 404 and body["error"]["field"] == "opd"
    req = urllib.request.Request(ctl.url + "/metrics", headers={"Authorization": f"Bearer {ctl.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        text = resp.read().decode()
    assert 'kendali_opd_bytes_total{direction="down",opd="dc"} 0.0' in text
    assert "kendali_compile_duration_seconds_count" in text and "kendali_switch_connected" in text
    assert (ctl.state_dir / "usage.sqlite").exists()


def test_a_port_someone_took_meanwhile_means_new_ports(tmp_path: Path) -> None:
    c = ControllerProcess(state_dir=tmp_path / "state")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", c.ofp_port))
        busy.listen()
        taken = c.ofp_port
        try:
            c.start()
            assert c.ofp_port != taken and c.get("/v1/health")
        finally:
            c.cleanup()
