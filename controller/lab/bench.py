"""`kendali bench WHICH`: benchmarks that print a readable table and write JSON.

compile   controller time and peak memory to compile all flows for generated topologies
reach     lab: time from start to full reachability (Kendali vs Open vSwitch RSTP)
meters    lab: steady-state TCP goodput against per-OPD caps, and PUT-to-enforced time
failover  lab: longest gap and lost probes across link cut, silent failure, recovery
load      lab: REST throughput and latency, 50 clients, reads and writes, during a failover;
          no write lost or reordered
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import statistics
import time
from pathlib import Path
from typing import Any

from controller.core.compiler import Compiler
from controller.core.state import total_flows
from controller.lab.synth import regency_network

RESULTS_DIR = Path("bench-results")


def table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A plain text table: columns are (key, heading)."""
    cells = [[h for _, h in columns]] + [[_fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(c[i].rjust(widths[i]) for i in range(len(columns))) for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _compile_one(n: int, hosts: int, out: Any) -> None:
    net = regency_network(n, hosts)
    t0 = time.perf_counter()
    state = Compiler().compile(net, {}, now=100.0)
    seconds = time.perf_counter() - t0
    # Recompiling after one link failure is what a failover costs the controller.
    key = sorted(net.links)[len(net.links) // 2]
    links = len(net.links)
    net.port_status(key[0], key[1], False, 200.0)
    t1 = time.perf_counter()
    Compiler().compile(net, {}, now=200.0)
    recompile = time.perf_counter() - t1
    out.put(
        {
            "switches": n,
            "links": links,
            "hosts": hosts,
            "flows": total_flows(state),
            "groups": sum(len(s.groups) for s in state.values()),
            "compile_s": seconds,
            "recompile_after_cut_s": recompile,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def bench_compile(
    sizes: tuple[int, ...] = (100, 1000, 5000), host_ratio: float = 0.1, max_hosts: int = 500
) -> list[dict[str, Any]]:
    """Each size in its own process, so its peak RSS is its own."""
    rows = []
    ctx = multiprocessing.get_context("fork")
    for n in sizes:
        hosts = min(max_hosts, max(2, int(n * host_ratio)))
        q = ctx.Queue()
        proc = ctx.Process(target=_compile_one, args=(n, hosts, q))
        proc.start()
        rows.append(q.get())
        proc.join()
        print(f"  {n} switches done in {rows[-1]['compile_s']:.2f} s", flush=True)
    return rows


_COMPILE_COLS = [
    ("switches", "switches"),
    ("links", "links"),
    ("hosts", "hosts"),
    ("flows", "flows"),
    ("groups", "groups"),
    ("compile_s", "compile s"),
    ("recompile_after_cut_s", "recompile s"),
    ("peak_rss_mb", "peak RSS MB"),
]


def write_json(name: str, data: Any, path: Path | None) -> Path:
    path = path or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)} if values else {}


def bench_main(args: Any) -> int:
    if args.which == "compile":
        print(
            "Compile time for generated regency topologies (core pair, distribution rings,\n"
            "dual-homed edges; hosts on 10 % of switches, at most 500; one process per size)\n"
        )
        rows = bench_compile()
        print("\n" + table(rows, _COMPILE_COLS))
        out = write_json("compile", {"benchmark": "compile", "rows": rows}, args.json)
        print(f"\nJSON: {out}")
        return 0
    import importlib

    # Lab benchmarks live in their own modules: controller/lab/bench_<which>.py, each run(args) -> int.
    return importlib.import_module(f"controller.lab.bench_{args.which}").run(args)
