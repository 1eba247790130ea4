"""The probe receiver's arithmetic: gaps, lost probes and their runs, duplicates, reordering."""

from controller.lab.probe import analyse


def test_one_outage_is_one_run_of_lost_probes() -> None:
    arrivals = [(s, s * 0.001) for s in range(10) if s not in (3, 4, 5)]
    r = analyse(arrivals)
    assert r["lost"] == 3
    assert r["lost_runs"] == [[3, 3]]
    assert abs(r["max_gap_ms"] - 4.0) < 1e-6
    assert (r["gap_after_seq"], r["gap_before_seq"]) == (2, 6)


def test_two_outages_are_two_runs_and_the_tail_counts_when_expected() -> None:
    arrivals = [(s, s * 0.001) for s in (0, 1, 3, 6, 7)]
    r = analyse(arrivals, expect=10)
    assert r["lost_runs"] == [[2, 1], [4, 2], [8, 2]]
    assert r["lost"] == 5


def test_duplicates_and_reordering_are_counted_not_lost() -> None:
    arrivals = [(0, 0.0), (2, 0.001), (1, 0.002), (2, 0.003), (3, 0.004)]
    r = analyse(arrivals)
    assert (r["lost"], r["duplicates"], r["reordered"]) == (0, 1, 1)
    assert r["lost_runs"] == []


def test_nothing_arrived() -> None:
    assert analyse([], expect=5) == {"received": 0, "lost": 5, "max_gap_ms": None}
