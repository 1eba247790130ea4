"""Meter and port statistics replies as a switch sends them (OpenFlow 1.3 wire bytes), parsed
by os-ken exactly as the controller's own: for `kendali bench stats` and the unit tests, so
that the controller's cost and the samples it reads come from real replies, not mocks."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser


def datapath(dpid: int) -> Any:
    """Enough of an os-ken Datapath to build requests and parse replies."""
    dp = SimpleNamespace(id=dpid, ofproto=ofp, ofproto_parser=parser, xid=0, sent=[])

    def set_xid(msg: Any) -> int:
        dp.xid += 1
        msg.set_xid(dp.xid)
        return dp.xid

    def send_msg(msg: Any) -> None:
        if msg.xid is None:
            set_xid(msg)
        msg.serialize()
        dp.sent.append(msg)

    dp.set_xid, dp.send_msg = set_xid, send_msg
    return dp


def _reply(mp_type: int, xid: int, body: bytes, more: bool) -> bytes:
    head_len = struct.calcsize(ofp.OFP_HEADER_PACK_STR) + struct.calcsize(ofp.OFP_MULTIPART_REPLY_PACK_STR)
    return (
        struct.pack(ofp.OFP_HEADER_PACK_STR, ofp.OFP_VERSION, ofp.OFPT_MULTIPART_REPLY, head_len + len(body), xid)
        + struct.pack(ofp.OFP_MULTIPART_REPLY_PACK_STR, mp_type, ofp.OFPMPF_REPLY_MORE if more else 0)
        + body
    )


def meter_reply(xid: int, meters: Iterable[tuple[int, int, int, int, int, float]], more: bool = False) -> bytes:
    """meters: (meter id, packets in, bytes in, packets dropped, bytes dropped, age s), one drop band each."""
    body = b""
    size = struct.calcsize(ofp.OFP_METER_STATS_PACK_STR) + struct.calcsize(ofp.OFP_METER_BAND_STATS_PACK_STR)
    for mid, pkts, nbytes, dpkts, dbytes, age in meters:
        sec = int(age)
        body += struct.pack(ofp.OFP_METER_STATS_PACK_STR, mid, size, 1, pkts, nbytes, sec, int((age - sec) * 1e9))
        body += struct.pack(ofp.OFP_METER_BAND_STATS_PACK_STR, dpkts, dbytes)
    return _reply(ofp.OFPMP_METER, xid, body, more)


def port_reply(xid: int, ports: Iterable[tuple[int, int, int, int, int, float]], more: bool = False) -> bytes:
    """ports: (port, rx packets, tx packets, rx bytes, tx bytes, age s)."""
    body = b""
    for port, rxp, txp, rxb, txb, age in ports:
        sec = int(age)
        body += struct.pack(
            ofp.OFP_PORT_STATS_PACK_STR, port, rxp, txp, rxb, txb, 0, 0, 0, 0, 0, 0, 0, 0, sec, int((age - sec) * 1e9)
        )
    return _reply(ofp.OFPMP_PORT_STATS, xid, body, more)


def parse(dp: Any, data: bytes) -> Any:
    """The os-ken message for wire bytes, as the controller's receive loop builds it."""
    version, msg_type, msg_len, xid = ofproto_parser.header(data)
    return ofproto_parser.msg(dp, version, msg_type, msg_len, xid, data)
