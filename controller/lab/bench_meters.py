"""`kendali bench meters`: how exactly an OPD gets its cap, and how fast a new cap bites.

Lab: topologies/lab-meters.yaml with policies/lab-meters.yaml, one controller child
process and one Mininet lab for the whole run. Every cap is set on OPD A through the
REST API (PUT /v1/policies/opd-a), exactly as an operator would.

1. Steady-state TCP goodput against the download cap, for caps 1, 5, 20, 100 Mbit/s:
   one flow (inet -> a1, one stream) and several (inet -> a1 and a2, 2 streams each).
   iperf3 at the receiver, ``-O`` warm-up omitted (slow start, the full meter bucket).
   Target from the issue: goodput/cap within 0.95-1.02, median 0.98 or better.
   Windows are long (5 s warm-up, 20 s measured) because the 1 s bucket can hold up to
   a second of credit: with 2 s + 8 s, two full runs on 2026-11-28 had 4 of 48 runs
   above 1.02 (up to 1.060); with 5 s + 20 s, 36 runs that day stayed in 0.977-1.017.
2. PUT-to-enforced time: a paced UDP stream (offered above the old cap) to a1 while the
   cap is PUT from 20 to 5 Mbit/s. Every datagram's arrival time is recorded in a1
   (wall clock, the same clock as the PUT's timestamps); "enforced" is the end of the
   last 20 ms window, after the request, whose goodput is still above 2 x the new cap
   (at most ~20 ms late). "installed" is when ``ovs-ofctl dump-meters`` first shows the new band rate.
   Open vSwitch refills a modified meter's bucket, so after the switch has the new
   meter a full bucket (burst) still passes: enforced - installed ~ burst / (offered -
   new rate). The table therefore also runs with a 0.1 s burst.

Knobs (environment, all optional; the defaults are the full benchmark):
  KENDALI_BENCH_CAPS="1,5,20,100"  caps in Mbit/s
  KENDALI_BENCH_RUNS=3             runs per (cap, flows)
  KENDALI_BENCH_SECONDS=20         measured seconds per run (after KENDALI_BENCH_OMIT=5)
  KENDALI_BENCH_LATENCY_RUNS=5     PUT-to-enforced runs per burst setting
  KENDALI_BENCH_BURSTS="0.1,0.25,0.5,1,2"  also sweep burst seconds (burst_kbit = meter
                                   rate x seconds, set through the policy): ratio and
                                   swing per burst, at KENDALI_BENCH_SWEEP_CAPS="5,20"
  KENDALI_BENCH_OVERHEAD=1.0456    meter rate / cap to try instead of the compiler's
                                   FRAME_OVERHEAD (applied by PUTting a scaled cap:
                                   the compiler runs in the controller process)
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from controller.core.compiler import DEFAULT_BURST_SECONDS, FRAME_OVERHEAD, meter_rate
from controller.lab import traffic
from controller.lab.bench import summary, table, write_json

ROOT = Path(__file__).resolve().parents[2]
TOPO = ROOT / "topologies" / "lab-meters.yaml"
POLICIES = ROOT / "policies" / "lab-meters.yaml"
OPD = "opd-a"
SINGLE = [("inet", "a1", 1)]
MULTI = [("inet", "a1", 2), ("inet", "a2", 2)]
TARGET = (0.95, 1.02, 0.98)  # ratio band and the median the issue asks for


def _env_list(name: str, default: str) -> list[float]:
    raw = os.environ.get(name, default).strip()
    return [float(x) for x in raw.split(",") if x.strip()] if raw else []


def _env_num(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class Bench:
    def __init__(self, ctl: Any, lab: Any) -> None:
        self.ctl = ctl
        self.lab = lab
        self.base = ctl.get(f"/v1/policies/{OPD}")
        self.overhead = _env_num("KENDALI_BENCH_OVERHEAD", FRAME_OVERHEAD)
        self.seconds = int(_env_num("KENDALI_BENCH_SECONDS", 20))
        self.omit = int(_env_num("KENDALI_BENCH_OMIT", 5))

    # -- policy through REST

    def put(self, cap_mbps: float, burst_s: float | None = None) -> tuple[float, float, int]:
        """PUT OPD A's download cap; returns (t_request, t_reply, meter rate kbit/s)."""
        cap_kbps = cap_mbps * 1000
        # The compiler multiplies by FRAME_OVERHEAD; PUT a scaled cap to try another factor.
        kbps = int(round(cap_kbps * self.overhead / FRAME_OVERHEAD))
        body = {k: v for k, v in self.base.items() if k not in ("burst_kbit", "note")}
        body["download_kbps"] = kbps
        rate = meter_rate(kbps)
        if burst_s is not None:
            body["burst_kbit"] = max(16, int(rate * burst_s))
        t0 = time.time()
        status, resp = self.ctl.request("PUT", f"/v1/policies/{OPD}", body)
        t1 = time.time()
        if status not in (200, 201):
            raise RuntimeError(f"PUT {OPD} answered {status}: {resp}")
        return t0, t1, rate

    # -- steady-state goodput

    def goodput(self, cap_mbps: float, loads: list[tuple[str, str, int]], burst_s: float | None = None) -> dict:
        self.put(cap_mbps, burst_s)
        res = traffic.run(self.lab, [traffic.Load(*l) for l in loads], seconds=self.seconds, omit=self.omit)
        # The ratio sums each receiver's own mean: the clients' seconds do not line up, so a
        # per-second sum would wobble. The per-second sum is still the right view of swing.
        mean = sum(r.mean_bps for r in res)
        n = min(len(r.per_second_bps) for r in res)
        per = [sum(r.per_second_bps[i] for r in res) for i in range(n)]
        cap = cap_mbps * 1e6
        return {
            "goodput_mbps": mean / 1e6,
            "ratio": mean / cap,
            "swing_pct": statistics.pstdev(per) / statistics.fmean(per) * 100 if len(per) > 1 and any(per) else 0.0,
            "sec_min_ratio": min(per) / cap if per else 0.0,
            "sec_max_ratio": max(per) / cap if per else 0.0,
            "retransmits": sum(r.retransmits or 0 for r in res),
            "per_second_mbps": [round(x / 1e6, 4) for x in per],
        }

    def row(self, cap_mbps: float, loads: list[tuple[str, str, int]], runs: int, burst_s: float | None = None) -> dict:
        got = [self.goodput(cap_mbps, loads, burst_s) for _ in range(runs)]
        ratios = [g["ratio"] for g in got]
        row = {
            "cap": cap_mbps,
            "flows": f"{len(loads)}x{loads[0][2]}" if len(loads) > 1 else "1",
            "burst_s": burst_s if burst_s is not None else DEFAULT_BURST_SECONDS,
            "goodput": statistics.median(g["goodput_mbps"] for g in got),
            "ratio": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "swing": statistics.median(g["swing_pct"] for g in got),
            "sec_min": min(g["sec_min_ratio"] for g in got),
            "sec_max": max(g["sec_max_ratio"] for g in got),
            "retr": int(statistics.median(g["retransmits"] for g in got)),
            "runs": got,
        }
        row["in_target"] = TARGET[0] <= row["ratio_min"] and row["ratio_max"] <= TARGET[1] and row["ratio"] >= TARGET[2]
        print(
            f"  cap {cap_mbps:g} Mbit/s, flows {row['flows']}, burst {row['burst_s']:g} s: "
            f"ratio {row['ratio']:.3f} ({row['ratio_min']:.3f}-{row['ratio_max']:.3f}), "
            f"swing {row['swing']:.1f} %",
            flush=True,
        )
        return row

    # -- PUT to enforced

    def _meter_rates(self, bridge: str) -> list[int]:
        out = subprocess.run(
            ["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", bridge], capture_output=True, text=True
        ).stdout
        return [int(x) for x in re.findall(r"rate=(\d+)", out)]

    def latency(
        self,
        old: float = 20.0,
        new: float = 5.0,
        offered: float = 30.0,
        burst_s: float | None = None,
        duration: float = 5.0,
        put_at: float = 3.0,
        window: float = 0.02,
    ) -> dict:
        src, dst = self.lab.host("inet"), self.lab.host("a1")
        dst_ip = next(h.ip for h in self.lab.topology.hosts if h.name == "a1")
        bridge = self.lab.names["edge-a"]
        self.put(old, burst_s)
        port = 5999
        rx = dst.popen(
            [sys.executable, "-c", _RECEIVER, str(port), str(duration + 2.5)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.3)
        tx = src.popen(
            [sys.executable, "-c", _SENDER, dst_ip, str(port), str(offered * 1e6), str(duration)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        t_start = time.time()
        time.sleep(put_at)
        t_req, t_rep, new_rate = self.put(new, burst_s)
        t_inst = None
        deadline = time.time() + 2.0
        while time.time() < deadline:
            if new_rate in self._meter_rates(bridge):
                t_inst = time.time()
                break
            time.sleep(0.002)
        tx.wait(duration + 10)
        out, err = rx.communicate(timeout=duration + 15)
        arrivals = [(float(a), int(b)) for a, b in (line.split() for line in out.split("\n") if line.strip())]
        if not arrivals:
            raise RuntimeError(f"no UDP datagram reached a1: {err.strip()[:300]}")
        payload_cap = new * 1e6
        thr = 2.0 * payload_cap  # 30 Mbit/s offered vs 5: a 20 ms window is clearly one or the other
        times = [a for a, _ in arrivals]
        sizes = [b for _, b in arrivals]
        # Rate in [t, t + window) for t every 5 ms; prefix sums over arrival times.
        import bisect

        cum = [0]
        for s in sizes:
            cum.append(cum[-1] + s)

        def rate(t: float) -> float:
            i, j = bisect.bisect_left(times, t), bisect.bisect_left(times, t + window)
            return (cum[j] - cum[i]) * 8 / window

        t_enf = None
        t = t_req - 0.3
        end = times[-1] - window
        while t <= end:
            if rate(t) > thr and t + window > t_req:
                t_enf = t + window  # end of a window still over the new cap
            t += 0.005
        before = [rate(x) for x in _frange(t_start + 1.0, t_req - window, 0.05)]
        after = [rate(x) for x in _frange((t_enf or t_rep) + 0.2, end, 0.05)]
        burst_bits = (burst_s if burst_s is not None else DEFAULT_BURST_SECONDS) * new_rate * 1000
        return {
            "burst_s": burst_s if burst_s is not None else DEFAULT_BURST_SECONDS,
            "put_ms": (t_rep - t_req) * 1000,
            "installed_ms": (t_inst - t_rep) * 1000 if t_inst else None,
            "enforced_ms": (t_enf - t_rep) * 1000 if t_enf else None,
            "expected_drain_ms": burst_bits / max(1.0, offered * 1e6 - new_rate * 1000) * 1000,
            "before_mbps": statistics.fmean(before) / 1e6 if before else None,
            "after_mbps": statistics.fmean(after) / 1e6 if after else None,
        }


def _frange(a: float, b: float, step: float) -> list[float]:
    out = []
    while a <= b:
        out.append(a)
        a += step
    return out


# A paced UDP sender and a timestamping receiver, run inside the lab's hosts.
_SENDER = r"""
import socket, sys, time
dst, port, bps, dur = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"k" * 1400
t0 = time.time(); sent = 0
while True:
    now = time.time()
    if now - t0 >= dur:
        break
    due = t0 + sent * 8 / bps
    if due > now:
        time.sleep(min(due - now, 0.001))
        continue
    try:
        s.sendto(payload, (dst, port))
    except OSError:
        pass
    sent += len(payload)
"""

_RECEIVER = r"""
import socket, sys, time
port, dur = int(sys.argv[1]), float(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
s.bind(("0.0.0.0", port)); s.settimeout(0.2)
end = time.time() + dur; got = []
while time.time() < end:
    try:
        data = s.recv(65536)
    except socket.timeout:
        continue
    got.append((time.time(), len(data)))
sys.stdout.write("".join(f"{t:.6f} {n}\n" for t, n in got))
"""


_GOODPUT_COLS = [
    ("cap", "cap Mbit/s"),
    ("flows", "flows"),
    ("burst_s", "burst s"),
    ("goodput", "goodput Mbit/s"),
    ("ratio", "ratio"),
    ("ratio_min", "min"),
    ("ratio_max", "max"),
    ("swing", "swing %"),
    ("sec_min", "1s min"),
    ("sec_max", "1s max"),
    ("retr", "retransmits"),
    ("ok", "target"),
]
_LAT_COLS = [
    ("burst_s", "burst s"),
    ("runs", "runs"),
    ("put", "PUT reply ms (median)"),
    ("inst", "installed ms min/med/max"),
    ("enf", "enforced ms min/med/max"),
    ("drain", "burst drain ms (calc)"),
    ("rates", "before -> after Mbit/s"),
]


def _mmm(values: list[float | None]) -> str:
    v = [x for x in values if x is not None]
    if not v:
        return "-"
    s = summary(v)
    return f"{s['min']:.0f} / {s['median']:.0f} / {s['max']:.0f}" + (
        f" ({len(values) - len(v)} n/a)" if len(v) < len(values) else ""
    )


def _latency_row(runs: list[dict]) -> dict:
    return {
        "burst_s": runs[0]["burst_s"],
        "runs": len(runs),
        "put": statistics.median(r["put_ms"] for r in runs),
        "inst": _mmm([r["installed_ms"] for r in runs]),
        "enf": _mmm([r["enforced_ms"] for r in runs]),
        "drain": statistics.median(r["expected_drain_ms"] for r in runs),
        "rates": f"{statistics.median(r['before_mbps'] or 0 for r in runs):.1f} -> "
        f"{statistics.median(r['after_mbps'] or 0 for r in runs):.2f}",
    }


def _display(rows: list[dict]) -> list[dict]:
    return [dict(r, ok="yes" if r["in_target"] else "no") for r in rows]


def run(args: Any) -> int:
    from controller.lab.labctl import ControllerProcess
    from controller.lab.mininet_lab import Lab

    caps = _env_list("KENDALI_BENCH_CAPS", "1,5,20,100")
    runs = int(_env_num("KENDALI_BENCH_RUNS", 3))
    lat_runs = int(_env_num("KENDALI_BENCH_LATENCY_RUNS", 5))
    bursts = _env_list("KENDALI_BENCH_BURSTS", "")
    sweep_caps = _env_list("KENDALI_BENCH_SWEEP_CAPS", "5,20")
    result: dict[str, Any] = {
        "benchmark": "meters",
        "topology": str(TOPO.relative_to(ROOT)),
        "frame_overhead": None,
        "default_burst_s": DEFAULT_BURST_SECONDS,
    }
    t_all = time.monotonic()
    with ControllerProcess(TOPO, POLICIES) as ctl:
        with Lab(TOPO, controller_port=ctl.ofp_port, prefix="kbm") as lab:
            took, matrix = lab.wait_reachable(60)
            if not matrix.complete:
                print(lab.report(matrix), file=sys.stderr)
                return 1
            b = Bench(ctl, lab)
            result["frame_overhead"] = b.overhead
            print(
                f"Meter benchmark: {OPD} download cap set by PUT; TCP, iperf3 -O {b.omit}, {b.seconds} s "
                f"measured, {runs} run(s) each; meter rate = cap x {b.overhead:.4f}"
                f"{'' if b.overhead == FRAME_OVERHEAD else ' (overridden)'}\n",
                flush=True,
            )
            rows = []
            for cap in caps:
                for loads in (SINGLE, MULTI):
                    rows.append(b.row(cap, loads, runs))
            sweep = []
            if bursts:
                print(f"\nBurst sweep (1 run each, caps {', '.join(f'{c:g}' for c in sweep_caps)} Mbit/s)", flush=True)
                for cap in sweep_caps:
                    for loads in (SINGLE, MULTI):
                        for bs in bursts:
                            sweep.append(b.row(cap, loads, 1, bs))
            print(
                f"\nPUT-to-enforced: UDP 30 Mbit/s offered to a1, cap PUT 20 -> 5 Mbit/s, {lat_runs} runs per burst",
                flush=True,
            )
            lat: list[list[dict]] = []
            for burst_s in (None, 0.1) if lat_runs > 0 else ():
                one = [b.latency(burst_s=burst_s) for _ in range(lat_runs)]
                lat.append(one)
                print(
                    f"  burst {one[0]['burst_s']:g} s: enforced {_mmm([r['enforced_ms'] for r in one])} ms", flush=True
                )
    print(
        "\n1. Steady-state TCP goodput vs the download cap (median of runs; min/max = run ratios; swing ="
        " std/mean of the per-second aggregate; 1s min/max = per-second goodput / cap over all runs)\n"
    )
    print(table(_display(rows), _GOODPUT_COLS))
    good = [r for r in rows if r["in_target"]]
    print(f"\nTarget ratio {TARGET[0]}-{TARGET[1]}, median >= {TARGET[2]}: {len(good)}/{len(rows)} rows in target")
    if sweep:
        print("\nBurst sweep: ratio and swing vs burst seconds (1 run each)\n")
        print(table(_display(sweep), _GOODPUT_COLS))
    print("\n2. PUT reply -> new cap enforced (ms after the PUT's reply; negative = before the reply arrived)\n")
    if lat:
        print(table([_latency_row(x) for x in lat], _LAT_COLS))
    print(
        "\ninstalled: ovs-ofctl dump-meters shows the new rate (polled every ~5 ms); enforced: end of the last"
        " 20 ms window above 2 x the new cap; drain: the refilled bucket at the new rate,"
        " burst / (offered - new rate)"
    )
    result.update(
        goodput=rows,
        burst_sweep=sweep,
        latency=[{"burst_s": x[0]["burst_s"], "runs": x} for x in lat],
        seconds=round(time.monotonic() - t_all, 1),
    )
    out = write_json("meters", result, getattr(args, "json", None))
    print(f"\nJSON: {out}  ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":  # python -m controller.bench_meters [--json PATH]
    import argparse

    p = argparse.ArgumentParser(prog="python -m controller.bench_meters")
    p.add_argument("--json", type=Path)
    sys.exit(run(p.parse_args()))
