"""`kendali bench WHICH`: benchmarks that print a readable table and write JSON.

compile   full compile (time, memory, flows per switch) and the cost of single changes
          (policy PUT, host join, link down and up) on generated networks up to a province
reach     lab: time from start to full reachability (Kendali vs Open vSwitch RSTP)
meters    lab: steady-state TCP goodput against per-OPD caps, and PUT-to-enforced time
failover  lab: longest gap and lost probes across link cut, silent failure, recovery
load      lab: REST throughput and latency, 50 clients, reads and writes, during a failover;
          no write lost or reordered
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

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


def write_json(name: str, data: Any, path: Path | None) -> Path:
    path = path or RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)} if values else {}


def bench_main(args: Any) -> int:
    import importlib

    # Lab benchmarks live in their own modules: controller/lab/bench_<which>.py, each run(args) -> int.
    return importlib.import_module(f"controller.lab.bench_{args.which}").run(args)
