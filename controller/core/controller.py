"""Every decision of the running controller, in one object that the os-ken shell feeds
events to and that answers with what to send. Pure: no os-ken, no sockets, no clock
(``now`` is passed in; perf_counter only times compiles for the log), no files (what to
remember is handed back, see ``memory``).

The shell (controller.openflow.app) calls these methods one at a time, in the order the
events happened, from one loop: OpenFlow events, the LLDP tick, the compile timer and
REST changes alike. Nothing else changes the graph, the desired state or what the
switches are believed to hold, so no method ever runs concurrently with another (the
interleaving that once cut an OPD switch off for a minute cannot happen).

Each method returns a list of actions:
    PacketOut(dpid, port, data)   send this frame out of that port
    SendChanges(dpid, changes)    send these flow/group/meter changes, then a barrier
                                  (report its xid with ``sent``)
    ReadState(dpid, parts)        ask the switch what it holds ("flows", "groups",
                                  "meters", or "counts": aggregate flow counts)
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from controller.core import frames
from controller.core import sharing as sharing_mod
from controller.core.address import Locators
from controller.core.arp import ArpResponder, Send
from controller.core.compiler import GATEWAY_MAC, Compiler, PolicyLike, hosts_on_switch
from controller.core.events import Events
from controller.core.graph import HostEntry, LinkKey, Network, link_key
from controller.core.liveness import Liveness
from controller.core.lldp import LldpSigner
from controller.core.ratelog import RateLimitedLog
from controller.core.reconcile import Finished, Reconciler
from controller.core.state import Changes, Flow, SwitchState, total_flows
from controller.core.topology import Topology

LOG = logging.getLogger("kendali")
SETTLE_SECONDS = 5.0  # after start, before discovery is compared with the declared topology
RESTORE_MAX = 10.0  # after a restart, wait this long at most for the switches last seen
SWITCH_SETTLE = 1.0  # after a switch is read back, only additions for this long (links rediscovered)
MEMORY_EVERY = 1.0  # seconds between writes of network.json
COMPILE_DELAY = 0.02  # let a burst of events (a switch's ports, many ARPs) land before compiling
# Sharing hands out this share of the purchased uplink. Meters pass bursts (a bucket of one
# second of rate, refilled whole at every re-size), so meters that add up to exactly what the
# ISP's shaper passes would keep its queue full; the 3 % leaves it room to drain. (A returning
# OPD's starvation, first blamed on the shaper, was BBR pacing at what it learned behind a tiny
# meter: docs/sharing.md, "Coming back".)
UPLINK_HEADROOM = 0.97


@dataclass(frozen=True)
class PacketOut:
    dpid: int
    port: int
    data: bytes


@dataclass(frozen=True)
class SendChanges:
    dpid: int
    changes: Changes


@dataclass(frozen=True)
class ReadState:
    dpid: int
    parts: tuple[str, ...]


Action = PacketOut | SendChanges | ReadState


@dataclass
class Config:
    topology: Topology | None = None
    lldp_interval: float = 0.1
    link_timeout: float = 0.5
    protect: bool = True
    keep_foreign: bool = False
    audit_interval: float = 5.0  # 0: no audit
    lldp_secret: bytes = b""
    # Sharing the uplink by need (controller.core.sharing): None is static caps (the default).
    sharing: sharing_mod.Settings | None = None
    uplink_kbps: float | None = None  # what the ISP uplink buys (``purchased_uplink_kbps``)


def purchased_uplink_kbps(topology: Topology | None, override_mbps: float | None = None) -> float | None:
    """What the ISP uplink buys, kbit/s: ``override_mbps`` if given (the hook for a setting
    that says what is bought now, e.g. the report settings' uplink_mbps), else the topology's
    ``uplink.capacity_mbps``; None when neither says."""
    if override_mbps:
        return float(override_mbps) * 1000
    up = topology.uplink if topology else None
    return float(up.capacity_mbps) * 1000 if up and up.capacity_mbps else None


@dataclass
class Counters:
    """What the controller counts about itself (logged, shown in /v1/health and metrics)."""

    failovers: int = 0
    frames_dropped: int = 0
    lldp_refused: int = 0
    compiles: int = 0
    changes_sent: int = 0
    extra: dict[str, int] = field(default_factory=dict)


class Controller:
    def __init__(
        self,
        config: Config,
        policies: Mapping[str, PolicyLike] | None = None,
        memory: Mapping[str, Any] | None = None,
        now: float = 0.0,
    ) -> None:
        if not config.lldp_secret:
            raise ValueError("an LLDP secret is needed")
        memory = memory or {}
        self.config = config
        self.net = Network(config.topology)
        # Hosts' ARP caches hold the locator MACs given out before a restart: keep them.
        self.net.restore_locators(Locators.from_json(memory.get("locators")))
        self.arp = ArpResponder(self.net)
        # count=True: OPDs without a policy and declared subnets no policy covers get
        # counting meters too (usage telemetry, controller.core.usage).
        self.compiler = Compiler(
            memory.get("meter_ids") if isinstance(memory.get("meter_ids"), dict) else None, count=True
        )
        self.liveness = Liveness(config.lldp_interval, config.link_timeout)
        # Genuine LLDP can come back seconds late from a starved loop (2.4 s seen with two busy
        # loops beside a REST load); refused as stale, it would look like a dead link. The
        # proof and the once-only rule stop replays, so freshness can be generous.
        self.signer = LldpSigner(config.lldp_secret, max_age=max(10.0, 4 * config.link_timeout))
        self.recon = Reconciler(config.keep_foreign)
        self.policies: dict[str, PolicyLike] = dict(policies or {})
        self.counters = Counters()
        self.events = Events()  # the recent ones, for people (GET /v1/events, the web console)
        self.started = now
        self.hw_addr: dict[tuple[int, int], str] = {}
        self.last_compile_ms = 0.0
        self.dirty = False  # a compile is wanted
        self._remembered: dict[int, list[HostEntry]] = _remembered_hosts(memory)
        self._restore_wait: set[int] = {int(d) for d in memory.get("switches", []) if isinstance(d, int)}
        self._restoring = bool(self._restore_wait)
        self._settle: dict[int, float] = {}  # dpid -> only additions until then
        self._connecting: set[int] = set()  # being read back after connecting
        self._found: set[int] = set()  # ends of links found since the last compile (update order)
        self._wakes: list[float] = []  # times at which to compile again (probation, settle)
        self._next_audit = now + config.audit_interval
        self._reported: list[str] | None = None
        self._memory_saved: tuple[object, ...] | None = None
        self._memory_at = 0.0
        self.log = RateLimitedLog(LOG)
        self.sharing = sharing_mod.Sharing(config.sharing) if config.sharing else None
        self.desired: dict[int, SwitchState] = {}  # the last compile's, what share() re-sizes meters in
        self._recheck: set[int] = set()  # switches to diff at the next compile whatever changed
        if self.sharing is not None:
            if not config.uplink_kbps:
                raise ValueError("sharing needs the purchased uplink (Config.uplink_kbps)")
            # Start within the uplink: at the caps (65 Mbit/s of caps on 30 bought, in the lab)
            # the ISP's shaper decides until the first period, and what it lets through looks
            # like each OPD's demand. Measured in the lab: A, with a 10 Mbit/s guarantee, then got
            # 5 for 20 s. With no demand known, every OPD starts with an even share of the uplink.
            self._step(now, {})
        if self._restoring:
            LOG.info(
                "restoring after a restart: waiting up to %.0f s for %d switches last seen; until then only "
                "additions are sent",
                RESTORE_MAX,
                len(self._restore_wait),
            )

    # ---- switches ------------------------------------------------------------------------
    def switch_connected(self, dpid: int, now: float) -> list[Action]:
        """A switch (re)connected: read what it holds before sending it anything."""
        parts = self.recon.start_read(dpid, now)
        self._connecting.add(dpid)
        return [ReadState(dpid, parts)] if parts else []

    def ports(self, dpid: int, ports: Mapping[int, tuple[bool, str]], now: float) -> list[Action]:
        """The switch's ports (number -> (up, hardware address)) after it connected."""
        for p, (_up, hw) in ports.items():
            self.hw_addr[(dpid, p)] = hw
        self.net.switch_up(dpid, {p: up for p, (up, _hw) in ports.items()}, now)
        LOG.info("switch %s connected with %d ports", self.name(dpid), len(ports))
        self.events.add(now, "switch_up", f"switch {self.name(dpid)} connected ({len(ports)} ports)", **self._sw(dpid))
        self._recover_remembered(dpid)
        self.liveness.discover(now)
        self._settle[dpid] = now + SWITCH_SETTLE
        self._wake(now + self.net.edge_probation + 0.05)  # edge ports leave probation: compile again
        self.dirty = True
        return self._lldp(dpid, None, now)

    def _recover_remembered(self, dpid: int) -> None:
        recovered = [h for h in self._remembered.pop(dpid, []) if self.net.recover_host(h.mac, h.ip, dpid, h.port)]
        if recovered:
            LOG.info("switch %s: %d hosts remembered from before the restart", self.name(dpid), len(recovered))

    def switch_disconnected(self, dpid: int, now: float) -> list[Action]:
        self._connecting.discard(dpid)
        self.recon.disconnected(dpid)
        self.liveness.forget(dpid)
        self.net.switch_down(dpid)
        LOG.warning("switch %s disconnected", self.name(dpid))
        self.events.add(now, "switch_down", f"switch {self.name(dpid)} disconnected", **self._sw(dpid))
        self.dirty = True
        return []

    def port_status(
        self, dpid: int, port: int, up: bool, hw_addr: str, now: float, why: str = "lost carrier"
    ) -> list[Action]:
        """A port went up or down (``why``: the reason in the failover log, see Liveness.why_down)."""
        self.hw_addr[(dpid, port)] = hw_addr
        t0 = time.perf_counter()
        lost = self.net.port_status(dpid, port, up, now)
        out: list[Action] = []
        if lost:
            # Switches already bypass the link by fast failover; restore shortest paths now.
            out += self.compile(now, {d for k in lost for d in (k[0], k[2])}, lost=True)
            self.counters.failovers += len(lost)
            LOG.warning(
                "failover: link %s %s; switches bypassed it by fast failover, controller "
                "restored shortest paths in %.1f ms",
                ", ".join(self.fmt_link(k) for k in lost),
                why,
                (time.perf_counter() - t0) * 1000,
            )
            for k in lost:
                text = f"failover: link {self.fmt_link(k)} {why}; traffic bypassed it"
                self.events.add(now, "failover", text, link=self.fmt_link(k))
        else:
            self.dirty = True
        if up:
            self.liveness.discover(now, 1.0)
            out += self._lldp(dpid, [port], now)
        return out

    # ---- what a switch reports -------------------------------------------------------------
    def read_part(
        self,
        dpid: int,
        kind: str,
        items: list[Any],
        now: float,
        more: bool = False,
        foreign: list[Flow] | None = None,
        counts: tuple[int, int] | None = None,
    ) -> list[Action]:
        fin = self.recon.part(dpid, kind, items, more, foreign, counts)
        return self._finished(fin, now) if fin else []

    def _finished(self, fin: Finished, now: float) -> list[Action]:
        dpid = fin.dpid
        self._recheck.add(dpid)  # what it holds was just read: compare it with what it should
        if not fin.audit:
            have = self.recon.actual.get(dpid, SwitchState())
            # The switch remembers its hosts: a restarted controller keeps forwarding to them
            # instead of waiting for each to speak again. The state dir's memory comes
            # first: it has their addresses, which the flows carry only with routing.
            self._recover_remembered(dpid)
            recovered = [h for h in hosts_on_switch(have) if self.net.recover_host(h[0], h[1], dpid, h[2], h[3])]
            if recovered:
                LOG.info("switch %s: %d hosts recovered from its flows", self.name(dpid), len(recovered))
            if self._restoring:
                self._restore_wait.discard(dpid)
            if dpid in self._connecting:  # a reconnect, not a repair: links are being rediscovered
                self._connecting.discard(dpid)
                self._settle[dpid] = max(self._settle.get(dpid, 0.0), now + SWITCH_SETTLE)
                self._wake(self._settle[dpid])
            self.dirty = True
            return []
        if not fin.drift:
            return []
        LOG.warning("audit: switch %s differs from what it should hold (%s); repairing", self.name(dpid), fin.drift)
        text = f"audit: switch {self.name(dpid)} differed from what it should hold ({fin.drift}); repaired"
        self.events.add(now, "drift_repaired", text, **self._sw(dpid))
        if fin.needs_read:
            parts = self.recon.start_read(dpid, now)
            return [ReadState(dpid, parts)] if parts else []
        return self.compile(now)

    def barrier_reply(self, dpid: int, xid: int, now: float) -> None:
        self.liveness.barrier_reply(dpid, xid, now)

    def sent(self, dpid: int, barrier_xid: int, now: float) -> None:
        """The shell sent a SendChanges and the barrier after it, with this xid."""
        self.liveness.barrier_sent(dpid, barrier_xid, now)

    def error(self, dpid: int, kind: int, code: int, now: float) -> list[Action]:
        """The switch refused a message: what we believe it holds is now wrong."""
        LOG.error("switch %s refused a message: type %d code %d; reading its state again", self.name(dpid), kind, code)
        if self.recon.reading.get(dpid) is not None or dpid not in self.net.ports:
            return []
        parts = self.recon.start_read(dpid, now)
        return [ReadState(dpid, parts)] if parts else []

    # ---- packets ---------------------------------------------------------------------------
    def packet_in(self, dpid: int, in_port: int, data: bytes, now: float) -> list[Action]:
        try:
            frame = frames.parse(data)
        except frames.FrameError as exc:
            self.counters.frames_dropped += 1
            self.log.warning("malformed frame", now, "dropped a frame from %s:%d: %s", self.name(dpid), in_port, exc)
            return []
        p = frame.payload
        if isinstance(p, frames.Lldp):
            return self._lldp_in(dpid, in_port, p, now)
        if isinstance(p, frames.Arp):
            changed, sends = self.arp.handle(dpid, in_port, p, now)
            self.dirty |= changed
            return self._sends(sends, data)
        if isinstance(p, frames.Ipv4) and frame.eth_dst == GATEWAY_MAC:
            # Routed to a host we have not learned yet: ask for it; the sender retries.
            return self._sends(self.arp.probe(p.dst, now), data)
        return []

    def _lldp_in(self, dpid: int, in_port: int, lldp: frames.Lldp, now: float) -> list[Action]:
        why = self.signer.verify(lldp, now)
        if why is not None:
            self.counters.lldp_refused += 1
            self.log.warning(
                "LLDP refused",
                now,
                "refused LLDP at %s:%d claiming %s:%d: %s",
                self.name(dpid),
                in_port,
                self.name(lldp.dpid),
                lldp.port,
                why,
            )
            return []
        if self.net.link_seen(lldp.dpid, lldp.port, dpid, in_port, now):
            key = link_key(lldp.dpid, lldp.port, dpid, in_port)
            held = self.net.hold_time(key, now)
            hold = f" after a {held:.0f} s flap-damping hold" if held else ""
            LOG.info("link %s up%s", self.fmt_link(key), hold)
            self.events.add(now, "link_up", f"link {self.fmt_link(key)} up{hold}", link=self.fmt_link(key))
            self._found |= {key[0], key[2]}
            self.dirty = True
        return []

    def _sends(self, sends: list[Send], original: bytes) -> list[Action]:
        return [
            PacketOut(s.dpid, s.port, frames.arp_frame(s.arp) if s.arp else original)
            for s in sends
            if s.dpid in self.net.ports
        ]

    def _lldp(self, dpid: int, ports: list[int] | None, now: float) -> list[Action]:
        out: list[Action] = []
        for port, info in sorted(self.net.ports.get(dpid, {}).items()):
            if info.up and (ports is None or port in ports):
                hw = self.hw_addr.get((dpid, port), "02:00:00:00:00:00")
                out.append(PacketOut(dpid, port, self.signer.frame(dpid, port, hw, now)))
        return out

    # ---- policies --------------------------------------------------------------------------
    def policies_changed(self, policies: Mapping[str, PolicyLike], now: float) -> list[Action]:
        """The REST API persisted a change: enforce it right away."""
        self.policies = dict(policies)
        return self.compile(now)

    # ---- time ------------------------------------------------------------------------------
    def tick(self, now: float) -> list[Action]:
        """One round (every ``liveness.tick``): LLDP where due (controller.core.liveness), and
        whatever else is due."""
        out: list[Action] = []
        r = self.liveness.round(now)
        if r.cutoff is not None:
            silent = {k: now - link.last_seen for k, link in self.net.links.items() if link.last_seen < r.cutoff}
            dead = self.net.expire_unseen_since(r.cutoff, now, spare=r.spare)
            if dead:
                t0 = time.perf_counter()
                out += self.compile(now, {d for k in dead for d in (k[0], k[2])}, lost=True)
                self.counters.failovers += len(dead)
                for k in dead:
                    LOG.warning(
                        "failover: link %s silent for %.0f ms (carrier up); routed around in %.1f ms",
                        self.fmt_link(k),
                        silent[k] * 1000,
                        (time.perf_counter() - t0) * 1000,
                    )
                    text = f"failover: link {self.fmt_link(k)} silent for {silent[k] * 1000:.0f} ms; routed around it"
                    self.events.add(now, "link_silent", text, link=self.fmt_link(k))
        self.signer.expire(now)
        # A link held back by flap damping must be heard without a gap of returning_gap (2 s)
        # for its hold: its ends are probed every round, whatever the LLDP interval on links.
        held: dict[int, set[int]] = {}
        for d1, p1, d2, p2 in self.net.damped():
            held.setdefault(d1, set()).add(p1)
            held.setdefault(d2, set()).add(p2)
        for dpid in sorted(self.net.ports):
            ports = (self.net.link_ports(dpid) if r.links else set()) | held.get(dpid, set())
            if r.full or ports:
                out += self._lldp(dpid, None if r.full else sorted(ports), now)
        out += self._sends(self.arp.probe_declared(now), b"")
        if r.full:
            self._check_declared(now)
        for fin in self.recon.timeouts(now):
            out += self._finished(fin, now)
        # Claims the verification applies change where hosts are (their locators): tell
        # the other hosts, whose ARP caches hold the old ones.
        was: dict[str, tuple[str | None, str | None]] = {}
        for m in self.net.pending.values():
            h = self.net.hosts.get(m.claim.mac)
            was[m.claim.mac] = (self.net.locators.of(m.claim.mac), h.ip if h else None)
        if self.net.verify_due(now):
            self.dirty = True
            out += self._sends(self.arp.announce_moves(was, now), b"")
        out += self._audit(now)
        if self._restoring and (not self._restore_wait or now - self.started >= RESTORE_MAX):
            self._restoring = False
            missing = sorted(self._restore_wait)
            LOG.info(
                "restore done%s",
                f"; switches not back: {', '.join(self.name(d) for d in missing)}"
                if missing
                else ": every switch last seen is back",
            )
            self._remembered.clear()
            self.dirty = True
        if any(t <= now for t in self._wakes):
            self._wakes = [t for t in self._wakes if t > now]
            self.dirty = True
        return out

    def _wake(self, at: float) -> None:
        self._wakes.append(at)

    def _audit(self, now: float) -> list[Action]:
        if not self.config.audit_interval or now < self._next_audit:
            return []
        self._next_audit = now + self.config.audit_interval
        ready = [d for d in sorted(self.recon.actual) if self.recon.ready(d) and d not in self.recon.reading]
        full = self.recon.audit_parts(ready)
        out: list[Action] = []
        for dpid in ready:
            parts = self.recon.start_read(dpid, now, audit=True, full=dpid == full)
            if parts:
                out.append(ReadState(dpid, parts))
        return out

    def _check_declared(self, now: float) -> None:
        """Log where discovery and the declared topology disagree, whenever that changes
        (after a settling time, so switches still connecting are not reported)."""
        t = self.config.topology
        if t is None or now - self.started < SETTLE_SECONDS:
            return
        problems = self.net.discrepancies()
        if problems == self._reported:
            return
        self._reported = problems
        if problems:
            LOG.warning(
                "topology check: %d difference(s) from %s:\n  %s",
                len(problems),
                t.source or "the declared topology",
                "\n  ".join(problems),
            )
            text = f"topology check: {len(problems)} difference(s) from the declared topology: {'; '.join(problems)}"
            self.events.add(now, "topology_check", text, problems=problems)
        else:
            LOG.info("topology check: discovery matches the declared topology")
            self.events.add(now, "topology_check", "topology check: discovery matches the declared topology")

    # ---- compile and reconcile -------------------------------------------------------------
    def additions_only(self, dpid: int, now: float) -> bool:
        return self._restoring or now < self._settle.get(dpid, 0.0)

    def compile(self, now: float, around: Iterable[int] = (), lost: bool = False) -> list[Action]:
        """Compile the graph and policies; every switch gets its difference.

        ``around``: the ends of links just lost (``lost``) or found. Switches apply their
        differences one after the other, and a switch already on a new path may hand
        frames to a neighbour still on the old one: after a loss the ends of the dead link
        would send to a neighbour whose old path leads back to them (a transient loop;
        seen as 256 ms of lost probes with the controller under load). So after a loss
        the switches farthest from it are updated first and the link's ends last (they
        keep detouring by fast failover meanwhile); for a new link its ends go first.
        """
        if not around and self._found:
            around, lost = self._found, False
        self._found = set()
        self.dirty = False
        t0 = time.perf_counter()
        shares = self.sharing.rates() if self.sharing is not None else None
        # Incremental: only the switches whose desired state changed are diffed (a diff costs
        # what the switch holds), plus those whose last diff withheld something or that were
        # read back since.
        desired, changed = self.compiler.update(
            self.net, self.policies, now, protect=self.config.protect, shares=shares
        )
        self.desired = desired
        self.last_compile_ms = (time.perf_counter() - t0) * 1000
        self.counters.compiles += 1
        check = (changed | self._recheck) & set(self.net.ports)
        whole = self._recheck & check  # held back or read since: compare whole tables
        self._recheck -= check
        entries = self.compiler.entries  # None after a build: compare whole tables
        out: list[Action] = []
        sent = 0
        for dpid in self._update_order(check, set(around), lost):
            additions = self.additions_only(dpid, now)
            if additions:
                self._recheck.add(dpid)  # deletions wait until the switch has settled
            e = entries.get(dpid) if entries is not None and dpid not in whole else None
            only = (e.flows, e.groups, e.meters) if e is not None else None
            ch = self.recon.changes(dpid, desired.get(dpid, SwitchState()), additions, only)
            if ch:
                out.append(SendChanges(dpid, ch))
                sent += ch.count()
        self.counters.changes_sent += sent
        if sent:
            LOG.info(
                "compiled in %.1f ms (%d switches changed, %d flows in all); sent %d changes",
                self.last_compile_ms,
                len(changed),
                total_flows(desired),
                sent,
            )
        return out

    # ---- sharing the uplink by need ----------------------------------------------------------
    def share(self, now: float, measured: Mapping[str, Mapping[str, sharing_mod.Measured]]) -> list[Action]:
        """One sharing period (controller.core.sharing): ``measured`` per OPD and direction over
        the period (from the aggregate flows' and meters' counters, see usage.share_take).
        Re-sizes only the aggregate meters whose allocation changed, at the uplink switch, and
        logs each change with its reason. Nothing with sharing off."""
        if self.sharing is None:
            return []
        changes = self._step(now, measured)
        router = self.net.uplink_router()
        if not changes or router is None or router.dpid not in self.desired:
            return []
        state = self.desired[router.dpid]
        for opd in sorted({c.opd for c in changes}):
            policy = self.policies.get(opd)
            down, up = self.sharing.rate(opd, "download"), self.sharing.rate(opd, "upload")
            if policy is None or down is None or up is None:
                continue
            for m in self.compiler.aggregate_meters(opd, policy, down, up):
                if m.meter_id in state.meters:  # else not compiled yet: the next compile has it
                    state.meters[m.meter_id] = m
        ch = self.recon.changes(router.dpid, state, self.additions_only(router.dpid, now))
        if not ch:
            return []
        self.counters.changes_sent += ch.count()
        return [SendChanges(router.dpid, ch)]

    def _step(self, now: float, measured: Mapping[str, Mapping[str, sharing_mod.Measured]]) -> list[sharing_mod.Change]:
        assert self.sharing is not None
        policies = cast(Mapping[str, sharing_mod.SharedPolicy], self.policies)  # policy.Policy has every field
        uplink = (self.config.uplink_kbps or 0) * UPLINK_HEADROOM
        capacities = sharing_mod.constraints(self.net, policies, uplink)
        changes = self.sharing.step(now, policies, measured, capacities)
        for change in changes:
            # At most one line per OPD and direction a period: hysteresis keeps them rare.
            LOG.info("sharing: %s", change)
        return changes

    def _update_order(self, check: set[int], around: set[int], lost: bool) -> list[int]:
        switches = sorted(check)
        ends = around & set(self.net.ports)
        if not ends or len(switches) < 2:
            return switches
        hops = _hops_from(self.compiler.adjacency(), ends)
        far = max(hops.values(), default=0) + 1  # cut off from the change: as far as it gets
        return sorted(switches, key=lambda d: (-hops.get(d, far) if lost else hops.get(d, far), d))

    # ---- memory ------------------------------------------------------------------------------
    def memory(self, now: float) -> dict[str, Any] | None:
        """What to keep in the state dir (network.json), when it changed; at most once a
        second, and never while restoring (the graph is still incomplete then)."""
        if self._restoring or now - self._memory_at < MEMORY_EVERY:
            return None
        hosts = sorted((h.mac, h.ip, h.dpid, h.port) for h in self.net.hosts.values())
        locators = self.net.locators.to_json()
        key = (
            tuple(hosts),
            tuple(sorted(self.compiler.meter_numbers.items())),
            tuple(sorted(self.net.ports)),
            repr(locators),
        )
        if key == self._memory_saved:
            return None
        self._memory_saved = key
        self._memory_at = now
        return {
            "hosts": [{"mac": m, "ip": ip, "dpid": d, "port": p} for m, ip, d, p in hosts],
            "meter_ids": self.compiler.meter_numbers,
            "switches": sorted(self.net.ports),
            "locators": locators,
        }

    # ---- names -------------------------------------------------------------------------------
    def name(self, dpid: int) -> str:
        t = self.config.topology
        sw = t.switch_by_dpid(dpid) if t else None
        return sw.name if sw else f"{dpid:#x}"

    def _sw(self, dpid: int) -> dict[str, Any]:
        """An event's fields naming a switch."""
        return {"switch": self.name(dpid), "dpid": dpid}

    def fmt_link(self, k: LinkKey) -> str:
        return f"{self.name(k[0])}:{k[1]}-{self.name(k[2])}:{k[3]}"


def _hops_from(adj: Mapping[int, Iterable[int]], ends: set[int]) -> dict[int, int]:
    """Hops from the nearest of ``ends`` to every switch reachable (breadth first)."""
    hops = dict.fromkeys(ends, 0)
    todo = deque(ends)
    while todo:
        x = todo.popleft()
        for y in adj.get(x, ()):
            if y not in hops:
                hops[y] = hops[x] + 1
                todo.append(y)
    return hops


def _remembered_hosts(memory: Mapping[str, Any]) -> dict[int, list[HostEntry]]:
    out: dict[int, list[HostEntry]] = {}
    for h in memory.get("hosts", []) if isinstance(memory.get("hosts"), list) else []:
        try:
            e = HostEntry(
                str(h["mac"]).lower(),
                h.get("ip") if isinstance(h.get("ip"), str) else None,
                int(h["dpid"]),
                int(h["port"]),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # a damaged entry only costs that host a re-learn
        out.setdefault(e.dpid, []).append(e)
    return out
