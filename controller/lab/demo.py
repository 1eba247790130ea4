"""`kendali demo`: the PPU lab with the controller, in a few readable tables.

1. every host reaches every other host (routed between OPD subnets by the switches);
2. several OPDs load the network at once and each holds its own cap;
3. what the controller counted for those OPDs (GET /v1/usage) beside what their hosts received;
4. the html report of this run (``kendali report``: needs, cost per OPD), written to the
   current directory: its path is printed last.
"""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

from controller.core.policy import Policy, load_file
from controller.core.topology import DEFAULT_TOPOLOGY, Topology, load
from controller.lab.labctl import ControllerProcess

DEFAULT_POLICIES = Path(__file__).resolve().parents[2] / "policies" / "ppu.yaml"
# OPDs whose download the demo loads at once: different kecamatan, different caps.
DEMO_OPDS = ("dinkes", "kec-sepaku", "kel-nipah", "pkm-babulu")


def _first_host(topo: Topology, pol: Policy) -> str | None:
    nets = [ipaddress.IPv4Network(c) for c in pol.subnets]
    for h in topo.hosts:
        if any(ipaddress.IPv4Address(h.ip) in n for n in nets):
            return h.name
    return None


def load_table(topo: Topology, policies: dict[str, Policy], results: list[Any], direction: str) -> str:
    from controller.lab.bench import table

    rows = []
    for r in results:
        opd = next(
            (
                p
                for p in policies.values()
                if _first_host(topo, p) == (r.load.dst if direction == "download" else r.load.src)
            ),
            None,
        )
        cap = (opd.download_kbps if direction == "download" else opd.upload_kbps) * 1000 if opd else None
        rows.append(
            {
                "opd": opd.name if opd else "(no policy)",
                "flow": f"{r.load.src} -> {r.load.dst}",
                "cap": cap / 1e6 if cap else None,
                "got": r.mean_bps / 1e6,
                "ratio": r.mean_bps / cap if cap else None,
                "swing": r.swing * 100,
            }
        )
    return table(
        rows,
        [
            ("opd", "OPD"),
            ("flow", "flow"),
            ("cap", "cap Mbit/s"),
            ("got", "got Mbit/s"),
            ("ratio", "got/cap"),
            ("swing", "swing %"),
        ],
    )


def received(lab: Any, host: str) -> int:
    """Bytes the host's own interface has received (the kernel's count)."""
    h = lab.host(host)
    return int(h.cmd(f"cat /sys/class/net/{h.defaultIntf().name}/statistics/rx_bytes").strip())


def usage_table(
    topo: Topology,
    policies: dict[str, Policy],
    results: list[Any],
    before: dict,
    after: dict,
    rx: dict[str, int],
    seconds: float,
) -> str:
    """Per loaded OPD: what its host received, what the controller counted as delivered and
    dropped over the same span, and its average rate against the cap."""
    from controller.lab.bench import table

    rows = []
    for r in results:
        opd = next((o for o, p in policies.items() if _first_host(topo, p) == r.load.dst), None)
        if opd is None or opd not in after or opd not in before:
            continue
        got = after[opd]["down"]["bytes"] - before[opd]["down"]["bytes"]
        cap = after[opd]["down"]["cap_kbps"]
        rows.append(
            {
                "opd": opd,
                "host": r.load.dst,
                "iperf": r.mean_bps / 1e6,
                "received": rx[r.load.dst] / 1e6,
                "counted": got / 1e6,
                "ratio": got / rx[r.load.dst] if rx[r.load.dst] else None,
                "dropped": (after[opd]["down"]["dropped_bytes"] - before[opd]["down"]["dropped_bytes"]) / 1e6,
                "share": got * 8 / seconds / (cap * 1000) if cap else None,
            }
        )
    return table(
        rows,
        [
            ("opd", "OPD"),
            ("host", "host"),
            ("iperf", "iperf3 Mbit/s"),
            ("received", "host rx MB"),
            ("counted", "counted MB"),
            ("ratio", "counted/rx"),
            ("dropped", "dropped MB"),
            ("share", "avg/cap"),
        ],
    )


def demo_main(args: Any) -> int:
    from controller.lab import traffic
    from controller.lab.mininet_lab import BFD_MS, LAB_BFD_MS, Lab, controller_args

    topo_path = args.topology or DEFAULT_TOPOLOGY
    pol_path = args.policies or DEFAULT_POLICIES
    topo = load(topo_path)
    policies = load_file(pol_path)
    print(
        f"Kendali demo: {topo.name} - {len(topo.switches)} switches, {len(topo.links)} links, "
        f"{len(topo.hosts)} hosts, {len(policies)} OPD policies\n",
        flush=True,
    )
    # Polled every 2 s (default 10 s) so the usage table is fresh right after the traffic.
    started = time.time()
    bfd = bool(getattr(args, "bfd", False) or LAB_BFD_MS)
    extra = ["--stats-interval", "2", *controller_args(bfd)]
    with ControllerProcess(topo_path, pol_path, keep_log=True, extra=extra) as ctl:
        with Lab(topo, controller_port=ctl.ofp_port, prefix="kd", bfd_ms=BFD_MS if bfd else 0) as lab:
            took, matrix = lab.wait_reachable(timeout=90, wait_s=1.0)
            print("1. Reachability\n")
            print(lab.report(matrix))
            print(
                f"\nFull reachability confirmed {lab.timings.get('reachable_after_start_s', took):.1f} s after the "
                f"switches started, by rounds of {matrix.pairs} pings (about 2 s each; `kendali bench reach`\n"
                f"times it finely). Controller log: {ctl.log_path}\n",
                flush=True,
            )
            if not matrix.complete:
                return 1
            if args.quick:
                return 0
            source = topo.subnets[topo.uplink.subnet].hosts[0].name if topo.uplink else topo.hosts[0].name
            loads = [
                traffic.Load(source, h)
                for h in (_first_host(topo, policies[o]) for o in DEMO_OPDS if o in policies)
                if h
            ]
            print(
                f"2. {len(loads)} OPDs download from the Internet ({source}) at once, TCP, 8 s after 2 s warm-up\n",
                flush=True,
            )
            t0 = time.time()
            rx0 = {ld.dst: received(lab, ld.dst) for ld in loads}
            before = ctl.usage_after(t0)
            t1 = time.time()
            results = traffic.run(lab, loads, seconds=8, omit=2)
            t2 = time.time()
            rx = {ld.dst: received(lab, ld.dst) - rx0[ld.dst] for ld in loads}
            after = ctl.usage_after(t2)
            print(load_table(topo, policies, results, "download"))
            print(
                "\ngot/cap: steady-state goodput over the OPD's cap; swing: spread of the per-second"
                " goodput (std/mean).\n"
            )
            print(
                "3. What the controller counted for them (GET /v1/usage before and after the run), beside what "
                "their hosts' interfaces received\n"
            )
            print(usage_table(topo, policies, results, before, after, rx, t2 - t1))
            print(
                f"\ncounted: Ethernet frames delivered through the OPD's download meter (4.6 % above TCP goodput "
                f"for full segments); dropped: frames its meter dropped, TCP pushing above the cap; avg/cap: "
                f"counted over the whole run ({t2 - t1:.0f} s, warm-up and the meter's full bucket included) over "
                f"the cap.\nA running controller also keeps this as history (GET /v1/usage/<opd>?from=now-1h&step=1m)"
                f" and exports it to Prometheus (GET /metrics).\n"
            )
            out = write_report(ctl, started, Path(REPORT_FILE))
            print(f"4. The report of this run (needs and cost per OPD; Indonesian; open it in a browser):\n\n{out}")
    return 0


REPORT_FILE = "kendali-demo-report.html"


def write_report(ctl: ControllerProcess, frm: float, out: Path) -> Path:
    """The html report of the controller's own history since ``frm``, once the history holds
    the cycle after the traffic (the controller writes one every --stats-interval)."""
    from controller.report import data

    time.sleep(3.0)  # the demo polls every 2 s: the last cycle is written
    now = time.time()
    # A bucket belongs to the period it starts in: from the start of the 5-minute bucket the run began in.
    doc = data.build(ctl.state_dir, frm // 300 * 300, now, now)
    out.write_text(data.render(doc, "html", "id"), encoding="utf-8")
    return out.resolve()
