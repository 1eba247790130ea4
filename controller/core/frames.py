"""Ethernet frames the controller reads and writes: LLDP, ARP, the IPv4 header. Pure.

Parsing is by hand with ``struct`` on purpose: every byte a host sends to the controller
passes here, so a frame that is short, truncated, oversized, VLAN-tagged or otherwise odd
must end in a ``FrameError`` naming the problem (the caller drops it and counts it),
never in an exception from deep inside a general packet library.

Kendali's LLDP (IEEE 802.1AB) carries, besides the chassis and port ids, one
organisation-specific TLV with a sequence number, a timestamp and an HMAC over all of it
(see controller.core.lldp): the proof that Kendali sent it.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ETH_LLDP = 0x88CC
ETH_ARP = 0x0806
ETH_IP = 0x0800
ETH_VLAN = (0x8100, 0x88A8, 0x9100)
LLDP_MAC = "01:80:c2:00:00:0e"  # nearest bridge: never forwarded by a standards-compliant bridge
BROADCAST = "ff:ff:ff:ff:ff:ff"
MAX_FRAME = 9216  # a jumbo frame; anything longer did not come off a wire
CHASSIS_PREFIX = b"kendali:"
# Organisation-specific TLV (type 127): OUI and subtype. 4b:4e:44 is "KND"; it is a
# locally administered value (bit 1 of the first octet set), not a registered OUI.
KENDALI_OUI = b"\x4b\x4e\x44"
PROOF_SUBTYPE = 1
PROOF_LEN = 8 + 8 + 16  # sequence, timestamp (ms), truncated HMAC-SHA256


class FrameError(ValueError):
    """A frame the controller does not accept; the message says why (for a counted log)."""


@dataclass(frozen=True)
class Arp:
    op: int
    src_mac: str
    src_ip: str
    dst_mac: str
    dst_ip: str


@dataclass(frozen=True)
class Lldp:
    """A Kendali LLDP frame: who claims to have sent it, and its proof (None if absent)."""

    dpid: int
    port: int
    seq: int | None = None
    sent_ms: int | None = None
    mac: bytes | None = None


@dataclass(frozen=True)
class Ipv4:
    src: str
    dst: str


@dataclass(frozen=True)
class Frame:
    eth_src: str
    eth_dst: str
    ethertype: int
    payload: Lldp | Arp | Ipv4 | None = None  # None: a type the controller ignores


def mac_str(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def mac_bytes(mac: str) -> bytes:
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return bytes(int(p, 16) for p in parts)


def ip_bytes(ip: str) -> bytes:
    return ipaddress.IPv4Address(ip).packed


def parse(data: bytes) -> Frame:
    """The frame's Ethernet header and, for LLDP, ARP and IPv4, what the controller needs."""
    if len(data) < 14:
        raise FrameError(f"{len(data)} bytes: shorter than an Ethernet header")
    if len(data) > MAX_FRAME:
        raise FrameError(f"{len(data)} bytes: longer than any frame on the wire")
    dst, src, ethertype = data[0:6], data[6:12], struct.unpack_from("!H", data, 12)[0]
    if ethertype in ETH_VLAN:
        # Inter-switch and edge ports carry untagged frames only (a detour tag never
        # reaches the controller); a tagged control frame is someone else's.
        raise FrameError(f"VLAN-tagged frame (ethertype {ethertype:#06x})")
    body = data[14:]
    payload: Lldp | Arp | Ipv4 | None = None
    if ethertype == ETH_LLDP:
        payload = parse_lldp(body)
    elif ethertype == ETH_ARP:
        payload = parse_arp(body)
    elif ethertype == ETH_IP:
        payload = parse_ipv4(body)
    return Frame(mac_str(src), mac_str(dst), ethertype, payload)


def parse_arp(body: bytes) -> Arp:
    if len(body) < 28:
        raise FrameError(f"ARP of {len(body)} bytes: shorter than 28")
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", body, 0)
    if (htype, ptype, hlen, plen) != (1, ETH_IP, 6, 4):
        raise FrameError(f"ARP for hardware {htype}/protocol {ptype:#06x}: only Ethernet/IPv4")
    if op not in (1, 2):
        raise FrameError(f"ARP operation {op}: only request (1) and reply (2)")
    sha, spa, tha, tpa = body[8:14], body[14:18], body[18:24], body[24:28]
    return Arp(op, mac_str(sha), str(ipaddress.IPv4Address(spa)), mac_str(tha), str(ipaddress.IPv4Address(tpa)))


def parse_ipv4(body: bytes) -> Ipv4:
    if len(body) < 20:
        raise FrameError(f"IPv4 of {len(body)} bytes: shorter than its header")
    if body[0] >> 4 != 4 or (body[0] & 0xF) < 5:
        raise FrameError("not an IPv4 header (version or header length)")
    header, total = (body[0] & 0xF) * 4, struct.unpack_from("!H", body, 2)[0]
    if not header <= total <= len(body):
        raise FrameError(f"IPv4 header of {header} bytes and total length {total} in {len(body)} bytes")
    return Ipv4(str(ipaddress.IPv4Address(body[12:16])), str(ipaddress.IPv4Address(body[16:20])))


def _tlvs(body: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    i = 0
    while True:
        if i + 2 > len(body):
            raise FrameError("LLDP ends without its End TLV")
        head = struct.unpack_from("!H", body, i)[0]
        kind, length = head >> 9, head & 0x1FF
        i += 2
        if i + length > len(body):
            raise FrameError(f"LLDP TLV type {kind} runs past the frame ({length} bytes)")
        if kind == 0:
            return out
        out.append((kind, body[i : i + length]))
        i += length
        if len(out) > 64:
            raise FrameError("LLDP with more than 64 TLVs")


def parse_lldp(body: bytes) -> Lldp | None:
    """A Kendali LLDP frame, or None for someone else's LLDP (a real bridge, a phone)."""
    tlvs = _tlvs(body)
    if len(tlvs) < 3 or [t for t, _ in tlvs[:3]] != [1, 2, 3]:
        raise FrameError("LLDP without chassis id, port id and TTL first")
    chassis, port = tlvs[0][1], tlvs[1][1]
    if len(chassis) < 2 or not chassis[1:].startswith(CHASSIS_PREFIX):
        return None
    try:
        dpid = int(chassis[1 + len(CHASSIS_PREFIX) :].decode("ascii"), 16)
        port_no = int(port[1:].decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise FrameError("Kendali LLDP with an unreadable chassis or port id") from None
    if not (0 <= dpid < 2**64 and 0 < port_no < 0xFFFFFF00):
        raise FrameError(f"Kendali LLDP with dpid {dpid:#x} or port {port_no} out of range")
    for kind, value in tlvs[3:]:
        if kind == 127 and value[:3] == KENDALI_OUI and len(value) >= 4 and value[3] == PROOF_SUBTYPE:
            proof = value[4:]
            if len(proof) != PROOF_LEN:
                raise FrameError(f"Kendali LLDP proof of {len(proof)} bytes, not {PROOF_LEN}")
            seq, sent_ms = struct.unpack_from("!QQ", proof, 0)
            return Lldp(dpid, port_no, seq, sent_ms, proof[16:])
    return Lldp(dpid, port_no)


def _tlv(kind: int, value: bytes) -> bytes:
    return struct.pack("!H", (kind << 9) | len(value)) + value


def lldp_signed_part(dpid: int, port: int, seq: int, sent_ms: int) -> bytes:
    """The bytes the LLDP proof's HMAC covers."""
    return struct.pack("!QIQQ", dpid, port, seq, sent_ms)


def lldp_frame(dpid: int, port: int, src_mac: str, proof: tuple[int, int, bytes] | None = None) -> bytes:
    """An LLDP frame from (dpid, port); ``proof`` is (seq, sent_ms, hmac)."""
    body = _tlv(1, b"\x07" + CHASSIS_PREFIX + b"%016x" % dpid)  # subtype 7: locally assigned
    body += _tlv(2, b"\x02" + b"%d" % port)  # subtype 2: port component
    body += _tlv(3, struct.pack("!H", 10))
    if proof is not None:
        seq, sent_ms, mac = proof
        body += _tlv(127, KENDALI_OUI + bytes([PROOF_SUBTYPE]) + struct.pack("!QQ", seq, sent_ms) + mac)
    body += _tlv(0, b"")
    return mac_bytes(LLDP_MAC) + mac_bytes(src_mac) + struct.pack("!H", ETH_LLDP) + body


def arp_frame(a: Arp) -> bytes:
    dst = a.dst_mac if a.op == 2 else BROADCAST
    return (
        mac_bytes(dst)
        + mac_bytes(a.src_mac)
        + struct.pack("!H", ETH_ARP)
        + struct.pack("!HHBBH", 1, ETH_IP, 6, 4, a.op)
        + mac_bytes(a.src_mac)
        + ip_bytes(a.src_ip)
        + mac_bytes(a.dst_mac)
        + ip_bytes(a.dst_ip)
    )
