"""Desired-state changes -> OpenFlow 1.3 messages (os-ken parser classes, built directly).

The only module that turns controller.state data into wire messages. It never decides
what to send, only how.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller import COOKIE, COOKIE_MASK
from controller.core.state import Bucket, Changes, Flow, Group, Meter

_GROUP_TYPES = {"all": "OFPGT_ALL", "ff": "OFPGT_FF", "indirect": "OFPGT_INDIRECT", "select": "OFPGT_SELECT"}


def _port(ofp: Any, port: int | str) -> int:
    if port == "controller":
        return ofp.OFPP_CONTROLLER
    if port == "in_port":
        return ofp.OFPP_IN_PORT
    return int(port)


def actions(dp: Any, acts: tuple) -> list:
    ofp, parser = dp.ofproto, dp.ofproto_parser
    out = []
    for a in acts:
        kind = a[0]
        if kind == "output":
            out.append(parser.OFPActionOutput(_port(ofp, a[1]), ofp.OFPCML_NO_BUFFER))
        elif kind == "group":
            out.append(parser.OFPActionGroup(a[1]))
        elif kind == "set_field":
            out.append(parser.OFPActionSetField(**{a[1]: a[2]}))
        elif kind == "push_vlan":
            out.append(parser.OFPActionPushVlan(a[1]))
        elif kind == "pop_vlan":
            out.append(parser.OFPActionPopVlan())
        elif kind == "dec_nw_ttl":
            out.append(parser.OFPActionDecNwTtl())
        else:
            raise ValueError(f"unknown action {a!r}")
    return out


def _instructions(dp: Any, flow: Flow) -> list:
    ofp, parser = dp.ofproto, dp.ofproto_parser
    inst = []
    if flow.meter is not None:
        inst.append(parser.OFPInstructionMeter(flow.meter, ofp.OFPIT_METER))
    if flow.actions:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions(dp, flow.actions)))
    if flow.metadata is not None:
        inst.append(parser.OFPInstructionWriteMetadata(*flow.metadata))
    if flow.goto is not None:
        inst.append(parser.OFPInstructionGotoTable(flow.goto))
    return inst


def flow_mod(dp: Any, flow: Flow, command: str) -> Any:
    """command: "add", "modify", "delete" (strict: this exact table, priority and match, and
    our cookie) or "delete_foreign" (strict, whatever the cookie: a flow someone else put there).

    A modify is sent as an OFPFC_ADD, which replaces the entry with the same table,
    priority and match whole. OFPFC_MODIFY_STRICT would keep the entry's old cookie
    (OpenFlow 1.3, and OVS), and the cookie carries the flow's tag: a host that moved to
    another switch kept HOST_TAG at its old one (and was recovered there after a
    controller restart) until this was found by the wire proofs. OVS keeps the entry's
    counters across such an ADD, and an ADD also repairs an entry the switch lost.
    """
    ofp, parser = dp.ofproto, dp.ofproto_parser
    cmd = {
        "add": ofp.OFPFC_ADD,
        "modify": ofp.OFPFC_ADD,
        "delete": ofp.OFPFC_DELETE_STRICT,
        "delete_foreign": ofp.OFPFC_DELETE_STRICT,
    }[command]
    return parser.OFPFlowMod(
        dp,
        cookie=COOKIE | flow.tag,
        cookie_mask=COOKIE_MASK if command == "delete" else 0,
        table_id=flow.table,
        command=cmd,
        priority=flow.priority,
        out_port=ofp.OFPP_ANY,
        out_group=ofp.OFPG_ANY,
        match=parser.OFPMatch(**dict(flow.match)),
        instructions=_instructions(dp, flow) if command in ("add", "modify") else [],
    )


def group_mod(dp: Any, group: Group | int, command: str) -> Any:
    ofp, parser = dp.ofproto, dp.ofproto_parser
    if command == "delete":
        gid = group if isinstance(group, int) else group.group_id
        return parser.OFPGroupMod(dp, ofp.OFPGC_DELETE, ofp.OFPGT_ALL, gid, [])
    assert isinstance(group, Group)
    buckets = [
        parser.OFPBucket(
            weight=b.weight,
            watch_port=b.watch_port if b.watch_port is not None else ofp.OFPP_ANY,
            watch_group=ofp.OFPG_ANY,
            actions=actions(dp, b.actions),
        )
        for b in group.buckets
    ]
    cmd = ofp.OFPGC_ADD if command == "add" else ofp.OFPGC_MODIFY
    return parser.OFPGroupMod(dp, cmd, getattr(ofp, _GROUP_TYPES[group.type]), group.group_id, buckets)


def meter_mod(dp: Any, meter: Meter | int, command: str) -> Any:
    ofp, parser = dp.ofproto, dp.ofproto_parser
    if command == "delete":
        mid = meter if isinstance(meter, int) else meter.meter_id
        return parser.OFPMeterMod(dp, ofp.OFPMC_DELETE, 0, mid, [])
    assert isinstance(meter, Meter)
    cmd = ofp.OFPMC_ADD if command == "add" else ofp.OFPMC_MODIFY
    bands = [parser.OFPMeterBandDrop(rate=meter.rate_kbps, burst_size=meter.burst_kbit)]
    unit = ofp.OFPMF_PKTPS if meter.pps else ofp.OFPMF_KBPS
    return parser.OFPMeterMod(dp, cmd, unit | ofp.OFPMF_BURST | ofp.OFPMF_STATS, meter.meter_id, bands)


Step = tuple[str, Flow | Group | Meter | int, str]  # (kind, what, command)


def plan(ch: Changes) -> list[Step]:
    """What ``changes`` sends for ``ch``, in order: (kind, item, command) per message.

    Meters and groups are added before the flows that use them and removed after the
    flows that used them, so every reference stays valid at every step.
    """
    steps: list[Step] = [("flow", f, "delete_foreign") for f in ch.foreign_del]
    steps += [("meter", m, "add") for m in ch.meters_add]
    steps += [("meter", m, "modify") for m in ch.meters_mod]
    steps += [("group", g, "add") for g in ch.groups_add]
    steps += [("group", g, "modify") for g in ch.groups_mod]
    steps += [("flow", f, "add") for f in ch.flows_add]
    steps += [("flow", f, "modify") for f in ch.flows_mod]
    steps += [("flow", f, "delete") for f in ch.flows_del]
    steps += [("group", g, "delete") for g in ch.groups_del]
    steps += [("meter", m, "delete") for m in ch.meters_del]
    return steps


def message(dp: Any, kind: str, item: Any, command: str) -> Any:
    """The one message for a step of ``plan``."""
    build: dict[str, Callable[[Any, Any, str], Any]] = {"flow": flow_mod, "group": group_mod, "meter": meter_mod}
    return build[kind](dp, item, command)


def changes(dp: Any, ch: Changes) -> list:
    """Messages for ``ch`` in an order that keeps every reference valid (see ``plan``)."""
    return [message(dp, *step) for step in plan(ch)]


# ---- the other direction: what a switch reports -> controller.state ------------------------
# Used on (re)connect, so the reconciler sends only what differs and traffic never blips.


def _port_name(ofp: Any, port: int) -> int | str:
    if port == ofp.OFPP_CONTROLLER:
        return "controller"
    if port == ofp.OFPP_IN_PORT:
        return "in_port"
    return port


def actions_from(ofp: Any, acts: list) -> tuple:
    out: list[tuple] = []
    for a in acts:
        name = type(a).__name__
        if name == "OFPActionOutput":
            out.append(("output", _port_name(ofp, a.port)))
        elif name == "OFPActionGroup":
            out.append(("group", a.group_id))
        elif name == "OFPActionSetField":
            out.append(("set_field", a.key, a.value))
        elif name == "OFPActionPushVlan":
            out.append(("push_vlan", a.ethertype))
        elif name == "OFPActionPopVlan":
            out.append(("pop_vlan",))
        elif name == "OFPActionDecNwTtl":
            out.append(("dec_nw_ttl",))
        else:
            out.append(("unknown", name))  # never equal to a desired action: it gets replaced
    return tuple(out)


def flow_from_stats(ofp: Any, stat: Any) -> Flow:
    actions: tuple = ()
    goto = meter = metadata = None
    for inst in stat.instructions:
        name = type(inst).__name__
        if name == "OFPInstructionActions" and inst.type == ofp.OFPIT_APPLY_ACTIONS:
            actions = actions_from(ofp, inst.actions)
        elif name == "OFPInstructionGotoTable":
            goto = inst.table_id
        elif name == "OFPInstructionMeter":
            meter = inst.meter_id
        elif name == "OFPInstructionWriteMetadata":
            metadata = (inst.metadata, inst.metadata_mask)
        else:
            actions += (("unknown", name),)
    return Flow(
        stat.table_id,
        stat.priority,
        tuple(sorted(stat.match.items())),
        actions,
        goto,
        meter,
        metadata,
        stat.cookie & ~COOKIE_MASK,
    )


def group_from_desc(ofp: Any, desc: Any) -> Group:
    kind = {getattr(ofp, v): k for k, v in _GROUP_TYPES.items()}.get(desc.type, f"type{desc.type}")
    buckets = tuple(
        Bucket(actions_from(ofp, b.actions), None if b.watch_port == ofp.OFPP_ANY else b.watch_port, b.weight)
        for b in desc.buckets
    )
    return Group(desc.group_id, kind, buckets)


def meter_from_config(ofp: Any, cfg: Any) -> Meter:
    band = cfg.bands[0] if cfg.bands else None
    if band is None or type(band).__name__ != "OFPMeterBandDrop" or not cfg.flags & (ofp.OFPMF_KBPS | ofp.OFPMF_PKTPS):
        return Meter(cfg.meter_id, -1, -1)  # not one of ours: it gets replaced
    return Meter(cfg.meter_id, band.rate, band.burst_size, bool(cfg.flags & ofp.OFPMF_PKTPS))
