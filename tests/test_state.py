"""controller.core.state: diff/apply round trips and what counts as a modification."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.state import (
    T_EGRESS,
    T_FWD,
    T_INGRESS,
    Bucket,
    Changes,
    Flow,
    Group,
    Meter,
    SwitchState,
    apply,
    diff,
    match,
    total_flows,
)


def fl(prio, dst, port=1, meter=None, table=T_FWD):
    return Flow(table, prio, match(eth_dst=dst), (("output", port),), meter=meter)


def state(flows=(), groups=(), meters=()):
    s = SwitchState()
    for f in flows:
        s.add_flow(f)
    for g in groups:
        s.add_group(g)
    for m in meters:
        s.add_meter(m)
    return s


def test_match_is_canonical():
    assert match(b=1, a=2) == match(a=2, b=1) == (("a", 2), ("b", 1))
    assert Flow(0, 1, match(in_port=1, eth_type=2)).key == (0, 1, (("eth_type", 2), ("in_port", 1)))


def test_identical_states_diff_to_nothing():
    a = state([fl(1, "m1")], [Group(1, "ff", (Bucket((("output", 1),), 1),))], [Meter(1, 100, 100)])
    ch = diff(a, a.copy())
    assert not ch and ch.count() == 0 and ch == Changes()


def test_modification_is_a_mod_not_add_and_delete():
    a = state([fl(1, "m1", port=1)], [Group(7, "all", (Bucket((("output", 1),)),))], [Meter(3, 100, 100)])
    b = state([fl(1, "m1", port=2)], [Group(7, "all", (Bucket((("output", 2),)),))], [Meter(3, 200, 100)])
    ch = diff(a, b)
    assert ch.flows_mod == [fl(1, "m1", port=2)] and not ch.flows_add and not ch.flows_del
    assert ch.groups_mod == [b.groups[7]] and not ch.groups_add and not ch.groups_del
    assert ch.meters_mod == [Meter(3, 200, 100)] and not ch.meters_add and not ch.meters_del
    assert ch.count() == 3
    assert apply(a, ch).flows == b.flows and apply(a, ch).groups == b.groups and apply(a, ch).meters == b.meters


def test_meter_on_a_flow_is_part_of_its_instructions():
    a, b = state([fl(1, "m1")]), state([fl(1, "m1", meter=5)])
    ch = diff(a, b)
    assert len(ch.flows_mod) == 1 and ch.count() == 1


def test_priority_or_match_change_is_add_and_delete():
    a, b = state([fl(1, "m1")]), state([fl(2, "m1")])
    ch = diff(a, b)
    assert ch.flows_add == [fl(2, "m1")] and ch.flows_del == [fl(1, "m1")] and not ch.flows_mod


def test_adds_and_deletes():
    g = Group(2, "ff", (Bucket((("output", 2),), 2),))
    a = state([fl(1, "m1")], [], [Meter(1, 10, 10)])
    b = state([fl(1, "m2")], [g], [Meter(2, 10, 10)])
    ch = diff(a, b)
    assert ch.flows_add == [fl(1, "m2")] and ch.flows_del == [fl(1, "m1")]
    assert ch.groups_add == [g] and ch.groups_del == []
    assert ch.meters_add == [Meter(2, 10, 10)] and ch.meters_del == [1]
    assert ch.count() == 5


def test_apply_does_not_change_its_input():
    a = state([fl(1, "m1")], meters=[Meter(1, 10, 10)])
    before = a.copy()
    apply(a, diff(a, state()))
    assert a == before


def test_total_flows():
    s1, s2 = state([fl(1, "a"), fl(2, "a")]), state([fl(1, "b")])
    assert total_flows({1: s1, 2: s2}) == 3 == total_flows([s1, s2])


# ---- round trips -------------------------------------------------------------------------------


def random_state(rng: random.Random) -> SwitchState:
    s = SwitchState()
    for _ in range(rng.randint(0, 12)):
        f = Flow(
            rng.choice([T_INGRESS, T_FWD, T_EGRESS]),
            rng.choice([0, 100, 200]),
            match(eth_dst=f"02:00:00:00:00:{rng.randint(0, 5):02x}"),
            (("output", rng.randint(1, 3)),),
            meter=rng.choice([None, 1, 2]),
        )
        if f.key not in s.flows:  # one flow per key
            s.add_flow(f)
    for gid in rng.sample(range(1, 6), rng.randint(0, 4)):
        s.add_group(
            Group(gid, rng.choice(["all", "ff"]), (Bucket((("output", rng.randint(1, 3)),), rng.randint(1, 3)),))
        )
    for mid in rng.sample(range(1, 6), rng.randint(0, 4)):
        s.add_meter(Meter(mid, rng.choice([100, 200]), rng.choice([10, 20])))
    return s


@pytest.mark.parametrize("seed", range(40))
def test_apply_of_diff_gives_desired(seed):
    rng = random.Random(seed)
    a, b = random_state(rng), random_state(rng)
    ch = diff(a, b)
    out = apply(a, ch)
    assert (out.flows, out.groups, out.meters) == (b.flows, b.groups, b.meters)
    assert not diff(out, b)
    keys_a, keys_b = set(a.flows), set(b.flows)
    assert len(ch.flows_add) == len(keys_b - keys_a) and len(ch.flows_del) == len(keys_a - keys_b)
    assert len(ch.flows_mod) == sum(1 for k in keys_a & keys_b if a.flows[k] != b.flows[k])


flows_st = st.dictionaries(
    st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from([0, 10]), st.sampled_from(["a", "b", "c"])),
    st.tuples(st.integers(1, 3), st.sampled_from([None, 1])),
    max_size=8,
)
ids_st = st.dictionaries(st.integers(1, 4), st.integers(1, 3), max_size=4)


def build_state(flows, groups, meters):
    s = SwitchState()
    for (t, p, d), (port, meter) in flows.items():
        s.add_flow(Flow(t, p, match(eth_dst=d), (("output", port),), meter=meter))
    for gid, port in groups.items():
        s.add_group(Group(gid, "all", (Bucket((("output", port),)),)))
    for mid, r in meters.items():
        s.add_meter(Meter(mid, r * 100, 10))
    return s


@settings(max_examples=40, deadline=None)
@given(flows_st, ids_st, ids_st, flows_st, ids_st, ids_st)
def test_round_trip_property(f1, g1, m1, f2, g2, m2):
    a, b = build_state(f1, g1, m1), build_state(f2, g2, m2)
    out = apply(a, diff(a, b))
    assert (out.flows, out.groups, out.meters) == (b.flows, b.groups, b.meters)
    assert diff(a, b).count() == diff(b, a).count()
