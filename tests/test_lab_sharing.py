"""The uplink shared by need, end to end (issue 12): `kendali controller --sharing`, the
Mininet lab of topologies/lab-sharing.yaml (inet's link shaped with tc to the 30 Mbit/s
bought), real TCP. policies/lab-sharing.yaml: A, B, C with download guarantees 10/5/5
Mbit/s and priorities 1/2/3.

One scenario, phases of 20 s (4 periods of 5 s): all three download at once; A stops; A
starts again. Goodput is iperf3's at the receiver, 0.5 s intervals, wall clock. Tolerances
are wide (70 % of a guarantee, 80 % of the uplink) because these tests prove that sharing
works on a busy 2-core machine; `kendali bench sharing` measures how well.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controller.core.compiler import FRAME_OVERHEAD
from controller.core.policy import load_file

pytestmark = pytest.mark.lab

PERIOD, PHASE = 5.0, 20.0
MBIT = 1e6


@pytest.fixture(scope="module")
def run() -> Iterator[tuple[Any, Any, dict]]:
    from controller.lab import bench_sharing as b

    with b.session(True, PERIOD, "kls") as s:
        sc = b.run_scenario(s, PHASE)
        yield s, sc, s.timeline()


def guarantee(opd: str) -> float:
    from controller.lab.bench_sharing import POLICIES

    return load_file(POLICIES)[opd].download_min_kbps * 1000.0


def uplink_payload() -> float:
    from controller.lab.bench_sharing import uplink_mbit

    return uplink_mbit() * MBIT / FRAME_OVERHEAD


def show(s: Any, tl: dict) -> str:
    lines = [f"{o}: {[round(v / MBIT, 1) for _t, v in got]}" for o, got in tl.items()]
    log = [line for line in s.ctl.log_tail(200).splitlines() if "sharing" in line]
    return "\n".join(lines + log[-30:])


def test_all_saturating_each_gets_its_guarantee_and_priority_1_the_most(run: tuple) -> None:
    from controller.lab.bench_sharing import mean_between

    s, sc, tl = run
    f, to = sc.start + PHASE / 2, sc.start + PHASE  # after two periods
    got = {o: mean_between(tl[o], f, to) for o in tl}
    for o, bps in got.items():
        assert bps >= 0.7 * guarantee(o), f"{o} got {bps / MBIT:.1f} Mbit/s\n{show(s, tl)}"
    assert got["opd-a"] > got["opd-c"], show(s, tl)
    assert sum(got.values()) >= 0.8 * uplink_payload(), show(s, tl)


def test_an_idle_opds_share_is_absorbed_within_two_periods(run: tuple) -> None:
    from controller.lab.bench_sharing import mean_between

    s, sc, tl = run
    a_stop = sc.start + PHASE
    before = mean_between(tl["opd-b"], sc.start + PHASE / 2, a_stop)
    f, to = a_stop + 2 * PERIOD, sc.marks["a_back"]
    b, c = mean_between(tl["opd-b"], f, to), mean_between(tl["opd-c"], f, to)
    assert b + c >= 0.8 * uplink_payload(), f"B {b / MBIT:.1f} + C {c / MBIT:.1f}\n{show(s, tl)}"
    assert b > before * 1.2, f"B before {before / MBIT:.1f}, after {b / MBIT:.1f}\n{show(s, tl)}"


def test_a_returning_opd_gets_its_guarantee_back_within_two_periods(run: tuple) -> None:
    from controller.lab.bench_sharing import mean_between

    s, sc, tl = run
    back = sc.marks["a_back"]
    a = mean_between(tl["opd-a"], back + 2 * PERIOD, back + PHASE)
    assert a >= 0.7 * guarantee("opd-a"), f"A got {a / MBIT:.1f} Mbit/s\n{show(s, tl)}"
