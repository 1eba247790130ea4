"""The lab's hostile frames are what they claim to be (controller/lab/attack.py)."""

from __future__ import annotations

import ipaddress
import random

import pytest

pytest.importorskip("scapy", reason="scapy is in the test extra: pip install -e .[test]")

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.l2 import ARP, Ether  # noqa: E402

from controller.core.frames import lldp_frame  # noqa: E402
from controller.lab import attack  # noqa: E402


def _tlvs(frame: bytes) -> list[tuple[int, bytes]]:
    """(type, value) of each LLDP TLV, up to End."""
    out, i = [], 14
    while i + 2 <= len(frame):
        head = int.from_bytes(frame[i:i + 2], "big")
        kind, length = head >> 9, head & 0x1FF
        if kind == 0:
            break
        out.append((kind, frame[i + 2:i + 2 + length]))
        i += 2 + length
    return out


def test_forged_lldp_says_what_the_controllers_own_lldp_says() -> None:
    mac = "02:00:00:00:00:33"
    forged = attack.forged_lldp(mac, 0x1F, 7)
    genuine = lldp_frame(0x1F, 7, mac)
    assert forged[:14] == genuine[:14]  # same destination, source and ethertype
    # Chassis, port and TTL as the controller writes them (whatever it adds after them).
    assert _tlvs(forged) == _tlvs(genuine)[:3]
    assert attack.kendali_lldp_source(forged) == (0x1F, 7)


def test_only_kendali_lldp_has_a_source() -> None:
    assert attack.kendali_lldp_source(attack.gratuitous_arp("02:00:00:00:00:01", "10.0.0.1")) is None
    assert attack.kendali_lldp_source(b"\x00" * 10) is None


def test_gratuitous_arp_claims_the_victims_mac_and_address() -> None:
    f = Ether(attack.gratuitous_arp("02:4b:0a:14:01:0a", "10.20.1.10"))
    assert f.src == "02:4b:0a:14:01:0a" and f.dst == "ff:ff:ff:ff:ff:ff"
    assert (f[ARP].op, f[ARP].hwsrc, f[ARP].psrc, f[ARP].pdst) == (2, "02:4b:0a:14:01:0a", "10.20.1.10", "10.20.1.10")


def test_arp_flood_frames_come_from_distinct_unicast_macs_in_the_given_network() -> None:
    frames = attack.arp_flood_frames(500, "10.20.6.0/23")
    net = ipaddress.IPv4Network("10.20.6.0/23")
    macs = set()
    for raw in frames:
        f = Ether(raw)
        assert f[ARP].op == 1 and f[ARP].hwsrc == f.src
        assert ipaddress.IPv4Address(f[ARP].psrc) in net and ipaddress.IPv4Address(f[ARP].pdst) in net
        assert not int(f.src[:2], 16) & 1  # unicast
        macs.add(f.src)
    assert len(macs) == 500


def test_mac_flood_frames_are_well_formed_udp_from_distinct_macs() -> None:
    frames = attack.mac_flood_frames(200)
    parsed = [Ether(f) for f in frames]
    assert len({p.src for p in parsed}) == 200
    for p in parsed:
        assert p.haslayer(UDP)
        sent = p[IP].chksum
        del p[IP].chksum  # scapy computes it afresh: the patched frames kept a valid header
        assert Ether(bytes(p))[IP].chksum == sent


def test_random_macs_are_locally_administered_unicast_and_distinct() -> None:
    macs = attack.random_macs(1000, random.Random(5))
    assert len(set(macs)) == 1000
    assert all(int(m[:2], 16) & 0b11 == 0b10 for m in macs)
