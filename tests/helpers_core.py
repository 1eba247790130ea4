"""Shared helpers for the core unit tests (topology, graph, compiler, arp, state).

``build`` feeds a Network the way the os-ken shell would; ``walk`` follows one unicast
frame through a DesiredState with OpenFlow 1.3 semantics (just enough for the tests here,
kept independent of other modules so a compiler bug cannot hide behind a model bug).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from controller import topology as topo_mod
from controller.graph import Network
from controller.state import T_INGRESS, DesiredState

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
    """A minimal PolicyLike."""

    id: str
    subnets: tuple[str, ...]
    download_kbps: int
    upload_kbps: int
    burst_kbit: int | None = None


# ---- a tiny unicast walker -------------------------------------------------------------------

def _mac(v: str) -> int:
    return int(v.replace(":", ""), 16)


def _conv(name: str, v):
    if name.startswith("eth_"):
        return _mac(v) if isinstance(v, str) else v
    if name.startswith("ipv4_"):
        return int(ipaddress.IPv4Address(v))
    return v


def _matches(flow, pkt: dict) -> bool:
    for name, want in flow.match:
        have = pkt.get(name)
        if name == "vlan_vid" and have is None:
            have = 0
        if have is None:
            return False
        if isinstance(want, tuple):
            v, m = _conv(name, want[0]), _conv(name, want[1])
            if _conv(name, have) & m != v & m:
                return False
        elif _conv(name, have) != _conv(name, want):
            return False
    return True


_INDEX: dict[int, tuple[object, dict]] = {}


def _tables(sw) -> dict:
    """(table) -> flows, highest priority first; memoised per SwitchState object."""
    hit = _INDEX.get(id(sw))
    if hit is None or hit[0] is not sw:
        tables: dict = {}
        for f in sorted(sw.flows.values(), key=lambda f: -f.priority):
            tables.setdefault(f.table, []).append(f)
        hit = _INDEX[id(sw)] = (sw, tables)
    return hit[1]


def walk(state: DesiredState, net: Network, dpid: int, in_port: int, pkt: dict,
         dead: set[tuple[int, int]] = frozenset(), max_hops: int = 32) -> tuple[tuple[int, int] | None, list[str]]:
    """Follow one unicast frame. Returns (delivered (dpid, port) or None, trace).

    The frame as delivered is appended to the trace as its last element (a dict)."""
    peer = {}
    for d1, p1, d2, p2 in net.links:
        peer[(d1, p1)], peer[(d2, p2)] = (d2, p2), (d1, p1)
    trace: list[str] = []
    pkt = dict(pkt)
    for _ in range(max_hops):
        table, meta, outs = T_INGRESS, 0, []
        pkt["in_port"] = in_port
        while True:
            here = {**pkt, "metadata": meta}
            f = next((f for f in _tables(state[dpid]).get(table, ()) if _matches(f, here)), None)
            if f is None:
                trace.append(f"s{dpid}: table {table} miss")
                return None, trace
            trace.append(f"s{dpid} in {in_port} t{table} p{f.priority} {f.actions} meter={f.meter}")
            acts = list(f.actions)
            while acts:
                a = acts.pop(0)
                if a[0] == "group":
                    g = state[dpid].groups[a[1]]
                    live = [b for b in g.buckets if b.watch_port is None or (dpid, b.watch_port) not in dead]
                    acts = list(live[0].actions) + acts if live else acts
                elif a[0] == "output":
                    outs.append((a[1], dict(pkt)))
                elif a[0] == "set_field":
                    pkt[a[1]] = a[2]
                elif a[0] == "push_vlan":
                    pkt["vlan_vid"] = 0x1000
                elif a[0] == "pop_vlan":
                    pkt.pop("vlan_vid", None)
            if f.metadata:
                meta = f.metadata[0]
            if f.goto is None:
                break
            table = f.goto
        if len(outs) != 1:
            trace.append(f"s{dpid}: {len(outs)} outputs")
            return None, trace
        port, pkt = outs[0]
        if port == "in_port":
            port = in_port
        elif port == in_port:
            trace.append(f"s{dpid}: output to in_port {port} is dropped by OpenFlow")
            return None, trace
        if port == "controller" or (dpid, port) in dead:
            trace.append(f"s{dpid}: to {port}")
            return None, trace
        if (dpid, port) not in peer:
            pkt.pop("in_port", None)
            trace.append(pkt)
            return (dpid, port), trace
        dpid, in_port = peer[(dpid, port)]
    trace.append("looped")
    return None, trace
