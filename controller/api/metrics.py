"""GET /metrics: the controller's figures for Prometheus, through prometheus_client.

Naming follows Prometheus: one ``kendali_`` prefix, base units (bytes, seconds), ``_total``
for counters, few label values (opd, direction, link, dpid). Usage comes through a custom
collector (CounterMetricFamily): the values are the counting core's totals, which only ever
grow, so they are real counters and ``rate()`` works on them. Byte counts are whole
Ethernet frames (what a meter sees), 4.6 % above TCP goodput for full-size segments.

    kendali_opd_bytes_total{opd,direction}            delivered (passed the OPD's meters)
    kendali_opd_packets_total{opd,direction}
    kendali_opd_dropped_bytes_total{opd,direction}    dropped by the OPD's meters: demand above its cap
    kendali_opd_dropped_packets_total{opd,direction}
    kendali_opd_cap_bytes_per_second{opd,direction}   the policy's cap (capped OPDs only)
    kendali_opd_allocation_bits_per_second{opd,direction}  with --sharing: its share of the uplink in force
    kendali_opd_meter_bits_per_second{opd,direction}       with --sharing: its Internet meter's rate
    kendali_opd_guarantee_bits_per_second{opd,direction}   with --sharing: the policy's guarantee
    kendali_opd_demand_bits_per_second{opd,direction}      with --sharing: the estimated demand (frames)
    kendali_link_bytes_total{link,direction}          sent over the link (a_to_b, b_to_a)
    kendali_link_capacity_bytes_per_second{link}      declared capacity
    kendali_link_utilisation_ratio{link,direction}    over the last poll interval
    kendali_switch_connected{dpid,name}               1 connected, 0 declared but not connected
    kendali_links_up, kendali_failovers_total, kendali_history_backlog_cycles
    kendali_compile_duration_seconds, kendali_poll_duration_seconds   histograms
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

# Compiles take 1 ms (a ring) to seconds (1,000 switches); a poll a few ms to a busy second.
COMPILE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
POLL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Snapshot:
    """What the collector reads at each scrape (built by the controller, a literal in tests)."""

    opds: list[dict[str, Any]] = field(default_factory=list)  # controller.core.usage.Usage.view rows
    links: list[dict[str, Any]] = field(default_factory=list)  # {"link", "capacity_mbps", "a_to_b", "b_to_a"}
    switches: list[dict[str, Any]] = field(default_factory=list)  # {"dpid", "name", "connected"}
    links_up: int = 0
    failovers: int = 0
    history_backlog: int = 0


class _UsageCollector:
    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []  # values come at scrape time only

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot()
        od = ["opd", "direction"]
        fams = {
            ("bytes", False): CounterMetricFamily(
                "kendali_opd_bytes",
                "Bytes delivered to or from an OPD (Ethernet frames that passed its meters)",
                labels=od,
            ),
            ("packets", False): CounterMetricFamily(
                "kendali_opd_packets", "Frames delivered to or from an OPD", labels=od
            ),
            ("bytes", True): CounterMetricFamily(
                "kendali_opd_dropped_bytes", "Bytes an OPD's meters dropped (demand above its cap)", labels=od
            ),
            ("packets", True): CounterMetricFamily(
                "kendali_opd_dropped_packets", "Frames an OPD's meters dropped", labels=od
            ),
        }
        cap = GaugeMetricFamily("kendali_opd_cap_bytes_per_second", "An OPD's cap from its policy", labels=od)
        # Sharing (absent with static caps), in bit/s: the unit an uplink is bought in.
        shared = {
            "allocation_kbps": GaugeMetricFamily(
                "kendali_opd_allocation_bits_per_second",
                "With sharing on: an OPD's share of the purchased uplink in force (payload, like the cap)",
                labels=od,
            ),
            "meter_kbps": GaugeMetricFamily(
                "kendali_opd_meter_bits_per_second",
                "With sharing on: the rate of an OPD's Internet meter (its allocation, or its reserve when higher)",
                labels=od,
            ),
            "guarantee_kbps": GaugeMetricFamily(
                "kendali_opd_guarantee_bits_per_second",
                "With sharing on: an OPD's guarantee from its policy",
                labels=od,
            ),
            "demand_bps": GaugeMetricFamily(
                "kendali_opd_demand_bits_per_second",
                "With sharing on: the demand sharing estimated for an OPD (whole frames, like the byte counters)",
                labels=od,
            ),
        }
        for row in s.opds:
            for d in ("up", "down"):
                v = row[d]
                fams[("bytes", False)].add_metric([row["opd"], d], v["bytes"])
                fams[("packets", False)].add_metric([row["opd"], d], v["packets"])
                fams[("bytes", True)].add_metric([row["opd"], d], v["dropped_bytes"])
                fams[("packets", True)].add_metric([row["opd"], d], v["dropped_packets"])
                if v.get("cap_kbps"):
                    cap.add_metric([row["opd"], d], v["cap_kbps"] * 1000 / 8)
                for key, fam in shared.items():
                    if v.get(key) is not None:
                        fam.add_metric([row["opd"], d], v[key] * (1 if key == "demand_bps" else 1000))
        yield from fams.values()
        yield cap
        yield from (f for f in shared.values() if f.samples)
        lk = CounterMetricFamily(
            "kendali_link_bytes", "Bytes sent over an inter-switch link, each way", labels=["link", "direction"]
        )
        util = GaugeMetricFamily(
            "kendali_link_utilisation_ratio",
            "A link's rate over the last poll interval over its declared capacity",
            labels=["link", "direction"],
        )
        capacity = GaugeMetricFamily(
            "kendali_link_capacity_bytes_per_second", "A link's declared capacity", labels=["link"]
        )
        for link in s.links:
            for d in ("a_to_b", "b_to_a"):
                lk.add_metric([link["link"], d], link[d]["bytes"])
                if link[d].get("utilisation") is not None:
                    util.add_metric([link["link"], d], link[d]["utilisation"])
            if link.get("capacity_mbps"):
                capacity.add_metric([link["link"]], link["capacity_mbps"] * 1e6 / 8)
        yield from (lk, util, capacity)
        sw = GaugeMetricFamily(
            "kendali_switch_connected", "1 if the switch is connected to the controller", labels=["dpid", "name"]
        )
        for x in s.switches:
            sw.add_metric([str(x["dpid"]), x.get("name") or ""], 1 if x["connected"] else 0)
        yield sw
        yield GaugeMetricFamily("kendali_links_up", "Inter-switch links in use", value=s.links_up)
        yield CounterMetricFamily(
            "kendali_failovers", "Links the controller routed around (carrier loss or silence)", value=s.failovers
        )
        yield GaugeMetricFamily(
            "kendali_history_backlog_cycles",
            "Poll cycles waiting to be written to the usage history",
            value=s.history_backlog,
        )


class Metrics:
    """The registry behind GET /metrics: the usage collector plus the controller's own histograms."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.compile_seconds = Histogram(
            "kendali_compile_duration_seconds",
            "Time to compile the network's flows, groups and meters",
            buckets=COMPILE_BUCKETS,
            registry=self.registry,
        )
        self.poll_seconds = Histogram(
            "kendali_poll_duration_seconds",
            "Time from asking a switch for its statistics to its last reply",
            buckets=POLL_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_UsageCollector(snapshot))

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
