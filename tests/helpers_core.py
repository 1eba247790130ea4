"""Shared helpers for the core unit tests (topology, graph, compiler, arp, state).

``build`` feeds a Network the way the os-ken shell would; ``Pol`` stands in for a policy.
Frames are followed through a compiled DesiredState with controller.tablemodel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from controller.core import topology as topo_mod
from controller.core.graph import Network

ROOT = Path(__file__).resolve().parent.parent
TOPOS = ROOT / "topologies"
NOW = 10.0  # well past the edge probation of ports brought up at 0


def load(name: str) -> topo_mod.Topology:
    return topo_mod.load(TOPOS / f"{name}.yaml")


def used_ports(t: topo_mod.Topology) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {s.dpid: set() for s in t.switches.values()}
    for l in t.links:
        out[t.switches[l.a].dpid].add(l.a_port)
        out[t.switches[l.b].dpid].add(l.b_port)
    for h in t.hosts:
        out[t.switches[h.switch].dpid].add(h.port)
    return out


def build(t: topo_mod.Topology, links: bool = True, hosts: bool = True, declare: bool = True) -> Network:
    """Every switch up (exactly its used ports), every declared link seen, every host learned."""
    net = Network(t if declare else None)
    for dpid, ports in used_ports(t).items():
        net.switch_up(dpid, {p: True for p in ports}, 0.0)
    if links:
        for l in t.links:
            net.link_seen(t.switches[l.a].dpid, l.a_port, t.switches[l.b].dpid, l.b_port, 0.0)
    if hosts:
        for h in t.hosts:
            assert net.learn_host(h.mac, h.ip, t.switches[h.switch].dpid, h.port, NOW), h
    return net


@dataclass(frozen=True)
class Pol:
    """A minimal PolicyLike (what the compiler reads of a controller.policy.Policy)."""

    id: str
    subnets: tuple[str, ...]
    download_kbps: int
    upload_kbps: int
    burst_kbit: int | None = None
