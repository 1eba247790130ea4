"""The lab's hostile frames are what they claim to be (controller/lab/attack.py)."""

from __future__ import annotations

import ipaddress
import random
import re
import struct

import pytest

pytest.importorskip("scapy", reason="scapy is in the test extra: pip install -e .[test]")

from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether  # noqa: E402

from controller.core import frames  # noqa: E402
from controller.core.compiler import GATEWAY_MAC  # noqa: E402
from controller.core.frames import lldp_frame  # noqa: E402
from controller.core.lldp import LldpSigner  # noqa: E402
from controller.lab import attack  # noqa: E402


def _tlvs(frame: bytes) -> list[tuple[int, bytes]]:
    """(type, value) of each LLDP TLV, up to End."""
    out, i = [], 14
    while i + 2 <= len(frame):
        head = int.from_bytes(frame[i : i + 2], "big")
        kind, length = head >> 9, head & 0x1FF
        if kind == 0:
            break
        out.append((kind, frame[i + 2 : i + 2 + length]))
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


# ---------------------------------------------------------------- malformed frames

MAC, IP4 = "02:4b:0a:14:03:0a", "10.20.3.10"
MALFORMED = attack.malformed_frames(MAC, IP4)
JUMBO = attack.jumbo_frames(MAC, IP4)


def _of(kind: str, frames_: list[tuple[str, bytes]] = MALFORMED) -> list[bytes]:
    out = [f for k, f in frames_ if k == kind or k.startswith(kind + "-")]
    assert out, f"no {kind} frames"
    return out


def _walk(frame: bytes) -> tuple[list[tuple[int, bytes]], str | None]:
    """An LLDP frame's TLVs as the standard reads them, and what is wrong with the
    framing: "overrun" (a TLV longer than what is left), "no-end" (no End TLV), None."""
    out, i = [], 14
    while True:
        if i + 2 > len(frame):
            return out, "no-end"
        head = int.from_bytes(frame[i : i + 2], "big")
        kind, length = head >> 9, head & 0x1FF
        if i + 2 + length > len(frame):
            return out, "overrun"
        if kind == 0:
            return out, None
        out.append((kind, frame[i + 2 : i + 2 + length]))
        i += 2 + length


def _kendali_ids_readable(chassis: bytes, port: bytes) -> bool:
    """The chassis and port ids as Kendali writes them (16 hex digits; a port 1-0xfffffeff)."""
    m = re.fullmatch(rb"\x07kendali:([0-9a-f]{16})", chassis)
    p = re.fullmatch(rb"\x02([1-9][0-9]{0,9})", port)
    return bool(m and p and int(p.group(1)) < 0xFFFFFF00)


def test_malformed_frames_are_a_few_hundred_fixed_frames_from_the_sender() -> None:
    assert attack.malformed_frames(MAC, IP4) == MALFORMED  # the same set every run
    assert 100 < len(MALFORMED) < 1000
    assert attack.malformed_frames(MAC, IP4, seed=9) != MALFORMED  # only the random ones depend on the seed
    for _kind, f in MALFORMED + JUMBO:
        assert len(f) >= 14 and f[6:12] == bytes.fromhex(MAC.replace(":", ""))


def test_truncated_arp_is_every_cut_of_a_real_request() -> None:
    whole = bytes(Ether(src=MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=MAC, psrc=IP4, pdst=IP4))
    cuts = _of("arp-truncated")
    assert sorted(len(f) for f in cuts) == list(range(14, 42))
    assert all(f == whole[: len(f)] for f in cuts)


def test_arp_with_bad_fields_differs_from_ethernet_ipv4_arp_in_one_field_each() -> None:
    changed = set()
    for f in _of("arp-bad-fields"):
        htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", f, 14)
        fields = {
            "htype": htype != 1,
            "ptype": ptype != 0x0800,
            "hlen": hlen != 6,
            "plen": plen != 4,
            "op": op not in (1, 2),
        }
        assert len(f) == 42 and f[12:14] == b"\x08\x06" and sum(fields.values()) == 1, f.hex()
        changed |= {k for k, v in fields.items() if v}
    assert changed == {"htype", "ptype", "hlen", "plen", "op"}


def test_lldp_framing_errors_are_what_their_kind_says() -> None:
    assert _walk(lldp_frame(1, 2, MAC))[1] is None  # the oracle reads a good frame
    assert {_walk(f)[1] for f in _of("lldp-tlv-overrun")} == {"overrun"}
    assert {_walk(f)[1] for f in _of("lldp-no-end")} == {"no-end"}
    cuts = _of("lldp-truncated")
    assert sorted(len(f) for f in cuts) == list(range(14, 14 + len(cuts)))
    assert all(_walk(f)[1] is not None for f in cuts)
    for f in _of("lldp-wrong-tlvs"):
        tlvs, problem = _walk(f)
        assert problem is None and [k for k, _v in tlvs[:3]] != [1, 2, 3]


def test_kendali_looking_lldp_has_unreadable_ids_or_a_proof_of_the_wrong_length() -> None:
    tlvs, _ = _walk(lldp_frame(0x1F, 7, MAC))
    assert _kendali_ids_readable(tlvs[0][1], tlvs[1][1])  # the oracle reads Kendali's own ids
    for f in _of("lldp-garbage-ids"):
        tlvs, problem = _walk(f)
        assert problem is None and [k for k, _v in tlvs[:3]] == [1, 2, 3]
        assert tlvs[0][1].startswith(b"\x07kendali:") and not _kendali_ids_readable(tlvs[0][1], tlvs[1][1])
    for f in _of("lldp-proof-length"):
        tlvs, problem = _walk(f)
        (proof,) = [v for k, v in tlvs if k == 127 and v[:4] == frames.KENDALI_OUI + bytes([frames.PROOF_SUBTYPE])]
        assert problem is None and _kendali_ids_readable(tlvs[0][1], tlvs[1][1]) and len(proof) != 4 + frames.PROOF_LEN


@pytest.mark.parametrize(
    "kind,tags",
    [
        ("vlan-8021q", [(Dot1Q, 10)]),
        ("vlan-8021q-prio", [(Dot1Q, 0)]),
        ("vlan-8021ad", [(Dot1AD, 10)]),
        ("vlan-qinq", [(Dot1AD, 10), (Dot1Q, 20)]),
    ],
)
def test_tagged_frames_carry_lldp_or_a_canary_arp_under_their_tags(kind: str, tags: list) -> None:
    for inner, f in (("lldp", _of(f"{kind}-lldp")[0]), ("arp", _of(f"{kind}-arp")[0])):
        layer = Ether(f).payload
        for cls, vid in tags:
            assert isinstance(layer, cls) and layer.vlan == vid, Ether(f).summary()
            layer = layer.payload
        if inner == "arp":
            assert isinstance(layer, ARP) and (layer.hwsrc, layer.psrc) == (attack.CANARY_MAC, attack.CANARY_IP)
        else:
            assert f[14 + 4 * len(tags) - 2 : 14 + 4 * len(tags)] == b"\x88\xcc"


def _ipv4_header_sound(body: bytes) -> bool:
    if len(body) < 20 or body[0] >> 4 != 4:
        return False
    ihl, total = (body[0] & 0xF) * 4, struct.unpack_from("!H", body, 2)[0]
    return 20 <= ihl <= len(body) and ihl <= total <= len(body)


def test_ipv4_frames_go_to_the_gateway_with_a_header_that_is_short_or_wrong() -> None:
    odd = _of("ipv4")
    assert len(odd) >= 8
    for f in odd:
        assert Ether(f).dst == GATEWAY_MAC and f[12:14] == b"\x08\x00"
        assert not _ipv4_header_sound(f[14:]), f.hex()
    assert any(len(f) - 14 < 20 for f in odd) and any(f[14] >> 4 != 4 for f in odd if len(f) > 14)


def test_random_frames_and_jumbo_frames_have_their_ethertype_and_size() -> None:
    for ethertype in (0x88CC, 0x0806, 0x0800, 0x8100, 0x88A8):
        got = _of(f"random-{ethertype:04x}")
        assert len(got) == 8 and {f[12:14] for f in got} == {struct.pack("!H", ethertype)}
        assert len({f for f in got}) == 8
    for label in ("jumbo", "oversized"):
        got = {k: f for k, f in JUMBO if k.startswith(label)}
        assert set(got) == {f"{label}-{k}" for k in ("lldp", "arp", "ipv4", "vlan-lldp")}
        for f in got.values():
            assert len(f) >= 9000 and (len(f) <= frames.MAX_FRAME) == (label == "jumbo")
    assert _ipv4_header_sound(_of("jumbo-ipv4", JUMBO)[0][14:])  # a real jumbo packet, as big as its header says


def test_select_kinds_by_prefix() -> None:
    assert attack.select_kinds(MALFORMED, "") == MALFORMED
    picked = attack.select_kinds(MALFORMED, "arp, vlan-qinq")
    assert picked and {k.split("-")[0] for k, _f in picked} == {"arp", "vlan"}
    assert all(k.startswith(("arp", "vlan-qinq")) for k, _f in picked)


# What the controller's parser (controller.core.frames) and LLDP check must make of each
# kind: every one dropped.


def _refused(f: bytes) -> bool:
    try:
        p = frames.parse(f).payload
    except frames.FrameError:
        return True
    if isinstance(p, frames.Lldp):
        return LldpSigner(b"k" * 32).verify(p, 0.0) is not None
    return False


@pytest.mark.parametrize("kind", sorted({k for k, _f in MALFORMED + JUMBO} - {"jumbo-ipv4"}))
def test_the_controller_drops_every_malformed_frame_of_each_kind(kind: str) -> None:
    kept = [f.hex() for k, f in MALFORMED + JUMBO if k == kind and not _refused(f)]
    assert not kept, f"{kind}: {len(kept)} taken as well-formed, e.g. {kept[0][:200]}"
