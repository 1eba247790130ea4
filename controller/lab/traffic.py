"""Concurrent TCP load between lab hosts (iperf3), for the demo, lab tests and benchmarks.

Goodput is read at the receiver: the server runs on the sender and the client on the
receiver with ``-R``, so the client's JSON holds what really arrived, per second.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

from controller.errors import KendaliError


@dataclass(frozen=True)
class Load:
    src: str  # sends
    dst: str  # receives (one Load per receiving host at a time)
    streams: int = 1


@dataclass
class Goodput:
    load: Load
    per_second_bps: list[float]  # after the omitted warm-up seconds
    retransmits: int | None

    @property
    def mean_bps(self) -> float:
        return statistics.fmean(self.per_second_bps) if self.per_second_bps else 0.0

    @property
    def swing(self) -> float:
        """Standard deviation of the per-second goodput over its mean (0 = perfectly flat)."""
        if len(self.per_second_bps) < 2 or not self.mean_bps:
            return 0.0
        return statistics.pstdev(self.per_second_bps) / self.mean_bps


def parse_iperf3(out: str, what: str) -> dict:
    """The JSON document in iperf3 -J output, or a clear error."""
    start, end = out.find("{"), out.rfind("}")
    if start < 0 or end < 0:
        raise KendaliError(f"iperf3 gave no result: {out.strip()[:200]}", what)
    try:
        data = json.loads(out[start : end + 1])
    except ValueError as exc:
        raise KendaliError(f"iperf3 output is not JSON ({exc})", what) from None
    if "error" in data:
        raise KendaliError(f"iperf3: {data['error']}", what)
    return data


def goodput(load: Load, data: dict, keep: int | None = None) -> Goodput:
    """Steady-state seconds of one iperf3 run: the first ``keep`` of them (all: None)."""
    # iperf3 (3.12, reverse mode) reports one unmarked, stretched interval right after the
    # omitted warm-up; only whole one-second intervals are steady-state seconds.
    per = [
        iv["sum"]["bits_per_second"]
        for iv in data.get("intervals", [])
        if not iv["sum"].get("omitted") and abs(iv["sum"].get("seconds", 1.0) - 1.0) < 0.1
    ]
    retr = data.get("end", {}).get("sum_sent", {}).get("retransmits")
    return Goodput(load, per[:keep] if keep is not None else per, retr)


# Concurrent clients start one after another (up to a few hundred ms apart on a busy
# machine). Each runs this much longer than it is measured, so no client's measured
# seconds include a moment when an earlier client had already stopped and left it the
# whole cap, which would count towards an aggregate above the cap.
TAIL_PAD_S = 2


def run(lab: Any, loads: list[Load], seconds: int = 8, omit: int = 2, base_port: int = 5301) -> list[Goodput]:
    """Run all loads at once; returns one Goodput per load, in order."""
    dsts = [l.dst for l in loads]
    if len(set(dsts)) != len(dsts):
        raise KendaliError("each receiving host may take part in one load at a time", "traffic")
    servers = []
    try:
        for i, l in enumerate(loads):
            node = lab.host(l.src)
            node.cmd(f"iperf3 -s -1 -p {base_port + i} >/dev/null 2>&1 &")
            servers.append((node, node.lastPid, base_port + i))
        for node, _pid, port in servers:
            deadline = time.monotonic() + 5
            while not node.cmd(f"ss -Hltn 'sport = :{port}'").strip():
                if time.monotonic() > deadline:
                    raise KendaliError(f"iperf3 server on port {port} did not start", "traffic")
                time.sleep(0.05)
        pad = TAIL_PAD_S if len(loads) > 1 else 0
        limit = seconds + pad + omit + 15
        ips = {h.name: h.ip for h in lab.topology.hosts}
        for i, l in enumerate(loads):
            lab.host(l.dst).sendCmd(
                f"timeout {limit} iperf3 -c {ips[l.src]} -p {base_port + i} -R -t {seconds + pad} -O {omit} "
                f"-P {l.streams} -J 2>&1"
            )
        results = []
        for l in loads:
            out = lab.host(l.dst).waitOutput()
            results.append(goodput(l, parse_iperf3(out, f"iperf3 {l.src}->{l.dst}"), keep=seconds))
        return results
    finally:
        for node, pid, _port in servers:
            node.cmd(f"kill {pid} 2>/dev/null; wait {pid} 2>/dev/null")
