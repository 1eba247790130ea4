"""openflow.stats: a poll's requests, and real reply bytes -> the samples the counting core reads."""

from __future__ import annotations

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.core.usage import MeterSample, PortSample
from controller.lab.switchstats import datapath, meter_reply, parse, port_reply
from controller.openflow import stats


def test_a_poll_asks_for_every_meter_and_every_port():
    dp = datapath(7)
    stats.Poller().poll(dp, 100.0)
    kinds = sorted(type(m).__name__ for m in dp.sent)
    assert kinds == ["OFPMeterStatsRequest", "OFPPortStatsRequest"]
    meter = next(m for m in dp.sent if isinstance(m, parser.OFPMeterStatsRequest))
    port = next(m for m in dp.sent if isinstance(m, parser.OFPPortStatsRequest))
    assert meter.meter_id == ofp.OFPM_ALL and port.port_no == ofp.OFPP_ANY


def test_replies_become_samples_with_drops_summed_and_the_switchs_age():
    dp = datapath(7)
    msg = parse(dp, meter_reply(5, [(3, 10, 15_000, 2, 3000, 12.25), (0xFFF1, 1, 60, 0, 0, 1.0)]))
    assert stats.meter_samples(msg) == [
        MeterSample(3, 10, 15_000, 2, 3000, 12.25),
        MeterSample(0xFFF1, 1, 60, 0, 0, 1.0),
    ]
    msg = parse(dp, port_reply(6, [(1, 5, 7, 500, 700, 3.5), (ofp.OFPP_LOCAL, 1, 1, 1, 1, 3.5)]))
    assert stats.port_samples(msg) == [PortSample(1, 500, 700, 5, 7, 3.5)]  # LOCAL is not a port we count


def test_each_reply_says_when_it_was_asked_and_the_last_one_how_long_the_poll_took():
    dp = datapath(7)
    p = stats.Poller()
    p.poll(dp, 100.0)
    mx, px = (m.xid for m in dp.sent)
    assert p.reply(parse(dp, meter_reply(mx, [], more=True)), 100.1) == (100.0, None)
    assert p.reply(parse(dp, meter_reply(mx, [])), 100.2) == (100.0, None)
    assert p.reply(parse(dp, port_reply(px, [])), 100.3) == (100.0, 100.3 - 100.0)
    assert p.reply(parse(dp, port_reply(px, [])), 100.4) is None  # answered already
    assert p.reply(parse(dp, port_reply(999, [])), 100.4) is None  # not one of ours


def test_a_new_poll_replaces_one_never_answered_and_a_gone_switch_is_forgotten():
    dp = datapath(7)
    p = stats.Poller()
    p.poll(dp, 100.0)
    old = [m.xid for m in dp.sent]
    p.poll(dp, 110.0)
    new = [m.xid for m in dp.sent[2:]]
    assert p.reply(parse(dp, meter_reply(old[0], [])), 110.1) is None
    assert p.reply(parse(dp, meter_reply(new[0], [])), 110.1) == (110.0, None)
    p.forget(7)
    assert p.reply(parse(dp, port_reply(new[1], [])), 110.2) is None
