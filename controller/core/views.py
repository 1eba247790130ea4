"""Read-only JSON views of the controller's state for the REST API. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controller.core.graph import LinkKey, Network, link_key


def _name(net: Network, dpid: int) -> str | None:
    sw = net.topology.switch_by_dpid(dpid) if net.topology else None
    return sw.name if sw else None


def switch_label(net: Network, dpid: int) -> str:
    """The switch's declared name, else its dpid as 16 hex digits (as Open vSwitch shows it)."""
    return _name(net, dpid) or f"{dpid:016x}"


def link_label(net: Network, key: LinkKey) -> str:
    """'core:1-dist-waru:2': switch names where declared, else dpids."""
    d1, p1, d2, p2 = key
    return f"{_name(net, d1) or d1}:{p1}-{_name(net, d2) or d2}:{p2}"


def topology(net: Network, link_usage: Mapping[LinkKey, dict[str, Any]] | None = None) -> dict[str, Any]:
    """Switches, links (discovered and declared, with state and capacity) and hosts. With
    ``link_usage`` (controller.core.usage.Usage.links), each link also carries ``usage``:
    bytes each way and the rate and utilisation over the last poll interval."""
    switches: list[dict[str, Any]] = []
    declared_dpids = set()
    if net.topology:
        for s in net.topology.switches.values():
            declared_dpids.add(s.dpid)
            switches.append(
                {"dpid": s.dpid, "name": s.name, "role": s.role, "site": s.site, "connected": s.dpid in net.ports}
            )
    for dpid in sorted(net.ports):
        if dpid not in declared_dpids:
            switches.append({"dpid": dpid, "name": None, "role": None, "site": None, "connected": True})
    for sw in switches:
        ports = net.ports.get(sw["dpid"], {})
        sw["ports_up"] = sorted(p for p, i in ports.items() if i.up)

    links = []
    seen = set()
    for key, info in sorted(net.links.items()):
        seen.add(key)
        links.append(_link(net, key, "up", info.capacity_mbps, info.declared))
    if net.topology:
        t = net.topology
        for l in t.links:
            key = link_key(t.switches[l.a].dpid, l.a_port, t.switches[l.b].dpid, l.b_port)
            if key not in seen:
                links.append(_link(net, key, "down", l.capacity_mbps, True))
    for link in links:
        if link_usage is not None:
            key = (link["a"]["dpid"], link["a"]["port"], link["b"]["dpid"], link["b"]["port"])
            link["usage"] = link_usage.get(key)
    hosts = [
        {"mac": h.mac, "ip": h.ip, "dpid": h.dpid, "switch": _name(net, h.dpid), "port": h.port}
        for h in sorted(net.hosts.values(), key=lambda h: (h.ip or "", h.mac))
    ]
    return {"switches": switches, "links": links, "hosts": hosts, "discrepancies": net.discrepancies()}


def _link(
    net: Network, key: tuple[int, int, int, int], state: str, cap: float | None, declared: bool
) -> dict[str, Any]:
    d1, p1, d2, p2 = key
    return {
        "a": {"dpid": d1, "name": _name(net, d1), "port": p1},
        "b": {"dpid": d2, "name": _name(net, d2), "port": p2},
        "state": state,
        "capacity_mbps": cap,
        "declared": declared,
    }


def health(
    net: Network,
    *,
    policies: int,
    uptime_s: float,
    last_compile_ms: float,
    counters: Any = None,
    repairs: dict[str, int] | None = None,
) -> dict[str, Any]:
    declared = len(net.topology.switches) if net.topology else None
    connected = len(net.ports)
    problems = net.discrepancies()
    ok = declared is None or connected >= declared
    return {
        "status": "ok" if ok and not problems else "degraded",
        "switches_connected": connected,
        "switches_declared": declared,
        "links_up": len(net.links),
        "hosts": len(net.hosts),
        "policies": policies,
        "discrepancies": len(problems),
        "last_compile_ms": round(last_compile_ms, 2),
        "uptime_s": round(uptime_s, 1),
        "failovers": getattr(counters, "failovers", 0),
        "repairs": dict(repairs or {}),
        "refused": {
            "lldp": getattr(counters, "lldp_refused", 0) + net.refused_links,
            "host_claims": net.refused_claims,
            "frames": getattr(counters, "frames_dropped", 0),
        },
    }
