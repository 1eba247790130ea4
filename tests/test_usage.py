"""The counting core without switches: deltas across reconnects, restarts, modified meters,
wraps, missing and late samples; per-OPD sums, rates, share of cap; links; the poll schedule."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.compiler import AGGREGATE_METER, FRAME_OVERHEAD, Counted, MeterPlan
from controller.core.usage import WRAP, MeterSample, PollSchedule, PortSample, Usage, _Last, delta, jitter

A = MeterPlan("a", 1, 2)
B = MeterPlan("b", 3, 4)
COUNTED = {
    "a": Counted("a", "policy", ("10.0.1.0/24",), 4000, 10000),
    "b": Counted("b", "subnet", ("10.0.2.0/24",), None, None),
}


def usage(**kw) -> Usage:
    u = Usage(**kw)
    u.plan(COUNTED, {"a": A, "b": B}, {"a": "OPD A"}, now=0.0)
    return u


def m(mid: int, nbytes: int, dropped: int = 0, age: float | None = None, pkts: int | None = None) -> MeterSample:
    return MeterSample(mid, nbytes // 100 if pkts is None else pkts, nbytes, dropped // 100, dropped, age)


def row(u: Usage, opd: str, now: float = 100.0) -> dict:
    return next(x for x in u.view(now) if x["opd"] == opd)


# ---- delta ------------------------------------------------------------------------------------


def last(values, age=10.0, at=10.0) -> _Last:
    return _Last(tuple(values), age, at)


def test_delta_is_the_growth_since_the_previous_sample():
    assert delta(last([100, 1]), (250, 3), 20.0, 20.0) == (150, 2)


def test_a_first_sample_is_a_baseline_unless_we_created_the_counter_since():
    assert delta(None, (500,), 3.0, 20.0) is None
    assert delta(None, (500,), 3.0, 20.0, resets=[17.0]) == (500,)
    assert delta(None, (500,), 3.0, 20.0, resets=[21.0]) is None  # asked before we made it


def test_late_and_repeated_samples_add_nothing():
    assert delta(last([100]), (150,), 9.0, 9.0) is None
    assert delta(last([100]), (100,), 10.0, 10.0) is None


def test_age_going_back_means_a_new_counter_all_of_it_new():
    assert delta(last([10_000], age=500.0), (300,), 4.0, 20.0) == (300,)
    # even when the new counter already counted more than the old one had
    assert delta(last([100], age=500.0), (300,), 4.0, 20.0) == (300,)


def test_a_meter_we_modified_counts_from_zero_even_when_it_grew_past_its_old_value():
    # Open vSwitch keeps the age of a modified meter but restarts its counters.
    assert delta(last([100], age=10.0), (300,), 20.0, 20.0, resets=[15.0]) == (300,)
    assert delta(last([100], age=10.0), (300,), 20.0, 20.0, resets=[5.0]) == (200,)  # an older change


def test_a_64_bit_wrap_is_growth_and_a_drop_without_wrap_is_a_restart():
    assert delta(last([WRAP - 100, 7]), (50, 9), 20.0, 20.0) == (150, 2)
    assert delta(last([5000, 7]), (50, 9), 20.0, 20.0) == (50, 9)


def test_without_ages_the_asking_times_decide():
    assert delta(_Last((100,), None, 10.0), (150,), None, 20.0) == (50,)


# ---- per OPD ----------------------------------------------------------------------------------


def test_delivered_and_dropped_summed_over_switches_and_directions():
    u = usage()
    for dpid in (7, 8):
        u.meter_samples(dpid, [m(1, 1000, 100, 1.0), m(2, 5000, 0, 1.0), m(3, 10, 0, 1.0)], 1.0)
    for dpid, up in ((7, 4000), (8, 2000)):
        u.meter_samples(dpid, [m(1, 1000 + up, 100 + 500, 11.0), m(2, 8000, 0, 11.0), m(3, 30, 0, 11.0)], 11.0)
    a = row(u, "a", 11.0)
    assert a["up"]["bytes"] == (4000 - 500) + (2000 - 500) and a["up"]["dropped_bytes"] == 1000
    assert a["down"]["bytes"] == 2 * 3000 and a["down"]["dropped_bytes"] == 0
    assert a["up"]["packets"] == 35 + 15 and a["up"]["dropped_packets"] == 10
    assert row(u, "b", 11.0)["up"]["bytes"] == 40
    # rates over the 10 s step, in bits per second
    assert a["up"]["bps"] == round((3500 + 1500) * 8 / 10) and a["up"]["dropped_bps"] == round(1000 * 8 / 10)
    assert a["down"]["share_of_cap"] == round(6000 * 8 / 10 / (10000 * 1000 * FRAME_OVERHEAD), 4)
    assert row(u, "b")["up"]["share_of_cap"] is None and row(u, "b")["up"]["cap_kbps"] is None
    assert a["window"] == {"from": 1.0, "to": 11.0, "seconds": 10.0}
    assert a["name"] == "OPD A" and row(u, "b")["name"] == "b" and row(u, "b")["kind"] == "subnet"


def test_meters_not_owned_by_an_opd_are_ignored():
    u = usage()
    u.meter_samples(1, [m(0xFFF1, 100, 0, 1.0)], 1.0)
    u.meter_samples(1, [m(0xFFF1, 900, 0, 2.0)], 2.0)
    assert all(r["up"]["bytes"] == r["down"]["bytes"] == 0 for r in u.view(3.0))


def test_upload_dropped_at_the_uplink_aggregate_is_not_delivered_and_totals_never_go_back():
    u = usage()
    agg_up, agg_down = AGGREGATE_METER | 1, AGGREGATE_METER | 2
    u.meter_samples(7, [m(1, 0, 0, 1.0), m(2, 0, 0, 1.0)], 1.0)
    u.meter_samples(1, [m(agg_up, 0, 0, 1.0), m(agg_down, 0, 0, 1.0)], 1.0)
    u.meter_samples(7, [m(1, 10_000, 0, 11.0), m(2, 3000, 0, 11.0)], 11.0)
    assert row(u, "a")["up"]["bytes"] == 10_000
    # the uplink (polled later) dropped 4000 of them; the edge has not been polled again
    u.meter_samples(1, [m(agg_up, 10_000, 4000, 15.0), m(agg_down, 5000, 2000, 15.0)], 15.0)
    a = row(u, "a")
    assert a["up"]["bytes"] == 10_000  # not back to 6000 until the edge catches up
    assert a["up"]["dropped_bytes"] == 4000 and a["down"]["dropped_bytes"] == 2000
    assert a["down"]["bytes"] == 3000  # download drops at the aggregate never reached the edge
    u.meter_samples(7, [m(1, 20_000, 0, 21.0)], 21.0)
    assert row(u, "a")["up"]["bytes"] == 20_000 - 4000


def test_a_switch_reconnecting_keeps_its_counters_and_nothing_is_counted_twice():
    u = usage()
    u.meter_samples(7, [m(1, 1000, 0, 5.0)], 5.0)
    u.meter_samples(7, [m(1, 3000, 0, 15.0)], 15.0)
    # disconnect, reconnect: the same meter, still counting; no reset was sent
    u.meter_samples(7, [m(1, 9000, 0, 45.0)], 45.0)
    assert row(u, "a")["up"]["bytes"] == 8000


def test_a_restarted_switch_counts_from_zero_after_its_meters_are_added_again():
    u = usage()
    u.meter_samples(7, [m(1, 1000, 0, 5.0)], 5.0)
    u.meter_samples(7, [m(1, 3000, 0, 15.0)], 15.0)
    u.meters_reset(7, [1, 2], 30.0)  # reconnected empty; we added its meters again
    u.meter_samples(7, [m(1, 5000, 0, 10.0)], 40.0)
    assert row(u, "a")["up"]["bytes"] == 2000 + 5000


def test_a_modified_meter_is_not_double_counted_by_a_late_reply_from_before_the_change():
    u = usage()
    u.meter_samples(7, [m(1, 1000, 0, 5.0)], 5.0)
    asked_before = 14.0
    u.meters_reset(7, [1], 15.0)  # the PUT changed the cap: the meter restarts at 0
    u.meter_samples(7, [m(1, 4000, 0, 14.0)], asked_before)  # old counter, answered after the change
    u.meter_samples(7, [m(1, 6000, 0, 25.0)], 25.0)  # new counter: 6000 since the change
    assert row(u, "a")["up"]["bytes"] == 3000 + 6000
    u.meter_samples(7, [m(1, 4500, 0, 24.0)], 20.0)  # a reply older than the one we hold: ignored
    assert row(u, "a")["up"]["bytes"] == 9000


def test_a_reply_asked_between_two_changes_counts_from_the_first_one():
    u = usage()
    u.meter_samples(7, [m(1, 5000, 0, 1.0)], 1.0)
    u.meters_reset(7, [1], 2.0)
    asked = 3.0  # counter restarted at 2 s: 700 since
    u.meters_reset(7, [1], 4.0)
    u.meter_samples(7, [m(1, 700, 0, 3.0)], asked)
    u.meter_samples(7, [m(1, 200, 0, 5.0)], 5.0)
    assert row(u, "a")["up"]["bytes"] == 700 + 200


def test_a_missing_sample_is_covered_by_the_next_one_and_the_rate_by_its_longer_step():
    u = usage()
    u.meter_samples(7, [m(2, 0, 0, 0.0)], 0.0)
    u.meter_samples(7, [m(2, 30_000, 0, 30.0)], 30.0)  # polls at 10 and 20 s went unanswered
    a = row(u, "a", 30.0)
    assert a["down"]["bytes"] == 30_000 and a["down"]["bps"] == 8000


def test_a_counter_not_heard_for_long_adds_no_rate():
    u = usage(stale_after=25.0)
    u.meter_samples(7, [m(2, 0, 0, 0.0)], 0.0)
    u.meter_samples(7, [m(2, 10_000, 0, 10.0)], 10.0)
    assert row(u, "a", 20.0)["down"]["bps"] == 8000
    assert row(u, "a", 40.0)["down"]["bps"] == 0 and row(u, "a", 40.0)["window"] is None


def test_cycles_add_up_to_the_totals_and_a_restored_core_continues_without_double_counting():
    u = usage()
    u.meter_samples(7, [m(1, 1000, 0, 5.0), m(2, 0, 0, 5.0)], 5.0)
    first = u.take_cycle(10.0)
    u.meter_samples(7, [m(1, 4000, 1000, 15.0), m(2, 2000, 0, 15.0)], 15.0)
    second = u.take_cycle(20.0)
    assert second.seconds == 10.0 and first.seconds == 0.0
    a = row(u, "a")
    total = tuple(x + y for x, y in zip(first.deltas["a"], second.deltas["a"], strict=True))
    assert total == (
        a["up"]["bytes"],
        a["up"]["packets"],
        a["up"]["dropped_bytes"],
        a["up"]["dropped_packets"],
        a["down"]["bytes"],
        a["down"]["packets"],
        a["down"]["dropped_bytes"],
        a["down"]["dropped_packets"],
    )
    assert set(second.totals) == {"a"}  # b was idle: nothing new to save
    # A restarted controller continues from the saved cycle; the switch kept counting meanwhile.
    v = Usage()
    v.restore(second.totals | first.totals, second.counters, second.t)
    v.plan(COUNTED, {"a": A, "b": B}, {}, now=50.0)
    v.meter_samples(7, [m(1, 9000, 1000, 55.0), m(2, 2000, 0, 55.0)], 55.0)
    assert row(v, "a")["up"]["bytes"] == a["up"]["bytes"] + 5000
    assert row(v, "a")["since"] == 0.0  # first seen by the controller before the restart
    third = v.take_cycle(60.0)
    assert third.seconds == 40.0 and third.deltas["a"][0] == 5000


def test_an_opd_no_longer_counted_keeps_its_totals_but_adds_no_idle_history():
    u = usage()
    u.meter_samples(7, [m(1, 0, 0, 1.0)], 1.0)
    u.meter_samples(7, [m(1, 500, 0, 2.0)], 2.0)
    u.take_cycle(3.0)
    u.plan({"b": COUNTED["b"]}, {"b": B}, {}, 4.0)  # policy a deleted
    c = u.take_cycle(13.0)
    assert set(c.deltas) == {"b"} and set(c.names) == {"b"}
    assert u.opds["a"].delivered["up"] == [500, 5]  # kept: a new policy with the same id continues it
    assert [r["opd"] for r in u.view(13.0)] == ["b"]


def test_links_carry_bytes_each_way_and_utilisation_of_the_declared_capacity():
    u = Usage()
    u.port_samples(1, [PortSample(2, 0, 0, 0, 0, 1.0)], 1.0)
    u.port_samples(3, [PortSample(1, 0, 0, 0, 0, 1.0)], 1.0)
    u.port_samples(1, [PortSample(2, 500, 12_500_000, 9, 10_000, 11.0)], 11.0)
    u.port_samples(3, [PortSample(1, 12_500_000, 500, 10_000, 9, 11.0)], 11.0)
    links = u.links({(1, 2, 3, 1): 100.0, (1, 3, 4, 1): None}, 12.0)
    a = links[(1, 2, 3, 1)]
    assert a["a_to_b"] == {"bytes": 12_500_000, "packets": 10_000, "bps": 10_000_000, "utilisation": 0.1}
    assert a["b_to_a"]["bytes"] == 500 and a["b_to_a"]["bps"] == 400
    assert links[(1, 3, 4, 1)]["a_to_b"] == {"bytes": 0, "packets": 0, "bps": None, "utilisation": None}


def test_links_go_to_the_history_as_bytes_each_way_since_the_ports_were_first_sampled():
    u = Usage()
    links = {"link:x:2~y:1": ((1, 2, 3, 1), "x – y"), "link:y:2~z:1": ((3, 2, 4, 1), "y – z")}
    u.port_samples(1, [PortSample(2, 0, 0, 0, 0, 1.0)], 1.0)
    u.port_samples(3, [PortSample(1, 0, 0, 0, 0, 1.0)], 1.0)
    u.port_samples(1, [PortSample(2, 500, 12_000, 9, 10, 11.0)], 11.0)
    u.port_samples(3, [PortSample(1, 12_000, 700, 10, 9, 11.0)], 11.0)
    first = u.take_cycle(12.0, links, {"links": {"link:x:2~y:1": {"a": "x", "b": "y"}}})
    # up: what x's port sent (tx), down: what y's port sent; y-z has no samples yet: not written
    assert first.deltas == {"link:x:2~y:1": (12_000, 10, 0, 0, 700, 9, 0, 0)}
    assert first.names == {"link:x:2~y:1": ("link", "x – y")}
    assert first.meta == {"links": {"link:x:2~y:1": {"a": "x", "b": "y"}}}
    u.port_samples(1, [PortSample(2, 500, 15_000, 9, 14, 21.0)], 21.0)
    u.port_samples(3, [PortSample(1, 12_000, 700, 10, 9, 21.0)], 21.0)
    assert u.take_cycle(22.0, links).deltas["link:x:2~y:1"] == (3000, 4, 0, 0, 0, 0, 0, 0)
    assert u.take_cycle(32.0).deltas == {}  # no links given: none written


def test_a_host_port_goes_to_the_history_as_a_subnet_up_is_what_its_hosts_sent():
    u = Usage()
    isp = {"isp": ((1, 5), "subnet", "ISP hand-off")}
    assert u.take_cycle(1.0, ports=isp).deltas == {}  # not sampled yet
    u.port_samples(1, [PortSample(5, 0, 0, 0, 0, 1.0)], 1.0)
    u.port_samples(1, [PortSample(5, 9_000, 400, 6, 4, 11.0)], 11.0)  # rx 9000: from the ISP
    c = u.take_cycle(12.0, ports=isp)
    assert c.deltas == {"isp": (9_000, 6, 0, 0, 400, 4, 0, 0)} and c.names == {"isp": ("subnet", "ISP hand-off")}
    u.port_samples(1, [PortSample(5, 10_000, 400, 7, 4, 21.0)], 21.0)
    assert u.take_cycle(22.0, ports=isp).deltas["isp"] == (1000, 1, 0, 0, 0, 0, 0, 0)


# ---- totals only grow: random switch behaviour -------------------------------------------------

EVENT = st.one_of(
    st.tuples(st.just("traffic"), st.integers(0, 10**9)),
    st.tuples(st.just("poll"), st.booleans()),  # True: answered late, after the next event
    st.tuples(st.just("modify"), st.booleans()),  # True: we sent it (so the core is told)
    st.just(("restart", True)),  # the switch restarted (its age goes back) and we re-added its meters
)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.sampled_from([0, WRAP - 3 * 10**9]), st.lists(EVENT, max_size=40))
def test_totals_only_grow_never_exceed_what_was_sent_and_lose_only_what_a_restart_cut_off(start, events):
    """A simulated meter (starting near its 64-bit wrap or not): traffic, polls (some answered
    late), modifications (told or not), switch restarts. The OPD's total never goes back. When
    every change was told, it never exceeds what was sent and ends exactly at what was sent
    less the traffic between the last poll and a restart. (A change nobody told us about, to
    a counter near its wrap, looks exactly like a wrap: only growth is promised then.)"""
    u = usage()
    now, age, counter = 1.0, 1.0, start
    u.meter_samples(7, [m(1, counter, 0, age, pkts=0)], now)  # baseline
    sent = lost = mark = 0  # mark: sent at the last poll asked or restart, whichever is later
    exact = True
    pending: list[tuple[MeterSample, float]] = []
    seen = 0

    def check() -> None:
        nonlocal seen
        total = row(u, "a", now)["up"]["bytes"]
        assert seen <= total
        assert total <= sent or not exact
        seen = total

    for kind, arg in events:
        now += 1.0
        age += 1.0
        if kind == "traffic":
            counter = (counter + arg) % WRAP
            sent += arg
        elif kind == "poll":
            mark = sent
            sample = (m(1, counter, 0, age, pkts=0), now)
            if arg:
                pending.append(sample)
                check()
                continue
            u.meter_samples(7, [sample[0]], sample[1])
        else:
            if arg:
                u.meters_reset(7, [1], now)
            else:
                exact = False  # a change nobody told us about and that leaves the age alone
            if kind == "restart":
                age = 0.0
            lost += sent - mark
            mark = sent
            counter = 0
        for sample, asked in pending:
            u.meter_samples(7, [sample], asked)
        pending = []
        check()
    now += 1.0
    for sample, asked in pending:
        u.meter_samples(7, [sample], asked)
    u.meter_samples(7, [m(1, counter, 0, age + 1.0, pkts=0)], now)
    check()
    if exact:
        assert seen == sent - lost


# ---- the poll schedule ---------------------------------------------------------------------------


def test_each_switch_is_asked_once_per_interval_at_its_own_phase():
    sched = PollSchedule(10.0)
    dpids = list(range(1, 201))
    asked: dict[int, list[float]] = {d: [] for d in dpids}
    t = 0.0
    while t < 40.0:
        for d in sched.due(dpids, t):
            asked[d].append(t)
        t = round(t + 0.1, 1)
    assert all(v and v[0] < 10.1 and len(v) in (3, 4) for v in asked.values())
    firsts = sorted(v[0] for v in asked.values())
    # spread over the whole interval, not all at once: no tenth of it holds more than a third
    assert max(sum(1 for f in firsts if k <= f < k + 1) for k in range(10)) < len(dpids) / 3
    for v in asked.values():
        assert all(9.9 <= b - a <= 10.1 for a, b in itertools.pairwise(v))


def test_after_a_stall_the_schedule_does_not_burst_to_catch_up():
    sched = PollSchedule(10.0)
    d = 5
    t0 = jitter(d) * 10.0
    assert sched.due([d], 0.0) == ([d] if t0 == 0.0 else [])
    assert sched.due([d], t0) == [d]
    assert sched.due([d], t0 + 55.0) == [d]  # 5 intervals late: one poll, not five
    assert sched.due([d], t0 + 56.0) == []
    assert sched.due([d], t0 + 65.0) == [d]


@pytest.mark.parametrize("dpid", [1, 2, 3, 1000, 2**48 - 1])
def test_jitter_is_a_phase_in_the_interval(dpid):
    assert 0.0 <= jitter(dpid) < 1.0
