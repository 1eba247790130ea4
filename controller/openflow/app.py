"""The os-ken shell: OpenFlow events in, core calls, OpenFlow messages out.

Every decision lives in controller.core.controller.Controller; each handler here takes an
event, calls the core with the time, and sends what it returns. One loop owns the state:
os-ken hands this app's events to one green thread in order, and the timers (the LLDP
tick, the compile delay) and REST changes are posted as events onto that same queue, so
the core never runs concurrently with itself. This is the one place that talks to
switches; controller.openflow.ofmsg does the encoding.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from os_ken.base import app_manager
from os_ken.controller import event as os_event
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from controller import COOKIE, COOKIE_MASK
from controller.api import memory, rest, server
from controller.api import store as store_mod
from controller.api.access import Access
from controller.api.store import PolicyStore
from controller.core import sharing, views
from controller.core.controller import (
    COMPILE_DELAY,
    Action,
    Config,
    Controller,
    PacketOut,
    ReadState,
    SendChanges,
    purchased_uplink_kbps,
)
from controller.core.liveness import PortState
from controller.core.policy import Policy
from controller.core.state import Flow
from controller.core.topology import Topology
from controller.errors import KendaliError
from controller.openflow import ofmsg, stats

LOG = logging.getLogger("kendali")


@dataclass
class Settings:
    """What the CLI hands the app (os-ken builds apps itself, so this is module state)."""

    topology: Topology | None = None
    store: PolicyStore | None = None
    state_dir: Path | None = None
    access: Access | dict[str, str] = field(default_factory=dict)  # who may use the REST API
    rest_port: int = 8080
    rest_host: str = "127.0.0.1"
    rest_tls: tuple[Path, Path] | None = None  # (certificate, key): HTTPS
    open_metrics: bool = False
    lldp_interval: float = 0.1
    link_timeout: float = 0.5
    switch_liveness: bool = False  # the switches judge link liveness (BFD): LLDP slow (for the log)
    protect: bool = True
    keep_foreign: bool = False
    audit_interval: float = 5.0
    lldp_secret: bytes = b""
    stats_interval: float = 10.0  # usage telemetry: seconds between polls of each switch
    sharing: sharing.Settings | None = None  # sharing the uplink by need; None: static caps
    uplink_kbps: float | None = None  # what the ISP uplink buys (controller.purchased_uplink_kbps)
    ha: Any = None  # controller.openflow.ha.Ha with --etcd: only the leader sends to switches


SETTINGS = Settings()
SETTINGS_EVERY = 2.0  # seconds between looks at settings.json (a stat; read only when it changed)


class EventTick(os_event.EventBase):
    """An LLDP round is due (posted every --lldp-interval)."""


class EventCompile(os_event.EventBase):
    """The compile delay after a change has passed."""


class EventShare(os_event.EventBase):
    """A sharing period is due (posted every --sharing-period): poll the uplink switch."""


class EventRole(os_event.EventBase):
    """This node became the leader (with the last leader's network memory) or stopped being it."""

    def __init__(self, leading: bool, generation: int, memory: dict[str, Any] | None) -> None:
        super().__init__()
        self.leading, self.generation, self.memory = leading, generation, memory


class EventPolicies(os_event.EventBase):
    def __init__(self, policies: dict[str, Policy]) -> None:
        super().__init__()
        self.policies = policies


class KendaliApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]
    _EVENTS = [EventTick, EventCompile, EventPolicies, EventShare, EventRole]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        s = self.settings = SETTINGS
        self.ha = s.ha
        remembered = memory.load(s.state_dir) if s.state_dir and self.ha is None else {}
        secret = s.lldp_secret or (memory.lldp_secret(s.state_dir) if s.state_dir else b"kendali-test-only")
        self.config = config = Config(
            s.topology,
            s.lldp_interval,
            s.link_timeout,
            s.protect,
            s.keep_foreign,
            s.audit_interval,
            secret,
            s.sharing,
            s.uplink_kbps,
        )
        # A follower (--etcd) keeps a core for the graph and the REST reads, but never audits:
        # what it would repair is the leader's to repair.
        self._follower_config = dataclasses.replace(config, audit_interval=0.0)
        first = self._follower_config if self.ha is not None else config
        self.core = Controller(first, s.store.all() if s.store else {}, remembered, time.time())
        self.datapaths: dict[int, Any] = {}
        # Usage telemetry (controller.openflow.stats): polled from this loop's tick, replies
        # counted by controller.core.usage, history written by its own OS thread.
        self.telemetry = stats.Telemetry(
            self.core.net, self.datapaths, s.stats_interval, s.state_dir, self.core.policies
        )
        t = s.topology
        if self.core.sharing is not None and t is not None and t.uplink is not None:
            # The uplink switch's polls also read the aggregate flows; a period's step runs
            # when the poll it asked for is answered.
            self.telemetry.share_dpid = t.switches[t.uplink.switch].dpid
            self.telemetry.sharing = self.core.sharing
        self._share_asked: float | None = None
        self._compiles = self._failovers = 0
        # dpid -> {xid: part} of the read-back and audit requests in flight
        self._reads: dict[int, dict[int, str]] = {}
        self._counts: dict[int, dict[str, int]] = {}
        self._compile_scheduled = False
        self._tick_pending = False
        self._own: list[Any] = []
        self._leading = False  # with --etcd: the role last handled on this loop
        self._master_at: dict[int, float] = {}  # dpid -> when it confirmed us as MASTER (this term)
        self._wsgi: rest.RestApp | None = None
        self._settings_due = 0.0
        self._settings_seen: int | None = None  # settings.json's mtime when last read
        self.started = time.time()

    def start(self) -> Any:
        thread = super().start()
        self._own = [hub.spawn(self._ticker)]
        if self.ha is not None:
            self._own += self.ha.start(self._role_changed, self.policies_changed)
        if self.core.sharing is not None:
            self._own.append(hub.spawn(self._sharer))
        if self.settings.store is not None:
            self._own.append(hub.spawn(self._serve_rest))
        s, t = self.settings, self.settings.topology
        LOG.info(
            "Kendali controller up: topology %s, LLDP every %.2f s on links, link timeout %.2f s%s, protection %s, "
            "audit every %s",
            f"{t.name} ({len(t.switches)} switches declared)" if t else "discovered only",
            s.lldp_interval,
            s.link_timeout,
            " (silent failures left to the switches' BFD: --switch-liveness)" if s.switch_liveness else "",
            "on" if s.protect else "off",
            f"{s.audit_interval:g} s" if s.audit_interval else "never",
        )
        if s.sharing is not None:
            LOG.info(
                "sharing the uplink by need: %.0f Mbit/s purchased, reallocated every %g s",
                (s.uplink_kbps or 0) / 1000,
                s.sharing.period,
            )
        return thread

    def stop(self) -> None:
        for t in self._own:  # they loop forever; os-ken's stop() joins its threads
            hub.kill(t)
        self._own = []
        super().stop()

    # ---- timers and REST: posted as events onto this app's own queue ----------------------
    def _ticker(self) -> None:
        while True:
            hub.sleep(self.core.liveness.tick)  # LLDP on links every --lldp-interval, other timers
            if not self._tick_pending:  # never pile ticks up behind a busy loop
                self._tick_pending = True
                self.send_event(self.name, EventTick())

    def _sharer(self) -> None:
        assert self.core.sharing is not None
        while True:
            hub.sleep(self.core.sharing.settings.period)
            self.send_event(self.name, EventShare())

    def _post_compile(self) -> None:
        self.send_event(self.name, EventCompile())

    def policies_changed(self, policies: dict[str, Policy]) -> None:
        """Called by the REST app (its own green thread) once a change is persisted."""
        self.send_event(self.name, EventPolicies(policies))

    @set_ev_cls(EventTick)
    def _tick(self, ev: EventTick) -> None:
        self._tick_pending = False
        now = time.time()
        self._do(self.core.tick(now))
        self.telemetry.tick(now)
        doc = self.core.memory(now)
        if doc is not None and self.ha is not None:
            if self.ha.leading():  # the next leader starts from it (hosts, meter numbers, switches)
                self.ha.remember(json.dumps(doc).encode())
        elif doc is not None and self.settings.state_dir is not None:
            try:
                memory.save(self.settings.state_dir, doc)
            except OSError as exc:
                LOG.error("cannot save %s: %s", memory.NETWORK_FILE, exc)
        if now >= self._settings_due:
            self._settings_due = now + SETTINGS_EVERY
            self._follow_settings()

    def _follow_settings(self) -> None:
        """What is bought (the report settings' uplink_mbps, PUT /v1/settings) applies while we
        run: to the guarantees' 409 and to sharing's next period. settings.json is the file a
        PUT writes, here or (with --etcd) mirrored from etcd: its change is what we look for."""
        path = self.settings.state_dir / store_mod.SETTINGS_FILE if self.settings.state_dir else None
        try:
            seen = path.stat().st_mtime_ns if path is not None else None
        except OSError:
            seen = None
        if seen is None or seen == self._settings_seen:
            return
        self._settings_seen = seen
        try:
            bought = store_mod.load_settings(self.settings.state_dir).uplink_mbps  # type: ignore[arg-type]
        except KendaliError as exc:
            LOG.error("the settings are not applied: %s", exc)
            return
        uplink = purchased_uplink_kbps(self.settings.topology, bought)
        if uplink == self.config.uplink_kbps:
            return
        LOG.info("the uplink bought is now %s Mbit/s", f"{uplink / 1000:g}" if uplink else "unknown")
        self.config.uplink_kbps = self._follower_config.uplink_kbps = uplink
        self.core.config.uplink_kbps = uplink
        if self._wsgi is not None:
            self._wsgi.uplink_kbps = uplink

    @set_ev_cls(EventCompile)
    def _compile(self, ev: EventCompile) -> None:
        self._compile_scheduled = False
        if self.core.dirty and (self.ha is None or self.ha.leading()):  # a follower's would go nowhere
            self._do(self.core.compile(time.time()))

    @set_ev_cls(EventShare)
    def _share_due(self, ev: EventShare) -> None:
        now = time.time()
        dpid = self.telemetry.share_dpid
        if dpid is not None and self.telemetry.poll(dpid, now):
            self._share_asked = now

    def _stats(self, msg: Any, kind: str) -> None:
        """A stats reply for telemetry; the one that completes sharing's poll runs the period."""
        asked = self.telemetry.reply(msg, kind)
        if asked is None or self._share_asked is None or msg.datapath.id != self.telemetry.share_dpid:
            return
        if asked >= self._share_asked:
            self._share_asked = None
            measured = self.telemetry.usage.share_take(asked)
            if measured is not None:  # the first poll is the baseline
                self._do(self.core.share(asked, measured))

    @set_ev_cls(EventPolicies)
    def _policies(self, ev: EventPolicies) -> None:
        self._do(self.core.policies_changed(ev.policies, time.time()))

    # ---- high availability (--etcd) ----------------------------------------------------------
    def _role_changed(self, leading: bool, generation: int, memory: dict[str, Any] | None) -> None:
        """Called by the election's green thread; the change is handled on this app's loop."""
        self.send_event(self.name, EventRole(leading, generation, memory))

    @set_ev_cls(EventRole)
    def _role(self, ev: EventRole) -> None:
        self._master_at.clear()  # a new term: each switch confirms again
        for dp in self.datapaths.values():
            self._ask_role(dp)  # first: a switch handles our messages in order
        was, self._leading = self._leading, ev.leading
        if was and not ev.leading:
            self.core.config = self._follower_config  # it keeps the graph; it no longer audits
            LOG.warning("stepped down: nothing more is sent to the switches")
        if ev.leading and not was and self.ha is not None and self.ha.leading():
            self._take_over(ev.memory or {})

    def _ask_role(self, dp: Any) -> None:
        """MASTER with our generation as the leader, else SLAVE: a switch refuses a stale one."""
        if self.ha is None:
            return
        want = self.ha.election.switch_role(time.monotonic())
        ofp = dp.ofproto
        role = ofp.OFPCR_ROLE_MASTER if want.master else ofp.OFPCR_ROLE_SLAVE
        dp.send_msg(dp.ofproto_parser.OFPRoleRequest(dp, role, want.generation))

    def _take_over(self, remembered: dict[str, Any]) -> None:
        """A new leader: a fresh core from the last leader's memory, as after a restart; every
        switch is read back and gets only the difference (additions only until it settles)."""
        now = time.time()
        s = self.settings
        self.core = Controller(self.config, s.store.all() if s.store else {}, remembered, now)
        self.telemetry.net = self.core.net
        self.telemetry.sharing = self.core.sharing if self.telemetry.share_dpid is not None else None
        self._reads.clear()
        self._counts.clear()
        for dpid, dp in sorted(self.datapaths.items()):
            dp.send_msg(dp.ofproto_parser.OFPPortDescStatsRequest(dp, 0))
            self._do(self.core.switch_connected(dpid, now))

    # ---- actions -----------------------------------------------------------------------------
    def _do(self, actions: list[Action]) -> None:
        now = time.time()
        c = self.core.counters
        if c.compiles != self._compiles:  # which meters count which OPD, after every compile
            self._compiles = c.compiles
            self.telemetry.planned(self.core.compiler, self.core.policies, now, self.core.last_compile_ms / 1000)
        if c.failovers != self._failovers:
            self.telemetry.failover(c.failovers - self._failovers)
            self._failovers = c.failovers
        leading = self.ha is None or self.ha.leading()  # asked right before sending, every time
        for a in actions:
            dp = self.datapaths.get(a.dpid)
            if dp is None or (not leading and not isinstance(a, ReadState)):
                continue  # a follower reads switches, never changes them
            if isinstance(a, PacketOut):
                self._packet_out(dp, a.port, a.data)
            elif isinstance(a, SendChanges):
                self.telemetry.sent(a.dpid, a.changes, now)  # meters we (re)make count from 0
                for msg in ofmsg.changes(dp, a.changes):
                    dp.send_msg(msg)
                barrier = dp.ofproto_parser.OFPBarrierRequest(dp)
                # Recorded before sending: the reply may be handled before send_msg returns.
                self.core.sent(a.dpid, dp.set_xid(barrier), time.time())
                dp.send_msg(barrier)
            elif isinstance(a, ReadState):
                self._read(dp, a.parts)
        if self.core.dirty and not self._compile_scheduled and leading:
            self._compile_scheduled = True
            hub.spawn_after(COMPILE_DELAY, self._post_compile)

    def _read(self, dp: Any, parts: tuple[str, ...]) -> None:
        ofp, parser = dp.ofproto, dp.ofproto_parser
        xids = self._reads[dp.id] = {}
        for part in parts:
            if part == "flows":  # all of them, whatever the cookie: foreign ones are found too
                msgs = [
                    (
                        "flows",
                        parser.OFPFlowStatsRequest(
                            dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0, parser.OFPMatch()
                        ),
                    )
                ]
            elif part == "groups":
                msgs = [("groups", parser.OFPGroupDescStatsRequest(dp, 0))]
            elif part == "meters":
                msgs = [("meters", parser.OFPMeterConfigStatsRequest(dp, 0, ofp.OFPM_ALL))]
            else:  # counts: our flows and all flows, without reading them
                self._counts[dp.id] = {}
                msgs = [
                    (
                        f"counts:{which}",
                        parser.OFPAggregateStatsRequest(
                            dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, cookie, mask, parser.OFPMatch()
                        ),
                    )
                    for which, cookie, mask in (("ours", COOKIE, COOKIE_MASK), ("all", 0, 0))
                ]
            for kind, msg in msgs:
                xids[dp.set_xid(msg)] = kind
                dp.send_msg(msg)

    def _reply(self, ev: Any) -> str | None:
        """Which read part this stats reply answers (None: not one of ours)."""
        return self._reads.get(ev.msg.datapath.id, {}).get(ev.msg.xid)

    def _more(self, ev: Any) -> bool:
        return bool(ev.msg.flags & ev.msg.datapath.ofproto.OFPMPF_REPLY_MORE)

    @staticmethod
    def _packet_out(dp: Any, port: int, data: bytes) -> None:
        ofp, parser = dp.ofproto, dp.ofproto_parser
        dp.send_msg(
            parser.OFPPacketOut(
                dp,
                buffer_id=ofp.OFP_NO_BUFFER,
                in_port=ofp.OFPP_CONTROLLER,
                actions=[parser.OFPActionOutput(port)],
                data=data,
            )
        )

    # ---- OpenFlow events ------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        self.datapaths[dp.id] = dp
        self._ask_role(dp)  # with --etcd: before anything else
        dp.send_msg(dp.ofproto_parser.OFPPortDescStatsRequest(dp, 0))  # its ports first, then what it holds
        self._do(self.core.switch_connected(dp.id, time.time()))

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc(self, ev: Any) -> None:
        dp = ev.msg.datapath
        mine = [p for p in ev.msg.body if p.port_no <= dp.ofproto.OFPP_MAX]
        up = self.core.liveness.ports_up(dp.id, {p.port_no: self._port_state(dp, p) for p in mine})
        self._do(self.core.ports(dp.id, {p.port_no: (up[p.port_no], p.hw_addr) for p in mine}, time.time()))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev: Any) -> None:
        if self._reply(ev) != "flows":
            self._stats(ev.msg, "flow")  # sharing's aggregate flows, if it asked
            return
        ofp = ev.msg.datapath.ofproto
        ours: list[Flow] = []
        foreign: list[Flow] = []
        for s in ev.msg.body:
            (ours if s.cookie & COOKIE_MASK == COOKIE else foreign).append(ofmsg.flow_from_stats(ofp, s))
        self._do(self.core.read_part(ev.msg.datapath.id, "flows", ours, time.time(), self._more(ev), foreign))

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, MAIN_DISPATCHER)
    def _group_desc(self, ev: Any) -> None:
        if self._reply(ev) == "groups":
            ofp = ev.msg.datapath.ofproto
            groups = [ofmsg.group_from_desc(ofp, g) for g in ev.msg.body]
            self._do(self.core.read_part(ev.msg.datapath.id, "groups", groups, time.time(), self._more(ev)))

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, MAIN_DISPATCHER)
    def _meter_config(self, ev: Any) -> None:
        if self._reply(ev) == "meters":
            ofp = ev.msg.datapath.ofproto
            meters = [ofmsg.meter_from_config(ofp, m) for m in ev.msg.body]
            self._do(self.core.read_part(ev.msg.datapath.id, "meters", meters, time.time(), self._more(ev)))

    @set_ev_cls(ofp_event.EventOFPAggregateStatsReply, MAIN_DISPATCHER)
    def _aggregate(self, ev: Any) -> None:
        kind = self._reply(ev)
        dpid = ev.msg.datapath.id
        if not kind or not kind.startswith("counts:") or dpid not in self._counts:
            return
        got = self._counts[dpid]
        got[kind[7:]] = ev.msg.body.flow_count
        if len(got) == 2:
            del self._counts[dpid]
            self._do(self.core.read_part(dpid, "counts", [], time.time(), counts=(got["ours"], got["all"])))

    @set_ev_cls(ofp_event.EventOFPMeterStatsReply, MAIN_DISPATCHER)
    def _meter_stats(self, ev: Any) -> None:
        self._stats(ev.msg, "meter")

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def _port_stats(self, ev: Any) -> None:
        self._stats(ev.msg, "port")

    @set_ev_cls(ofp_event.EventOFPRoleReply, MAIN_DISPATCHER)
    def _role_reply(self, ev: Any) -> None:
        """A switch took our role; MASTER confirmations time the takeover (GET /v1/health)."""
        msg = ev.msg
        if msg.role == msg.datapath.ofproto.OFPCR_ROLE_MASTER and self._leading:
            self._master_at.setdefault(msg.datapath.id, time.time())

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def _error(self, ev: Any) -> None:
        msg = ev.msg
        ofp = msg.datapath.ofproto
        if self.ha is not None and (
            (msg.type == ofp.OFPET_ROLE_REQUEST_FAILED and msg.code == ofp.OFPRRFC_STALE)
            or (msg.type == ofp.OFPET_BAD_REQUEST and msg.code == ofp.OFPBRC_IS_SLAVE)
        ):
            LOG.warning(
                "switch %s refused us (type %d code %d): a newer leader exists", msg.datapath.id, msg.type, msg.code
            )
            if self.ha.leading():
                self.ha.fenced()
            return
        if msg.datapath.id in self.datapaths and (self.ha is None or self.ha.leading()):
            self._do(self.core.error(msg.datapath.id, msg.type, msg.code, time.time()))

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev: Any) -> None:
        self.core.barrier_reply(ev.msg.datapath.id, ev.msg.xid, time.time())

    @set_ev_cls(ofp_event.EventOFPStateChange, [DEAD_DISPATCHER])
    def _state_change(self, ev: Any) -> None:
        dp = ev.datapath
        dpid = dp.id  # read before the `is` test, which narrows dp to Any | None for mypy
        if dpid is not None and self.datapaths.get(dpid) is dp:
            del self.datapaths[dpid]
            self._reads.pop(dpid, None)
            self._counts.pop(dpid, None)
            self.telemetry.forget(dpid)
            self._do(self.core.switch_disconnected(dpid, time.time()))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev: Any) -> None:
        msg = ev.msg
        dp, p = msg.datapath, msg.desc
        if p.port_no > dp.ofproto.OFPP_MAX:
            return
        state = self._port_state(dp, p)
        up = msg.reason != dp.ofproto.OFPPR_DELETE and self.core.liveness.port_up(dp.id, state)
        why = "was removed" if msg.reason == dp.ofproto.OFPPR_DELETE else self.core.liveness.why_down(state)
        self._do(self.core.port_status(dp.id, p.port_no, up, p.hw_addr, time.time(), why))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev: Any) -> None:
        msg = ev.msg
        in_port = msg.match.get("in_port")
        if in_port is not None and msg.data:
            self._do(self.core.packet_in(msg.datapath.id, in_port, bytes(msg.data), time.time()))

    @staticmethod
    def _port_state(dp: Any, p: Any) -> PortState:
        """The bits of an ofp_port that decide whether it is up (controller.core.liveness)."""
        ofp = dp.ofproto
        return PortState(
            bool(p.state & ofp.OFPPS_LINK_DOWN), bool(p.config & ofp.OFPPC_PORT_DOWN), bool(p.state & ofp.OFPPS_LIVE)
        )

    # ---- REST ------------------------------------------------------------------------------
    def topology(self) -> dict[str, Any]:
        return views.topology(self.core.net, self.telemetry.link_usage())

    def usage(self) -> dict[str, Any]:
        return self.telemetry.usage_view()

    def usage_history(self, opd: str, frm: float, to: float, step: int | None, now: float) -> dict[str, Any] | None:
        return self.telemetry.history(opd, frm, to, step, now)

    def metrics(self) -> tuple[bytes, str]:
        return self.telemetry.metrics.exposition()

    def recent_events(self, since: float | None, limit: int | None) -> list[dict[str, Any]]:
        """Recent network events, newest first (copies: the REST green thread keeps them). Not
        ``events``: OSKenApp's own event queue has that name."""
        return self.core.events.query(since, limit)

    def health(self) -> dict:
        c = self.core
        out = views.health(
            c.net,
            policies=len(c.policies),
            uptime_s=time.time() - self.started,
            last_compile_ms=c.last_compile_ms,
            counters=c.counters,
            repairs=c.recon.repairs,
        )
        out["sharing"] = c.sharing is not None  # the uplink shared by need (--sharing), or static caps
        if self.ha is not None:
            out["ha"] = self.ha.status()  # this node's role, who leads, whether etcd answers
            # As leader: how many connected switches confirmed us as MASTER, and when the last did.
            confirmed = [t for d, t in self._master_at.items() if d in self.datapaths]
            out["ha"]["master_on"] = len(confirmed)
            out["ha"]["switches"] = len(self.datapaths)
            whole = self._leading and confirmed and len(confirmed) == len(self.datapaths)
            out["ha"]["master_on_all_at"] = max(confirmed) if whole else None
        return out

    def _serve_rest(self) -> None:
        s = self.settings
        assert s.store is not None
        from eventlet import tpool  # a year's report reads SQLite for seconds: an OS thread, not the loop

        wsgi = self._wsgi = rest.make_app(
            s.store,
            self.policies_changed,
            self,
            s.access,
            open_metrics=s.open_metrics,
            offload=tpool.execute,
            uplink_kbps=s.uplink_kbps,
        )
        cert, key = s.rest_tls or (None, None)
        server.serve(wsgi, s.rest_host, s.rest_port, cert, key)
