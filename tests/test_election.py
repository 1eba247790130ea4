"""Leader election and switch roles (controller.core.election) against a fake etcd and a fake clock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from controller.core.election import Election, Op, Role


class Unreachable(Exception):
    pass


@dataclass
class FakeEtcd:
    """One leader key and leases, as etcd keeps them: a lease ends ``ttl`` after the server
    RECEIVED its grant or last keepalive; its keys go with it."""

    ttl: float = 2.0
    revision: int = 1
    leases: dict[int, float] = field(default_factory=dict)  # id -> expiry
    key: tuple[str, int, int] | None = None  # (holder, create revision, lease)
    _ids: int = 100

    def _gc(self, t: float) -> None:
        for lid, end in list(self.leases.items()):
            if end <= t:
                del self.leases[lid]
        if self.key is not None and self.key[2] not in self.leases:
            self.key = None
            self.revision += 1  # a delete is a revision too

    def grant(self, t: float) -> int:
        self._gc(t)
        self._ids += 1
        self.leases[self._ids] = t + self.ttl
        return self._ids

    def campaign(self, node: str, lease: int, t: float) -> tuple[bool, str | None, int | None, int | None]:
        self._gc(t)
        if lease not in self.leases:
            raise Unreachable("lease not found")  # etcd answers an error: the shell reports failed()
        if self.key is None:
            self.revision += 1
            self.key = (node, self.revision, lease)
            return True, node, self.revision, lease
        return False, *self.key

    def renew(self, lease: int, t: float) -> tuple[bool, str | None, int | None, int | None]:
        self._gc(t)
        alive = lease in self.leases
        if alive:
            self.leases[lease] = t + self.ttl
        return alive, *self.read(t)

    def read(self, t: float) -> tuple[str | None, int | None, int | None]:
        self._gc(t)
        return self.key if self.key else (None, None, None)


@dataclass
class FakeSwitch:
    """OpenFlow 1.3 roles as Open vSwitch keeps them: the largest generation_id seen, one master."""

    max_generation: int | None = None
    master: str | None = None
    applied: list[tuple[str, int]] = field(default_factory=list)

    def role_request(self, node: str, master: bool, generation: int) -> bool:
        if self.max_generation is not None and generation < self.max_generation:
            return False  # OFPRRFC_STALE
        self.max_generation = generation
        if master:
            self.master = node
        elif self.master == node:
            self.master = None
        return True

    def flow_mod(self, node: str, generation: int) -> bool:
        if self.master is not None and self.master != node:
            return False  # OFPBRC_IS_SLAVE
        self.applied.append((node, generation))
        return True


class Node:
    """The shell's loop, by hand: each request is sent, applied by etcd and answered separately."""

    def __init__(self, name: str, etcd: FakeEtcd, ttl: float = 2.0) -> None:
        self.e = Election(name, ttl)
        self.etcd = etcd
        self.pending: tuple[Op, float, int | None] | None = None  # (op, sent_at, lease)
        self.answer: tuple | None = None

    def issue(self, t: float) -> bool:
        if self.pending is not None:
            return False
        s = self.e.step(t)
        if s.op is Op.WAIT:
            return False
        self.pending, self.answer = (s.op, t, s.lease), None
        return True

    def apply(self, t: float) -> None:
        assert self.pending is not None and self.answer is None
        op, _sent, lease = self.pending
        try:
            if op is Op.GRANT:
                self.answer = ("ok", self.etcd.grant(t))
            elif op is Op.CAMPAIGN:
                assert lease is not None
                self.answer = ("ok", self.etcd.campaign(self.e.node_id, lease, t))
            else:
                assert lease is not None
                self.answer = ("ok", self.etcd.renew(lease, t))
        except Unreachable:
            self.answer = ("error",)

    def deliver(self, t: float) -> None:
        assert self.pending is not None
        op, sent, _lease = self.pending
        answer, self.pending, self.answer = self.answer, None, None
        if answer is None or answer[0] == "error":
            self.e.failed(t)
        elif op is Op.GRANT:
            self.e.granted(answer[1], sent, t)
        elif op is Op.CAMPAIGN:
            self.e.campaigned(*answer[1], sent, t)
        else:
            self.e.renewed(*answer[1], sent, t)

    def roundtrip(self, t: float, delay: float = 0.001) -> None:
        if self.issue(t):
            self.apply(t + delay)
            self.deliver(t + 2 * delay)


def run(nodes: list[Node], start: float, end: float, dt: float = 0.05, skip: set[str] | None = None) -> float:
    t = start
    while t < end:
        for n in nodes:
            if not skip or n.e.node_id not in skip:
                n.roundtrip(t)
        t += dt
    return t


def test_one_node_leads_and_keeps_leading() -> None:
    etcd = FakeEtcd()
    a = Node("a", etcd)
    t = run([a], 0.0, 10.0)
    assert a.e.leading(t)
    assert etcd.read(t)[:2] == ("a", a.e.generation)


def test_follower_takes_over_after_the_leader_dies_with_a_larger_generation() -> None:
    etcd = FakeEtcd()
    a, b = Node("a", etcd), Node("b", etcd)
    t = run([a, b], 0.0, 3.0)
    first = a if a.e.leading(t) else b
    other = b if first is a else a
    assert first.e.leading(t) and not other.e.leading(t)
    assert other.e.leader == first.e.node_id
    g1 = first.e.generation
    died = t
    t = run([a, b], t, t + 5.0, skip={first.e.node_id})  # the leader is killed: it never speaks again
    assert other.e.leading(t)
    assert other.e.generation > g1
    took = next(x for x in _times(died, t) if _leader_after(other, etcd, died, x))
    assert took <= died + 2.0 + 1.0  # within TTL + 1 s


def _times(a: float, b: float, dt: float = 0.05) -> list[float]:
    return [a + i * dt for i in range(int((b - a) / dt) + 1)]


def _leader_after(n: Node, etcd: FakeEtcd, died: float, x: float) -> bool:
    # The generation the survivor holds was created by then: the key's create revision is etcd's.
    holder, _gen, _lease = etcd.read(x)
    return holder == n.e.node_id


def test_a_paused_leader_steps_down_before_sending_and_the_switch_refuses_it() -> None:
    etcd = FakeEtcd()
    a, b = Node("a", etcd), Node("b", etcd)
    sw = FakeSwitch()
    t = run([a], 0.0, 1.0)
    assert a.e.leading(t)
    assert sw.role_request("a", True, a.e.generation)
    assert sw.flow_mod("a", a.e.generation)
    paused_at = t
    t = run([b], t, t + 5.0)  # a is SIGSTOPped for 5 s; b wins once a's lease is gone in etcd
    assert b.e.leading(t) and b.e.generation > a.e.generation
    assert sw.role_request("b", True, b.e.generation)
    # a wakes up: before it sends anything, it asks whether it may act
    assert t - paused_at > a.e.ttl
    assert not a.e.leading(t)
    assert a.e.step(t).op is Op.GRANT  # its lease is treated as gone: a fresh one
    # a message it had handed to the kernel before the pause reaches the switch late: refused
    assert not sw.flow_mod("a", a.e.generation)
    assert not sw.role_request("a", True, a.e.generation)  # stale generation
    a.e.fenced(t)
    assert a.e.role is Role.FOLLOWER
    t = run([a, b], t, t + 2.0)
    assert b.e.leading(t) and not a.e.leading(t)
    assert a.e.leader == "b" and a.e.generation == b.e.generation
    assert sw.role_request("a", False, a.e.switch_role(t).generation)  # rejoins as SLAVE, not stale
    assert sw.master == "b"


def test_a_leader_stops_acting_before_etcd_lets_anyone_else_win() -> None:
    etcd = FakeEtcd()
    a = Node("a", etcd)
    a.roundtrip(0.0)  # grant, sent at 0, received at 0.001
    a.roundtrip(0.002)  # campaign: wins
    assert a.e.leading(0.01)
    # no renewal ever arrives (etcd unreachable for a)
    last = max(x for x in _times(0.0, 3.0, 0.001) if a.e.leading(x))
    holder, _, _ = etcd.read(last)
    assert holder == "a"  # the key is still a's in etcd whenever a believes it leads
    assert last < 0.001 + etcd.ttl


def test_etcd_unreachable_the_leader_steps_down_then_someone_leads_again() -> None:
    etcd = FakeEtcd()
    a, b = Node("a", etcd), Node("b", etcd)
    t = run([a, b], 0.0, 2.0)
    g1 = max(a.e.generation, b.e.generation)
    assert a.e.leading(t) != b.e.leading(t)
    # etcd stops: every request fails
    end = t + 3.0
    while t < end:
        for n in (a, b):
            if n.issue(t):
                n.pending = None
                n.e.failed(t)
        t += 0.05
    assert not a.e.leading(t) and not b.e.leading(t)
    etcd.leases.clear()  # etcd back after its leases ran out
    etcd.key = None
    t = run([a, b], t, t + 2.0)
    assert a.e.leading(t) != b.e.leading(t)
    assert max(a.e.generation, b.e.generation) > g1


def test_bad_settings() -> None:
    with pytest.raises(ValueError, match="TTL"):
        Election("a", 0)
    with pytest.raises(ValueError, match="margin"):
        Election("a", 2.0, margin=2.0)


class Interleavings(RuleBasedStateMachine):
    """Three nodes; etcd applies and answers their requests in any order, some never; time jumps.
    At any moment at most one node acts as leader, and only while etcd holds its key."""

    def __init__(self) -> None:
        super().__init__()
        self.t = 0.0
        self.etcd = FakeEtcd()
        self.nodes = [Node(n, self.etcd) for n in "abc"]
        self.leaders: list[tuple[str, int]] = []  # each new leadership: (node, generation)

    @rule(dt=st.floats(0.0, 1.5))
    def advance(self, dt: float) -> None:
        self.t += dt

    @rule(i=st.integers(0, 2))
    def issue(self, i: int) -> None:
        self.nodes[i].issue(self.t)

    @rule(i=st.integers(0, 2), apply_after=st.floats(0.0, 1.0), answer_after=st.floats(0.0, 1.0))
    def exchange(self, i: int, apply_after: float, answer_after: float) -> None:
        """A whole request of one node, slow or fast; the others may have theirs in flight."""
        n = self.nodes[i]
        if n.pending is None and not n.issue(self.t):
            return
        if n.answer is None:
            self.t += apply_after
            n.apply(self.t)
        self.t += answer_after
        self._deliver(n)

    @precondition(lambda self: any(n.pending and n.answer is None for n in self.nodes))
    @rule(i=st.integers(0, 2))
    def apply(self, i: int) -> None:
        n = self.nodes[i]
        if n.pending is not None and n.answer is None:
            n.apply(self.t)

    @precondition(lambda self: any(n.pending for n in self.nodes))
    @rule(i=st.integers(0, 2), lost=st.booleans())
    def deliver(self, i: int, lost: bool) -> None:
        n = self.nodes[i]
        if n.pending is None:
            return
        if lost:
            n.answer = None  # the request or its answer was lost: the shell sees a failure
        self._deliver(n)

    def _deliver(self, n: Node) -> None:
        was = n.e.leading(self.t)
        n.deliver(self.t)
        if n.e.leading(self.t) and not was:
            self.leaders.append((n.e.node_id, n.e.generation))

    @rule()
    def calm(self) -> None:
        """Every node's requests answered in a millisecond for three leases: someone leads by then."""
        for n in self.nodes:
            if n.pending is not None:
                if n.answer is None:
                    n.apply(self.t)
                self._deliver(n)
        end = self.t + 3 * self.etcd.ttl
        while self.t < end:
            for n in self.nodes:
                if n.issue(self.t):
                    n.apply(self.t + 0.001)
                    self.t += 0.002
                    self._deliver(n)
            self.t += 0.05
        assert sum(n.e.leading(self.t) for n in self.nodes) == 1

    @invariant()
    def one_leader_and_it_holds_the_key(self) -> None:
        acting = [n for n in self.nodes if n.e.leading(self.t)]
        assert len(acting) <= 1
        if acting:
            assert self.etcd.read(self.t) == (acting[0].e.node_id, acting[0].e.generation, acting[0].e.lease)

    @invariant()
    def generations_strictly_grow(self) -> None:
        gens = [g for _n, g in self.leaders]
        assert gens == sorted(set(gens))


Interleavings.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
test_interleavings = Interleavings.TestCase


def test_a_renewal_answered_late_counts_from_when_it_was_sent() -> None:
    etcd = FakeEtcd()
    a = Node("a", etcd)
    a.roundtrip(0.0)
    a.roundtrip(0.01)
    assert a.e.leading(0.02)
    t = 0.6
    assert a.issue(t) and a.pending is not None and a.pending[0] is Op.RENEW
    a.apply(t + 0.001)  # etcd renews the lease at once...
    a.deliver(t + 0.5)  # ...but its answer takes 0.5 s; then nothing more from etcd
    assert a.e.leading(t + 0.5)
    for x in _times(t + 0.5, t + 5.0, 0.001):
        if a.e.leading(x):
            assert etcd.read(x)[0] == "a", f"leading at {x:.3f} s after etcd dropped the key"
    assert not a.e.leading(t + 0.001 + etcd.ttl)


def test_a_lost_campaign_answer_is_found_out_by_the_next_renewal() -> None:
    etcd = FakeEtcd()
    a, b = Node("a", etcd), Node("b", etcd)
    a.roundtrip(0.0)  # lease
    assert a.issue(0.01)
    a.apply(0.011)  # the key is a's in etcd...
    a.answer = None
    a.deliver(0.02)  # ...but a never heard so
    assert not a.e.leading(0.02)
    t = run([a, b], 0.03, 2.0)
    assert a.e.leading(t) and not b.e.leading(t)
    assert b.e.leader == "a"
