"""A switch-free model of OpenFlow 1.3 switches, fed with the messages the controller sends.

The controller compiles a DesiredState (controller.core.state) and its os-ken shell turns
changes to it into FlowMod, GroupMod and MeterMod messages (controller.openflow.ofmsg).
This model takes exactly those messages, serialised to bytes and parsed back with
os-ken's parser (controller.lab.wire), applies them in order to its switches' flow
tables, groups and meters, and then runs packets through the switches. So a proof run
on the model (delivery, uniqueness, loop freedom, failover, meters) covers the compiler,
the diff, the message order and the encoding together, without Mininet or OVS.

Applying messages (what a switch does with a FlowMod, GroupMod or MeterMod):

* ADD puts a flow entry in, replacing one with the same table, priority and match
  (cookie included); MODIFY_STRICT changes only the instructions of that entry and keeps
  its cookie (OpenFlow 1.3, as OVS does), and does nothing if no entry has that key;
  DELETE_STRICT removes it. Both honour the cookie mask.
* A message a real switch refuses is a ModelError naming the OpenFlow error: a flow
  whose meter or group does not exist, a goto that does not go forward, a match field
  without its prerequisite (ipv4_* needs eth_type 0x0800), a group or meter added twice
  or modified before it exists, a fast-failover bucket without a watch port.
* Deleting a group or meter also removes the flows that use it (OpenFlow 1.3).
* Anything not modelled (other match fields, write-actions, timeouts ...) is a
  ModelError too, so nothing is silently ignored.

Running packets:

* per table, the highest-priority matching entry wins; a table miss drops (Kendali never
  installs a miss-to-controller entry except on purpose);
* a field the packet lacks never matches; masks are honoured; ``vlan_vid`` follows
  OpenFlow: ``0x1000 | vid`` means "tagged with vid", 0 means untagged;
* instructions run in OpenFlow order: meter (recorded as a hit on that switch's meter,
  which must exist), apply-actions in order on the packet as it is at that moment (an
  output sends a copy), write-metadata, goto;
* groups: ALL runs every bucket on a copy; FAST_FAILOVER the first bucket whose watch
  port is up in the model; INDIRECT and SELECT the first bucket;
* an output to the packet's own in_port is dropped unless the port is OFPP_IN_PORT (the
  source of many real hair-pin bugs); OFPP_CONTROLLER is a packet-in;
* a dead port loses what is sent to it; an inter-switch port hands the packet to the peer
  switch (which starts again at table 0); any other port delivers to a host;
* a loop is a (switch, in_port, packet) arrival seen twice, or a copy exceeding max_hops.
"""

from __future__ import annotations

import functools
import ipaddress
from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from controller.core.state import T_INGRESS, Changes, DesiredState, SwitchState, diff
from controller.lab import wire
from controller.openflow import ofmsg

OFP = wire.OFP
OFPVID_PRESENT = 0x1000
Port = tuple[int, int]  # (dpid, port)


class ModelError(Exception):
    """Something a real switch would refuse, or that the model does not know how to run."""


# ---- packets and results ----------------------------------------------------------------------


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


# ---- what a switch holds ----------------------------------------------------------------------
# Actions as the model runs them, decoded from os-ken's action objects:
#   ("output", port_no)  port_no may be OFPP_IN_PORT or OFPP_CONTROLLER
#   ("group", group_id)  ("set_field", field, value)  ("push_vlan", ethertype)
#   ("pop_vlan",)  ("dec_nw_ttl",)
Action = tuple
MatchField = tuple[str, int, int]  # (field, value & mask, mask)


@dataclass(frozen=True)
class Entry:
    """One flow entry as the switch holds it."""

    table: int
    priority: int
    match: tuple[MatchField, ...]
    cookie: int
    actions: tuple[Action, ...] = ()
    goto: int | None = None
    meter: int | None = None
    metadata: tuple[int, int] | None = None  # write-metadata (value, mask)

    @property
    def key(self) -> tuple[int, int, tuple[MatchField, ...]]:
        return (self.table, self.priority, self.match)

    def __str__(self) -> str:
        acts = ", ".join(_show_action(a) for a in self.actions)
        extra = (f" meter={self.meter}" if self.meter is not None else "") + (
            f" goto={self.goto}" if self.goto is not None else ""
        )
        return f"t{self.table}/{self.priority} [{acts}]{extra}"


@dataclass(frozen=True)
class ModelBucket:
    actions: tuple[Action, ...]
    watch_port: int | None  # None: OFPP_ANY


@dataclass(frozen=True)
class ModelGroup:
    type: int  # OFPGT_*
    buckets: tuple[ModelBucket, ...]


@dataclass(frozen=True)
class ModelMeter:
    """A meter with one drop band: ``rate`` in kbit/s (or packets/s when ``pps``), ``burst``."""

    pps: bool
    rate: int
    burst: int


@dataclass(frozen=True)
class FlowOp:
    command: int
    entry: Entry
    cookie_mask: int


@dataclass(frozen=True)
class GroupOp:
    command: int
    group_id: int
    group: ModelGroup


@dataclass(frozen=True)
class MeterOp:
    command: int
    meter_id: int
    meter: ModelMeter | None  # None for a delete


Op = FlowOp | GroupOp | MeterOp


# ---- decoding os-ken messages into the model's terms ---------------------------------------------

_WIDTH = {
    "in_port": 32,
    "eth_dst": 48,
    "eth_src": 48,
    "eth_type": 16,
    "vlan_vid": 13,
    "metadata": 64,
    "ipv4_src": 32,
    "ipv4_dst": 32,
}
_ETH_IP = 0x0800


def _to_int(name: str, v: Any) -> int:
    if isinstance(v, int):
        return v
    if name.startswith("eth_"):
        return int(str(v).replace(":", ""), 16)
    return int(ipaddress.IPv4Address(v))


def _match(m: Any) -> tuple[MatchField, ...]:
    out = []
    for name, value in m.items():
        if name not in _WIDTH:
            raise ModelError(f"match field {name!r} is not modelled")
        full = (1 << _WIDTH[name]) - 1
        v, mask = value if isinstance(value, tuple) else (value, full)
        mask = _to_int(name, mask) & full
        out.append((name, _to_int(name, v) & mask, mask))
    fields = {n: (v, k) for n, v, k in out}
    for name in ("ipv4_src", "ipv4_dst"):
        if name in fields and fields.get("eth_type") != (_ETH_IP, 0xFFFF):
            raise ModelError(f"OFPBMC_BAD_PREREQ: {name} without eth_type=0x0800")
    return tuple(sorted(out))


def _port_ok(port: int) -> int:
    if port > OFP.OFPP_MAX and port not in (OFP.OFPP_IN_PORT, OFP.OFPP_CONTROLLER):
        raise ModelError(f"output to reserved port {port:#x} is not modelled")
    return port


def _actions(acts: Iterable[Any]) -> tuple[Action, ...]:
    out: list[Action] = []
    for a in acts:
        name = type(a).__name__
        if name == "OFPActionOutput":
            out.append(("output", _port_ok(a.port)))
        elif name == "OFPActionGroup":
            out.append(("group", a.group_id))
        elif name == "OFPActionSetField":
            if a.key not in _WIDTH or a.key in ("in_port", "metadata", "eth_type"):
                raise ModelError(f"set_field {a.key!r} is not modelled")
            out.append(("set_field", a.key, a.value.lower() if isinstance(a.value, str) else a.value))
        elif name == "OFPActionPushVlan":
            if a.ethertype not in (0x8100, 0x88A8):
                raise ModelError(f"OFPBAC_BAD_ARGUMENT: push_vlan ethertype {a.ethertype:#x}")
            out.append(("push_vlan", a.ethertype))
        elif name == "OFPActionPopVlan":
            out.append(("pop_vlan",))
        elif name == "OFPActionDecNwTtl":
            out.append(("dec_nw_ttl",))
        else:
            raise ModelError(f"action {name} is not modelled")
    return tuple(out)


def _flow_op(msg: Any) -> FlowOp:
    if msg.command not in (OFP.OFPFC_ADD, OFP.OFPFC_MODIFY_STRICT, OFP.OFPFC_DELETE_STRICT):
        raise ModelError(f"flow-mod command {msg.command} is not modelled")
    if msg.idle_timeout or msg.hard_timeout or msg.flags or msg.buffer_id != OFP.OFP_NO_BUFFER:
        raise ModelError("flow timeouts, flags and buffered packets are not modelled")
    if msg.command == OFP.OFPFC_DELETE_STRICT and (msg.out_port != OFP.OFPP_ANY or msg.out_group != OFP.OFPG_ANY):
        raise ModelError("a delete filtered by out_port or out_group is not modelled")
    actions: tuple[Action, ...] = ()
    goto = meter = metadata = None
    for inst in msg.instructions:
        name = type(inst).__name__
        if name == "OFPInstructionActions" and inst.type == OFP.OFPIT_APPLY_ACTIONS:
            actions = _actions(inst.actions)
        elif name == "OFPInstructionGotoTable":
            if inst.table_id <= msg.table_id:
                raise ModelError(f"OFPBIC_BAD_TABLE_ID: goto {inst.table_id} from table {msg.table_id}")
            goto = inst.table_id
        elif name == "OFPInstructionMeter":
            meter = inst.meter_id
        elif name == "OFPInstructionWriteMetadata":
            metadata = (inst.metadata, inst.metadata_mask)
        else:
            raise ModelError(f"instruction {name} is not modelled")
    entry = Entry(msg.table_id, msg.priority, _match(msg.match), msg.cookie, actions, goto, meter, metadata)
    return FlowOp(msg.command, entry, msg.cookie_mask)


def _group_op(msg: Any) -> GroupOp:
    if msg.command not in (OFP.OFPGC_ADD, OFP.OFPGC_MODIFY, OFP.OFPGC_DELETE):
        raise ModelError(f"group-mod command {msg.command} is not modelled")
    if msg.type not in (OFP.OFPGT_ALL, OFP.OFPGT_FF, OFP.OFPGT_INDIRECT, OFP.OFPGT_SELECT):
        raise ModelError(f"OFPGMFC_BAD_TYPE: group type {msg.type}")
    buckets = []
    for b in msg.buckets:
        if b.watch_group != OFP.OFPG_ANY:
            raise ModelError("a bucket watching a group is not modelled")
        watch = None if b.watch_port == OFP.OFPP_ANY else b.watch_port
        if msg.type == OFP.OFPGT_FF and watch is None:
            raise ModelError(f"OFPGMFC_INVALID_GROUP: fast-failover group {msg.group_id:#x} bucket without watch port")
        if b.weight and msg.type != OFP.OFPGT_SELECT:
            raise ModelError(f"OFPGMFC_WEIGHT_UNSUPPORTED: bucket weight in group {msg.group_id:#x}")
        buckets.append(ModelBucket(_actions(b.actions), watch))
    return GroupOp(msg.command, msg.group_id, ModelGroup(msg.type, tuple(buckets)))


def _meter_op(msg: Any) -> MeterOp:
    if msg.command not in (OFP.OFPMC_ADD, OFP.OFPMC_MODIFY, OFP.OFPMC_DELETE):
        raise ModelError(f"meter-mod command {msg.command} is not modelled")
    if not 0 < msg.meter_id <= OFP.OFPM_MAX:
        raise ModelError(f"OFPMMFC_INVALID_METER: meter id {msg.meter_id:#x}")
    if msg.command == OFP.OFPMC_DELETE:
        return MeterOp(msg.command, msg.meter_id, None)
    unit = msg.flags & (OFP.OFPMF_KBPS | OFP.OFPMF_PKTPS)
    if unit not in (OFP.OFPMF_KBPS, OFP.OFPMF_PKTPS):
        raise ModelError(f"OFPMMFC_BAD_FLAGS: meter {msg.meter_id} flags {msg.flags:#x}")
    if len(msg.bands) != 1 or type(msg.bands[0]).__name__ != "OFPMeterBandDrop":
        raise ModelError(f"meter {msg.meter_id}: only one drop band is modelled")
    band = msg.bands[0]
    if band.rate <= 0:
        raise ModelError(f"OFPMMFC_BAD_RATE: meter {msg.meter_id} rate {band.rate}")
    burst = band.burst_size if msg.flags & OFP.OFPMF_BURST else 0
    return MeterOp(msg.command, msg.meter_id, ModelMeter(unit == OFP.OFPMF_PKTPS, band.rate, burst))


def op_of(msg: Any) -> Op:
    """The model's reading of a decoded FlowMod, GroupMod or MeterMod."""
    name = type(msg).__name__
    if name == "OFPFlowMod":
        return _flow_op(msg)
    if name == "OFPGroupMod":
        return _group_op(msg)
    if name == "OFPMeterMod":
        return _meter_op(msg)
    raise ModelError(f"message {name} is not modelled")


_DP = wire.FakeDatapath()


@functools.lru_cache(maxsize=1 << 18)
def wire_op(kind: str, item: Any, command: str) -> Op:
    """One step of ofmsg.plan as the switch reads it: built by ofmsg, encoded, decoded, read.

    Cached: the same flow, group or meter always makes the same bytes, and re-encoding
    every flow of every recompile would make the property tests several times slower.
    """
    return op_of(wire.round_trip(_DP, ofmsg.message(_DP, kind, item, command)))


def entry_of(flow: Any) -> Entry:
    """The entry a switch makes of ``flow`` (a controller.core.state.Flow) sent as an add."""
    op = wire_op("flow", flow, "add")
    assert isinstance(op, FlowOp)
    return op.entry


# ---- one switch -------------------------------------------------------------------------------


class Switch:
    """One OpenFlow 1.3 switch: flow tables, groups and meters, changed only by messages."""

    def __init__(self, dpid: int) -> None:
        self.dpid = dpid
        self.flows: dict[tuple[int, int, tuple[MatchField, ...]], Entry] = {}
        self.groups: dict[int, ModelGroup] = {}
        self.meters: dict[int, ModelMeter] = {}

    @classmethod
    def fresh(cls, dpid: int, state: SwitchState) -> Switch:
        """An empty switch after the controller sent it all of ``state``."""
        sw = cls(dpid)
        sw.send(diff(SwitchState(), state))
        if len(sw.flows) != len(state.flows):  # two desired flows that a switch holds as one entry
            seen: dict[tuple, Any] = {}
            for f in state.flows.values():
                key = entry_of(f).key
                if key in seen:
                    raise ModelError(f"s{dpid}: {seen[key]} and {f} are the same flow entry on a switch")
                seen[key] = f
        return sw

    def copy(self) -> Switch:
        sw = Switch(self.dpid)
        sw.flows, sw.groups, sw.meters = dict(self.flows), dict(self.groups), dict(self.meters)
        return sw

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Switch) and (self.flows, self.groups, self.meters) == (
            other.flows,
            other.groups,
            other.meters,
        )

    def differences(self, other: Switch) -> list[str]:
        """What ``other`` holds differently, for a readable assertion message."""
        out = []
        pairs: list[tuple[str, dict[Any, Any], dict[Any, Any]]] = [
            ("flow", self.flows, other.flows),
            ("group", self.groups, other.groups),
            ("meter", self.meters, other.meters),
        ]
        for what, mine, theirs in pairs:
            for k in sorted(set(mine) | set(theirs), key=repr):
                if mine.get(k) != theirs.get(k):
                    out.append(f"s{self.dpid} {what} {k}: {_show(mine.get(k))} vs {_show(theirs.get(k))}")
        return out

    def send(self, ch: Changes) -> None:
        """What the os-ken shell sends for ``ch`` (ofmsg.plan's order), over the wire, applied in order."""
        for kind, item, command in ofmsg.plan(ch):
            try:
                op = wire_op(kind, item, command)
            except ModelError as e:
                raise ModelError(f"s{self.dpid}: {kind} {command} {item}: {e}") from None
            self.apply(op)

    def receive(self, msg: Any) -> None:
        """Apply one os-ken message object (it goes over the wire first)."""
        self.apply(op_of(wire.round_trip(_DP, msg)))

    def apply(self, op: Op) -> None:
        if isinstance(op, FlowOp):
            self._flow(op)
        elif isinstance(op, GroupOp):
            self._group(op)
        else:
            self._meter(op)

    def _refuse(self, why: str) -> ModelError:
        return ModelError(f"s{self.dpid} refuses: {why}")

    def _check_refs(self, actions: Iterable[Action], meter: int | None = None) -> None:
        if meter is not None and meter not in self.meters:
            raise self._refuse(f"OFPMMFC_UNKNOWN_METER: meter {meter}")
        for a in actions:
            if a[0] == "group" and a[1] not in self.groups:
                raise self._refuse(f"OFPBAC_BAD_OUT_GROUP: group {a[1]:#x}")

    def _flow(self, op: FlowOp) -> None:
        e = op.entry
        old = self.flows.get(e.key)
        if op.command == OFP.OFPFC_ADD:
            self._check_refs(e.actions, e.meter)
            self.flows[e.key] = e
            return
        if old is None or (old.cookie & op.cookie_mask) != (e.cookie & op.cookie_mask):
            return  # OpenFlow 1.3: a strict modify or delete that matches nothing does nothing
        if op.command == OFP.OFPFC_DELETE_STRICT:
            del self.flows[e.key]
        else:
            self._check_refs(e.actions, e.meter)
            self.flows[e.key] = replace(e, cookie=old.cookie)  # a modify keeps the entry's cookie

    def _group(self, op: GroupOp) -> None:
        gid = op.group_id
        if op.command == OFP.OFPGC_DELETE:
            if self.groups.pop(gid, None) is not None:
                self._drop_flows(lambda e: any(a[:2] == ("group", gid) for a in e.actions))
            return
        exists = gid in self.groups
        if op.command == OFP.OFPGC_ADD and exists:
            raise self._refuse(f"OFPGMFC_GROUP_EXISTS: group {gid:#x}")
        if op.command == OFP.OFPGC_MODIFY and not exists:
            raise self._refuse(f"OFPGMFC_UNKNOWN_GROUP: group {gid:#x}")
        for b in op.group.buckets:
            self._check_refs(b.actions)
        self.groups[gid] = op.group

    def _meter(self, op: MeterOp) -> None:
        mid = op.meter_id
        if op.meter is None:
            if self.meters.pop(mid, None) is not None:
                self._drop_flows(lambda e: e.meter == mid)
            return
        exists = mid in self.meters
        if op.command == OFP.OFPMC_ADD and exists:
            raise self._refuse(f"OFPMMFC_METER_EXISTS: meter {mid}")
        if op.command == OFP.OFPMC_MODIFY and not exists:
            raise self._refuse(f"OFPMMFC_UNKNOWN_METER: meter {mid}")
        self.meters[mid] = op.meter

    def _drop_flows(self, uses: Callable[[Entry], bool]) -> None:
        """Deleting a group or meter removes the flows that use it (OpenFlow 1.3)."""
        for k in [k for k, e in self.flows.items() if uses(e)]:
            del self.flows[k]


Switches = dict[int, Switch]


def _show(x: object) -> str:
    return f"{x} cookie={x.cookie:#x}" if isinstance(x, Entry) else str(x)


def install(state: DesiredState) -> Switches:
    """Empty switches after the controller sent each its whole desired state."""
    return {dpid: Switch.fresh(dpid, sw) for dpid, sw in state.items()}


def update(switches: Mapping[int, Switch], was: DesiredState, now: DesiredState) -> Switches:
    """Copies of ``switches`` (holding ``was``) after the controller sent them diff(was, now)."""
    out = {}
    for dpid, want in now.items():
        sw = switches[dpid].copy() if dpid in switches else Switch(dpid)
        sw.send(diff(was.get(dpid, SwitchState()), want))
        out[dpid] = sw
    return out


# ---- matching ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1 << 16)
def _packet_fields(pkt: Packet) -> dict[str, int | None]:
    def num(name: str, v: Any) -> int | None:
        return None if v is None else _to_int(name, v)

    return {
        "eth_src": num("eth_src", pkt.eth_src),
        "eth_dst": num("eth_dst", pkt.eth_dst),
        "eth_type": pkt.eth_type,
        "ipv4_src": num("ipv4_src", pkt.ipv4_src),
        "ipv4_dst": num("ipv4_dst", pkt.ipv4_dst),
        "vlan_vid": pkt.vlan_vid if pkt.vlan_vid is not None else 0,
    }  # 0: OFPVID_NONE


def entry_matches(entry: Entry, pkt: Packet, in_port: int, metadata: int = 0) -> bool:
    fields = _packet_fields(pkt)
    for name, value, mask in entry.match:
        have = in_port if name == "in_port" else metadata if name == "metadata" else fields[name]
        if have is None or have & mask != value:
            return False  # a field the packet lacks never matches
    return True


def flow_matches(flow: Any, pkt: Packet, in_port: int, metadata: int = 0) -> bool:
    """Whether the entry a switch makes of ``flow`` (a controller.core.state.Flow) matches."""
    return entry_matches(entry_of(flow), pkt, in_port, metadata)


# ---- the fabric -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hop:
    """One arrival at a switch and the entries it matched, table by table."""

    dpid: int
    in_port: int
    packet: Packet
    flows: tuple[Entry, ...]
    depth: int


@dataclass
class Result:
    deliveries: list[Delivery] = field(default_factory=list)
    packet_ins: list[PacketIn] = field(default_factory=list)
    trace: list[Hop] = field(default_factory=list)
    drops: list[tuple[int, str]] = field(default_factory=list)  # (dpid, reason)
    meters: list[tuple[int, int]] = field(default_factory=list)  # (dpid, meter_id) passed
    ambiguous: list[tuple[int, Entry, Entry]] = field(default_factory=list)  # equal-priority overlaps hit
    looped: bool = False

    def delivered_to(self) -> list[Port]:
        return [(d.dpid, d.port) for d in self.deliveries]

    def format_trace(self) -> str:
        lines = [
            f"  s{h.dpid} in:{h.in_port} vid={h.packet.vlan_vid} dst={h.packet.eth_dst} "
            f"-> {'; '.join(str(f) for f in h.flows)}"
            for h in self.trace
        ]
        lines += [f"  drop s{d}: {why}" for d, why in self.drops]
        lines += [f"  deliver s{d.dpid}:{d.port}" for d in self.deliveries]
        lines += [f"  packet-in s{p.dpid}:{p.in_port}" for p in self.packet_ins]
        return "\n".join(lines + (["  LOOPED"] if self.looped else []))


def _show_action(a: Action) -> str:
    if a[0] == "output":
        return "output:" + {OFP.OFPP_IN_PORT: "in_port", OFP.OFPP_CONTROLLER: "controller"}.get(a[1], str(a[1]))
    if a[0] == "group":
        return f"group:{a[1]:#x}"
    return ":".join(str(x) for x in a)


PortLive = Callable[[int, int], bool] | Collection[Port] | None


class Fabric:
    """Switches cabled by ``links`` ((dpid, port) -> peer (dpid, port)).

    ``switches`` are model switches, or a DesiredState: then each switch is first sent its
    whole state over the wire (Switch.fresh). ``port_live`` is a callable (dpid, port) ->
    bool, or a collection of dead (dpid, port); by default every port is live. The tables
    are never changed here: a dead port models a carrier loss that only fast-failover
    groups can react to, before the controller recompiles.
    """

    def __init__(
        self,
        switches: Mapping[int, Switch] | DesiredState,
        links: dict[Port, Port],
        port_live: PortLive = None,
        _cache: dict | None = None,
    ) -> None:
        self.switches: Switches = {d: s if isinstance(s, Switch) else Switch.fresh(d, s) for d, s in switches.items()}
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
        # Entries of each (dpid, table), highest priority first; lookups are memoised since
        # matching does not depend on liveness.
        self.tables: dict[tuple[int, int], list[Entry]] = {}
        for dpid, sw in self.switches.items():
            for e in sw.flows.values():
                self.tables.setdefault((dpid, e.table), []).append(e)
        for entries in self.tables.values():
            entries.sort(key=lambda e: -e.priority)
        self._cache: dict = {} if _cache is None else _cache

    def with_liveness(self, port_live: PortLive) -> Fabric:
        """The same switches and cables with other ports dead (shares the lookup cache)."""
        return Fabric(self.switches, self.links, port_live, self._cache)

    def lookup(
        self, dpid: int, table: int, pkt: Packet, in_port: int, metadata: int
    ) -> tuple[Entry | None, Entry | None]:
        """The winning entry, and a second matching entry of the same priority if there is one."""
        key = (dpid, table, pkt, in_port, metadata)
        hit = self._cache.get(key)
        if hit is None:
            best = tie = None
            for e in self.tables.get((dpid, table), ()):
                if best is not None and e.priority < best.priority:
                    break
                if entry_matches(e, pkt, in_port, metadata):
                    if best is None:
                        best = e
                    else:
                        tie = e
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
        sw = self.switches.get(dpid)
        if sw is None:
            res.drops.append((dpid, "no such switch"))
            return []
        arrival = pkt
        out: list[tuple[int, Packet]] = []
        matched: list[Entry] = []
        table, metadata = T_INGRESS, 0
        while True:
            entry, tie = self.lookup(dpid, table, pkt, in_port, metadata)
            if entry is None:
                res.drops.append((dpid, f"table {table} miss"))
                break
            matched.append(entry)
            if tie is not None:
                res.ambiguous.append((dpid, entry, tie))
            if entry.meter is not None:
                if entry.meter not in sw.meters:
                    raise ModelError(f"s{dpid}: {entry} uses missing meter {entry.meter}")
                res.meters.append((dpid, entry.meter))
            after = self._actions(sw, in_port, pkt, entry.actions, table, out, res)
            if after is None:
                break
            pkt = after
            if entry.metadata is not None:
                value, mask = entry.metadata
                metadata = (metadata & ~mask) | (value & mask)
            if entry.goto is None:
                break
            table = entry.goto
        res.trace.append(Hop(dpid, in_port, arrival, tuple(matched), depth))
        return out

    def _actions(
        self,
        sw: Switch,
        in_port: int,
        pkt: Packet,
        actions: Iterable[Action],
        table: int,
        out: list[tuple[int, Packet]],
        res: Result,
    ) -> Packet | None:
        """Apply an action list in order; outputs append to ``out``. None if the packet died."""
        dpid = sw.dpid
        for act in actions:
            kind = act[0]
            if kind == "output":
                port = act[1]
                if port == OFP.OFPP_CONTROLLER:
                    res.packet_ins.append(PacketIn(dpid, in_port, table, pkt))
                elif port == OFP.OFPP_IN_PORT:
                    out.append((in_port, pkt))
                elif port == in_port:
                    res.drops.append((dpid, f"output to in_port {port} without OFPP_IN_PORT"))
                else:
                    out.append((port, pkt))
            elif kind == "group":
                self._group(sw, in_port, pkt, act[1], table, out, res)
            elif kind == "set_field":
                name, value = act[1], act[2]
                if name == "vlan_vid" and pkt.vlan_vid is None:
                    res.drops.append((dpid, "set_field vlan_vid on an untagged packet"))
                    return None
                pkt = replace(pkt, **{name: value})
            elif kind == "push_vlan":
                inner = ((pkt.vlan_vid,) if pkt.vlan_vid is not None else ()) + pkt.inner_vlans
                pkt = replace(
                    pkt, vlan_vid=pkt.vlan_vid if pkt.vlan_vid is not None else OFPVID_PRESENT, inner_vlans=inner
                )
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

    def _group(
        self, sw: Switch, in_port: int, pkt: Packet, gid: int, table: int, out: list[tuple[int, Packet]], res: Result
    ) -> None:
        group = sw.groups.get(gid)
        if group is None:
            raise ModelError(f"s{sw.dpid}: a flow refers to missing group {gid:#x}")
        if group.type == OFP.OFPGT_ALL:
            buckets = list(group.buckets)
        elif group.type == OFP.OFPGT_FF:
            buckets = [b for b in group.buckets if b.watch_port is not None and self.live(sw.dpid, b.watch_port)][:1]
            if not buckets:
                res.drops.append((sw.dpid, f"ff group {gid:#x}: no live bucket"))
        else:  # INDIRECT, SELECT
            buckets = list(group.buckets[:1])
        for b in buckets:
            self._actions(sw, in_port, pkt, b.actions, table, out, res)  # each bucket on its own copy


def links_of(net: Any) -> dict[Port, Port]:
    """(dpid, port) -> peer for every link of a controller.core.graph.Network."""
    out: dict[Port, Port] = {}
    for d1, p1, d2, p2 in net.links:
        out[(d1, p1)] = (d2, p2)
        out[(d2, p2)] = (d1, p1)
    return out
