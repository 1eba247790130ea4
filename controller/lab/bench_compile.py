"""`kendali bench compile`: what compiling costs the controller, at regency and province size.

For each generated network (controller.lab.synth: a core pair, distribution rings, office
switches dual-homed to two of them, each office a /24 with its hosts, one OPD policy per
office for the first 200 offices), in its own process so that its peak memory is its own:

- the full compile (every fragment from scratch): wall time, CPU, peak RSS of the process;
- flows in all and per switch (max and mean): what the switches' tables must hold;
- single changes as the controller makes them (``Compiler.update`` plus the diff of every
  switch it says changed, which is what the reconciler sends): a policy PUT (new caps),
  a host joining, and links going down and back up (a sample of links, from core to
  office uplinks: the cost depends on how many shortest paths used the link). For each:
  controller CPU (process time) and the flow-mods the switches would get.

Prints a table; ``--json FILE`` also writes the figures (``full_compile_s``,
``peak_rss_bytes``, ``flows_total``, ``flows_per_switch_max`` and per change
``{kind, cpu_s, flow_mods}``).
"""

from __future__ import annotations

import multiprocessing
import random
import resource
import statistics
import time
from dataclasses import dataclass
from typing import Any

from controller.core.compiler import Compiler
from controller.core.graph import Network
from controller.core.state import SwitchState, diff, diff_entries
from controller.lab.bench import table, write_json
from controller.lab.synth import regency_graph, regency_network

SIZES = ((200, 5000), (2000, 20000), (5000, 20000))
POLICIES = 200  # OPD policies, one per office, on the first offices
LINK_SAMPLES = 6


@dataclass(frozen=True)
class _Policy:
    id: str
    subnets: tuple[str, ...]
    download_kbps: int
    upload_kbps: int
    burst_kbit: int | None = None


def _offices(n_switches: int) -> list[int]:
    n_dist = max(4, n_switches // 12)
    return list(range(3 + n_dist, n_switches + 1))


def _office_subnet(dpid: int) -> str:
    return f"10.{(dpid >> 8) & 255}.{dpid & 255}.0/24"  # as controller.lab.synth addresses them


def _policies(n_switches: int, down: int = 20_000) -> dict[str, _Policy]:
    return {
        f"opd{d}": _Policy(f"opd{d}", (_office_subnet(d),), down, down // 2) for d in _offices(n_switches)[:POLICIES]
    }


class _Measured:
    """Applies a change to the network, then does what the controller does with it."""

    def __init__(self, net: Network, comp: Compiler, policies: dict[str, _Policy]) -> None:
        self.net, self.comp, self.policies = net, comp, policies
        self.now = 200.0
        self.state, _ = comp.update(net, policies, self.now)

    def change(self, kind: str, detail: str, apply: Any) -> dict[str, Any]:
        before = {d: st.copy() for d, st in self.state.items()}  # not timed: the switches' tables
        self.now += 1.0
        t0 = time.process_time()
        apply()
        self.state, changed = self.comp.update(self.net, self.policies, self.now)
        mods = 0
        for d in changed:  # as the controller's reconciler does (controller.core.controller.compile)
            was, now = before.get(d, SwitchState()), self.state.get(d, SwitchState())
            e = self.comp.entries.get(d) if self.comp.entries is not None else None
            ch = diff_entries(was, now, e.flows, e.groups, e.meters) if e is not None else diff(was, now)
            mods += ch.count()
        cpu = time.process_time() - t0
        return {"kind": kind, "detail": detail, "cpu_s": cpu, "flow_mods": mods, "switches_changed": len(changed)}


def _one(n: int, hosts: int, seed: int, out: Any) -> None:
    net = regency_network(n, hosts)
    policies = _policies(n)
    comp = Compiler(count=True)
    t0, c0 = time.perf_counter(), time.process_time()
    state = comp.compile(net, policies, 100.0)
    full_s, full_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    per_switch = [len(st.flows) for st in state.values()]
    counts = {"links": len(net.links), "hosts": len(net.hosts)}
    del state
    m = _Measured(net, comp, policies)
    changes = []
    rng = random.Random(seed)
    offices = _offices(n)
    for _ in range(3):
        opd = rng.choice(sorted(policies))
        old = policies[opd]

        def put(opd: str = opd, old: _Policy = old) -> None:
            policies[opd] = _Policy(opd, old.subnets, old.download_kbps + 1000, old.upload_kbps)

        changes.append(m.change("policy_put", opd, put))
    for i in range(3):
        d = rng.choice(offices)
        port = 1000 + i

        def join(d: int = d, port: int = port, i: int = i) -> None:
            net.port_status(d, port, True, m.now - 10)  # cabled a while ago: past probation
            net.learn_host(f"02:bb:00:00:00:{i:02x}", f"10.{(d >> 8) & 255}.{d & 255}.{200 + i}", d, port, m.now)

        changes.append(m.change("host_join", f"switch {d}", join))
    graph = regency_graph(n)
    core_and_rings = sorted(k for k in net.links if graph.degree(k[0]) > 2 and graph.degree(k[2]) > 2)
    uplinks = sorted(k for k in net.links if k not in core_and_rings)
    sample = rng.sample(core_and_rings, min(LINK_SAMPLES // 2, len(core_and_rings)))
    sample += rng.sample(uplinks, min(LINK_SAMPLES - len(sample), len(uplinks)))
    for k in sample:
        where = "core/distribution" if k in core_and_rings else "office uplink"
        detail = f"{k[0]}:{k[1]}-{k[2]}:{k[3]} ({where})"

        def down(k: tuple[int, int, int, int] = k) -> None:
            net.port_status(k[0], k[1], False, m.now)

        def up(k: tuple[int, int, int, int] = k) -> None:
            net.port_status(k[0], k[1], True, m.now)
            net.link_seen(k[0], k[1], k[2], k[3], m.now)

        changes.append(m.change("link_down", detail, down))
        changes.append(m.change("link_up", detail, up))
    out.put(
        {
            "switches": n,
            **counts,
            "policies": len(policies),
            "full_compile_s": full_s,
            "full_compile_cpu_s": full_cpu,
            "peak_rss_bytes": rss,
            "flows_total": sum(per_switch),
            "flows_per_switch_max": max(per_switch),
            "flows_per_switch_mean": statistics.mean(per_switch),
            "changes": changes,
        }
    )


def bench(sizes: tuple[tuple[int, int], ...] = SIZES, seed: int = 1) -> list[dict[str, Any]]:
    """Each size in its own process, so its peak RSS is its own."""
    rows = []
    ctx = multiprocessing.get_context("fork")
    for n, hosts in sizes:
        q = ctx.Queue()
        proc = ctx.Process(target=_one, args=(n, hosts, seed, q))
        proc.start()
        rows.append(q.get())
        proc.join()
        print(f"  {n} switches, {hosts} hosts: full compile {rows[-1]['full_compile_s']:.2f} s", flush=True)
    return rows


_SIZE_COLS = [
    ("switches", "switches"),
    ("links", "links"),
    ("hosts", "hosts"),
    ("full_compile_s", "full compile s"),
    ("peak_rss_mb", "peak RSS MB"),
    ("flows_total", "flows"),
    ("flows_per_switch_max", "max/switch"),
    ("flows_per_switch_mean", "mean/switch"),
]
_CHANGE_COLS = [
    ("switches", "switches"),
    ("kind", "change"),
    ("cpu_ms_median", "CPU ms (median)"),
    ("cpu_ms_max", "CPU ms (max)"),
    ("flow_mods_median", "flow-mods (median)"),
    ("flow_mods_max", "flow-mods (max)"),
    ("samples", "samples"),
]


def _summaries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        for kind in ("policy_put", "host_join", "link_down", "link_up"):
            cs = [c for c in r["changes"] if c["kind"] == kind]
            if not cs:
                continue
            cpu = [c["cpu_s"] * 1000 for c in cs]
            mods = [c["flow_mods"] for c in cs]
            out.append(
                {
                    "switches": r["switches"],
                    "kind": kind,
                    "cpu_ms_median": statistics.median(cpu),
                    "cpu_ms_max": max(cpu),
                    "flow_mods_median": int(statistics.median(mods)),
                    "flow_mods_max": max(mods),
                    "samples": len(cs),
                }
            )
    return out


def run(args: Any) -> int:
    sizes: tuple[tuple[int, int], ...] = SIZES
    if getattr(args, "switches", None) or getattr(args, "hosts", None):
        n = args.switches or 2000
        sizes = ((n, args.hosts if args.hosts is not None else 10 * n),)
    print(
        "Compile cost for generated networks (core pair, distribution rings of eight, office switches\n"
        f"dual-homed, a /24 per office, {POLICIES} OPD policies; one process per size)\n"
    )
    rows = bench(sizes)
    for r in rows:
        r["peak_rss_mb"] = r["peak_rss_bytes"] / 2**20
    print("\n" + table(rows, _SIZE_COLS))
    print("\nSingle changes (controller CPU: the incremental update and the diff of each switch it changed)\n")
    print(table(_summaries(rows), _CHANGE_COLS))
    print("\nLinks sampled (down, then up):")
    for r in rows:
        for c in r["changes"]:
            if c["kind"].startswith("link"):
                print(
                    f"  {r['switches']:>5} switches  {c['kind']:<9} {c['detail']:<40} "
                    f"{c['cpu_s'] * 1000:8.1f} ms  {c['flow_mods']:>7} flow-mods  {c['switches_changed']:>5} switches"
                )
    doc: dict[str, Any] = {"benchmark": "compile", "rows": rows}
    if len(rows) == 1:
        doc.update(rows[0])
    path = write_json("compile", doc, args.json)
    print(f"\nJSON: {path}")
    return 0
