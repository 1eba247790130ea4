"""When to probe which port with LLDP, when a silent link is dead, and when a port counts as
up. Pure (time passed in).

Two sources of liveness. The controller's own: LLDP on every link end each
``interval`` (0.1 s), a link silent for ``timeout`` is dead. The switches': BFD (or CFM)
on the inter-switch interfaces, which the switch folds into each port's OFPPS_LIVE bit,
its fast-failover groups' ``watch_port`` and a PortStatus within a millisecond (Open
vSwitch: docs/research/bfd-liveness.md). With the switches judging (``kendali controller
--switch-liveness``) LLDP on links only checks the cabling, at a slow ``interval`` (2 s),
so the controller's idle cost no longer grows with the links (docs/liveness.md). Rounds
still come every ``tick`` (at most ``TICK_MAX``): the other timers ride on them.

Rounds, not wall time, decide: a link is dead when it missed the last ``miss`` rounds,
so a controller that was itself held up (a long compile) does not blame the links for
its own delay. And a switch works through our OpenFlow messages in order, so LLDP we
sent it behind hundreds of flow changes leaves late and its packet-ins wait too: a
switch busy with our changes at any time since the cutoff is not judged that round
(seen at lab start: a link declared silent while both ends were installing 2,000 flows).
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

LOG = logging.getLogger("kendali")

DISCOVERY_INTERVAL = 1.0  # seconds between LLDP probes on ports that are not (yet) links
DISCOVERY_BURST = 3.0  # after a switch connects, every port is probed each round for this long
BUSY_MAX_S = 2.0  # a switch that has not answered our barrier for this long is judged anyway
TICK_MAX = 0.25  # seconds between rounds at most: compile wakes, ARP probes and audits ride on them
# --switch-liveness: LLDP on links only finds and checks the cabling; a link whose LLDP stops
# while its switches still call it live (a port re-cabled without losing carrier, which
# hardly happens) is dropped after LINK_TIMEOUT_ROUNDS of these.
SWITCH_LIVENESS_LLDP_INTERVAL = 2.0
LINK_TIMEOUT_ROUNDS = 5  # the default --link-timeout is this many --lldp-interval


def timers(lldp_interval: float | None, link_timeout: float | None, switch_liveness: bool) -> tuple[float, float]:
    """(LLDP interval on links, silence timeout) from the command line's flags, None where not
    given: 0.1 s and 5 x that by default; 2 s and 5 x that when the switches judge liveness."""
    interval = lldp_interval or (SWITCH_LIVENESS_LLDP_INTERVAL if switch_liveness else 0.1)
    return interval, link_timeout or LINK_TIMEOUT_ROUNDS * interval


class PortState(NamedTuple):
    """What a switch says of a port (OpenFlow 1.3 ofp_port): the bits the liveness rule reads."""

    link_down: bool  # OFPPS_LINK_DOWN: no carrier
    admin_down: bool  # OFPPC_PORT_DOWN: switched off by configuration
    live: bool  # OFPPS_LIVE: usable by fast-failover groups (carrier, and BFD/CFM where configured)


@dataclass
class Round:
    """What one round does: probe every up port (``full``), or only link ends (``links``),
    or none; judge links last heard before ``cutoff`` (None: judge nothing this round),
    except those touching a switch in ``spare``."""

    full: bool
    cutoff: float | None
    spare: set[int]
    links: bool = True


@dataclass
class Liveness:
    interval: float = 0.1
    timeout: float = 0.5
    _rounds: collections.deque[float] = field(init=False)
    _n: int = 0
    _discovering_until: float = 0.0
    # Switches still working through changes we sent (barrier not yet answered), and
    # when each last answered one.
    _barrier_pending: dict[int, tuple[int, float]] = field(default_factory=dict)  # dpid -> (xid, sent at)
    _barrier_done: dict[int, float] = field(default_factory=dict)

    # Switches whose ports have shown OFPPS_LIVE: on them a port without it is down.
    _reports_live: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.miss = max(2, math.ceil(self.timeout / self.interval))
        self._rounds = collections.deque(maxlen=self.miss)
        self.tick = min(self.interval, TICK_MAX)
        self._link_every = max(1, round(self.interval / self.tick))  # rounds between probes of links
        self._every = max(1, round(max(DISCOVERY_INTERVAL, self.interval) / self.tick))

    def discover(self, now: float, seconds: float = DISCOVERY_BURST) -> None:
        """Probe every port each round for a while (a switch or port just came up)."""
        self._discovering_until = max(self._discovering_until, now + seconds)

    def round(self, now: float) -> Round:
        """The next round (every ``tick``). Links are probed every ``interval`` and judged
        then; the other ports, where a new link could appear, about once a second (every
        ``interval`` when that is longer); every port each round while discovering."""
        self._n += 1
        full = self._n % self._every == 0 or now < self._discovering_until
        if self._n % self._link_every:
            return Round(full, None, set(), links=full)
        # After a stall, replies to earlier rounds may still sit unread: judge nothing
        # this round (the next one judges normally).
        late = bool(self._rounds) and now - self._rounds[-1] > 2 * self.interval
        cutoff = self._rounds[0] if len(self._rounds) == self.miss and not late else None
        if cutoff is not None:
            # Rounds handled close together (the loop was busy) must not shorten the timeout.
            cutoff = min(cutoff, now - self.timeout)
        self._rounds.append(now)
        return Round(full, cutoff, self.busy(cutoff, now) if cutoff is not None else set())

    # ---- ports: up, as the switch's fast-failover groups see them ----------------------
    def port_up(self, dpid: int, port: PortState) -> bool:
        """A port is up when it has carrier, is not switched off, and is live where its
        switch reports liveness at all. Open vSwitch sets OFPPS_LIVE on every enabled port,
        and clears it (carrier still up) when BFD or CFM on the interface says the path is
        down: the very verdict its fast-failover groups follow. Reading it makes the
        controller agree with the groups, down within a millisecond of a BFD timeout and up
        only once BFD is back (1-1.6 s after a restore; carrier returns first). A switch
        that never sets OFPPS_LIVE on any port (OpenFlow makes it optional) is judged on
        carrier alone."""
        if port.live:
            self._reports_live.add(dpid)
        return not port.link_down and not port.admin_down and (port.live or dpid not in self._reports_live)

    def ports_up(self, dpid: int, ports: Mapping[int, PortState]) -> dict[int, bool]:
        """``port_up`` for a switch's whole port list (a port-desc reply): whether the switch
        reports liveness is decided from all of them first."""
        if any(p.live for p in ports.values()):
            self._reports_live.add(dpid)
        elif any(not p.link_down and not p.admin_down for p in ports.values()) and dpid not in self._reports_live:
            LOG.warning("switch %s sets OFPPS_LIVE on no port: its ports count as up on carrier alone", dpid)
        return {n: self.port_up(dpid, p) for n, p in ports.items()}

    @staticmethod
    def why_down(port: PortState) -> str:
        """Why a port is down, in the words of the failover log."""
        if port.link_down:
            return "lost carrier"
        if port.admin_down:
            return "was switched off (port down)"
        return "is not live (BFD down, or carrier going)"

    # ---- barriers: is a switch still busy with what we sent? -------------------------
    def barrier_sent(self, dpid: int, xid: int, now: float) -> None:
        self._barrier_pending[dpid] = (xid, now)

    def barrier_reply(self, dpid: int, xid: int, now: float) -> None:
        pending = self._barrier_pending.get(dpid)
        if pending and pending[0] == xid:  # replies come in order: all done
            del self._barrier_pending[dpid]
            self._barrier_done[dpid] = now

    def busy(self, cutoff: float, now: float) -> set[int]:
        busy = {d for d, (_xid, sent) in self._barrier_pending.items() if now - sent < BUSY_MAX_S}
        return busy | {d for d, t in self._barrier_done.items() if t > cutoff}

    def forget(self, dpid: int) -> None:
        self._barrier_pending.pop(dpid, None)
        self._barrier_done.pop(dpid, None)
        self._reports_live.discard(dpid)
