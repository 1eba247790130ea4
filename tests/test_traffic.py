"""controller.lab.traffic: reading iperf3's JSON (no lab needed)."""

import pytest

from controller.errors import KendaliError
from controller.lab import traffic


def test_goodput_ignores_iperf3s_mislabelled_interval_after_the_warm_up() -> None:
    def iv(start: float, seconds: float, bps: float, omitted: bool) -> dict:
        return {"sum": {"start": start, "seconds": seconds, "bits_per_second": bps, "omitted": omitted}}

    # The shape iperf3 3.12 -R -O 2 -t 6 -J really prints (see `kendali bench meters`).
    data = {
        "intervals": [iv(0, 1.0, 40e6, True), iv(1.0, 2.0, 10.97e6, False)]
        + [iv(float(s), 1.0, 20e6, False) for s in range(1, 6)],
        "end": {"sum_sent": {"retransmits": 0}},
    }
    g = traffic.goodput(traffic.Load("inet", "c1"), data)
    assert g.mean_bps == pytest.approx(20e6)


def test_iperf3_errors_and_garbage_are_clear():
    with pytest.raises(KendaliError, match="no result"):
        traffic.parse_iperf3("iperf3: error - unable to connect", "iperf3 a->b")
    with pytest.raises(KendaliError, match="unable to connect"):
        traffic.parse_iperf3('{"error": "unable to connect to server"}', "iperf3 a->b")


def test_swing_is_spread_over_mean():
    g = traffic.Goodput(traffic.Load("a", "b"), [9e6, 11e6], 0)
    assert g.mean_bps == 10e6 and g.swing == pytest.approx(0.1)


def test_only_the_measured_seconds_count_not_the_tail_pad() -> None:
    # A client of a concurrent run is kept going TAIL_PAD_S past its measured seconds;
    # its tail (here: alone on the meter, twice the rate) must not enter the mean.
    data = {
        "intervals": [
            {"sum": {"seconds": 1.0, "bits_per_second": bps, "omitted": False}}
            for bps in (10e6, 10e6, 10e6, 20e6, 20e6)
        ]
    }
    g = traffic.goodput(traffic.Load("inet", "c1"), data, keep=3)
    assert g.per_second_bps == [10e6] * 3
    assert traffic.goodput(traffic.Load("inet", "c1"), data).mean_bps == pytest.approx(14e6)
