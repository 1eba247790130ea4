"""OpenFlow 1.3 messages as bytes, without a switch or a socket: for the table model and the tests.

``FakeDatapath`` is what controller.openflow.ofmsg needs of an os-ken Datapath (the
protocol modules, an id, transaction ids) and records what is sent to it. ``encode``
serialises a message exactly as os-ken does before writing it to the switch's socket;
``decode`` parses the bytes back with os-ken's own parser classes, as a switch would read
them. os-ken parses a FlowMod by itself; for GroupMod and MeterMod (which a controller
only ever sends) the fixed header is unpacked here and the buckets and bands are parsed
by os-ken's OFPBucket and OFPMeterBandHeader.

Lab tooling: the running controller never imports this module (its only os-ken code
is controller/openflow).
"""

from __future__ import annotations

import struct
from typing import Any

from os_ken.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser

OFP = ofproto_v1_3
PARSER = ofproto_v1_3_parser


class WireError(Exception):
    """Bytes that do not parse back into the message they were made from."""


class FakeDatapath:
    """Stands in for os_ken.controller.controller.Datapath: what ofmsg and the app touch."""

    ofproto = ofproto_v1_3
    ofproto_parser = ofproto_v1_3_parser

    def __init__(self, dpid: int = 1) -> None:
        self.id = dpid
        self.xid = 0
        self.sent: list[Any] = []

    def set_xid(self, msg: Any) -> int:
        self.xid += 1
        msg.set_xid(self.xid)
        return self.xid

    def send_msg(self, msg: Any) -> None:
        if msg.xid is None:
            self.set_xid(msg)
        self.sent.append(msg)


def encode(dp: FakeDatapath, msg: Any) -> bytes:
    """The bytes os-ken would write to the switch for ``msg`` (given an xid if it has none)."""
    if msg.xid is None:
        dp.set_xid(msg)
    msg.serialize()
    return bytes(msg.buf)


def decode(data: bytes, dp: Any = None) -> Any:
    """The os-ken message object a switch would parse from ``data``."""
    version, msg_type, msg_len, xid = ofproto_parser.header(data)
    if version != OFP.OFP_VERSION:
        raise WireError(f"OpenFlow version {version:#x}, not 1.3")
    if msg_len != len(data):
        raise WireError(f"header says {msg_len} bytes, message has {len(data)}")
    if msg_type == OFP.OFPT_GROUP_MOD:
        return _group_mod(dp, data, xid)
    if msg_type == OFP.OFPT_METER_MOD:
        return _meter_mod(dp, data, xid)
    msg = ofproto_parser.msg(dp, version, msg_type, msg_len, xid, data)
    if msg is None:
        raise WireError(f"os-ken cannot parse message type {msg_type}")
    return msg


def round_trip(dp: FakeDatapath, msg: Any) -> Any:
    """``msg`` as the switch reads it: encoded, then decoded."""
    return decode(encode(dp, msg), dp)


def _group_mod(dp: Any, data: bytes, xid: int) -> Any:
    command, type_, group_id = struct.unpack_from(OFP.OFP_GROUP_MOD_PACK_STR, data, OFP.OFP_HEADER_SIZE)
    buckets = []
    offset = OFP.OFP_GROUP_MOD_SIZE
    while offset < len(data):
        bucket = PARSER.OFPBucket.parser(data, offset)
        if bucket.len < OFP.OFP_BUCKET_SIZE:
            raise WireError(f"group {group_id:#x}: bucket of {bucket.len} bytes")
        buckets.append(bucket)
        offset += bucket.len
    if offset != len(data):
        raise WireError(f"group {group_id:#x}: buckets overrun the message")
    msg = PARSER.OFPGroupMod(dp, command, type_, group_id, buckets)
    msg.set_headers(OFP.OFP_VERSION, OFP.OFPT_GROUP_MOD, len(data), xid)
    return msg


def _meter_mod(dp: Any, data: bytes, xid: int) -> Any:
    command, flags, meter_id = struct.unpack_from(OFP.OFP_METER_MOD_PACK_STR, data, OFP.OFP_HEADER_SIZE)
    bands = []
    offset = OFP.OFP_METER_MOD_SIZE
    while offset < len(data):
        band = PARSER.OFPMeterBandHeader.parser(data, offset)
        bands.append(band)
        offset += band.len
    if offset != len(data):
        raise WireError(f"meter {meter_id}: bands overrun the message")
    msg = PARSER.OFPMeterMod(dp, command, flags, meter_id, bands)
    msg.set_headers(OFP.OFP_VERSION, OFP.OFPT_METER_MOD, len(data), xid)
    return msg
