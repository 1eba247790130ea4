"""The os-ken shell: OpenFlow events in, core calls, desired-state differences out.

Everything that decides anything lives in the pure core (graph, compiler, arp, policy);
this module only translates. It is the one place that talks to switches.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.lib.packet import arp as arp_pkt
from os_ken.lib.packet import ethernet, ether_types, ipv4, lldp, packet
from os_ken.ofproto import ofproto_v1_3

from controller import COOKIE, COOKIE_MASK
from controller.openflow import ofmsg, stats
from controller.api import rest
from controller.core import views
from controller.core.arp import Arp, ArpResponder, Send
from controller.core.compiler import GATEWAY_MAC, Compiler, hosts_on_switch
from controller.core.graph import Network, link_key
from controller.core.policy import Policy
from controller.core.state import SwitchState, apply, diff, total_flows
from controller.api.store import PolicyStore
from controller.core.topology import Topology

LOG = logging.getLogger("kendali")
DISCOVERY_INTERVAL = 1.0  # seconds between LLDP probes on ports that are not (yet) links
DISCOVERY_BURST = 3.0  # after a switch connects, every port is probed each round for this long
SETTLE_SECONDS = 5.0  # after start, before discovery is compared with the declared topology
READ_TIMEOUT = 3.0  # seconds a switch has to report its flows, groups and meters after connecting


@dataclass
class Settings:
    """What the CLI hands the app (os-ken builds apps itself, so this is module state)."""

    topology: Topology | None = None
    store: PolicyStore | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    rest_port: int = 8080
    rest_host: str = "0.0.0.0"
    lldp_interval: float = 0.1
    link_timeout: float = 0.5
    open_reads: bool = True
    protect: bool = True
    stats_interval: float = 10.0  # usage telemetry: seconds between polls of each switch


SETTINGS = Settings()
# A switch that has not answered our barrier for this long is judged on LLDP anyway.
BUSY_MAX_S = 2.0


def lldp_frame(dpid: int, port: int, hw_addr: str) -> bytes:
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=lldp.LLDP_MAC_NEAREST_BRIDGE, src=hw_addr,
                                       ethertype=ether_types.ETH_TYPE_LLDP))
    pkt.add_protocol(lldp.lldp([
        lldp.ChassisID(subtype=lldp.ChassisID.SUB_LOCALLY_ASSIGNED, chassis_id=b"kendali:%016x" % dpid),
        lldp.PortID(subtype=lldp.PortID.SUB_PORT_COMPONENT, port_id=b"%d" % port),
        lldp.TTL(ttl=10),
        lldp.End(),
    ]))
    pkt.serialize()
    return bytes(pkt.data)


def parse_lldp(pkt: packet.Packet) -> tuple[int, int] | None:
    """(dpid, port) of a Kendali LLDP frame, None for anything else."""
    lp = pkt.get_protocol(lldp.lldp)
    if not lp or len(lp.tlvs) < 2:
        return None
    chassis, port = lp.tlvs[0], lp.tlvs[1]
    try:
        cid = bytes(chassis.chassis_id)
        if not cid.startswith(b"kendali:"):
            return None
        return int(cid[8:], 16), int(bytes(port.port_id))
    except (AttributeError, ValueError):
        return None


def arp_frame(a: Arp) -> bytes:
    pkt = packet.Packet()
    dst = a.dst_mac if a.op == 2 else "ff:ff:ff:ff:ff:ff"
    pkt.add_protocol(ethernet.ethernet(dst=dst, src=a.src_mac, ethertype=ether_types.ETH_TYPE_ARP))
    pkt.add_protocol(arp_pkt.arp(opcode=a.op, src_mac=a.src_mac, src_ip=a.src_ip, dst_mac=a.dst_mac, dst_ip=a.dst_ip))
    pkt.serialize()
    return bytes(pkt.data)


class KendaliApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = SETTINGS
        self.net = Network(self.settings.topology)
        self.arp = ArpResponder(self.net)
        self.compiler = Compiler(count=True)  # telemetry: uncapped OPDs get counting meters
        self.datapaths: dict[int, Any] = {}
        self.hw_addr: dict[tuple[int, int], str] = {}
        self._reported: list[str] | None = None  # discrepancies last logged
        self._reading: dict[int, dict] = {}  # dpid -> state being read back after connect
        self.actual: dict[int, SwitchState] = {}
        store = self.settings.store
        self.policies: dict[str, Policy] = store.all() if store else {}
        self.started = time.time()
        self.last_compile_ms = 0.0
        self._dirty = hub.Event()
        self._compile_lock = hub.Semaphore(1)  # see recompute()
        # Switches still working through changes we sent (barrier not yet answered), and
        # when each last answered one; see _expire().
        self._barrier_pending: dict[int, tuple[int, float]] = {}  # dpid -> (xid, sent at)
        self._barrier_done: dict[int, float] = {}
        self._discovering_until = 0.0  # probe every port each round until then
        # ---- telemetry (issue 8) ----
        store = self.settings.store
        self.telemetry = stats.Telemetry(self.net, self.datapaths, self.settings.stats_interval,
                                         store.state_dir if store else None, self.policies)

    def start(self) -> Any:
        thread = super().start()
        self.threads.append(hub.spawn(self._recompute_loop))
        self.threads.append(hub.spawn(self._lldp_loop))
        self.threads.append(hub.spawn(self.telemetry.run, hub.sleep))  # telemetry
        if self.settings.store is not None:
            self.threads.append(hub.spawn(self._serve_rest))
        t = self.settings.topology
        LOG.info("Kendali controller up: topology %s, LLDP every %.2f s, link timeout %.2f s, protection %s",
                 f"{t.name} ({len(t.switches)} switches declared)" if t else "discovered only",
                 self.settings.lldp_interval, self.settings.link_timeout, "on" if self.settings.protect else "off")
        return thread

    # ---- REST ------------------------------------------------------------------------
    def topology(self) -> dict:
        return views.topology(self.net, self.telemetry.link_usage())  # telemetry: link utilisation

    # ---- telemetry: what REST reads (GET /v1/usage, /v1/usage/{opd}, /metrics) ----
    def usage(self) -> dict:
        return self.telemetry.usage_view()

    def usage_history(self, opd: str, frm: float, to: float, step: int | None, now: float) -> dict | None:
        return self.telemetry.history(opd, frm, to, step, now)

    def metrics(self) -> tuple[bytes, str]:
        return self.telemetry.metrics.exposition()

    def health(self) -> dict:
        return views.health(self.net, policies=len(self.policies), uptime_s=time.time() - self.started,
                            last_compile_ms=self.last_compile_ms)

    def policies_changed(self, policies: dict[str, Policy]) -> None:
        """Called by the REST app once a change is persisted: enforce it right away."""
        self.policies = policies
        self.recompute()

    def _serve_rest(self) -> None:
        s = self.settings
        wsgi = rest.make_app(s.store, self.policies_changed, self, s.tokens, s.open_reads)
        LOG.info("REST API on http://%s:%d/v1/ (reads %s)", s.rest_host, s.rest_port,
                 "open" if s.open_reads else "need the token")
        hub.WSGIServer((s.rest_host, s.rest_port), wsgi).serve_forever()

    # ---- compile and reconcile -------------------------------------------------
    def schedule(self) -> None:
        self._dirty.set()

    def _recompute_loop(self) -> None:
        while True:
            self._dirty.wait()
            # Let a burst of events (a switch's ports, many ARPs) land before compiling once.
            hub.sleep(0.02)
            self._dirty.clear()
            try:
                self.recompute()
            except Exception:  # keep the controller alive; the next event retries
                LOG.exception("recompute failed")

    def recompute(self) -> None:
        """Compile the graph and policies, and send every switch its difference.

        One recompute at a time: sending yields (os-ken's send queue holds 16 messages),
        and a second recompute started meanwhile (a failover, a REST change) would send
        its own difference interleaved with the first one's, leaving a switch holding a
        mix while we believe it holds the later state. Nothing would then correct it until
        the next change (seen once: an OPD switch cut off at lab start for a full minute).
        """
        with self._compile_lock:
            t0 = time.perf_counter()
            desired = self.compiler.compile(self.net, self.policies, time.time(), protect=self.settings.protect)
            self.last_compile_ms = (time.perf_counter() - t0) * 1000
            self.telemetry.planned(self.compiler, self.policies, time.time(), self.last_compile_ms / 1000)
            sent = 0
            for dpid, dp in list(self.datapaths.items()):
                have = self.actual.get(dpid)
                if have is None:
                    continue  # still reading what the switch holds
                want = desired.get(dpid, SwitchState())
                ch = diff(have, want)
                if not ch:
                    continue
                # Recorded before sending: a read-back that starts while we send (after an
                # error from the switch) replaces it with what the switch reports.
                self.actual[dpid] = apply(have, ch)
                self.telemetry.sent(dpid, ch, time.time())  # telemetry: meters we (re)make count from 0
                for msg in ofmsg.changes(dp, ch):
                    dp.send_msg(msg)
                barrier = dp.ofproto_parser.OFPBarrierRequest(dp)
                # Recorded before sending: the reply may be handled before send_msg returns.
                self._barrier_pending[dpid] = (dp.set_xid(barrier), time.time())
                dp.send_msg(barrier)
                sent += ch.count()
            if sent:
                LOG.info("compiled %d flows in %.1f ms; sent %d changes", total_flows(desired),
                         self.last_compile_ms, sent)

    # ---- switches ------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        # After a (re)connect, read what the switch holds so that only differences are
        # sent: a controller restart must not blip anyone's traffic.
        self._read_state(dp)
        dp.send_msg(dp.ofproto_parser.OFPPortDescStatsRequest(dp, 0))

    def _read_state(self, dp: Any) -> None:
        """Ask the switch for its Kendali flows, groups and meters; reconcile once all arrive."""
        ofp, parser = dp.ofproto, dp.ofproto_parser
        self.actual.pop(dp.id, None)
        reading = {"flows": [], "groups": [], "meters": [], "pending": {"flows", "groups", "meters"}}
        self._reading[dp.id] = reading
        dp.send_msg(parser.OFPFlowStatsRequest(dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY,
                                               COOKIE, COOKIE_MASK, parser.OFPMatch()))
        dp.send_msg(parser.OFPGroupDescStatsRequest(dp, 0))
        dp.send_msg(parser.OFPMeterConfigStatsRequest(dp, 0, ofp.OFPM_ALL))
        hub.spawn_after(READ_TIMEOUT, self._read_timeout, dp, reading)

    def _read_timeout(self, dp: Any, reading: dict) -> None:
        # Only this read times out: a newer one (after a resync) has its own timer.
        if self._reading.get(dp.id) is reading and self.datapaths.get(dp.id) is dp:
            LOG.warning("switch %s did not report its %s; assuming none", self._name(dp.id),
                        " and ".join(sorted(reading["pending"])))
            reading["pending"].clear()
            self._finish_read(dp.id)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def _error(self, ev: Any) -> None:
        msg = ev.msg
        dp = msg.datapath
        LOG.error("switch %s refused a message: type %d code %d; reading its state again", self._name(dp.id),
                  msg.type, msg.code)
        # What we believe the switch holds is now wrong: read it back, then send the difference.
        if dp.id in self.datapaths and dp.id not in self._reading:
            self._read_state(dp)

    def _read_part(self, ev: Any, kind: str, items: list) -> None:
        dp = ev.msg.datapath
        reading = self._reading.get(dp.id)
        if reading is None:
            return
        reading[kind].extend(items)
        if ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
            return
        reading["pending"].discard(kind)
        if not reading["pending"]:
            self._finish_read(dp.id)

    def _finish_read(self, dpid: int) -> None:
        reading = self._reading.pop(dpid)
        have = SwitchState(
            {f.key: f for f in reading["flows"]},
            {g.group_id: g for g in reading["groups"]},
            {m.meter_id: m for m in reading["meters"]},
        )
        self.actual[dpid] = have
        # The switch remembers its hosts: a restarted controller keeps forwarding to them
        # instead of waiting for each to speak again.
        recovered = [h for h in hosts_on_switch(have) if self.net.recover_host(h[0], h[1], dpid, h[2])]
        if recovered:
            LOG.info("switch %s: %d hosts recovered from its flows", self._name(dpid), len(recovered))
        self.schedule()

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev: Any) -> None:
        ofp = ev.msg.datapath.ofproto
        self._read_part(ev, "flows", [ofmsg.flow_from_stats(ofp, s) for s in ev.msg.body])

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, MAIN_DISPATCHER)
    def _group_desc(self, ev: Any) -> None:
        ofp = ev.msg.datapath.ofproto
        self._read_part(ev, "groups", [ofmsg.group_from_desc(ofp, g) for g in ev.msg.body])

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, MAIN_DISPATCHER)
    def _meter_config(self, ev: Any) -> None:
        ofp = ev.msg.datapath.ofproto
        self._read_part(ev, "meters", [ofmsg.meter_from_config(ofp, m) for m in ev.msg.body])

    # ---- telemetry: statistics replies ----
    @set_ev_cls(ofp_event.EventOFPMeterStatsReply, MAIN_DISPATCHER)
    def _meter_stats(self, ev: Any) -> None:
        self.telemetry.reply(ev.msg, "meter")

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def _port_stats(self, ev: Any) -> None:
        self.telemetry.reply(ev.msg, "port")

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc(self, ev: Any) -> None:
        dp = ev.msg.datapath
        ports = {}
        for p in ev.msg.body:
            if p.port_no > dp.ofproto.OFPP_MAX:
                continue
            ports[p.port_no] = self._port_is_up(dp, p)
            self.hw_addr[(dp.id, p.port_no)] = p.hw_addr
        self.datapaths[dp.id] = dp
        self.net.switch_up(dp.id, ports, time.time())
        name = self._name(dp.id)
        LOG.info("switch %s connected with %d ports", name, len(ports))
        self._send_lldp(dp.id)
        self._discovering_until = time.time() + DISCOVERY_BURST
        self.schedule()
        # Edge ports leave probation after a while: compile again then.
        hub.spawn_after(self.net.edge_probation + 0.05, self.schedule)

    @staticmethod
    def _port_is_up(dp: Any, p: Any) -> bool:
        ofp = dp.ofproto
        return not (p.state & ofp.OFPPS_LINK_DOWN) and not (p.config & ofp.OFPPC_PORT_DOWN)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev: Any) -> None:
        dpid = ev.msg.datapath.id
        pending = self._barrier_pending.get(dpid)
        if pending and pending[0] == ev.msg.xid:  # replies come in order: all done
            del self._barrier_pending[dpid]
            self._barrier_done[dpid] = time.time()

    @set_ev_cls(ofp_event.EventOFPStateChange, [DEAD_DISPATCHER])
    def _state_change(self, ev: Any) -> None:
        dp = ev.datapath
        if dp.id is not None and self.datapaths.get(dp.id) is dp:
            del self.datapaths[dp.id]
            self.actual.pop(dp.id, None)
            self._reading.pop(dp.id, None)
            self._barrier_pending.pop(dp.id, None)
            self.net.switch_down(dp.id)
            self.telemetry.forget(dp.id)  # telemetry
            LOG.warning("switch %s disconnected", self._name(dp.id))
            self.schedule()

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev: Any) -> None:
        msg = ev.msg
        dp, p = msg.datapath, msg.desc
        if p.port_no > dp.ofproto.OFPP_MAX:
            return
        up = msg.reason != dp.ofproto.OFPPR_DELETE and self._port_is_up(dp, p)
        self.hw_addr[(dp.id, p.port_no)] = p.hw_addr
        t0 = time.perf_counter()
        lost = self.net.port_status(dp.id, p.port_no, up, time.time())
        if lost:
            # Switches already bypass the link by fast failover; restore shortest paths now.
            self.telemetry.failover(len(lost))  # telemetry
            self.recompute()
            LOG.warning("failover: link %s lost carrier; switches bypassed it by fast failover, controller "
                        "restored shortest paths in %.1f ms", ", ".join(self._fmt_link(k) for k in lost),
                        (time.perf_counter() - t0) * 1000)
        else:
            self.schedule()
        if up:
            self._send_lldp(dp.id, [p.port_no])
            self._discovering_until = max(self._discovering_until, time.time() + 1.0)

    # ---- packets ---------------------------------------------------------------------
    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev: Any) -> None:
        msg = ev.msg
        dp = msg.datapath
        in_port = msg.match.get("in_port")
        try:
            pkt = packet.Packet(msg.data)
        except Exception:  # a malformed frame is dropped, not a crash
            return
        eth = pkt.get_protocol(ethernet.ethernet)
        if eth is None or in_port is None:
            return
        now = time.time()
        if eth.ethertype == ether_types.ETH_TYPE_LLDP:
            src = parse_lldp(pkt)
            if src and self.net.link_seen(src[0], src[1], dp.id, in_port, now):
                key = link_key(src[0], src[1], dp.id, in_port)
                held = self.net.hold_time(key, now)
                LOG.info("link %s up%s", self._fmt_link(key), f" after a {held:.0f} s flap-damping hold" if held else "")
                self.schedule()
            return
        if eth.ethertype == ether_types.ETH_TYPE_ARP:
            a = pkt.get_protocol(arp_pkt.arp)
            if a is None:
                return
            changed, sends = self.arp.handle(
                dp.id, in_port, Arp(a.opcode, a.src_mac, a.src_ip, a.dst_mac, a.dst_ip), now)
            if changed:
                self.schedule()
            self._send(sends, msg.data)
            return
        ip = pkt.get_protocol(ipv4.ipv4)
        if ip is not None and eth.dst == GATEWAY_MAC:
            # Routed to a host we have not learned yet: ask for it; the sender retries.
            self._send(self.arp.probe(ip.dst, now), msg.data)

    def _send(self, sends: list[Send], original: bytes) -> None:
        for s in sends:
            dp = self.datapaths.get(s.dpid)
            if dp is None:
                continue
            data = arp_frame(s.arp) if s.arp else original
            self._packet_out(dp, s.port, data)

    @staticmethod
    def _packet_out(dp: Any, port: int, data: bytes) -> None:
        ofp, parser = dp.ofproto, dp.ofproto_parser
        dp.send_msg(parser.OFPPacketOut(dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                                        actions=[parser.OFPActionOutput(port)], data=data))

    # ---- LLDP: discovery and silent-failure detection ------------------------------
    def _send_lldp(self, dpid: int, ports: list[int] | None = None) -> None:
        dp = self.datapaths.get(dpid)
        if dp is None:
            return
        for port, info in self.net.ports.get(dpid, {}).items():
            if info.up and (ports is None or port in ports):
                self._packet_out(dp, port, lldp_frame(dpid, port, self.hw_addr.get((dpid, port), "02:00:00:00:00:00")))

    def _lldp_loop(self) -> None:
        """Probe the links each interval; a link that missed enough rounds is dead.

        Rounds, not wall time, decide: a link is dead when it missed the last ``miss``
        rounds, so a controller that was itself held up (a long compile) does not blame
        the links for its own delay.
        """
        interval = self.settings.lldp_interval
        miss = max(2, math.ceil(self.settings.link_timeout / interval))
        rounds: collections.deque[float] = collections.deque(maxlen=miss)
        every = max(1, round(DISCOVERY_INTERVAL / interval))
        n = 0
        while True:
            hub.sleep(interval)
            now = time.time()
            # After a stall, replies to earlier rounds may still sit unread: judge nothing
            # this round (the next one judges normally).
            late = bool(rounds) and now - rounds[-1] > 2 * interval
            if len(rounds) == miss and not late:
                self._expire(rounds[0], now)
            rounds.append(now)
            # Links are probed every round (their liveness is at stake); the other ports,
            # where a new link could appear, about once a second (discovery only).
            n += 1
            full = n % every == 0 or now < self._discovering_until
            for dpid in list(self.datapaths):
                self._send_lldp(dpid, None if full else sorted(self.net.link_ports(dpid)))
            self._send(self.arp.probe_declared(now), b"")
            if full:
                self._check_declared(now)

    def _check_declared(self, now: float) -> None:
        """Log where discovery and the declared topology disagree, whenever that changes
        (after a settling time, so switches still connecting are not reported)."""
        if self.settings.topology is None or now - self.started < SETTLE_SECONDS:
            return
        problems = self.net.discrepancies()
        if problems == self._reported:
            return
        self._reported = problems
        if problems:
            LOG.warning("topology check: %d difference(s) from %s:\n  %s", len(problems),
                        self.settings.topology.source or "the declared topology", "\n  ".join(problems))
        else:
            LOG.info("topology check: discovery matches the declared topology")

    def _expire(self, cutoff: float, now: float) -> None:
        # A switch works through our OpenFlow messages in order, so LLDP we sent it behind
        # hundreds of flow changes leaves late, and its packet-ins wait too: a switch busy
        # with our changes at any time since the cutoff is not judged this round (seen at
        # lab start: a link declared silent while both ends were installing 2,000 flows).
        busy = {d for d, (_xid, sent) in self._barrier_pending.items() if now - sent < BUSY_MAX_S}
        busy |= {d for d, t in self._barrier_done.items() if t > cutoff}
        silent = {k: now - l.last_seen for k, l in self.net.links.items() if l.last_seen < cutoff}
        dead = self.net.expire_unseen_since(cutoff, now, spare=busy)
        if not dead:
            return
        t0 = time.perf_counter()
        self.telemetry.failover(len(dead))  # telemetry
        self.recompute()
        for k in dead:
            LOG.warning("failover: link %s silent for %.0f ms (carrier up); routed around in %.1f ms",
                        self._fmt_link(k), silent[k] * 1000, (time.perf_counter() - t0) * 1000)

    # ---- names -------------------------------------------------------------------------
    def _name(self, dpid: int) -> str:
        t = self.settings.topology
        sw = t.switch_by_dpid(dpid) if t else None
        return sw.name if sw else f"{dpid:#x}"

    def _fmt_link(self, k: tuple) -> str:
        return f"{self._name(k[0])}:{k[1]}-{self._name(k[2])}:{k[3]}"
