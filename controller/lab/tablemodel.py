"""A switch-free model of OpenFlow 1.3 tables, good enough to prove forwarding.

The compiler's output (controller.state.DesiredState) is plain data; this module runs
packets through it the way an OpenFlow 1.3 switch would, so tests can *prove* delivery,
uniqueness and loop freedom on any topology without Mininet or OVS.

What is modelled (and why it matters for the compiler):

* per table, the highest-priority matching flow wins; a table miss drops (Kendali never
  installs a miss-to-controller entry except on purpose);
* matches are prerequisite-free but strict: a field the packet lacks never matches, masks
  are honoured for MACs (``"ff:.."``), IPv4 (dotted masks), metadata and vlan_vid;
  ``vlan_vid`` follows OpenFlow: ``0x1000 | vid`` means "tagged with vid", 0 means untagged;
* apply-actions run in order on the packet as it is at that moment (an output sends a
  copy), then write-metadata, then goto; a meter is recorded as "hit" (no rate);
* groups: ALL runs every bucket on a copy, FF the first bucket whose watch port is live,
  INDIRECT/SELECT the first bucket;
* the OpenFlow rule that an output to the packet's own in_port is dropped unless the
  action says ``"in_port"`` -- the source of many real hair-pin bugs;
* a dead port loses what is sent to it; an inter-switch port hands the packet to the peer
  switch (which starts again at table 0); any other port delivers to a host;
* a loop is a (switch, in_port, packet) arrival seen twice, or a copy exceeding max_hops.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Collection, Iterable

from controller.core.state import T_INGRESS, DesiredState, Flow, Group

OFPVID_PRESENT = 0x1000
Port = tuple[int, int]  # (dpid, port)


class ModelError(Exception):
    """The state is not something a real switch would accept (bad goto, unknown field ...)."""


@dataclass(frozen=True)
class Packet:
    """The header fields Kendali matches or rewrites. ``None`` means "not present"."""

    eth_src: str
    eth_dst: str
    eth_type: int = 0x0800  # the payload ethertype (inside any VLAN tags), as OpenFlow matches it
    ipv4_src: str | None = None
    ipv4_dst: str | None = None
    vlan_vid: int | None = None  # outer tag, including OFPVID_PRESENT; None = untagged
    inner_vlans: tuple[int, ...] = ()  # tags under the outer one, outermost first
    ip_ttl: int | None = 64

    def __post_init__(self) -> None:
        object.__setattr__(self, "eth_src", self.eth_src.lower())
        object.__setattr__(self, "eth_dst", self.eth_dst.lower())


@dataclass(frozen=True)
class Delivery:
    dpid: int
    port: int
    packet: Packet


@dataclass(frozen=True)
class PacketIn:
    dpid: int
    in_port: int
    table: int
    packet: Packet


@dataclass(frozen=True)
class Hop:
    """One arrival at a switch and the flows it matched, table by table."""

    dpid: int
    in_port: int
    packet: Packet
    flows: tuple[Flow, ...]
    depth: int


@dataclass
class Result:
    deliveries: list[Delivery] = field(default_factory=list)
    packet_ins: list[PacketIn] = field(default_factory=list)
    trace: list[Hop] = field(default_factory=list)
    drops: list[tuple[int, str]] = field(default_factory=list)  # (dpid, reason)
    meters: list[tuple[int, int]] = field(default_factory=list)  # (dpid, meter_id) hits
    ambiguous: list[tuple[int, Flow, Flow]] = field(default_factory=list)  # equal-priority overlaps hit
    looped: bool = False

    def delivered_to(self) -> list[Port]:
        return [(d.dpid, d.port) for d in self.deliveries]

    def format_trace(self) -> str:
        lines = [f"  s{h.dpid} in:{h.in_port} vid={h.packet.vlan_vid} dst={h.packet.eth_dst} "
                 f"-> {[(f.table, f.priority, f.actions, f.goto) for f in h.flows]}" for h in self.trace]
        lines += [f"  drop s{d}: {why}" for d, why in self.drops]
        lines += [f"  deliver s{d.dpid}:{d.port}" for d in self.deliveries]
        lines += [f"  packet-in s{p.dpid}:{p.in_port}" for p in self.packet_ins]
        return "\n".join(lines + (["  LOOPED"] if self.looped else []))


# ---- matching ------------------------------------------------------------------------------

def _mac(v: str) -> int:
    return int(v.replace(":", ""), 16)


def _ip(v: str) -> int:
    return int(ipaddress.IPv4Address(v))


_CONV: dict[str, Callable[[Any], int]] = {"eth_src": _mac, "eth_dst": _mac, "ipv4_src": _ip, "ipv4_dst": _ip}
_INT_FIELDS = {"in_port", "eth_type", "metadata", "vlan_vid"}


def _field_matches(name: str, want: Any, have: Any) -> bool:
    if have is None:
        return False  # a field the packet lacks never matches
    conv = _CONV.get(name)
    if conv is None and name not in _INT_FIELDS:
        raise ModelError(f"match field {name!r} is not modelled")
    conv = conv or int
    if isinstance(want, tuple):
        value, mask = conv(want[0]), conv(want[1])
        return conv(have) & mask == value & mask
    return conv(have) == conv(want)


def _packet_field(name: str, pkt: Packet, in_port: int, metadata: int) -> Any:
    if name == "in_port":
        return in_port
    if name == "metadata":
        return metadata
    if name == "vlan_vid":
        return pkt.vlan_vid if pkt.vlan_vid is not None else 0  # OFPVID_NONE
    if not hasattr(pkt, name):
        raise ModelError(f"match field {name!r} is not modelled")
    return getattr(pkt, name)


def flow_matches(flow: Flow, pkt: Packet, in_port: int, metadata: int = 0) -> bool:
    return all(_field_matches(n, w, _packet_field(n, pkt, in_port, metadata)) for n, w in flow.match)


# ---- the fabric ------------------------------------------------------------------------------

class Fabric:
    """Switches holding ``state``, cabled by ``links`` ((dpid, port) -> peer (dpid, port)).

    ``port_live`` is a callable (dpid, port) -> bool, or a collection of dead (dpid, port);
    by default every port is live. The state is never changed: a dead port models a carrier
    loss that only fast-failover groups can react to, before the controller recompiles.
    """

    def __init__(self, state: DesiredState, links: dict[Port, Port],
                 port_live: Callable[[int, int], bool] | Collection[Port] | None = None,
                 _cache: dict | None = None) -> None:
        self.state = state
        self.links = dict(links)
        for a, b in list(self.links.items()):
            self.links.setdefault(b, a)
        if port_live is None:
            self.live: Callable[[int, int], bool] = lambda d, p: True
        elif callable(port_live):
            self.live = port_live
        else:
            dead = frozenset(port_live)
            self.live = lambda d, p: (d, p) not in dead
        # Flows of each (dpid, table), highest priority first; lookups are memoised since
        # matching does not depend on liveness.
        self.tables: dict[tuple[int, int], list[Flow]] = {}
        for dpid, sw in state.items():
            for f in sw.flows.values():
                self.tables.setdefault((dpid, f.table), []).append(f)
        for flows in self.tables.values():
            flows.sort(key=lambda f: -f.priority)
        self._cache: dict = {} if _cache is None else _cache

    def with_liveness(self, port_live: Callable[[int, int], bool] | Collection[Port] | None) -> "Fabric":
        """The same switches and cables with other ports dead (shares the lookup cache)."""
        return Fabric(self.state, self.links, port_live, self._cache)

    def lookup(self, dpid: int, table: int, pkt: Packet, in_port: int, metadata: int) -> tuple[Flow | None, Flow | None]:
        """The winning flow, and a second matching flow of the same priority if there is one."""
        key = (dpid, table, pkt, in_port, metadata)
        hit = self._cache.get(key)
        if hit is None:
            best = tie = None
            for f in self.tables.get((dpid, table), ()):
                if best is not None and f.priority < best.priority:
                    break
                if flow_matches(f, pkt, in_port, metadata):
                    if best is None:
                        best = f
                    else:
                        tie = f
                        break
            hit = self._cache[key] = (best, tie)
        return hit

    def inject(self, dpid: int, in_port: int, pkt: Packet, max_hops: int = 64) -> Result:
        """Send ``pkt`` into switch ``dpid`` at ``in_port`` and follow every copy to its end."""
        res = Result()
        seen: set[tuple[int, int, Packet]] = set()
        queue: deque[tuple[int, int, Packet, int]] = deque([(dpid, in_port, pkt, 0)])
        while queue:
            d, p, pk, depth = queue.popleft()
            if (d, p, pk) in seen or depth > max_hops:
                res.looped = True
                continue
            seen.add((d, p, pk))
            for out_port, out_pkt in self._switch(d, p, pk, depth, res):
                if not self.live(d, out_port):
                    res.drops.append((d, f"port {out_port} is down"))
                    continue
                peer = self.links.get((d, out_port))
                if peer is None:
                    res.deliveries.append(Delivery(d, out_port, out_pkt))
                elif not self.live(*peer):
                    res.drops.append((d, f"peer port {peer} is down"))
                else:
                    queue.append((peer[0], peer[1], out_pkt, depth + 1))
        return res

    # one switch: the pipeline -------------------------------------------------------------
    def _switch(self, dpid: int, in_port: int, pkt: Packet, depth: int, res: Result) -> list[tuple[int, Packet]]:
        """Run the pipeline; returns the (port, packet) copies the switch transmits."""
        if dpid not in self.state:
            res.drops.append((dpid, "no such switch"))
            return []
        arrival = pkt
        out: list[tuple[int, Packet]] = []
        matched: list[Flow] = []
        table, metadata = T_INGRESS, 0
        while True:
            flow, tie = self.lookup(dpid, table, pkt, in_port, metadata)
            if flow is None:
                res.drops.append((dpid, f"table {table} miss"))
                break
            matched.append(flow)
            if tie is not None:
                res.ambiguous.append((dpid, flow, tie))
            if flow.meter is not None:
                res.meters.append((dpid, flow.meter))
            pkt = self._actions(dpid, in_port, pkt, flow.actions, table, out, res)
            if pkt is None:
                break
            if flow.metadata is not None:
                value, mask = flow.metadata
                metadata = (metadata & ~mask) | (value & mask)
            if flow.goto is None:
                break
            if flow.goto <= table:
                raise ModelError(f"s{dpid}: goto {flow.goto} from table {table} goes backwards")
            table = flow.goto
        res.trace.append(Hop(dpid, in_port, arrival, tuple(matched), depth))
        return out

    def _actions(self, dpid: int, in_port: int, pkt: Packet, actions: Iterable[tuple], table: int,
                 out: list[tuple[int, Packet]], res: Result) -> Packet | None:
        """Apply an action list in order; outputs append to ``out``. None if the packet died."""
        for act in actions:
            kind = act[0]
            if kind == "output":
                port = act[1]
                if port == "controller":
                    res.packet_ins.append(PacketIn(dpid, in_port, table, pkt))
                elif port == "in_port":
                    out.append((in_port, pkt))
                elif port == in_port:
                    res.drops.append((dpid, f"output to in_port {port} without OFPP_IN_PORT"))
                else:
                    out.append((int(port), pkt))
            elif kind == "group":
                self._group(dpid, in_port, pkt, act[1], table, out, res)
            elif kind == "set_field":
                name, value = act[1], act[2]
                if name == "vlan_vid" and pkt.vlan_vid is None:
                    res.drops.append((dpid, "set_field vlan_vid on an untagged packet"))
                    return None
                if not hasattr(pkt, name):
                    raise ModelError(f"set_field {name!r} is not modelled")
                pkt = replace(pkt, **{name: value.lower() if isinstance(value, str) else value})
            elif kind == "push_vlan":
                inner = ((pkt.vlan_vid,) if pkt.vlan_vid is not None else ()) + pkt.inner_vlans
                pkt = replace(pkt, vlan_vid=pkt.vlan_vid if pkt.vlan_vid is not None else OFPVID_PRESENT,
                              inner_vlans=inner)
            elif kind == "pop_vlan":
                if pkt.vlan_vid is None:
                    res.drops.append((dpid, "pop_vlan on an untagged packet"))
                    return None
                rest = pkt.inner_vlans
                pkt = replace(pkt, vlan_vid=rest[0] if rest else None, inner_vlans=rest[1:])
            elif kind == "dec_nw_ttl":
                if pkt.ip_ttl is not None:
                    if pkt.ip_ttl <= 1:
                        res.drops.append((dpid, "ttl expired"))
                        return None
                    pkt = replace(pkt, ip_ttl=pkt.ip_ttl - 1)
            else:
                raise ModelError(f"action {act!r} is not modelled")
        return pkt

    def _group(self, dpid: int, in_port: int, pkt: Packet, gid: int, table: int,
               out: list[tuple[int, Packet]], res: Result) -> None:
        group: Group | None = self.state[dpid].groups.get(gid)
        if group is None:
            raise ModelError(f"s{dpid}: flow refers to missing group {gid:#x}")
        if group.type == "all":
            buckets = list(group.buckets)
        elif group.type == "ff":
            buckets = [b for b in group.buckets if b.watch_port is None or self.live(dpid, b.watch_port)][:1]
            if not buckets:
                res.drops.append((dpid, f"ff group {gid:#x}: no live bucket"))
        elif group.type in ("indirect", "select"):
            buckets = list(group.buckets[:1])
        else:
            raise ModelError(f"group type {group.type!r} is not modelled")
        for b in buckets:
            self._actions(dpid, in_port, pkt, b.actions, table, out, res)  # each bucket on its own copy


def links_of(net: Any) -> dict[Port, Port]:
    """(dpid, port) -> peer for every link of a controller.graph.Network."""
    out: dict[Port, Port] = {}
    for d1, p1, d2, p2 in net.links:
        out[(d1, p1)] = (d2, p2)
        out[(d2, p2)] = (d1, p1)
    return out
