"""Statistics on the wire: the requests a poll sends, and os-ken replies -> plain samples for
controller.core.usage. Decides nothing about what the counters mean.

A poll asks a switch for two things: every meter's counters (what each OPD sent and had
dropped) and every port's (link bytes). Flows are not asked for: their counters die with
each replaced flow, a meter's do not. With sharing on, the uplink switch is also asked for
the OPDs' aggregate flows (cookie tag compiler.SHARE_TAG): what each OPD offers to or from
the Internet, counted before its aggregate meter, whose re-sizes do not reset them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller import COOKIE
from controller.api.history import HISTORY_FILE, History, Writer
from controller.api.metrics import Metrics, Snapshot
from controller.core import views
from controller.core.compiler import SHARE_TAG, Compiler, Counted, counted_opds
from controller.core.graph import LinkKey, Network
from controller.core.state import Changes
from controller.core.usage import FlowSample, MeterSample, PollSchedule, PortSample, Usage

LOG = logging.getLogger("kendali.stats")


def requests(dp: Any, flows: bool = False) -> list[Any]:
    """A poll's requests; ``flows``: also the aggregate flows sharing counts demand with."""
    ofp, parser = dp.ofproto, dp.ofproto_parser
    out = [parser.OFPMeterStatsRequest(dp, 0, ofp.OFPM_ALL), parser.OFPPortStatsRequest(dp, 0, ofp.OFPP_ANY)]
    if flows:
        out.append(
            parser.OFPFlowStatsRequest(
                dp,
                0,
                ofp.OFPTT_ALL,
                ofp.OFPP_ANY,
                ofp.OFPG_ANY,
                COOKIE | SHARE_TAG,
                0xFFFFFFFF_FFFFFFFF,
                parser.OFPMatch(),
            )
        )
    return out


def _age(stat: Any) -> float:
    return stat.duration_sec + stat.duration_nsec / 1e9


def meter_samples(msg: Any) -> list[MeterSample]:
    """An OFPMeterStatsReply's entries; drops summed over the meter's bands."""
    return [
        MeterSample(
            s.meter_id,
            s.packet_in_count,
            s.byte_in_count,
            sum(b.packet_band_count for b in s.band_stats),
            sum(b.byte_band_count for b in s.band_stats),
            _age(s),
        )
        for s in msg.body
    ]


def flow_samples(msg: Any) -> list[FlowSample]:
    """An OFPFlowStatsReply's metered flows: each keyed by table, priority and match."""
    out = []
    for s in msg.body:
        meter = next((i.meter_id for i in s.instructions if type(i).__name__ == "OFPInstructionMeter"), None)
        if meter is not None:
            key = (s.table_id, s.priority, tuple(sorted(s.match.items())))
            out.append(FlowSample(key, meter, s.packet_count, s.byte_count, _age(s)))
    return out


def port_samples(msg: Any) -> list[PortSample]:
    """An OFPPortStatsReply's physical ports (not LOCAL or other reserved ports)."""
    top = msg.datapath.ofproto.OFPP_MAX
    return [
        PortSample(s.port_no, s.rx_bytes, s.tx_bytes, s.rx_packets, s.tx_packets, _age(s))
        for s in msg.body
        if s.port_no <= top
    ]


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

    def poll(self, dp: Any, now: float, flows: bool = False) -> None:
        old = self._polls.pop(dp.id, None)
        for x in old.waiting if old else ():  # never answered in full: the new poll covers it
            self._xids.discard((dp.id, x))
        msgs = requests(dp, flows)
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


class Telemetry:
    """Usage collection inside the controller: the poll timer, replies into the counting core,
    a cycle to the history writer every interval, and what REST and /metrics read.

    The app calls: ``tick`` on its loop every LLDP round, ``planned`` after each compile, ``sent`` for each
    switch's changes, ``reply`` for meter and port stats replies, ``forget`` on disconnect,
    ``failover`` when it routes around a link; REST reads ``usage``, ``history``, ``metrics``.
    """

    def __init__(
        self,
        net: Network,
        datapaths: Mapping[int, Any],
        interval: float = 10.0,
        state_dir: Path | None = None,
        policies: Mapping[str, Any] | None = None,
    ) -> None:
        self.net = net
        self.datapaths = datapaths  # the app's own dict: who is connected now
        self.interval = interval
        self.usage = Usage(stale_after=2.5 * interval)
        self.schedule = PollSchedule(interval)
        self.poller = Poller()
        self.metrics = Metrics(self.snapshot)
        self.failovers = 0
        # Sharing (None: off): the uplink switch, whose polls also read the aggregate flows,
        # and the sharing core whose figures /v1/usage and /metrics show.
        self.share_dpid: int | None = None
        self.sharing: Any = None
        self._next_cycle = time.time() + interval
        self.path = state_dir / HISTORY_FILE if state_dir else None
        self.writer: Writer | None = None
        if self.path:
            hist = History(self.path)  # creates it; and the last saved cycle to continue from
            totals, counters, last = hist.load()
            hist.close()
            self.usage.restore(totals, counters, last)
            from eventlet.patcher import original  # real OS threads: the writer must not run on the loop

            self.writer = Writer(self.path, original("threading"), original("queue"))
        # Listed from the start, before any switch connects and anything is compiled.
        counted = counted_opds(net, dict(policies or {}), count=True)
        self.usage.plan(counted, {}, self._names(counted, policies or {}), time.time())

    def tick(self, now: float) -> None:
        """Called on the app's loop every LLDP round (0.1 s): poll the switches that are due
        (each at its own phase, every interval) and hand a cycle to the history writer."""
        try:
            for dpid in self.schedule.due(list(self.datapaths), now):
                self.poll(dpid, now)
            if now >= self._next_cycle:
                self._next_cycle = max(self._next_cycle + self.interval, now + self.interval / 2)
                links, meta = self._history_links()
                cycle = self.usage.take_cycle(now, links, meta, self._history_ports())
                if self.writer:
                    self.writer.put(cycle)
        except Exception:  # never let telemetry take the controller down
            LOG.exception("usage poll failed")

    def poll(self, dpid: int, now: float) -> bool:
        """Poll one switch now (the schedule's, or sharing's every period); False if it is gone."""
        dp = self.datapaths.get(dpid)
        if dp is None:
            return False
        self.poller.poll(dp, now, flows=dpid == self.share_dpid)
        return True

    def _history_links(self) -> tuple[dict[str, tuple[LinkKey, str]], dict[str, Any]]:
        """The links to keep in the history (by id) and the facts the report needs about them."""
        links, info = {}, {}
        for key, link in self.net.links.items():
            d1, p1, d2, p2 = key
            a, b = views.switch_label(self.net, d1), views.switch_label(self.net, d2)
            lid = f"link:{a}:{p1}~{b}:{p2}"
            links[lid] = (key, f"{a} – {b}")
            info[lid] = {"a": a, "b": b, "capacity_mbps": link.capacity_mbps}
        meta: dict[str, Any] = {"links": info}
        topo = self.net.topology
        if topo and topo.uplink:
            meta["uplink"] = {"subnet": self._uplink_id(), "capacity_mbps": topo.uplink.capacity_mbps}
        return links, meta

    def _uplink_id(self) -> str:
        """The uplink subnet's id in the history (unless a policy has taken that id)."""
        assert self.net.topology and self.net.topology.uplink
        sid = self.net.topology.uplink.subnet
        return f"{sid}.uplink" if sid in self.usage.counted else sid

    def _history_ports(self) -> dict[str, tuple[tuple[int, int], str, str]]:
        """The ISP hand-off's switch port, kept in the history under the uplink subnet's id: the
        compiler counts no meters for it (it is not an OPD), so its port counters tell what
        the regency took from the ISP and sent to it (the report's uplink figures)."""
        topo, router = self.net.topology, self.net.uplink_router()
        if not topo or not topo.uplink or router is None:
            return {}
        name = topo.subnets[topo.uplink.subnet].name
        return {self._uplink_id(): ((router.dpid, router.port), "subnet", name)}

    def planned(self, compiler: Compiler, policies: Mapping[str, Any], now: float, compile_s: float) -> None:
        """After a compile: which meters count which OPD, and their names."""
        self.usage.plan(compiler.counted, compiler.meter_plans(), self._names(compiler.counted, policies), now)
        self.metrics.compile_seconds.observe(compile_s)

    def _names(self, counted: Mapping[str, Counted], policies: Mapping[str, Any]) -> dict[str, str]:
        names = {o: getattr(p, "name", o) for o, p in policies.items()}
        topo = self.net.topology
        if topo:
            by_cidr = {s.cidr: s.name for s in topo.subnets.values()}
            names.update({o: by_cidr.get(c.subnets[0], o) for o, c in counted.items() if c.kind == "subnet"})
        return names

    def sent(self, dpid: int, ch: Changes, now: float) -> None:
        """Meters we add or modify restart their counters (Open vSwitch replaces a modified meter)."""
        if ch.meters_add or ch.meters_mod:
            self.usage.meters_reset(dpid, [m.meter_id for m in ch.meters_add + ch.meters_mod], now)

    def reply(self, msg: Any, kind: str) -> float | None:
        """A meter ("meter"), port ("port") or flow ("flow") stats reply. Returns when the
        poll was asked if this reply completes it (else None)."""
        now = time.time()
        got = self.poller.reply(msg, now)
        if got is None:
            return None
        asked_at, took = got
        dpid = msg.datapath.id
        if kind == "meter":
            self.usage.meter_samples(dpid, meter_samples(msg), asked_at)
        elif kind == "flow":
            self.usage.flow_samples(dpid, flow_samples(msg), asked_at)
        else:
            self.usage.port_samples(dpid, port_samples(msg), asked_at)
        if took is None:
            return None
        self.metrics.poll_seconds.observe(took)
        return asked_at

    def forget(self, dpid: int) -> None:
        self.poller.forget(dpid)

    def failover(self, links: int) -> None:
        self.failovers += links

    # ---- what REST and /metrics read -------------------------------------------------------
    def link_usage(self, now: float | None = None) -> dict:
        caps = {k: link.capacity_mbps for k, link in self.net.links.items()}
        return self.usage.links(caps, time.time() if now is None else now)

    def usage_view(self) -> dict[str, Any]:
        now = time.time()
        return {"interval_s": self.interval, "at": now, "opds": self._rows(now)}

    def _rows(self, now: float) -> list[dict[str, Any]]:
        return self.usage.add_shares(self.usage.view(now), self.sharing.shares if self.sharing else None)

    def history(self, opd: str, frm: float, to: float, step: int | None, now: float) -> dict[str, Any] | None:
        """One OPD's series; None if never counted. SQLite reads run in an OS thread (eventlet.tpool)."""
        if self.path is None:
            return None
        from eventlet import tpool

        return tpool.execute(_query, self.path, opd, frm, to, step, now, opd in self.usage.counted)

    def snapshot(self) -> Snapshot:
        now = time.time()
        links = [
            {"link": views.link_label(self.net, k), "capacity_mbps": self.net.links[k].capacity_mbps, **v}
            for k, v in self.link_usage(now).items()
            if k in self.net.links
        ]
        topo = self.net.topology
        switches = (
            [{"dpid": s.dpid, "name": s.name, "connected": s.dpid in self.datapaths} for s in topo.switches.values()]
            if topo
            else []
        )
        declared = {s["dpid"] for s in switches}
        switches += [{"dpid": d, "name": None, "connected": True} for d in sorted(self.datapaths) if d not in declared]
        return Snapshot(
            self._rows(now),
            links,
            switches,
            len(self.net.links),
            self.failovers,
            self.writer.backlog if self.writer else 0,
        )


def _query(
    path: Path, opd: str, frm: float, to: float, step: int | None, now: float, counted: bool
) -> dict[str, Any] | None:
    hist = History(path, reader=True)
    try:
        return hist.query(opd, frm, to, step, now) if counted or hist.known(opd) else None
    finally:
        hist.close()
