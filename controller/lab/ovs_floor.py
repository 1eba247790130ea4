"""How fast Open vSwitch itself (userspace datapath) bypasses a dead port: the floor under
any controller's carrier-loss failover in this lab.

One netdev bridge, no controller, one fast-failover group (bucket 1 watches and outputs
to port 2, bucket 2 to port 3), one flow sending everything from port 1 into it: the
same mechanism Kendali installs. Frames are written into port 1 every ``interval`` from
a raw socket and captured behind ports 2 and 3; the veth peer of port 2 is then set
down, so port 2 loses carrier exactly as a lab link cut does. The outage is the send-time
span of the frames that arrived nowhere.

``idle_ports`` adds that many up-but-idle veth ports to the same bridge. A lab's
switches all share one ovs-vswitchd whose main thread polls every port, so this shows
how the floor grows with the ports one ovs-vswitchd serves (ring4 has 12).

Needs root and running Open vSwitch; takes the lab lock, touches only its own kff*
names, and removes them afterwards.
"""

from __future__ import annotations

import re
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from typing import Any

from controller.errors import KendaliError

BRIDGE = "kff0"
_ETHERTYPE = 0x88B5  # IEEE "local experimental": nothing else in the lab sends it
_HEADER = bytes.fromhex("020000000002020000000001") + struct.pack("!H", _ETHERTYPE)


def _sh(cmd: str) -> None:
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if r.returncode:
        raise KendaliError(f"{cmd}: {r.stderr.strip()[:200]}", "ovs floor")


def _veths(idle_ports: int) -> list[str]:
    return ["kffin", "kff1", "kff2"] + [f"kffi{i}" for i in range(idle_ports)]


def teardown() -> None:
    """Remove our bridge and every kff* veth pair (also one left by an interrupted run)."""
    subprocess.run(["ovs-vsctl", "--if-exists", "del-br", BRIDGE], capture_output=True)
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    for name in re.findall(r"^\d+: (kff[^:@]*)@", links, re.M):
        if not name.endswith("p"):  # deleting one end of a veth removes its peer too
            subprocess.run(["ip", "link", "del", name], capture_output=True)


def setup(idle_ports: int) -> None:
    teardown()
    for name in _veths(idle_ports):
        _sh(f"ip link add {name} type veth peer name {name}p && ip link set {name} up && ip link set {name}p up")
    ports = " ".join(
        f"-- add-port {BRIDGE} {n} -- set interface {n} ofport_request={i + 1}"
        for i, n in enumerate(_veths(idle_ports))
    )
    _sh(
        f"ovs-vsctl add-br {BRIDGE} -- set bridge {BRIDGE} datapath_type=netdev protocols=OpenFlow13 "
        f"fail_mode=secure {ports}"
    )
    _sh(
        f"ovs-ofctl -O OpenFlow13 add-group {BRIDGE} "
        "group_id=1,type=ff,bucket=watch_port:2,output:2,bucket=watch_port:3,output:3"
    )
    _sh(f"ovs-ofctl -O OpenFlow13 add-flow {BRIDGE} in_port=1,actions=group:1")


def one_cut(interval: float = 0.00025, before: float = 0.3, after: float = 0.3) -> dict[str, Any]:
    """Stream frames, cut port 2's carrier ``before`` seconds in, stream ``after`` more."""
    stop = threading.Event()
    got: dict[str, set[int]] = {"kff1p": set(), "kff2p": set()}

    def capture(dev: str) -> None:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETHERTYPE))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind((dev, 0))
        s.settimeout(0.05)
        while not stop.is_set():
            try:
                data = s.recv(128)
            except (TimeoutError, OSError):
                continue
            got[dev].add(struct.unpack_from("!I", data, 14)[0])
        s.close()

    threads = [threading.Thread(target=capture, args=(d,), daemon=True) for d in got]
    for t in threads:
        t.start()
    time.sleep(0.05)
    tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    tx.bind(("kffinp", 0))
    sent: list[float] = [0.0]  # send time by sequence number; 0 is unused
    t0 = time.monotonic()
    t_cut = None
    try:
        while True:
            now = time.monotonic()
            if t_cut is None and now - t0 >= before:
                t_cut = now
                subprocess.run(["ip", "link", "set", "kff1p", "down"], check=True)
            if t_cut is not None and now - t_cut >= after:
                break
            sent.append(now)
            tx.send(_HEADER + struct.pack("!I", len(sent) - 1) + bytes(42))
            time.sleep(max(0.0, interval - (time.monotonic() - now)))
    finally:
        time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join()
        tx.close()
        subprocess.run(["ip", "link", "set", "kff1p", "up"], capture_output=True)
    arrived = got["kff1p"] | got["kff2p"]
    lost = [s for s in range(1, len(sent)) if s not in arrived]
    outage = (sent[lost[-1]] - sent[lost[0]]) * 1000 + interval * 1000 if lost else 0.0
    return {"sent": len(sent) - 1, "lost": len(lost), "outage_ms": outage, "on_backup": len(got["kff2p"]) > 0}


def measure(runs: int = 10, idle_ports: int = 0, log: Any = None) -> dict[str, Any]:
    """``runs`` carrier cuts on a fresh bridge; min/median/max outage in ms."""
    from controller.lab.mininet_lab import lab_lock

    sys.setswitchinterval(0.00005)  # the capture threads must keep up with the sender
    with lab_lock():
        setup(idle_ports)
        try:
            time.sleep(1.0)  # ports settle
            results = []
            for _ in range(runs):
                results.append(one_cut())
                time.sleep(0.5)  # port 2 back up and live again
        finally:
            teardown()
    if not all(r["on_backup"] for r in results):
        raise KendaliError("the backup port never carried traffic: the fast-failover group did not switch", "ovs floor")
    outages = sorted(r["outage_ms"] for r in results)
    row = {
        "ports": 3 + idle_ports,
        "runs": runs,
        "outage_min": outages[0],
        "outage_med": statistics.median(outages),
        "outage_max": outages[-1],
        "raw": results,
    }
    if log:
        log(
            f"  ovs alone, {row['ports']:>2} ports: outage ms min {row['outage_min']:.1f} "
            f"med {row['outage_med']:.1f} max {row['outage_max']:.1f}"
        )
    return row
