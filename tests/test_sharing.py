"""controller.core.sharing: the allocator's properties, and sharing over time in a fluid model."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.compiler import FRAME_OVERHEAD
from controller.core.policy import Policy, load_file
from controller.core.sharing import (
    DIRECTIONS,
    UPLINK,
    Allocation,
    Change,
    Constraint,
    Measured,
    Opd,
    Settings,
    Sharing,
    allocate,
    constraints,
    measured_from_usage,
)
from tests.builders import ROOT, from_topology

TOL = 1e-6  # kbit/s: float drift only
WIRE = 1000 * FRAME_OVERHEAD  # a policy's kbit/s -> bit/s of whole frames, what switches count
TCP_EXCESS = 1.05  # what a TCP sender at a meter offers beyond what it passes (the drops that make it back off)


# --- the allocator -----------------------------------------------------------------------------


@st.composite
def problems(draw: st.DrawFn, links: bool = True, guarantees: bool = True, floor: bool = True) -> tuple:
    n = draw(st.integers(1, 10))
    ids = [f"o{i}" for i in range(n)]
    opds = []
    for i in ids:
        cap = draw(st.integers(64, 100_000))
        low = draw(st.integers(0, cap)) if guarantees and draw(st.booleans()) else 0
        opds.append(Opd(i, cap, low, draw(st.integers(1, 8)), draw(st.integers(1, 5))))
    demand = {i: draw(st.floats(0, 150_000)) for i in ids}
    caps = [Constraint(UPLINK, draw(st.integers(1_000, 400_000)))]
    if links:
        for k in range(draw(st.integers(0, 3))):
            members = draw(st.frozensets(st.sampled_from(ids), min_size=1))
            caps.append(Constraint(f"link {k}", draw(st.integers(100, 200_000)), members))
    return opds, demand, caps, draw(st.sampled_from([0.0, 64.0])) if floor else 0.0


def crosses(c: Constraint, opd: str) -> bool:
    return c.opds is None or opd in c.opds


def used(c: Constraint, alloc: Mapping[str, Allocation]) -> float:
    return sum(a.kbps for o, a in alloc.items() if crosses(c, o))


def full(c: Constraint, alloc: Mapping[str, Allocation]) -> bool:
    return used(c, alloc) >= c.capacity_kbps - TOL


def want(o: Opd, demand: Mapping[str, float]) -> float:
    return min(o.cap_kbps, demand.get(o.id, 0.0))


@settings(max_examples=250, deadline=None, derandomize=True)
@given(problems())
def test_caps_and_capacities_are_never_exceeded(p: tuple) -> None:
    opds, demand, caps, floor = p
    alloc = allocate(opds, demand, caps, floor)
    assert set(alloc) == {o.id for o in opds}
    for o in opds:
        a = alloc[o.id]
        assert -TOL <= a.guaranteed_kbps <= a.demand_kbps + TOL <= a.kbps + 2 * TOL <= o.cap_kbps + 3 * TOL
    for c in caps:
        assert used(c, alloc) <= c.capacity_kbps + TOL, c.name


@settings(max_examples=250, deadline=None, derandomize=True)
@given(problems())
def test_guarantees_are_met_when_demanded_and_they_fit(p: tuple) -> None:
    opds, demand, caps, floor = p
    alloc = allocate(opds, demand, caps, floor)
    sure = {o.id: min(o.min_kbps, want(o, demand)) for o in opds}
    for o in opds:
        # Short of its guarantee only where guarantees alone fill a constraint it crosses.
        if alloc[o.id].guaranteed_kbps < sure[o.id] - TOL:
            assert any(full(c, alloc) for c in caps if crosses(c, o.id))
    fits = all(sum(v for o, v in sure.items() if crosses(c, o)) <= c.capacity_kbps for c in caps)
    if fits:
        for o in opds:
            assert alloc[o.id].guaranteed_kbps >= sure[o.id] - TOL
            assert alloc[o.id].kbps >= sure[o.id] - TOL


@settings(max_examples=250, deadline=None, derandomize=True)
@given(problems())
def test_work_conserving(p: tuple) -> None:
    """No capacity idle while someone could use it: an OPD below its cap crosses a full
    constraint; an OPD given less than it asks for (up to its cap) does too."""
    opds, demand, caps, floor = p
    alloc = allocate(opds, demand, caps, floor)
    for o in opds:
        a = alloc[o.id]
        if a.kbps < o.cap_kbps - TOL:
            assert any(full(c, alloc) for c in caps if crosses(c, o.id)), o
        if a.demand_kbps < want(o, demand) - TOL:
            assert any(full(c, alloc) for c in caps if crosses(c, o.id)), o
            assert a.limit != "demand" and a.limit != "cap"


@settings(max_examples=300, deadline=None, derandomize=True)
@given(problems(), st.data())
def test_max_min_fair_among_equals(p: tuple, data: st.DataObject) -> None:
    opds, demand, caps, floor = p
    model = data.draw(st.sampled_from(opds))
    twin = Opd("twin", model.cap_kbps, model.min_kbps, model.priority, model.weight)
    demand = {**demand, "twin": demand[model.id]}
    caps = [
        c if c.opds is None or model.id not in c.opds else Constraint(c.name, c.capacity_kbps, c.opds | {"twin"})
        for c in caps
    ]
    alloc = allocate([*opds, twin], demand, caps, floor)
    assert abs(alloc["twin"].kbps - alloc[model.id].kbps) <= 1.0
    assert abs(alloc["twin"].demand_kbps - alloc[model.id].demand_kbps) <= 1.0


@settings(max_examples=250, deadline=None, derandomize=True)
@given(problems(links=False, floor=False))
def test_a_higher_priority_is_served_first(p: tuple) -> None:
    """While an OPD of priority p is short of its demand, every lower priority (a larger
    number) gets its guarantee and nothing more."""
    opds, demand, caps, floor = p
    alloc = allocate(opds, demand, caps, floor)
    for o in opds:
        if alloc[o.id].demand_kbps < want(o, demand) - TOL:
            for lower in (x for x in opds if x.priority > o.priority):
                assert alloc[lower.id].demand_kbps <= alloc[lower.id].guaranteed_kbps + TOL


@settings(max_examples=250, deadline=None, derandomize=True)
@given(problems(links=False, guarantees=False, floor=False))
def test_weights_share_one_level_in_proportion(p: tuple) -> None:
    """At the level where the uplink runs out, the OPDs short of their demand have the same
    allocation per weight, and the others asked for no more than that per weight."""
    opds, demand, caps, floor = p
    alloc = allocate(opds, demand, caps, floor)
    short = [o for o in opds if alloc[o.id].demand_kbps < want(o, demand) - TOL]
    if not short:
        return
    level = min(o.priority for o in short)
    per_weight = [alloc[o.id].demand_kbps / o.weight for o in short if o.priority == level]
    assert max(per_weight) - min(per_weight) <= 1e-6 * max(1.0, max(per_weight))
    for o in opds:
        if o.priority == level and o not in short:
            assert want(o, demand) / o.weight <= per_weight[0] + TOL


def test_guarantees_first_then_priority_then_weight_then_the_bonus() -> None:
    opds = [
        Opd("a", 600, 0, 8, 1),  # lowest priority, no guarantee
        Opd("b", 600, 200, 8, 1),  # lowest priority, guaranteed 200 but asks for 100
        Opd("c", 300, 0, 1, 1),  # first served, capped at 300
        Opd("d", 600, 0, 8, 2),  # twice a's share
    ]
    alloc = allocate(opds, {"a": 1000, "b": 100, "c": 1000, "d": 1000}, [Constraint(UPLINK, 1000)])
    # b gets what it asks (within its guarantee), c its cap, a and d share 600 as 1:2.
    assert {o: round(a.kbps, 6) for o, a in alloc.items()} == {"a": 200, "b": 100, "c": 300, "d": 400}
    assert alloc["c"].limit == "cap" and alloc["a"].limit == UPLINK and alloc["b"].limit == "demand"
    # Nobody asks for much: they get it, and the rest of the uplink evenly on top.
    alloc = allocate(opds, {o.id: 10 for o in opds}, [Constraint(UPLINK, 1000)])
    assert all(a.demand_kbps == 10 and abs(a.kbps - 250) < TOL for a in alloc.values())
    assert alloc["b"].guaranteed_kbps == 10 and abs(alloc["b"].bonus_kbps - 240) < TOL


def test_a_link_constraint_limits_its_opds_only() -> None:
    opds = [Opd(o, 600) for o in "abcd"]
    link = Constraint("link core:1-sw-a:1", 100, frozenset("ab"))
    alloc = allocate(opds, {o: 1000 for o in "abcd"}, [Constraint(UPLINK, 1000), link], floor_kbps=64)
    assert abs(alloc["a"].kbps - 50) < TOL and abs(alloc["b"].kbps - 50) < TOL
    assert abs(alloc["c"].kbps - 450) < TOL and abs(alloc["d"].kbps - 450) < TOL
    assert alloc["a"].limit == link.name and alloc["c"].limit == UPLINK


def test_bad_figures_count_as_nothing() -> None:
    opds = [Opd("a", 100), Opd("b", 100)]
    alloc = allocate(opds, {"a": float("nan"), "b": -5}, [Constraint(UPLINK, 1000)])
    assert all(a.demand_kbps == 0 and a.kbps == 100 for a in alloc.values())


def _problem(n: int, m: int, seed: int) -> tuple[list[Opd], dict[str, float], list[Constraint]]:
    rnd = random.Random(seed)
    ids = [f"opd{i}" for i in range(n)]
    opds = []
    for i in ids:
        cap = rnd.choice([2_000, 5_000, 10_000, 20_000, 50_000, 150_000])
        opds.append(Opd(i, cap, rnd.choice([0, 0, cap // 10]), rnd.randint(1, 8), rnd.randint(1, 4)))
    demand = {i: rnd.uniform(0, 200_000) for i in ids}
    caps = [Constraint(UPLINK, 1_000_000 * n / 30)]  # the PPU's 30 OPDs on 1 Gbit/s, scaled
    for k in range(m - 1):
        members = frozenset(rnd.sample(ids, max(1, n // 20)))
        room = sum(o.cap_kbps for o in opds if o.id in members)
        caps.append(Constraint(f"link {k}", rnd.uniform(0.1, 0.5) * room, members))
    return opds, demand, caps


@pytest.mark.parametrize("n", [200, 2000])
def test_allocate_time(n: int, capsys: pytest.CaptureFixture[str]) -> None:
    opds, demand, caps = _problem(n, 50, seed=n)
    start = time.perf_counter()
    alloc = allocate(opds, demand, caps, 64)
    took = time.perf_counter() - start
    with capsys.disabled():
        print(f"\nallocate: {n} OPDs, {len(caps)} constraints: {took * 1000:.1f} ms")
    assert all(used(c, alloc) <= c.capacity_kbps + TOL for c in caps)
    assert took < 5.0  # one period is 5 s; measured medians 2.6 ms (200) and 26.5 ms (2000) here


# --- where the capacity is shared ----------------------------------------------------------------


def test_constraints_of_the_ppu_network() -> None:
    built = from_topology("ppu")
    policies = load_file(ROOT / "policies" / "ppu.yaml")
    topo = built.net.topology
    assert topo and topo.uplink and topo.uplink.capacity_mbps
    uplink_kbps = topo.uplink.capacity_mbps * 1000
    found = constraints(built.net, policies, uplink_kbps)
    assert found[0] == Constraint(UPLINK, uplink_kbps, None)
    links = found[1:]
    assert links, "RSUD's 150 Mbit/s cap on a 100 Mbit/s access link must be a constraint"
    assert any("rsud" in c.opds for c in links if c.opds)
    for c in links:
        assert c.name.startswith("link ") and c.opds
        assert sum(max(policies[o].download_kbps, policies[o].upload_kbps) for o in c.opds) * FRAME_OVERHEAD > (
            c.capacity_kbps
        )
    # No uplink declared: only links; no network known: nothing.
    assert all(c.name != UPLINK for c in constraints(built.net, policies, None))


# --- over time: a fluid model --------------------------------------------------------------------

Demand = Callable[[int, str, str], float]  # (period, opd, direction) -> kbit/s offered


def policy(opd: str, cap: int, low: int = 0, priority: int = 8, weight: int = 1, up_cap: int | None = None) -> Policy:
    n = sum(map(ord, opd)) % 250
    return Policy(
        opd,
        opd.upper(),
        (f"10.99.{n}.0/24",),
        cap,
        up_cap or cap,
        download_min_kbps=low,
        upload_min_kbps=min(low, up_cap or cap),
        priority=priority,
        weight=weight,
    )


def meter(sharing: Sharing, p: Policy, direction: str) -> float:
    """The rate the OPD's meter enforces now (kbit/s, a policy's unit)."""
    share = sharing.shares.get(p.id, {}).get(direction)
    return share.rate_kbps if share else float(getattr(p, f"{direction}_kbps"))


def run(
    sharing: Sharing,
    policies: Mapping[str, Policy],
    demand: Demand,
    periods: range,
    caps: list[Constraint],
    payload_kbps: float | None = None,
    tcp: bool = False,
) -> list[list[Change]]:
    """Each period: every OPD offers its demand; its meter passes up to its rate and drops the
    rest (a fluid); the ISP's shaper passes at most the uplink, sharing it in proportion to what
    arrives (its drops are not counted anywhere); sharing sees that and re-sizes the meters.
    ``tcp``: a sender that backs off, offering at most 5 % more than its meter passes, so drops
    hide how much it wants.

    After every step: the allocations in force add up to no more than the uplink; every meter
    is its allocation or its reserve, whichever is more (the meters may add up to more)."""
    out = []
    uplink_payload = next((c.capacity_kbps / FRAME_OVERHEAD for c in caps if c.name == UPLINK), float("inf"))
    for k in periods:
        passed, offered = {}, {}
        for o, p in policies.items():
            for d in DIRECTIONS:
                want, rate = demand(k, o, d), meter(sharing, p, d)
                offered[(o, d)] = min(want, rate * TCP_EXCESS) if tcp else want
                passed[(o, d)] = min(offered[(o, d)], rate)
        measured: dict[str, dict[str, Measured]] = {o: {} for o in policies}
        for d in DIRECTIONS:
            total = sum(v for (_, dd), v in passed.items() if dd == d)
            shaped = min(1.0, uplink_payload / total) if total else 1.0
            for o, p in policies.items():
                dropped = max(0.0, offered[(o, d)] - meter(sharing, p, d))
                measured[o][d] = Measured(passed[(o, d)] * shaped * WIRE, dropped * WIRE)
        out.append(sharing.step(k * sharing.settings.period, policies, measured, caps))
        if payload_kbps is not None:
            for d in DIRECTIONS:
                shares = [sharing.shares[o][d] for o in policies]
                assert sum(sh.in_force_kbps for sh in shares) <= payload_kbps + TOL
                assert all(abs(sh.rate_kbps - max(sh.in_force_kbps, sh.reserve_kbps)) <= TOL for sh in shares)
    return out


def uplink(payload_kbps: float) -> list[Constraint]:
    """The uplink that carries ``payload_kbps`` of a policy's unit (what is purchased: frames)."""
    return [Constraint(UPLINK, payload_kbps * FRAME_OVERHEAD)]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple:
    n = draw(st.integers(1, 6))
    payload = draw(st.integers(10_000, 300_000))
    pols, offered = {}, {}
    for i in range(n):
        cap = draw(st.integers(1_000, 150_000))
        low = draw(st.integers(0, min(cap, payload // n)))
        p = policy(f"o{i}", cap, low, draw(st.integers(1, 8)), draw(st.integers(1, 4)))
        pols[p.id] = p
        for d in DIRECTIONS:
            offered[(p.id, d)] = draw(st.sampled_from([0.0, 500.0, float(draw(st.integers(0, 200_000)))]))
    return pols, offered, payload


@settings(max_examples=40, deadline=None, derandomize=True)
@given(scenarios(), st.booleans())
def test_stable_under_constant_demand(s: tuple, tcp: bool) -> None:
    """After converging, constant demand changes no meter for many periods (no oscillation),
    and the meters never add up to more than the uplink."""
    pols, offered, payload = s
    sharing = Sharing()
    history = run(sharing, pols, lambda k, o, d: offered[(o, d)], range(60), uplink(payload), payload, tcp)
    quiet = history[30:]
    assert not any(quiet), [str(c) for cs in quiet for c in cs]
    for o, p in pols.items():
        for d in DIRECTIONS:
            share = sharing.shares[o][d]
            # An OPD that asks for its guarantee has it; nobody is above a cap.
            assert share.rate_kbps >= min(getattr(p, f"{d}_min_kbps"), offered[(o, d)]) - TOL
            if not tcp:  # (a TCP sender's full demand is not visible: it is probed for, period by period)
                assert share.allocation_kbps >= min(share.cap_kbps, offered[(o, d)]) - TOL or share.limit == UPLINK
            assert share.rate_kbps <= getattr(p, f"{d}_kbps") + TOL


@settings(max_examples=60, deadline=None, derandomize=True)
@given(scenarios(), st.data(), st.booleans())
def test_a_guarantee_is_honoured_within_two_periods_of_demand_appearing(
    s: tuple, data: st.DataObject, tcp: bool
) -> None:
    """Also for a TCP sender held at a low meter (the floor): its drops show only a little of
    what it wants, and the probe goes straight to its guarantee."""
    pols, offered, payload = s
    late = data.draw(st.sampled_from(sorted(pols)))
    start = 20  # everyone else has converged by then

    def demand(k: int, o: str, d: str) -> float:
        return 0.0 if o == late and k < start else offered[(o, d)]

    sharing = Sharing()
    run(sharing, pols, demand, range(start + 2), uplink(payload), payload, tcp)  # measured at start, start + 1
    for d in DIRECTIONS:
        assert meter(sharing, pols[late], d) >= min(getattr(pols[late], f"{d}_min_kbps"), offered[(late, d)]) - TOL


def test_an_idle_opds_share_is_absorbed_and_given_back_within_two_periods() -> None:
    payload = 100_000  # 100 Mbit/s of payload
    pols = {p.id: p for p in (policy("a", 80_000, 20_000), policy("b", 80_000, 20_000), policy("c", 80_000, 20_000))}
    idle, back = 20, 40

    def demand(k: int, o: str, d: str) -> float:
        return 0.0 if o == "a" and idle <= k < back else 200_000.0

    sharing = Sharing()
    fair = payload / 3
    history = run(sharing, pols, demand, range(idle), uplink(payload), payload)
    assert not any(history[10:])
    for o in pols:
        assert abs(meter(sharing, pols[o], "download") - fair) <= 1
    # a goes idle: measured idle at step `idle` and `idle + 1`: by then b and c have its share.
    run(sharing, pols, demand, range(idle, idle + 2), uplink(payload), payload)
    b, c = (meter(sharing, pols[o], "download") for o in "bc")
    floor = sharing.settings.floor_kbps
    assert b + c >= payload - floor - 1 and abs(b - c) <= 1
    run(sharing, pols, demand, range(idle + 2, back), uplink(payload), payload)
    # a's allocation was lowered gradually, then given away; its meter keeps room to come back:
    # an even split of the uplink while it is quiet (more than its guarantee here).
    a = sharing.shares["a"]["download"]
    assert a.in_force_kbps <= floor + 1 and abs(a.rate_kbps - fair) <= 1 and a.reserve_kbps > a.min_kbps
    # a returns: within two periods it has its guarantee and its fair share again.
    run(sharing, pols, demand, range(back, back + 2), uplink(payload), payload)
    for o in pols:
        assert abs(meter(sharing, pols[o], "download") - fair) <= 1


def test_unused_room_is_handed_back_gradually_and_taken_at_once_when_needed() -> None:
    payload = 100_000
    pols = {p.id: p for p in (policy("a", 100_000), policy("b", 100_000))}
    sharing = Sharing()
    phase = {"b": 0.0}

    def demand(k: int, o: str, d: str) -> float:
        return 90_000.0 if o == "a" and k < 10 else (phase["b"] if o == "b" else 1_000.0)

    run(sharing, pols, demand, range(10), uplink(payload), payload)
    high = meter(sharing, pols["a"], "download")
    assert high >= 90_000
    # a now asks for 1 Mbit/s, b for nothing: a's meter comes down gradually (room nobody needs).
    history = run(sharing, pols, demand, range(10, 14), uplink(payload), payload)
    lowered = [c for cs in history for c in cs if c.opd == "a" and c.direction == "download"]
    assert len(lowered) >= 2 and all(c.new_kbps < c.old_kbps for c in lowered)
    assert lowered[0].new_kbps >= lowered[0].old_kbps - 0.5 * (lowered[0].old_kbps - 1_100) - TOL
    # b suddenly asks for everything: a's meter gives way at the next period, not gradually.
    phase["b"] = 200_000.0
    run(sharing, pols, demand, range(14, 15), uplink(payload), payload)
    assert meter(sharing, pols["b"], "download") >= payload - 1_100 * 1.1 - sharing.settings.floor_kbps - 1


def test_reasons_are_one_line_with_the_figures() -> None:
    assert str(Change("dinkes", "download", 40_000, 55_000, "why")) == "dinkes download 40 -> 55 Mbit/s: why"
    assert str(Change("kel-nipah", "upload", 800, 1_250, "why")) == "kel-nipah upload 800 kbit/s -> 1.25 Mbit/s: why"
    payload = 100_000
    pols = {"dinkes": policy("dinkes", 60_000), "rsud": policy("rsud", 100_000, priority=1)}
    sharing = Sharing()

    def demand(k: int, o: str, d: str) -> float:
        if o == "rsud":
            return 60_000.0 if k < 10 else 1_000.0
        return 45_000.0

    run(sharing, pols, demand, range(10), uplink(payload), payload)
    assert meter(sharing, pols["dinkes"], "download") < 45_000  # rsud, priority 1, comes first
    changes = run(sharing, pols, demand, range(10, 13), uplink(payload), payload)
    lines = [str(c) for cs in changes for c in cs if c.opd == "dinkes" and c.direction == "download"]
    assert lines, "dinkes must be raised once rsud needs less"
    pattern = r"^dinkes download [\d.]+ -> [\d.]+ Mbit/s: [a-z][^\n]*; uplink \d+ % allocated to demand$"
    assert all(re.match(pattern, line) for line in lines), lines
    assert any("dropping at its allocation, probed up" in line for line in lines), lines


def test_before_its_first_period_an_opd_keeps_its_cap_and_a_removed_one_is_forgotten() -> None:
    sharing = Sharing()
    assert sharing.rate("dinkes", "download") is None and sharing.rates() == {}  # the compiler keeps the cap
    assert sharing.due(0.0)
    pols = {"dinkes": policy("dinkes", 20_000)}
    sharing.step(0.0, pols, {}, uplink(100_000))
    assert sharing.rates()["dinkes"] == (20_000, 20_000)  # nobody else: the bonus is the whole cap
    assert not sharing.due(4.9) and sharing.due(5.0)
    sharing.step(5.0, {}, {}, uplink(100_000))
    assert sharing.rate("dinkes", "download") is None and sharing.shares == {}


@pytest.mark.parametrize(
    "field,value,words",
    [
        ("period", 0, "more than 0 seconds"),
        ("window", 0, "whole number of periods"),
        ("margin", 0.9, "at least 1"),
        ("probe", 1.0, "more than 1"),
        ("held", 1.5, "share of the meter rate"),
        ("lower_share", 0.0, "more than 0"),
        ("floor_kbps", float("nan"), "floor_kbps"),
    ],
)
def test_bad_settings_say_which_and_why(field: str, value: float, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        Settings(**{field: value})  # type: ignore[arg-type]


def test_measured_from_the_usage_view() -> None:
    view = [
        {"opd": "dinkes", "down": {"bps": 40e6, "dropped_bps": 2e6}, "up": {"bps": 1e6, "dropped_bps": 0}},
        {"opd": "rsud", "down": {"bps": 0, "dropped_bps": 0}, "up": {"bps": 5e5, "dropped_bps": 1e3}},
    ]
    view[0]["window"] = {"from": 100.0, "to": 110.0, "seconds": 10.0}
    m = measured_from_usage(view)
    assert m["dinkes"]["download"] == Measured(40e6, 2e6, 100.0) and m["dinkes"]["upload"] == Measured(1e6, 0, 100.0)
    assert m["rsud"]["upload"] == Measured(5e5, 1e3, None)  # no window: no sample yet


def test_a_sample_from_before_a_meter_change_cannot_show_the_opd_held_at_it() -> None:
    pols = {"a": policy("a", 100_000), "b": policy("b", 100_000)}
    caps = uplink(100_000)

    def first() -> Sharing:
        sharing = Sharing()
        sharing.step(0.0, pols, {}, caps)  # nobody asks: both meters come down from their caps
        assert meter(sharing, pols["a"], "download") < 100_000
        return sharing

    # The poll behind this sample began before that change: it measured the old meter.
    rate = meter(first(), pols["a"], "download")
    at_old = {"download": Measured(rate * WIRE, 0.02 * rate * WIRE, since=-1.0)}
    stale = first()
    stale.step(5.0, pols, {"a": at_old}, caps)
    assert not stale.shares["a"]["download"].probed
    fresh = first()
    fresh.step(5.0, pols, {"a": {"download": Measured(rate * WIRE, 0.02 * rate * WIRE, since=1.0)}}, caps)
    assert fresh.shares["a"]["download"].probed


# --- coming back: the meter's reserve ------------------------------------------------------------


def test_a_meter_never_goes_below_the_guarantee_while_the_allocations_give_the_room_away() -> None:
    payload = 30_000
    pols = {
        "a": policy("a", 20_000, 10_000, priority=1),
        "b": policy("b", 20_000, 5_000, priority=2),
        "c": policy("c", 25_000, 5_000, priority=3),
    }

    def demand(k: int, o: str, d: str) -> float:
        return 0.0 if o == "a" and k >= 10 else 50_000.0

    sharing = Sharing()
    run(sharing, pols, demand, range(10), uplink(payload), payload)
    history = run(sharing, pols, demand, range(10, 20), uplink(payload), payload)
    a, b, c = (sharing.shares[o]["download"] for o in "abc")
    assert a.in_force_kbps <= sharing.settings.floor_kbps + 1  # a's allocation was given away ...
    assert a.rate_kbps == a.min_kbps == a.reserve_kbps  # ... its meter kept its guarantee
    assert b.in_force_kbps + c.in_force_kbps >= payload - sharing.settings.floor_kbps - 1  # work-conserving
    lines = [str(ch) for cs in history for ch in cs if ch.opd == "a" and ch.direction == "download"]
    assert lines and "(the meter keeps its guarantee of 10 Mbit/s)" in lines[-1], lines


def test_a_quiet_opd_keeps_an_even_split_but_a_busy_one_behind_a_higher_priority_does_not() -> None:
    payload = 30_000
    pols = {"hi": policy("hi", 30_000, priority=1), "lo": policy("lo", 30_000), "off": policy("off", 30_000)}

    def demand(k: int, o: str, d: str) -> float:
        return {"hi": 50_000.0, "lo": 50_000.0, "off": 0.0}[o]

    sharing = Sharing()
    run(sharing, pols, demand, range(20), uplink(payload), payload, tcp=True)
    hi, lo, off = (sharing.shares[o]["download"] for o in ("hi", "lo", "off"))
    assert abs(off.rate_kbps - payload / 3) <= 1 and off.reserve_kbps == off.rate_kbps  # quiet: room to return
    assert lo.reserve_kbps == 0 and lo.rate_kbps == lo.in_force_kbps < payload / 3  # busy: priority holds
    assert hi.rate_kbps >= 0.9 * payload  # (hysteresis may keep it up to 10 % below its allocation)


def _returning(settings: Settings, low: int) -> list[float]:
    """The lab's case in the fluid model: A (guarantee ``low``, priority 1), B and C saturating,
    A idle, then A back with a sender that learns its rate (TCP BBR, the lab's): in its first
    period it offers what its meter passes, then at most 25 % more each period than it got
    in the last. Returns A's delivered kbit/s in the periods after it came back."""
    payload = 30_000
    pols = {
        "a": policy("a", 20_000, low, priority=1),
        "b": policy("b", 20_000, 5_000, priority=2),
        "c": policy("c", 25_000, 5_000, priority=3),
    }
    back = 20
    got: list[float] = []

    def demand(k: int, o: str, d: str) -> float:
        if o != "a" or d == "upload":
            return 50_000.0
        if k < 10:
            return 50_000.0
        if k < back:
            return 0.0
        return 50_000.0 if k == back else min(50_000.0, 1.25 * got[-1])

    sharing = Sharing(settings)
    run(sharing, pols, demand, range(back), uplink(payload), payload)
    for k in range(back, back + 4):
        run(sharing, pols, demand, range(k, k + 1), uplink(payload), payload)
        got.append(sharing.shares["a"]["download"].delivered_kbps)
    return got


def test_a_returning_sender_that_learns_its_rate_gets_its_guarantee_within_two_periods() -> None:
    got = _returning(Settings(), 10_000)
    assert min(got[1:]) >= 0.9 * 10_000, got  # the second period after it came back, and on
    # Without a guarantee, the even split a quiet OPD keeps does the same.
    assert min(_returning(Settings(), 0)[1:]) >= 0.9 * 30_000 / 3, got
    # The lab's failure, in the model: a meter at the 64 kbit/s floor when it comes back.
    assert max(_returning(Settings(ramp_share=0), 0)) < 1_000


def test_an_opd_passing_more_than_its_allocation_asks_for_its_guarantee_at_once() -> None:
    """Back from idle behind its reserve, A's flow shares the ISP's shaper with B's and C's (the
    lab: 3.4-4.8 Mbit/s of its 10 guaranteed, well under its meter): its demand is hidden, and
    what it passes beyond its allocation is enough to give it its guarantee at the next period."""
    payload = 30_000
    pols = {
        "a": policy("a", 20_000, 10_000, priority=1),
        "b": policy("b", 20_000, 5_000, priority=2),
        "c": policy("c", 25_000, 5_000, priority=3),
    }

    def demand(k: int, o: str, d: str) -> float:
        return 0.0 if o == "a" else 50_000.0

    sharing = Sharing()
    run(sharing, pols, demand, range(10), uplink(payload), payload)
    assert sharing.shares["a"]["download"].in_force_kbps < 1_000
    got = {"a": 3_400.0, "b": 19_000.0, "c": 5_000.0}  # what the shaper let through (no drops at A's meter)
    measured = {
        o: {d: Measured(v * WIRE, 0.0 if o == "a" else 0.05 * v * WIRE) for d in DIRECTIONS} for o, v in got.items()
    }
    changes = sharing.step(50.0, pols, measured, uplink(payload))
    a = sharing.shares["a"]["download"]
    assert a.in_force_kbps >= a.min_kbps and a.probed
    assert sum(sharing.shares[o]["download"].in_force_kbps for o in "bc") <= payload - a.min_kbps + TOL
    assert any(c.opd == "b" and c.direction == "download" and c.new_kbps < c.old_kbps for c in changes)
