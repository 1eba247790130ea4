"""`kendali bench reach`: from lab start to full reachability, Kendali vs Open vSwitch RSTP.

For each topology (ring4, ppu) and system, a few fresh labs. Time zero is the end of
Mininet's net.start() (every bridge exists and is configured). Systems:

* kendali: a fresh `kendali controller` process is already up (REST answering) before
  the lab starts; bridges fail_mode=secure.
* ovs-rstp: no controller; standalone bridges with rstp_enable=true and host ports
  RSTP admin-edge (the Lab default; without admin-edge, host ports would wait out the
  RSTP forward delay).

Two measurements per lab, one after the other:

* udp mesh (the headline): every host sends a small UDP datagram to every other host
  every MESH_INTERVAL and notes, per sender, since when datagrams arrive without a gap
  of more than 3 intervals ("stable since"). Full reachability = the latest of those
  over all ordered pairs. Resolution: one send interval (plus the start offset: the
  senders only start after Lab.start() has turned offloads off, printed as "from").
* ping check: after the mesh, one full-mesh `ping` round confirms every pair (not timed:
  870 ping processes at once would disturb what they measure).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from controller.errors import KendaliError

REPO = Path(__file__).resolve().parents[2]
TOPOLOGIES = {"ring4": REPO / "topologies" / "ring4.yaml", "ppu": REPO / "topologies" / "ppu.yaml"}
PING_WAIT = {"ring4": 0.1, "ppu": 1.0}
MESH_INTERVAL = {"ring4": 0.01, "ppu": 0.2}  # ppu: 30 hosts x 29 peers -> 4,350 datagrams/s
OBSERVE_S = {"ring4": 6.0, "ppu": 20.0}  # how long the mesh watches each fresh lab
RUNS = 3
SYSTEM_PYTHON = "/usr/bin/python3"

# Runs inside each Mininet host (system Python, standard library only).
MESH_SCRIPT = r"""
import json, os, socket, sys, time
me, peers, interval = sys.argv[1], sys.argv[2].split(","), float(sys.argv[3])
stop, out, maxs = sys.argv[4], sys.argv[5], float(sys.argv[6])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("0.0.0.0", 9500))
s.setblocking(False)
t0 = time.monotonic(); first = {}; last = {}; stable = {}; nxt = t0; n = 0
while True:
    now = time.monotonic()
    if now >= nxt:
        if (n % 20 == 0 and os.path.exists(stop)) or now - t0 > maxs:
            break
        for p in peers:
            try:
                s.sendto(b"k", (p, 9500))
            except OSError:
                pass
        n += 1
        nxt += interval
    while True:
        try:
            _, (src, _) = s.recvfrom(16)
        except (BlockingIOError, InterruptedError):
            break
        t = time.monotonic()
        if src not in first:
            first[src] = stable[src] = t
        elif t - last[src] > 3 * interval:
            stable[src] = t
        last[src] = t
    time.sleep(min(0.002, max(0.0, nxt - time.monotonic())))
json.dump({"me": me, "start": t0, "first": first, "stable": stable, "last": last}, open(out, "w"))
"""


def _mesh_start(lab: Any, interval: float, max_s: float) -> tuple[Path, list[Path]]:
    tmp = Path(tempfile.mkdtemp(prefix="kendali-reach-"))
    script = tmp / "mesh.py"
    script.write_text(MESH_SCRIPT)
    stop = tmp / "stop"
    ips = {h.name: h.ip for h in lab.topology.hosts}
    outs = []
    for name, ip in ips.items():
        peers = ",".join(v for k, v in ips.items() if k != name)
        out = tmp / f"{name}.json"
        outs.append(out)
        lab.host(name).cmd(
            f"( {SYSTEM_PYTHON} {script} {ip} {peers} {interval:g} {stop} {out} {max_s:g} > {tmp}/{name}.log 2>&1 & )"
        )
    return stop, outs


def _mesh_result(lab: Any, stop: Path, outs: list[Path]) -> dict[str, Any]:
    stop.touch()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not all(o.exists() and o.stat().st_size for o in outs):
        time.sleep(0.05)
    data = []
    for o in outs:
        try:
            data.append(json.loads(o.read_text()))
        except (OSError, ValueError):
            raise KendaliError(f"reach mesh gave no result for {o.stem}", "bench reach") from None
    n = len(outs)
    pairs = sum(len(d["first"]) for d in data)
    t0 = lab._t_started
    starts = [d["start"] - t0 for d in data]
    complete = pairs == n * (n - 1)
    stable = max(t for d in data for t in d["stable"].values()) - t0 if complete else None
    first = max(t for d in data for t in d["first"].values()) - t0 if complete else None
    shutil.rmtree(stop.parent, ignore_errors=True)  # script, logs, results (kept above on failure)
    return {
        "pairs": pairs,
        "of": n * (n - 1),
        "complete": complete,
        "stable_s": stable,
        "first_s": first,
        "mesh_from_s": max(starts),
    }


def one_run(topo: str, system: str, run: int) -> dict[str, Any]:
    from controller.lab.labctl import ControllerProcess
    from controller.lab.mininet_lab import Lab

    path = TOPOLOGIES[topo]
    ctl = ControllerProcess(path) if system == "kendali" else None
    try:
        if ctl:
            ctl.start()
        lab = Lab(
            path, controller_port=ctl.ofp_port if ctl else 6653, prefix=f"kr{run}", standalone=system != "kendali"
        )
        with lab:
            stop, outs = _mesh_start(lab, MESH_INTERVAL[topo], 120)
            try:
                # The mesh alone: ping rounds at the same time (870 processes a round on
                # ppu) overload a 2-core machine and make everything late.
                time.sleep(OBSERVE_S[topo])
            finally:
                mesh = _mesh_result(lab, stop, outs)
            m = lab.reachability(count=1, wait_s=PING_WAIT[topo])  # a ping check afterwards
            row = {
                "topology": topo,
                "system": system,
                "run": run,
                "ping_complete": m.complete,
                "start_s": lab.timings.get("start_s"),
                **mesh,
            }
    finally:
        if ctl:
            ctl.cleanup()
    return row


COLUMNS = [
    ("topology", "topology"),
    ("system", "system"),
    ("runs", "runs"),
    ("mesh_min", "mesh min s"),
    ("mesh_med", "mesh med s"),
    ("mesh_max", "mesh max s"),
    ("mesh_res", "mesh res s"),
    ("mesh_from", "from s"),
    ("failed", "failed"),
]


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from controller.lab.bench import summary

    out = []
    for topo in TOPOLOGIES:
        for system in ("kendali", "ovs-rstp"):
            rs = [r for r in rows if r["topology"] == topo and r["system"] == system]
            if not rs:
                continue
            mesh = summary([r["stable_s"] for r in rs if r["stable_s"] is not None])
            failed = sum(1 for r in rs if not (r["complete"] and r["ping_complete"]))
            out.append(
                {
                    "topology": topo,
                    "system": system,
                    "runs": len(rs),
                    "mesh_min": mesh.get("min"),
                    "mesh_med": mesh.get("median"),
                    "mesh_max": mesh.get("max"),
                    "mesh_res": MESH_INTERVAL[topo],
                    "mesh_from": max(r["mesh_from_s"] for r in rs),
                    "failed": failed,
                }
            )
    return out


def run(args: Any) -> int:
    from controller.lab.bench import table, write_json

    runs = int(os.environ.get("KENDALI_BENCH_RUNS", RUNS))
    print(
        "Time from the end of net.start() to full reachability (every ordered host pair).\n"
        "kendali: controller process already running; ovs-rstp: standalone bridges, rstp_enable,\n"
        "host ports RSTP admin-edge (the default of both labs). mesh = UDP datagrams between all\n"
        "pairs every 'mesh res' s, time when the last pair became stable (no gap > 3 intervals);\n"
        "'from' = the mesh senders' start (after offloads off): nothing earlier can be seen.\n"
        "failed = runs where the mesh or a full ping check afterwards missed a pair.\n"
        f"{runs} runs each.\n",
        flush=True,
    )
    rows = []
    for topo in TOPOLOGIES:
        for system in ("kendali", "ovs-rstp"):
            for i in range(runs):
                r = one_run(topo, system, i)
                rows.append(r)
                print(
                    f"  {topo:<6} {system:<8} run {i}: mesh {_s(r['stable_s'])} (first {_s(r['first_s'])}, "
                    f"{r['pairs']}/{r['of']} pairs)  ping check {'ok' if r['ping_complete'] else 'FAILED'}  "
                    f"net.start {r['start_s']:.2f} s",
                    flush=True,
                )
    table_rows = summarise(rows)
    print("\n" + table(table_rows, COLUMNS))
    out = write_json(
        "reach",
        {
            "benchmark": "reach",
            "rows": table_rows,
            "runs": rows,
            "mesh_interval_s": MESH_INTERVAL,
            "ping_wait_s": PING_WAIT,
        },
        getattr(args, "json", None),
    )
    print(f"\nJSON: {out}")
    return 0


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} s"
