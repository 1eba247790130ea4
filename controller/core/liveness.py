"""When to probe which port with LLDP, and when a silent link is dead. Pure (time passed in).

Rounds, not wall time, decide: a link is dead when it missed the last ``miss`` rounds,
so a controller that was itself held up (a long compile) does not blame the links for
its own delay. And a switch works through our OpenFlow messages in order, so LLDP we
sent it behind hundreds of flow changes leaves late and its packet-ins wait too: a
switch busy with our changes at any time since the cutoff is not judged that round
(seen at lab start: a link declared silent while both ends were installing 2,000 flows).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass, field

DISCOVERY_INTERVAL = 1.0  # seconds between LLDP probes on ports that are not (yet) links
DISCOVERY_BURST = 3.0  # after a switch connects, every port is probed each round for this long
BUSY_MAX_S = 2.0  # a switch that has not answered our barrier for this long is judged anyway


@dataclass
class Round:
    """What one LLDP round does: probe ``ports`` (None: every up port) and judge links
    last heard before ``cutoff`` (None: judge nothing this round)."""

    full: bool
    cutoff: float | None
    spare: set[int]


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

    def __post_init__(self) -> None:
        self.miss = max(2, math.ceil(self.timeout / self.interval))
        self._rounds = collections.deque(maxlen=self.miss)
        self._every = max(1, round(DISCOVERY_INTERVAL / self.interval))

    def discover(self, now: float, seconds: float = DISCOVERY_BURST) -> None:
        """Probe every port each round for a while (a switch or port just came up)."""
        self._discovering_until = max(self._discovering_until, now + seconds)

    def round(self, now: float) -> Round:
        """The next round. Links are probed every round (their liveness is at stake); the
        other ports, where a new link could appear, about once a second."""
        # After a stall, replies to earlier rounds may still sit unread: judge nothing
        # this round (the next one judges normally).
        late = bool(self._rounds) and now - self._rounds[-1] > 2 * self.interval
        cutoff = self._rounds[0] if len(self._rounds) == self.miss and not late else None
        if cutoff is not None:
            # Rounds handled close together (the loop was busy) must not shorten the timeout.
            cutoff = min(cutoff, now - self.timeout)
        self._rounds.append(now)
        self._n += 1
        full = self._n % self._every == 0 or now < self._discovering_until
        return Round(full, cutoff, self.busy(cutoff, now) if cutoff is not None else set())

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
