"""`kendali bench idle`: what a controller with nothing to do costs, by how links are watched.

For ring4 (4 links) and PPU (27 switches, 29 links), each twice in the same run:

* ``lldp``: no BFD, the controller alone judges liveness: LLDP on every link end every
  0.1 s (the controller as it was before BFD: issue 11 measured 13 % of a core in PPU);
* ``bfd``: BFD (the lab's, 100 ms x 3) on every inter-switch interface, the controller started with
  ``--switch-liveness`` (LLDP on links every 2 s, for the cabling only).

Each run brings the lab up, waits for BFD to forward everywhere and for full reachability,
lets the discovery bursts and first audits pass (SETTLE_S), then counts the CPU ticks
(utime + stime in /proc/PID/stat) of the controller process and of ovs-vswitchd over
MEASURE_S seconds, as % of one core. ovs-vswitchd runs every lab bridge in one process here,
so its figure is the whole lab's switch side (BFD moved work there); in a real network each
switch carries only its own few sessions. BFD flaps over the window are counted: a spurious
one would show.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from controller.errors import KendaliError

REPO = Path(__file__).resolve().parents[2]
TOPOLOGIES = {
    "ring4": (REPO / "topologies" / "ring4.yaml", None),
    "ppu": (REPO / "topologies" / "ppu.yaml", REPO / "policies" / "ppu.yaml"),
}
SETTLE_S = 10.0
MEASURE_S = 20.0
VSWITCHD_PID = Path("/var/run/openvswitch/ovs-vswitchd.pid")
COLUMNS = [
    ("topology", "topology"),
    ("switches", "switches"),
    ("links", "links"),
    ("mode", "liveness"),
    ("lldp", "LLDP on links"),
    ("ticks", "controller ticks"),
    ("controller_pct", "controller % core"),
    ("vswitchd_pct", "ovs-vswitchd % core"),
    ("bfd_flaps", "BFD flaps"),
]


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process so far, in clock ticks (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5), after pid and comm


def _vswitchd_pid() -> int | None:
    try:
        return int(VSWITCHD_PID.read_text().strip())
    except (OSError, ValueError):
        return None


def measure(
    name: str, bfd: bool, log: Any, seconds: float = MEASURE_S, bfd_ms: int | None = None, bfd_mult: int | None = None
) -> dict[str, Any]:
    """One lab run: the idle CPU of the controller and of ovs-vswitchd (BFD timers: the lab's
    unless given)."""
    from controller.core.topology import load
    from controller.lab.labctl import ControllerProcess
    from controller.lab.mininet_lab import BFD_MS, BFD_MULT, Lab, controller_args

    bfd_ms, bfd_mult = bfd_ms or BFD_MS, bfd_mult or BFD_MULT

    path, policies = TOPOLOGIES[name]
    topology = load(path)
    hz = os.sysconf("SC_CLK_TCK")
    with ControllerProcess(path, policies, extra=controller_args(bfd)) as ctl:
        with Lab(
            topology, controller_port=ctl.ofp_port, prefix="kbi", bfd_ms=bfd_ms if bfd else 0, bfd_mult=bfd_mult
        ) as lab:
            bfd_up = lab.wait_bfd(30)
            _, m = lab.wait_reachable(90, wait_s=1.0)
            if not m.complete:
                raise KendaliError(f"{name} not fully reachable: " + lab.report(m), "bench idle")
            time.sleep(SETTLE_S)
            assert ctl.proc is not None
            vs = _vswitchd_pid()
            flaps0 = lab.bfd_flaps() if bfd else 0
            c0, v0, t0 = cpu_ticks(ctl.proc.pid), cpu_ticks(vs) if vs else 0, time.monotonic()
            time.sleep(seconds)
            c1, v1, t1 = cpu_ticks(ctl.proc.pid), cpu_ticks(vs) if vs else 0, time.monotonic()
            flaps = lab.bfd_flaps() - flaps0 if bfd else None
            links = len(ctl.get("/v1/topology")["links"])
    wall = t1 - t0
    row = {
        "topology": name,
        "switches": len(topology.switches),
        "links": len(topology.links),
        "links_seen": links,
        "mode": f"bfd {bfd_ms}x{bfd_mult}" if bfd else "lldp",
        "lldp": "every 2 s" if bfd else "every 0.1 s",
        "ticks": c1 - c0,
        "seconds": wall,
        "controller_pct": 100.0 * (c1 - c0) / hz / wall,
        "vswitchd_pct": 100.0 * (v1 - v0) / hz / wall if vs else None,
        "bfd_flaps": flaps,
        "bfd_up_s": bfd_up if bfd else None,
    }
    log(
        f"  {name:<5} {row['mode']:<9} controller {row['ticks']} ticks in {wall:.1f} s = {row['controller_pct']:.2f} %"
        f" of a core; ovs-vswitchd {row['vswitchd_pct'] or 0:.1f} %; links {links}/{row['links']}"
        + (f"; BFD flaps {flaps}" if bfd else "")
    )
    return row


def run(args: Any) -> int:
    from controller.lab.bench import table, write_json

    seconds = float(os.environ.get("KENDALI_IDLE_SECONDS", MEASURE_S))
    print(
        f"Idle CPU: the lab up and reachable, {SETTLE_S:g} s to settle, then the CPU ticks of the controller\n"
        f"process and of ovs-vswitchd over {seconds:g} s, as % of one core. lldp: no BFD, LLDP on every link\n"
        f"end every 0.1 s (the controller alone judges; as before BFD). bfd: the lab's BFD on every\n"
        f"inter-switch interface and the controller with --switch-liveness (LLDP on links every 2 s).\n",
        flush=True,
    )
    rows = [
        measure(name, bfd, lambda s: print(s, flush=True), seconds)
        for name in ("ring4", "ppu")
        for bfd in (False, True)
    ]
    print("\n" + table(rows, COLUMNS))
    out = write_json("idle", {"benchmark": "idle", "measure_s": seconds, "settle_s": SETTLE_S, "rows": rows}, args.json)
    print(f"\nJSON: {out}")
    return 0
