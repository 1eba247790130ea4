"""GET /metrics content: Prometheus names, types, units and labels, parsed back by prometheus_client."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from controller.api.metrics import Metrics, Snapshot
from controller.core.compiler import Counted, MeterPlan
from controller.core.usage import MeterSample, Usage


def snapshot() -> Snapshot:
    u = Usage()
    u.plan(
        {
            "dinkes": Counted("dinkes", "policy", ("10.10.7.0/24",), 10000, 20000),
            "dc": Counted("dc", "subnet", ("10.10.0.0/24",), None, None),
        },
        {"dinkes": MeterPlan("dinkes", 1, 2), "dc": MeterPlan("dc", 3, 4)},
        {},
        0.0,
    )
    u.meter_samples(107, [MeterSample(1, 0, 0, 0, 0, 1.0), MeterSample(2, 0, 0, 0, 0, 1.0)], 1.0)
    u.meter_samples(107, [MeterSample(1, 10, 15000, 2, 3000, 11.0), MeterSample(2, 5, 7000, 0, 0, 11.0)], 11.0)
    link = {
        "link": "core:1-dist-penajam:3",
        "capacity_mbps": 10000.0,
        "a_to_b": {"bytes": 1000, "packets": 1, "bps": 800, "utilisation": 8e-8},
        "b_to_a": {"bytes": 0, "packets": 0, "bps": None, "utilisation": None},
    }
    return Snapshot(
        u.view(12.0),
        [link],
        [{"dpid": 1, "name": "core", "connected": True}, {"dpid": 2, "name": "dc", "connected": False}],
        31,
        4,
        0,
    )


def families(m: Metrics) -> dict:
    text, ctype = m.exposition()
    assert ctype.startswith("text/plain") and "version=" in ctype
    return {f.name: f for f in text_string_to_metric_families(text.decode())}


def value(fams: dict, family: str, sample: str | None = None, **labels: str) -> float:
    f = fams[family]
    want = sample or (family + "_total" if f.type == "counter" else family)
    return next(s.value for s in f.samples if s.name == want and all(s.labels.get(k) == v for k, v in labels.items()))


def test_opd_usage_is_exported_as_counters_in_bytes_with_opd_and_direction():
    m = Metrics(snapshot)
    fams = families(m)
    assert all(name.startswith("kendali_") for name in fams)
    for name in (
        "kendali_opd_bytes",
        "kendali_opd_packets",
        "kendali_opd_dropped_bytes",
        "kendali_opd_dropped_packets",
        "kendali_link_bytes",
        "kendali_failovers",
    ):
        assert fams[name].type == "counter", name
    assert value(fams, "kendali_opd_bytes", opd="dinkes", direction="up") == 12000
    assert value(fams, "kendali_opd_dropped_bytes", opd="dinkes", direction="up") == 3000
    assert value(fams, "kendali_opd_packets", opd="dinkes", direction="down") == 5
    assert value(fams, "kendali_opd_bytes", opd="dc", direction="down") == 0
    assert value(fams, "kendali_opd_cap_bytes_per_second", opd="dinkes", direction="down") == 20000 * 1000 / 8
    assert not [s for s in fams["kendali_opd_cap_bytes_per_second"].samples if s.labels["opd"] == "dc"]


def test_links_switches_and_controller_health():
    fams = families(Metrics(snapshot))
    assert value(fams, "kendali_link_bytes", link="core:1-dist-penajam:3", direction="a_to_b") == 1000
    assert value(fams, "kendali_link_capacity_bytes_per_second", link="core:1-dist-penajam:3") == 1.25e9
    assert [s.labels["direction"] for s in fams["kendali_link_utilisation_ratio"].samples] == ["a_to_b"]
    assert value(fams, "kendali_switch_connected", dpid="1", name="core") == 1
    assert value(fams, "kendali_switch_connected", dpid="2", name="dc") == 0
    assert value(fams, "kendali_links_up") == 31 and value(fams, "kendali_failovers") == 4


def test_compile_and_poll_durations_are_histograms_in_seconds():
    m = Metrics(snapshot)
    m.compile_seconds.observe(0.004)
    m.poll_seconds.observe(0.03)
    m.poll_seconds.observe(0.3)
    fams = families(m)
    assert fams["kendali_compile_duration_seconds"].type == "histogram"
    assert value(fams, "kendali_poll_duration_seconds", "kendali_poll_duration_seconds_count") == 2
    assert value(fams, "kendali_poll_duration_seconds", "kendali_poll_duration_seconds_bucket", le="0.05") == 1
    assert value(fams, "kendali_compile_duration_seconds", "kendali_compile_duration_seconds_sum") == 0.004


def test_each_scrape_reads_the_latest_figures():
    n = {"failovers": 0}

    def snap() -> Snapshot:
        n["failovers"] += 1
        return Snapshot(failovers=n["failovers"])

    m = Metrics(snap)
    assert value(families(m), "kendali_failovers") == 1
    assert value(families(m), "kendali_failovers") == 2


def test_the_grafana_dashboard_and_scrape_example_use_only_metrics_the_controller_exports():
    import json
    import re
    from pathlib import Path

    import yaml

    docs = Path(__file__).resolve().parent.parent / "docs"
    m = Metrics(snapshot)
    m.compile_seconds.observe(0.01)
    m.poll_seconds.observe(0.01)
    text = m.exposition()[0].decode()
    exported = {line.split("{")[0].split()[0] for line in text.splitlines() if line and not line.startswith("#")}
    dash = json.loads((docs / "grafana-kendali.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs.append(dash["templating"]["list"][0]["query"]["query"])
    used = {n for e in exprs for n in re.findall(r"\bkendali_[a-z_]+", e)}
    assert used and used <= exported, used - exported
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    assert "cap" in titles and "dropped" in titles and "link utilisation" in titles
    scrape = yaml.safe_load((docs / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics" and scrape["static_configs"][0]["targets"]
