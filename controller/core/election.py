"""Which controller leads, on an etcd lease, and the OpenFlow role each switch is asked for.
Pure: no sockets, no clock; the shell (controller.openflow.ha) does each request this
object asks for and reports the outcome with the time it sent the request.

The election (the usual etcd recipe):

- each node holds a lease of ``ttl`` seconds and keeps it alive (every ``ttl / 4``);
- to lead, a node creates the leader key attached to its lease, in one transaction that
  only succeeds when the key is absent; when the leader's lease expires etcd deletes the
  key and the next campaign of another node wins;
- ``generation`` is the leader key's create revision: etcd's revision only grows, so
  every new leader has a larger one. It is the OpenFlow ``generation_id`` of the
  leader's MASTER request: a switch refuses a MASTER or SLAVE request with a smaller one
  (OFPRRFC_STALE), and once a newer master has claimed it, it refuses the old master's
  flow and group changes (it is a slave now).

Stepping down never waits for etcd: a leader acts only until ``ttl - margin`` after it
SENT its last successful renewal. etcd counts the lease from when it received that
renewal, later, so the old leader has stopped before any other node can win the key,
whatever the network or a paused process did. A leader that was paused (SIGSTOP, a long
GC, a hung disk) and wakes past that time finds itself a follower before it sends
anything; anything it had already handed to the kernel is refused by the switches.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

DEFAULT_TTL = 2.0


class Role(Enum):
    LEADER = "leader"
    FOLLOWER = "follower"


class Op(Enum):
    """What the shell should ask etcd next."""

    GRANT = "grant"  # a new lease of ``ttl`` seconds
    CAMPAIGN = "campaign"  # create the leader key if absent, attached to the lease; else read it
    RENEW = "renew"  # keep the lease alive and read the leader key
    WAIT = "wait"  # nothing until ``Step.at``


@dataclass(frozen=True)
class Step:
    op: Op
    at: float  # when: now, or the time to wake for a WAIT
    lease: int | None = None


@dataclass(frozen=True)
class SwitchRole:
    """The role request to send every switch: MASTER or SLAVE with this generation_id."""

    master: bool
    generation: int


class Election:
    def __init__(self, node_id: str, ttl: float = DEFAULT_TTL, margin: float | None = None) -> None:
        if ttl <= 0:
            raise ValueError("the lease TTL must be positive")
        self.node_id = node_id
        self.ttl = ttl
        # Renew four times a lease: three renewals may be lost before the lease is at risk.
        self.every = ttl / 4
        # How long before the lease's end (counted from the sending of the last renewal) a
        # leader stops: a renewal answered late must still leave time to step down.
        self.margin = ttl / 4 if margin is None else margin
        if not 0 <= self.margin < ttl:
            raise ValueError("the margin must be at least 0 and less than the TTL")
        self.role = Role.FOLLOWER
        self.lease: int | None = None
        self.lease_valid_until = 0.0  # our lease is surely alive in etcd until then
        self.leader: str | None = None  # who holds the leader key, as last read
        self.generation = 0  # the highest leader-key create revision seen: only grows
        self._campaign_now = False
        self._next = 0.0  # the next renewal or retry

    # ---- what to do --------------------------------------------------------------------------
    def step(self, now: float) -> Step:
        """The next request to make, or until when to wait."""
        self.expire(now)
        if now < self._next and not (self._campaign_now and self.lease is not None):
            return Step(Op.WAIT, self._next)
        if self.lease is None:
            return Step(Op.GRANT, now)
        if self._campaign_now and self.role is Role.FOLLOWER:
            return Step(Op.CAMPAIGN, now, self.lease)
        return Step(Op.RENEW, now, self.lease)

    def leading(self, now: float) -> bool:
        """May this node act as the leader at ``now``: send flows, groups, meters, packets?"""
        return self.role is Role.LEADER and now < self.lease_valid_until

    def expire(self, now: float) -> bool:
        """Step down once the lease may be gone; True when this call stepped down."""
        if now < self.lease_valid_until:
            return False
        self.lease = None  # perhaps still alive in etcd, but no longer surely: get another
        if self.role is Role.LEADER:
            self.role = Role.FOLLOWER
            return True
        return False

    def switch_role(self, now: float) -> SwitchRole:
        """What every switch must be asked for now."""
        return SwitchRole(self.leading(now), self.generation)

    # ---- what etcd answered ------------------------------------------------------------------
    def granted(self, lease: int, sent_at: float, now: float) -> None:
        self.lease = lease
        self.lease_valid_until = sent_at + self.ttl - self.margin
        self._campaign_now = True  # find out who leads, and lead if nobody does
        self.expire(now)

    def campaigned(
        self, won: bool, holder: str | None, generation: int | None, key_lease: int | None, sent_at: float, now: float
    ) -> None:
        """The transaction's answer: ``won``, and the leader key as etcd then held it (its holder,
        create revision and lease; None: no key)."""
        self._campaign_now = False
        self._next = sent_at + self.every
        self.expire(now)
        self._observed(holder, generation, key_lease if not won else self.lease)

    def renewed(
        self, alive: bool, holder: str | None, generation: int | None, key_lease: int | None, sent_at: float, now: float
    ) -> None:
        """The keepalive's answer (``alive``: the lease still exists) and the leader key as read after it."""
        self._next = sent_at + self.every
        self.expire(now)  # a lapse is a lapse, whatever this answer says
        if self.lease is not None:
            if alive:
                self.lease_valid_until = max(self.lease_valid_until, sent_at + self.ttl - self.margin)
            else:
                self.lease, self.lease_valid_until = None, 0.0
        self._observed(holder, generation, key_lease)

    def _observed(self, holder: str | None, generation: int | None, key_lease: int | None) -> None:
        self.leader = holder
        if generation is not None and generation > self.generation:
            self.generation = generation
        # Ours only when it hangs on the lease we keep alive: a key on a lease we gave up
        # lives on only until etcd expires that lease.
        ours = self.lease is not None and key_lease == self.lease and generation == self.generation
        if ours and self.role is Role.FOLLOWER:
            self.role = Role.LEADER  # our campaign won (perhaps its answer was lost before)
        elif not ours and self.role is Role.LEADER:
            self.role = Role.FOLLOWER  # the key is gone or someone else's: not ours to act on
        if holder is None and self.role is Role.FOLLOWER and self.lease is not None:
            self._campaign_now = True

    def failed(self, now: float) -> None:
        """A request did not reach etcd or got no answer: try again soon. A leader keeps acting
        until its lease's margin."""
        self._campaign_now = False
        self._next = now + self.every / 2
        self.expire(now)

    def fenced(self, now: float) -> None:
        """A switch refused us: a stale generation, or a change from a slave. A newer leader
        exists, so our key is gone: step down at once and get a fresh lease."""
        self.role = Role.FOLLOWER
        self.lease = None
        self.lease_valid_until = 0.0
        self._next = now

    # ---- for people --------------------------------------------------------------------------
    def status(self, now: float) -> dict[str, object]:
        """For GET /v1/health: this node's role and who leads."""
        return {
            "node": self.node_id,
            "role": "leader" if self.leading(now) else "follower",
            "leader": self.leader,
            "generation": self.generation,
            "lease_ttl_s": self.ttl,
        }
