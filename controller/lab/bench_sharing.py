"""`kendali bench sharing`: the purchased uplink shared by need (--sharing) beside static caps.

Lab: topologies/lab-sharing.yaml with policies/lab-sharing.yaml: the ISP host ``inet`` on
the core, its link shaped with tc (tbf on inet's interface, what it sends: the download
direction) to the 30 Mbit/s the topology says is bought, three OPDs of one host each
(a1, b1, c1) with guarantees 10/5/5 Mbit/s, priorities 1/2/3, caps 20/20/25. One lab and
one controller child process per mode; both modes run the same script in the same run:

1. all three download from inet at once (one TCP stream each, iperf3 -R, 0.5 s intervals
   at the receiver);
2. A stops (idle); B and C go on;
3. A starts again.

Figures, per mode: uplink utilisation while demand exceeds it (goodput plus frame
overhead over the 30 Mbit/s; goal >= 95 %), each OPD's goodput against its guarantee,
how long A takes to get 90 % of its guarantee back after it starts again (goal < 2
periods), TCP goodput swing (std/mean of 1 s goodput, steady seconds), and, with every
OPD given the same policy (guarantee 5, priority 4), Jain's fairness index (goal >= 0.95).
Last, what a meter re-size does to one TCP flow: a cap PUT back and forth (static caps,
one flow alone, well under the uplink): goodput in the 2 s after each change over the
new rate, and the lowest and highest 0.5 s in them.

Knobs (environment): KENDALI_BENCH_PERIOD=5 (the sharing period, s),
KENDALI_BENCH_PHASE=25 (seconds per phase).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.core.compiler import FRAME_OVERHEAD
from controller.core.topology import load
from controller.errors import KendaliError
from controller.lab.bench import table, write_json

ROOT = Path(__file__).resolve().parents[2]
TOPO = ROOT / "topologies" / "lab-sharing.yaml"
POLICIES = ROOT / "policies" / "lab-sharing.yaml"
OPDS = {"opd-a": "a1", "opd-b": "b1", "opd-c": "c1"}
INTERVAL = 0.5  # iperf3 report interval (s)
BASE_PORT = 5401


def uplink_mbit() -> float:
    up = load(TOPO).uplink
    assert up is not None and up.capacity_mbps
    return float(up.capacity_mbps)


def shape_uplink(lab: Any, mbit: float) -> str:
    """The ISP's shaping: a token bucket on what inet sends (the OPDs' download), with a
    queue of 50 ms, as a telco's shaper. Returns the tc command's output (empty: fine)."""
    node = lab.host("inet")
    intf = node.defaultIntf().name
    return str(node.cmd(f"tc qdisc replace dev {intf} root tbf rate {mbit:g}mbit burst 32kb latency 50ms"))


@dataclass
class Session:
    ctl: Any
    lab: Any
    sharing: bool
    period: float
    tmp: Path
    runs: list[tuple[str, float, Path]] = field(default_factory=list)  # (opd, wall start, json file)
    allocations: list[tuple[float, dict[str, Any]]] = field(default_factory=list)  # (t, opd -> allocation kbit/s)
    _stop: threading.Event = field(default_factory=threading.Event)
    _next: int = 0

    def start(self, opd: str, seconds: float) -> None:
        """One TCP download (one stream) from inet to the OPD's host, in the background."""
        host = OPDS[opd]
        port = BASE_PORT + list(OPDS).index(opd)
        out = self.tmp / f"{opd}-{self._next}.json"
        self._next += 1
        ip = _ip(self.lab, "inet")
        self.runs.append((opd, time.time(), out))
        self.lab.host(host).cmd(
            f"iperf3 -c {ip} -p {port} -R -t {seconds:g} -i {INTERVAL} -J --logfile {out} >/dev/null 2>&1 &"
        )

    def wait(self, timeout: float = 60) -> None:
        """Until every client has written its result."""
        deadline = time.monotonic() + timeout
        for _opd, _t, out in self.runs:
            while not (out.exists() and out.read_text().rstrip().endswith("}")):
                if time.monotonic() > deadline:
                    raise KendaliError(f"iperf3 wrote no result to {out}", "bench sharing")
                time.sleep(0.2)

    def timeline(self) -> dict[str, list[tuple[float, float]]]:
        """Per OPD: (end time of the interval, goodput bit/s) of every report interval, wall clock."""
        out: dict[str, list[tuple[float, float]]] = {o: [] for o in OPDS}
        for opd, t0, path in self.runs:
            data = json.loads(path.read_text())
            if "error" in data:
                raise KendaliError(f"iperf3 {opd}: {data['error']}", "bench sharing")
            for iv in data.get("intervals", []):
                s = iv["sum"]
                out[opd].append((t0 + s["end"], s["bits_per_second"]))
        return {o: sorted(v) for o, v in out.items()}

    def watch(self) -> threading.Thread:
        """Record each OPD's allocation (GET /v1/usage) every 0.5 s until stopped."""

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    rows = self.ctl.get("/v1/usage")["opds"]
                    self.allocations.append((time.time(), {r["opd"]: r["down"].get("allocation_kbps") for r in rows}))
                except Exception:  # a slow answer is a missing sample, not a failed run
                    pass
                self._stop.wait(0.5)

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        return t

    def stop_watching(self) -> None:
        self._stop.set()

    def put(self, opd: str, **change: int) -> None:
        body = {**self.ctl.get(f"/v1/policies/{opd}"), **change}
        status, resp = self.ctl.request("PUT", f"/v1/policies/{opd}", body)
        if status not in (200, 201):
            raise KendaliError(f"PUT {opd} answered {status}: {resp}", "bench sharing")


def _ip(lab: Any, host: str) -> str:
    return str(next(h.ip for h in lab.topology.hosts if h.name == host))


@contextmanager
def session(sharing: bool, period: float, prefix: str, policies: Path = POLICIES) -> Iterator[Session]:
    """A controller (with or without --sharing) and the lab, every host reachable, the uplink
    shaped and an iperf3 server per OPD on inet."""
    from controller.lab.labctl import ControllerProcess
    from controller.lab.mininet_lab import Lab

    extra = ["--stats-interval", "2"]
    if sharing:
        extra += ["--sharing", "--sharing-period", f"{period:g}"]
    with tempfile.TemporaryDirectory(prefix="kendali-share-") as tmp:
        ctl = ControllerProcess(TOPO, policies, extra=extra, keep_log=True).start()
        try:
            with Lab(TOPO, controller_port=ctl.ofp_port, prefix=prefix) as lab:
                _took, matrix = lab.wait_reachable(60)
                if not matrix.complete:
                    raise KendaliError(lab.report(matrix) + f"\n{ctl.log_tail()}", "bench sharing")
                problem = shape_uplink(lab, uplink_mbit())
                if problem.strip():
                    raise KendaliError(f"tc: {problem.strip()}", "bench sharing")
                inet = lab.host("inet")
                servers = []
                for i in range(len(OPDS)):
                    inet.cmd(f"iperf3 -s -p {BASE_PORT + i} >/dev/null 2>&1 &")
                    servers.append(inet.lastPid)
                time.sleep(0.5)
                s = Session(ctl, lab, sharing, period, Path(tmp))
                try:
                    yield s
                finally:
                    s.stop_watching()
                    for pid in servers:  # ours only, by process id
                        inet.cmd(f"kill {pid} 2>/dev/null; wait {pid} 2>/dev/null")
        finally:
            ctl.stop()


# --- the figures ---------------------------------------------------------------------------


def mean_between(tl: list[tuple[float, float]], t0: float, t1: float) -> float:
    """Mean goodput (bit/s) of the intervals ending in (t0, t1]; 0 if none (idle)."""
    got = [bps for t, bps in tl if t0 < t <= t1]
    return statistics.fmean(got) if got else 0.0


def per_second(tl: list[tuple[float, float]], t0: float, t1: float) -> list[float]:
    """1 s goodput from 0.5 s intervals, for the swing."""
    got = [bps for t, bps in tl if t0 < t <= t1]
    return [(a + b) / 2 for a, b in zip(got[::2], got[1::2], strict=False)]


def swing(values: list[float]) -> float | None:
    if len(values) < 2 or not statistics.fmean(values):
        return None
    return statistics.pstdev(values) / statistics.fmean(values)


def jain(values: list[float]) -> float | None:
    """Jain's fairness index: 1 when all are equal, 1/n when one gets everything."""
    if not values or not any(values):
        return None
    return sum(values) ** 2 / (len(values) * sum(v * v for v in values))


def time_to(tl: list[tuple[float, float]], start: float, bps: float, hold: float = 1.0) -> float | None:
    """Seconds after ``start`` until goodput first stays at or above ``bps`` for ``hold`` seconds
    (the end of the first such interval run's first interval)."""
    run: list[float] = []
    for t, v in tl:
        if t <= start:
            continue
        run = run + [t] if v >= bps else []
        if len(run) * INTERVAL >= hold:
            return run[0] - start
    return None


@dataclass
class Scenario:
    phase: float  # seconds per phase
    start: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)


def run_scenario(s: Session, phase: float) -> Scenario:
    """All three saturate; A goes idle; A returns. Every phase ``phase`` seconds."""
    sc = Scenario(phase)
    s.watch()
    sc.start = time.time()
    s.start("opd-a", phase)
    s.start("opd-b", 3 * phase)
    s.start("opd-c", 3 * phase)
    time.sleep(2 * phase)
    sc.marks["a_back"] = time.time()
    s.start("opd-a", phase)
    s.wait(phase + 30)
    s.stop_watching()
    return sc


def figures(s: Session, sc: Scenario, guarantees: dict[str, float]) -> dict[str, Any]:
    """The scenario's figures: per phase, each OPD's goodput (the phase's second half, steady)."""
    tl = s.timeline()
    p, t0 = sc.phase, sc.start
    a_stop, a_back = t0 + p, sc.marks["a_back"]
    uplink_payload = uplink_mbit() * 1e6 / FRAME_OVERHEAD
    out: dict[str, Any] = {"mode": "sharing" if s.sharing else "static caps"}
    phases = {"all": (t0 + p / 2, a_stop), "a idle": (a_stop + p / 2, a_back), "a back": (a_back + p / 2, a_back + p)}
    for name, (f, to) in phases.items():
        got = {o: mean_between(tl[o], f, to) for o in OPDS}
        out[name] = {o: round(v / 1e6, 2) for o, v in got.items()}
        out[name]["utilisation"] = round(sum(got.values()) / uplink_payload, 3)
    ttg = time_to(tl["opd-a"], a_back, 0.9 * guarantees["opd-a"] * 1000)
    out["a_guarantee_after_s"] = round(ttg, 1) if ttg is not None else None
    # After A stops: how long until B and C together use 90 % of the uplink.
    both = _sum_timeline(tl["opd-b"], tl["opd-c"])
    absorbed = time_to(both, a_stop, 0.9 * uplink_payload)
    out["absorbed_after_s"] = round(absorbed, 1) if absorbed is not None else None
    f, to = phases["all"]
    swings = [x for x in (swing(per_second(tl[o], f, to)) for o in OPDS) if x is not None]
    out["swing"] = round(max(swings), 3) if swings else None  # the least steady OPD's
    out["timeline"] = {o: [(round(t - t0, 2), round(v / 1e6, 2)) for t, v in tl[o]] for o in OPDS}
    out["allocations"] = [(round(t - t0, 2), a) for t, a in s.allocations]
    return out


def _sum_timeline(*tls: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Several timelines summed per report interval (by the interval their end falls in)."""
    bins: dict[int, float] = {}
    for tl in tls:
        for t, v in tl:
            bins[int(t // INTERVAL)] = bins.get(int(t // INTERVAL), 0.0) + v
    return [((k + 1) * INTERVAL, v) for k, v in sorted(bins.items())]


def fairness(s: Session, seconds: float) -> dict[str, Any]:
    """Every OPD with the same policy (guarantee 5, priority 4, cap 20): Jain's index of the
    three goodputs, all saturating for ``seconds`` (the second half counts)."""
    for opd in OPDS:
        s.put(opd, download_kbps=20000, download_min_kbps=5000, priority=4, weight=1)
    time.sleep(1)
    s.runs.clear()
    t0 = time.time()
    for opd in OPDS:
        s.start(opd, seconds)
    s.wait(seconds + 30)
    tl = s.timeline()
    got = [mean_between(tl[o], t0 + seconds / 2, t0 + seconds) for o in OPDS]
    return {"goodput_mbit": [round(v / 1e6, 2) for v in got], "jain": round(jain(got) or 0, 4)}


def resize_dip(s: Session, rates: tuple[int, int] = (12000, 16000), changes: int = 4, gap: float = 5.0) -> dict:
    """One TCP flow alone (C, well under the uplink), its cap PUT back and forth: what each
    meter re-size (Open vSwitch: a new meter, full bucket) does to its goodput."""
    s.runs.clear()
    s.put("opd-c", download_kbps=rates[0])
    time.sleep(1)
    s.start("opd-c", gap * (changes + 1) + 2)
    time.sleep(gap)
    at = []
    for k in range(changes):
        at.append((time.time(), rates[(k + 1) % 2]))
        s.put("opd-c", download_kbps=rates[(k + 1) % 2])
        time.sleep(gap)
    s.wait(60)
    tl = s.timeline()["opd-c"]
    rows = []
    for t, kbps in at:
        after = [v for tt, v in tl if t < tt <= t + 2]
        before = mean_between(tl, t - 3, t)
        if not after:
            continue
        rows.append(
            {
                "new_mbit": kbps / 1000,
                "before_mbit": round(before / 1e6, 2),
                "after_2s_ratio": round(statistics.fmean(after) / (kbps * 1000), 3),
                "lowest_0_5s_ratio": round(min(after) / (kbps * 1000), 3),
                "highest_0_5s_ratio": round(max(after) / (kbps * 1000), 3),
            }
        )
    return {"changes": rows}


def run(args: Any) -> int:
    period = float(os.environ.get("KENDALI_BENCH_PERIOD", "5"))
    phase = float(os.environ.get("KENDALI_BENCH_PHASE", "25"))
    guarantees = {o: 0.0 for o in OPDS}
    from controller.core.policy import load_file

    for o, p in load_file(POLICIES).items():
        guarantees[o] = float(p.download_min_kbps)
    print(
        f"Sharing benchmark: {uplink_mbit():g} Mbit/s uplink (tc tbf on the ISP link), OPDs A/B/C guarantees "
        f"{'/'.join(f'{v / 1000:g}' for v in guarantees.values())} Mbit/s, priorities 1/2/3; period {period:g} s, "
        f"phases of {phase:g} s (all saturate; A idle; A back)\n",
        flush=True,
    )
    result: dict[str, Any] = {"benchmark": "sharing", "period_s": period, "phase_s": phase, "modes": []}
    for sharing, prefix in ((False, "kbs0"), (True, "kbs1")):
        with session(sharing, period, prefix) as s:
            sc = run_scenario(s, phase)
            f = figures(s, sc, guarantees)
            f["fairness"] = fairness(s, 2 * phase)
            if not sharing:
                f["resize"] = resize_dip(s)
            if sharing:
                f["log"] = [line for line in s.ctl.log_tail(400).splitlines() if "sharing:" in line]
            result["modes"].append(f)
        print(f"  {f['mode']} done", flush=True)
    rows = []
    for f in result["modes"]:
        rows.append(
            {
                "mode": f["mode"],
                "A/B/C all": "/".join(f"{f['all'][o]:.1f}" for o in OPDS),
                "util all": f"{100 * f['all']['utilisation']:.0f} %",
                "B/C A idle": "/".join(f"{f['a idle'][o]:.1f}" for o in ("opd-b", "opd-c")),
                "util A idle": f"{100 * f['a idle']['utilisation']:.0f} %",
                "absorbed s": f["absorbed_after_s"],
                "A/B/C A back": "/".join(f"{f['a back'][o]:.1f}" for o in OPDS),
                "A 90% guar. s": f["a_guarantee_after_s"],
                "Jain equal": f["fairness"]["jain"],
                "swing": f["swing"],
            }
        )
    cols = [(k, k) for k in rows[0]]
    print("\nGoodput in Mbit/s (second half of each phase); utilisation = goodput + frame overhead over the uplink")
    print(table(rows, cols))
    print(f"Goals: utilisation >= 95 %, guarantee honoured < {2 * period:g} s (2 periods), Jain >= 0.95")
    resize = result["modes"][0].get("resize", {}).get("changes", [])
    if resize:
        print("\nA meter re-size under one TCP flow (static caps, cap PUT back and forth; ratios to the new rate)")
        print(table(resize, [(k, k) for k in resize[0]]))
    out = write_json("sharing", result, getattr(args, "json", None))
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run(None))
