"""Desired per-switch OpenFlow state as plain, hashable data, and the diff between two states.

This is the contract between the pure core (compiler, table model, tests) and the os-ken
shell (ofmsg, app). Nothing here knows about sockets or os-ken.

Match fields use os-ken's OFPMatch keyword names (``in_port``, ``eth_type``, ``eth_dst``,
``ipv4_dst`` ...). A masked field is a ``(value, mask)`` tuple, e.g.
``("ipv4_dst", ("10.10.3.0", "255.255.255.0"))``.

Actions are tuples:
    ("output", port)           port: int, or "controller" / "in_port"
    ("group", group_id)
    ("set_field", field, value)
    ("push_vlan", ethertype)   ("pop_vlan",)
    ("dec_nw_ttl",)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

# The pipeline. Numbers are OpenFlow table ids.
T_INGRESS = 0  # control traffic to the controller, detour tags, broadcast filter, upload meters
T_ROUTE = 1  # first-hop routing between OPD subnets (gateway MAC rewrite)
T_FWD = 2  # destination lookup (eth_dst) -> out port in metadata, download meters at last hop
T_EGRESS = 3  # out port -> fast-failover group (or plain output on edge ports)

Match = tuple[tuple[str, Any], ...]
Action = tuple[Any, ...]  # ("output", 3), ("set_field", "eth_dst", mac), ("dec_nw_ttl",), ...


def match(**fields: Any) -> Match:
    """A canonical (sorted) match tuple from keyword fields."""
    if len(fields) == 1:  # most of a big network's entries: no sort to do
        return tuple(fields.items())
    return tuple(sorted(fields.items()))


@dataclass(frozen=True)
class Flow:
    table: int
    priority: int
    match: Match
    actions: tuple[Action, ...] = ()  # apply-actions
    goto: int | None = None
    meter: int | None = None
    metadata: tuple[int, int] | None = None  # write-metadata (value, mask)
    tag: int = 0  # low 32 bits of the cookie: what kind of flow this is (see compiler.HOST_TAG)

    @property
    def key(self) -> tuple[int, int, Match]:
        """OpenFlow identifies a flow entry by table, priority and match."""
        return (self.table, self.priority, self.match)


@dataclass(frozen=True)
class Bucket:
    actions: tuple[Action, ...]
    watch_port: int | None = None  # fast-failover liveness
    weight: int = 0


@dataclass(frozen=True)
class Group:
    group_id: int
    type: str  # "all", "ff", "indirect", "select"
    buckets: tuple[Bucket, ...]


@dataclass(frozen=True)
class Meter:
    meter_id: int
    rate_kbps: int  # packets per second when pps
    burst_kbit: int  # packets when pps
    pps: bool = False


@dataclass
class SwitchState:
    flows: dict[tuple[int, int, Match], Flow] = field(default_factory=dict)  # by Flow.key
    groups: dict[int, Group] = field(default_factory=dict)
    meters: dict[int, Meter] = field(default_factory=dict)

    def add_flow(self, flow: Flow) -> None:
        if flow.key in self.flows and self.flows[flow.key] != flow:
            raise ValueError(f"conflicting flows for {flow.key}: {self.flows[flow.key]} vs {flow}")
        self.flows[flow.key] = flow

    def add_group(self, group: Group) -> None:
        self.groups[group.group_id] = group

    def add_meter(self, meter: Meter) -> None:
        self.meters[meter.meter_id] = meter

    def copy(self) -> SwitchState:
        return SwitchState(dict(self.flows), dict(self.groups), dict(self.meters))


DesiredState = dict[int, SwitchState]  # dpid -> state


@dataclass
class Changes:
    """What to send to one switch to turn ``actual`` into ``desired``, in a safe order."""

    meters_add: list[Meter] = field(default_factory=list)
    meters_mod: list[Meter] = field(default_factory=list)
    groups_add: list[Group] = field(default_factory=list)
    groups_mod: list[Group] = field(default_factory=list)
    flows_add: list[Flow] = field(default_factory=list)
    flows_mod: list[Flow] = field(default_factory=list)  # same key, new instructions
    flows_del: list[Flow] = field(default_factory=list)
    groups_del: list[int] = field(default_factory=list)
    meters_del: list[int] = field(default_factory=list)
    foreign_del: list[Flow] = field(default_factory=list)  # flows with another cookie, removed first

    def _lists(self) -> tuple[Sequence[object], ...]:
        return (
            self.meters_add,
            self.meters_mod,
            self.groups_add,
            self.groups_mod,
            self.flows_add,
            self.flows_mod,
            self.flows_del,
            self.groups_del,
            self.meters_del,
            self.foreign_del,
        )

    def __bool__(self) -> bool:
        return any(self._lists())

    def count(self) -> int:
        return sum(len(x) for x in self._lists())


_K = TypeVar("_K")
_V = TypeVar("_V")


def _split(actual: dict[_K, _V], desired: dict[_K, _V]) -> tuple[list[_V], list[_V], list[_K]]:
    added = [v for k, v in desired.items() if k not in actual]
    changed = [v for k, v in desired.items() if k in actual and actual[k] != v]
    removed = [k for k in actual if k not in desired]
    return added, changed, removed


def diff(actual: SwitchState, desired: SwitchState) -> Changes:
    """The minimal changes from ``actual`` to ``desired``.

    Order of application (meters, groups, flows added; then flows, groups, meters removed)
    keeps every flow's references valid at every step.
    """
    ch = Changes()
    ch.meters_add, ch.meters_mod, ch.meters_del = _split(actual.meters, desired.meters)
    ch.groups_add, ch.groups_mod, ch.groups_del = _split(actual.groups, desired.groups)
    ch.flows_add, ch.flows_mod, removed = _split(actual.flows, desired.flows)
    ch.flows_del = [actual.flows[k] for k in removed]
    return ch


def diff_entries(
    actual: SwitchState,
    desired: SwitchState,
    flow_keys: Iterable[tuple[int, int, Match]],
    group_ids: Iterable[int],
    meter_ids: Iterable[int],
) -> Changes:
    """``diff`` restricted to these entries (all others known to be equal)."""
    ch = Changes()
    ch.meters_add, ch.meters_mod, ch.meters_del = _split_some(actual.meters, desired.meters, meter_ids)
    ch.groups_add, ch.groups_mod, ch.groups_del = _split_some(actual.groups, desired.groups, group_ids)
    ch.flows_add, ch.flows_mod, removed = _split_some(actual.flows, desired.flows, flow_keys)
    ch.flows_del = [actual.flows[k] for k in removed]
    return ch


def _split_some(actual: dict[_K, _V], desired: dict[_K, _V], keys: Iterable[_K]) -> tuple[list[_V], list[_V], list[_K]]:
    added: list[_V] = []
    changed: list[_V] = []
    removed: list[_K] = []
    for k in keys:
        a, d = actual.get(k), desired.get(k)
        if d is None:
            if a is not None:
                removed.append(k)
        elif a is None:
            added.append(d)
        elif a != d:
            changed.append(d)
    return added, changed, removed


def apply_in_place(state: SwitchState, ch: Changes) -> None:
    """``state`` made what it is after ``ch`` (no copy: a big table changed in a few entries)."""
    for m in ch.meters_add + ch.meters_mod:
        state.meters[m.meter_id] = m
    for g in ch.groups_add + ch.groups_mod:
        state.groups[g.group_id] = g
    for f in ch.flows_add + ch.flows_mod:
        state.flows[f.key] = f
    for f in ch.flows_del:
        state.flows.pop(f.key, None)
    for gid in ch.groups_del:
        state.groups.pop(gid, None)
    for mid in ch.meters_del:
        state.meters.pop(mid, None)


def apply(state: SwitchState, ch: Changes) -> SwitchState:
    """``state`` after ``ch`` (what the switch holds once the changes are sent)."""
    out = state.copy()
    apply_in_place(out, ch)
    return out


def total_flows(state: DesiredState | Iterable[SwitchState]) -> int:
    states = state.values() if isinstance(state, dict) else state
    return sum(len(s.flows) for s in states)
