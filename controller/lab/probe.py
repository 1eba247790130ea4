"""UDP probe stream for failover measurements: a numbered datagram every interval.

    python3 -m controller.lab.probe recv --port 9000 --seconds 6 > result.json
    python3 -m controller.lab.probe send --to 10.10.1.10 --port 9000 --seconds 5 --interval 0.0005

The receiver reports the longest gap between consecutive arrivals (the interruption a
service sees), the lost probes (sequence numbers never received), and duplicates and
reorderings (a loop or a path flap shows up there). Runs inside Mininet hosts with the
system Python: standard library only.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time
from itertools import pairwise

_FMT = "!Qd"  # sequence number, sender's send time


def send(to: str, port: int, seconds: float, interval: float) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.monotonic()
    deadline = start + seconds
    seq = 0
    nxt = start
    while True:
        now = time.monotonic()
        if now >= deadline:
            break
        if now < nxt:
            # Sleep most of the wait, spin the rest: time.sleep alone overshoots ~0.1 ms.
            if nxt - now > 0.0003:
                time.sleep(nxt - now - 0.0002)
            continue
        try:
            sock.sendto(struct.pack(_FMT, seq, time.time()), (to, port))
        except OSError:
            pass  # no route for a moment counts as loss, which the receiver reports
        seq += 1
        nxt += interval
    return {"sent": seq, "seconds": seconds, "interval": interval}


def recv(port: int, seconds: float, expect: int | None = None) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    arrivals: list[tuple[int, float]] = []
    while time.monotonic() < deadline:
        try:
            data, _ = sock.recvfrom(64)
        except TimeoutError:
            continue
        if len(data) >= struct.calcsize(_FMT):
            seq, _sent = struct.unpack_from(_FMT, data)
            arrivals.append((seq, time.monotonic()))
    return analyse(arrivals, expect)


def analyse(arrivals: list[tuple[int, float]], expect: int | None = None) -> dict:
    """Longest gap (ms) and where it was, lost, duplicate and reordered probes."""
    if not arrivals:
        return {"received": 0, "lost": expect, "max_gap_ms": None}
    seqs = [s for s, _ in arrivals]
    unique = set(seqs)
    top = max(seqs) + 1 if expect is None else expect
    gaps = [(b[1] - a[1], a[0], b[0]) for a, b in pairwise(arrivals)]
    worst = max(gaps) if gaps else (0.0, seqs[0], seqs[0])
    reordered = sum(1 for a, b in pairwise(seqs) if b < a)
    # Lost probes as runs [first missing seq, how many]: one run is one outage; several
    # tell a failover (fast-failover switch, then the controller's new paths) apart.
    runs: list[list[int]] = []
    for s in sorted(set(range(top)) - unique):
        if runs and runs[-1][0] + runs[-1][1] == s:
            runs[-1][1] += 1
        else:
            runs.append([s, 1])
    return {
        "received": len(arrivals),
        "unique": len(unique),
        "duplicates": len(arrivals) - len(unique),
        "reordered": reordered,
        "lost": top - sum(1 for s in unique if s < top),
        "max_gap_ms": worst[0] * 1000,
        "gap_after_seq": worst[1],
        "gap_before_seq": worst[2],
        "first_seq": seqs[0],
        "last_seq": seqs[-1],
        "lost_runs": runs[:20],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="probe")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--port", type=int, default=9000)
    s.add_argument("--seconds", type=float, default=5)
    s.add_argument("--interval", type=float, default=0.001)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, default=9000)
    r.add_argument("--seconds", type=float, default=6)
    r.add_argument("--expect", type=int)
    a = ap.parse_args(argv)
    out = send(a.to, a.port, a.seconds, a.interval) if a.cmd == "send" else recv(a.port, a.seconds, a.expect)
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
