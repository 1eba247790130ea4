"""Statistics on the wire: the requests a poll sends, and os-ken replies -> plain samples for
controller.core.usage. Decides nothing about what the counters mean.

A poll asks a switch for two things: every meter's counters (what each OPD sent and had
dropped) and every port's (link bytes). Flows are not asked for: their counters die with
each replaced flow, a meter's do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.core.usage import MeterSample, PortSample


def requests(dp: Any) -> list[Any]:
    ofp, parser = dp.ofproto, dp.ofproto_parser
    return [parser.OFPMeterStatsRequest(dp, 0, ofp.OFPM_ALL), parser.OFPPortStatsRequest(dp, 0, ofp.OFPP_ANY)]


def _age(stat: Any) -> float:
    return stat.duration_sec + stat.duration_nsec / 1e9


def meter_samples(msg: Any) -> list[MeterSample]:
    """An OFPMeterStatsReply's entries; drops summed over the meter's bands."""
    return [MeterSample(s.meter_id, s.packet_in_count, s.byte_in_count,
                        sum(b.packet_band_count for b in s.band_stats), sum(b.byte_band_count for b in s.band_stats),
                        _age(s)) for s in msg.body]


def port_samples(msg: Any) -> list[PortSample]:
    """An OFPPortStatsReply's physical ports (not LOCAL or other reserved ports)."""
    top = msg.datapath.ofproto.OFPP_MAX
    return [PortSample(s.port_no, s.rx_bytes, s.tx_bytes, s.rx_packets, s.tx_packets, _age(s))
            for s in msg.body if s.port_no <= top]


@dataclass
class _Poll:
    asked_at: float
    waiting: set[int]  # xids not fully answered yet


class Poller:
    """Sends a switch its poll and says, for each reply, when it was asked: the core needs
    that time to tell a late reply from a new one. Replies to requests we did not send
    (another part of the controller reading flows) are not ours: ``reply`` returns None."""

    def __init__(self) -> None:
        self._polls: dict[int, _Poll] = {}  # dpid -> its outstanding poll
        self._xids: set[tuple[int, int]] = set()  # (dpid, xid) of the requests still expected

    def poll(self, dp: Any, now: float) -> None:
        old = self._polls.pop(dp.id, None)
        for x in old.waiting if old else ():  # never answered in full: the new poll covers it
            self._xids.discard((dp.id, x))
        msgs = requests(dp)
        xids = {dp.set_xid(m) for m in msgs}  # recorded before sending: a reply may come at once
        self._polls[dp.id] = _Poll(now, set(xids))
        self._xids |= {(dp.id, x) for x in xids}
        for m in msgs:
            dp.send_msg(m)

    def reply(self, msg: Any, now: float) -> tuple[float, float | None] | None:
        """(when it was asked, seconds the whole poll took if this reply ends it) or None."""
        key = (msg.datapath.id, msg.xid)
        if key not in self._xids:
            return None
        poll = self._polls[msg.datapath.id]
        if msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE:
            return poll.asked_at, None
        self._xids.discard(key)
        poll.waiting.discard(msg.xid)
        return poll.asked_at, (now - poll.asked_at if not poll.waiting else None)

    def forget(self, dpid: int) -> None:
        self._polls.pop(dpid, None)
        self._xids = {k for k in self._xids if k[0] != dpid}
