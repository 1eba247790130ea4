"""What each switch holds, as far as the controller knows, and how to make it hold what it
should. Pure (time passed in).

- After a switch (re)connects its flows, groups and meters are read back, so that only
  differences are sent: a controller restart must not blip anyone's traffic.
- An audit reads every switch again every few seconds and compares: someone may have
  deleted flows by hand, changed a meter's rate, or the switch may have restarted empty.
  Any difference (missing, extra, changed, foreign) is logged, counted and repaired by
  sending the difference, like any other change.
- A cheap audit asks each switch only for the number of its flows (aggregate statistics,
  ours and all) and its groups and meters (a few dozen entries); a full read of the flows
  follows where the numbers differ, and one switch per round gets a full read anyway, so
  a flow changed in place is found within (switches x interval).
- An audit whose switch was sent changes after it asked is void: the reply cannot tell
  what the switch held at any moment the controller knows of.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from controller.core.state import Changes, Flow, Group, Meter, SwitchState, apply, apply_in_place, diff, diff_entries

LOG = logging.getLogger("kendali.reconcile")
READ_TIMEOUT = 3.0  # seconds a switch has to report what it holds

FULL = ("flows", "groups", "meters")
CHEAP = ("counts", "groups", "meters")


@dataclass
class Reading:
    parts: tuple[str, ...]
    started: float
    audit: bool
    generation: int
    pending: set[str] = field(default_factory=set)
    flows: list[Flow] = field(default_factory=list)
    foreign: list[Flow] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)
    meters: list[Meter] = field(default_factory=list)
    counts: tuple[int, int] | None = None  # (our flows, all flows)

    def __post_init__(self) -> None:
        self.pending = set(self.parts)


@dataclass
class Drift:
    """How a switch differs from what the controller believes it holds."""

    missing: int = 0  # entries it should hold and does not
    extra: int = 0  # Kendali entries it should not hold
    changed: int = 0  # same entry, other content (a meter's rate edited by hand)
    foreign: int = 0  # flows with another cookie

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.changed or self.foreign)

    def __str__(self) -> str:
        parts = [
            f"{n} {what}"
            for what, n in (
                ("missing", self.missing),
                ("extra", self.extra),
                ("changed", self.changed),
                ("foreign", self.foreign),
            )
            if n
        ]
        return ", ".join(parts) or "none"


def compare(believed: SwitchState, reported: SwitchState, foreign: int = 0) -> Drift:
    """The drift of ``reported`` from ``believed`` (flows, groups and meters)."""
    d = Drift(foreign=foreign)
    for missing, extra, changed in (
        _count(believed.flows, reported.flows),
        _count(believed.groups, reported.groups),
        _count(believed.meters, reported.meters),
    ):
        d.missing += missing
        d.extra += extra
        d.changed += changed
    return d


_K = TypeVar("_K")
_V = TypeVar("_V")


def _count(mine: dict[_K, _V], theirs: dict[_K, _V]) -> tuple[int, int, int]:
    """Missing, extra and changed entries of one table (flows, groups or meters)."""
    return (
        sum(1 for k in mine if k not in theirs),
        sum(1 for k in theirs if k not in mine),
        sum(1 for k, v in mine.items() if k in theirs and theirs[k] != v),
    )


@dataclass
class Finished:
    """A read that completed: what the switch reported and how that differs from belief."""

    dpid: int
    audit: bool
    drift: Drift
    timed_out: set[str]
    needs_read: bool = False  # the flows differ in number: read them all to repair


@dataclass
class Reconciler:
    keep_foreign: bool = False
    read_timeout: float = READ_TIMEOUT
    actual: dict[int, SwitchState] = field(default_factory=dict)  # believed; absent: being read
    foreign: dict[int, list[Flow]] = field(default_factory=dict)  # foreign flows still to remove
    reading: dict[int, Reading] = field(default_factory=dict)
    repairs: dict[str, int] = field(default_factory=lambda: {"missing": 0, "extra": 0, "changed": 0, "foreign": 0})
    audits: int = 0
    _generation: dict[int, int] = field(default_factory=dict)
    _audit_turn: int = 0

    # ---- reading what a switch holds -------------------------------------------------
    def start_read(self, dpid: int, now: float, audit: bool = False, full: bool = True) -> tuple[str, ...] | None:
        """Begin reading ``dpid``; returns the parts to ask for, None if a read is under way."""
        if dpid in self.reading:
            return None
        parts = FULL if full else CHEAP
        self.reading[dpid] = Reading(parts, now, audit, self._generation.get(dpid, 0))
        if not audit:
            self.actual.pop(dpid, None)  # nothing is sent to it until we know what it holds
        return parts

    def part(
        self,
        dpid: int,
        kind: str,
        items: list[Any],
        more: bool = False,
        foreign: list[Flow] | None = None,
        counts: tuple[int, int] | None = None,
    ) -> Finished | None:
        """One reply (or one of several, ``more``) of a read; the result once all arrived."""
        r = self.reading.get(dpid)
        if r is None or kind not in r.pending:
            return None
        if kind == "flows":
            r.flows.extend(items)
            r.foreign.extend(foreign or [])
        elif kind == "groups":
            r.groups.extend(items)
        elif kind == "meters":
            r.meters.extend(items)
        elif kind == "counts" and counts is not None:
            r.counts = counts
        if more:
            return None
        r.pending.discard(kind)
        return self._finish(dpid, set()) if not r.pending else None

    def timeouts(self, now: float) -> list[Finished]:
        """Reads that waited too long end with what arrived (a switch may not support a part)."""
        out = []
        for dpid, r in list(self.reading.items()):
            if now - r.started >= self.read_timeout:
                LOG.warning(
                    "switch %s did not report its %s in %.0f s; assuming none",
                    dpid,
                    " and ".join(sorted(r.pending)),
                    self.read_timeout,
                )
                out.append(self._finish(dpid, set(r.pending)))
        return [f for f in out if f is not None]

    def _finish(self, dpid: int, timed_out: set[str]) -> Finished:
        r = self.reading.pop(dpid)
        believed = self.actual.get(dpid)
        if r.audit and (believed is None or self._generation.get(dpid, 0) != r.generation):
            return Finished(dpid, True, Drift(), timed_out)  # void: we sent it changes meanwhile
        keep = believed or SwitchState()
        reported = SwitchState(
            {f.key: f for f in r.flows} if "flows" in r.parts else dict(keep.flows),
            {g.group_id: g for g in r.groups},
            {m.meter_id: m for m in r.meters},
        )
        foreign = [] if self.keep_foreign else [f for f in r.foreign]
        if not r.audit:
            self.actual[dpid] = reported
            self.foreign[dpid] = foreign
            return Finished(dpid, False, Drift(), timed_out)
        self.audits += 1
        needs_read = False
        if "flows" in r.parts:
            drift = compare(keep, reported, len(foreign))
        else:
            ours, total = r.counts or (len(keep.flows), len(keep.flows))
            drift = compare(
                SwitchState({}, keep.groups, keep.meters), SwitchState({}, reported.groups, reported.meters)
            )
            drift.missing += max(0, len(keep.flows) - ours)
            drift.extra += max(0, ours - len(keep.flows))
            drift.foreign += 0 if self.keep_foreign else max(0, total - ours)
            # Counts tell that flows differ, not which: the caller reads them all.
            needs_read = ours != len(keep.flows) or drift.foreign > 0
        if drift:
            for k in self.repairs:
                self.repairs[k] += getattr(drift, k)
            if not needs_read:
                self.actual[dpid] = reported
                self.foreign[dpid] = foreign
        return Finished(dpid, True, drift, timed_out, needs_read)

    def audit_parts(self, dpids: list[int]) -> int | None:
        """Which switch of this audit round gets a full read (one per round, in turn)."""
        if not dpids:
            return None
        self._audit_turn = (self._audit_turn + 1) % len(dpids)
        return sorted(dpids)[self._audit_turn]

    # ---- sending ---------------------------------------------------------------------
    def changes(
        self,
        dpid: int,
        desired: SwitchState,
        additions_only: bool = False,
        only: tuple[Iterable[Any], Iterable[int], Iterable[int]] | None = None,
    ) -> Changes:
        """What to send ``dpid`` now; recorded as held once returned. Empty while reading.

        ``only``: (flow keys, group ids, meter ids) that can differ, when the caller knows
        the switch held exactly the previous desired state and which entries changed since
        (an incremental compile): the difference then costs those entries, not the table."""
        have = self.actual.get(dpid)
        if have is None or (dpid in self.reading and not self.reading[dpid].audit):
            return Changes()
        if only is not None and not additions_only and not self.foreign.get(dpid):
            ch = diff_entries(have, desired, *only)
            if ch:
                apply_in_place(have, ch)
                self._generation[dpid] = self._generation.get(dpid, 0) + 1
            return ch
        ch = diff(have, desired)
        if additions_only:
            # Restoring after a restart: the graph is still being rediscovered, so only
            # add (a policy's meters and flows); nothing is changed or removed yet.
            ch = Changes(meters_add=ch.meters_add, groups_add=ch.groups_add, flows_add=ch.flows_add)
        else:
            stale = self.foreign.pop(dpid, [])
            ch.foreign_del = [f for f in stale if f.key not in desired.flows]
        if ch:
            # Recorded before sending: a read-back that starts while we send (after an
            # error from the switch) replaces it with what the switch reports.
            self.actual[dpid] = apply(have, ch)
            self._generation[dpid] = self._generation.get(dpid, 0) + 1
        return ch

    def disconnected(self, dpid: int) -> None:
        self.actual.pop(dpid, None)
        self.reading.pop(dpid, None)
        self.foreign.pop(dpid, None)

    def ready(self, dpid: int) -> bool:
        return dpid in self.actual and not (dpid in self.reading and not self.reading[dpid].audit)
