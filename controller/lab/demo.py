"""`kendali demo`: the PPU lab with the controller, in a few readable tables.

1. every host reaches every other host (routed between OPD subnets by the switches);
2. several OPDs load the network at once and each holds its own cap.
"""

from __future__ import annotations

import ipaddress
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
        opd = next((p for p in policies.values() if _first_host(topo, p) == (r.load.dst if direction == "download"
                                                                             else r.load.src)), None)
        cap = (opd.download_kbps if direction == "download" else opd.upload_kbps) * 1000 if opd else None
        rows.append({
            "opd": opd.name if opd else "(no policy)", "flow": f"{r.load.src} -> {r.load.dst}",
            "cap": cap / 1e6 if cap else None, "got": r.mean_bps / 1e6,
            "ratio": r.mean_bps / cap if cap else None, "swing": r.swing * 100,
        })
    return table(rows, [("opd", "OPD"), ("flow", "flow"), ("cap", "cap Mbit/s"), ("got", "got Mbit/s"),
                        ("ratio", "got/cap"), ("swing", "swing %")])


def demo_main(args: Any) -> int:
    from controller.lab import traffic
    from controller.lab.mininet_lab import Lab

    topo_path = args.topology or DEFAULT_TOPOLOGY
    pol_path = args.policies or DEFAULT_POLICIES
    topo = load(topo_path)
    policies = load_file(pol_path)
    print(f"Kendali demo: {topo.name} - {len(topo.switches)} switches, {len(topo.links)} links, "
          f"{len(topo.hosts)} hosts, {len(policies)} OPD policies\n", flush=True)
    with ControllerProcess(topo_path, pol_path, keep_log=True) as ctl:
        with Lab(topo, controller_port=ctl.ofp_port, prefix="kd") as lab:
            took, matrix = lab.wait_reachable(timeout=90, wait_s=1.0)
            print("1. Reachability\n")
            print(lab.report(matrix))
            print(f"\nFull reachability confirmed {lab.timings.get('reachable_after_start_s', took):.1f} s after the "
                  f"switches started, by rounds of {matrix.pairs} pings (about 2 s each; `kendali bench reach`\n"
                  f"times it finely). Controller log: {ctl.log_path}\n", flush=True)
            if not matrix.complete:
                return 1
            if args.quick:
                return 0
            source = topo.subnets[topo.uplink.subnet].hosts[0].name if topo.uplink else topo.hosts[0].name
            loads = [traffic.Load(source, h) for h in
                     (_first_host(topo, policies[o]) for o in DEMO_OPDS if o in policies) if h]
            print(f"2. {len(loads)} OPDs download from the Internet ({source}) at once, TCP, 8 s after 2 s "
                  "warm-up\n", flush=True)
            results = traffic.run(lab, loads, seconds=8, omit=2)
            print(load_table(topo, policies, results, "download"))
            print("\ngot/cap: steady-state goodput over the OPD's cap; swing: spread of the per-second"
                  " goodput (std/mean).")
    return 0
