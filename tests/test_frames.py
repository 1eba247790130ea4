"""controller.core.frames and .lldp: frames built by hand agree with os-ken's parser, odd
frames end in FrameError (never another exception), and signed LLDP is accepted once."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from os_ken.lib.packet import arp, ethernet, lldp, packet

from controller.core import frames
from controller.core.arp import REPLY, REQUEST, Arp
from controller.core.compiler import GATEWAY_MAC
from controller.core.lldp import LldpSigner

SECRET = b"k" * 32
SRC = "02:00:00:00:00:01"


def test_lldp_frame_reads_the_same_in_os_ken_and_in_ours():
    data = LldpSigner(SECRET).frame(0x1234, 7, SRC, 100.0)
    pkt = packet.Packet(data)
    eth, lp = pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(lldp.lldp)
    assert (eth.src, eth.dst, eth.ethertype) == (SRC, frames.LLDP_MAC, frames.ETH_LLDP)
    assert bytes(lp.tlvs[0].chassis_id) == b"kendali:%016x" % 0x1234 and bytes(lp.tlvs[1].port_id) == b"7"
    ours = frames.parse(data).payload
    assert isinstance(ours, frames.Lldp) and (ours.dpid, ours.port, ours.sent_ms) == (0x1234, 7, 100000)


def test_someone_elses_lldp_is_not_ours_and_arp_is_not_lldp():
    other = frames.lldp_frame(1, 1, SRC).replace(b"kendali:", b"someone:")
    assert frames.parse(other).payload is None
    a = frames.parse(frames.arp_frame(Arp(REPLY, GATEWAY_MAC, "10.0.0.1", "02:00:00:00:00:02", "10.0.0.2")))
    assert a.payload == Arp(REPLY, GATEWAY_MAC, "10.0.0.1", "02:00:00:00:00:02", "10.0.0.2")


def test_arp_reply_frame_is_addressed_to_the_asker_and_a_request_is_broadcast():
    pkt = packet.Packet(frames.arp_frame(Arp(REPLY, GATEWAY_MAC, "10.10.7.1", "02:4b:0a:0a:07:0a", "10.10.7.10")))
    eth, a = pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(arp.arp)
    assert (eth.src, eth.dst) == (GATEWAY_MAC, "02:4b:0a:0a:07:0a")
    assert (a.opcode, a.src_ip, a.dst_ip) == (REPLY, "10.10.7.1", "10.10.7.10")
    req = frames.parse(frames.arp_frame(Arp(REQUEST, SRC, "10.0.0.9", "00:00:00:00:00:00", "10.0.0.1")))
    assert req.eth_dst == frames.BROADCAST


def test_signed_lldp_is_accepted_once_fresh_and_only_from_its_own_port():
    s = LldpSigner(SECRET, max_age=2.0)
    first = frames.parse(s.frame(1, 3, SRC, 10.0)).payload
    assert s.verify(first, 10.01) is None
    assert "replayed" in s.verify(first, 10.02)  # a copy of a frame already seen
    stale = frames.parse(s.frame(1, 4, SRC, 10.0)).payload
    assert "stale" in s.verify(stale, 12.5)
    forged = frames.Lldp(2, 3, first.seq, first.sent_ms, first.mac)  # the proof of 1:3 claiming 2:3
    assert "forged" in s.verify(forged, 10.05)
    assert s.verify(frames.parse(frames.lldp_frame(1, 3, SRC)).payload, 10.0) == "no Kendali proof"
    other_key = frames.parse(LldpSigner(b"x" * 32).frame(1, 3, SRC, 10.0)).payload
    assert "forged" in s.verify(other_key, 10.05)
    s.expire(20.0)
    assert s.outstanding == 0


@pytest.mark.parametrize(
    "name,data",
    [
        ("lldp", LldpSigner(SECRET).frame(5, 2, SRC, 1.0)),
        ("arp", frames.arp_frame(Arp(REQUEST, SRC, "10.0.0.9", "00:00:00:00:00:00", "10.0.0.1"))),
        (
            "ipv4",
            bytes.fromhex("024b4e440001020000000001")
            + b"\x08\x00"
            + bytes.fromhex("45000014000000004011000a0a0000090a000001"),
        ),
    ],
)
def test_every_truncation_of_a_good_frame_is_refused_cleanly(name, data):
    frames.parse(data)  # the whole frame is fine
    for n in range(len(data)):
        try:
            frames.parse(data[:n])
        except frames.FrameError:
            pass


def test_vlan_tagged_oversized_and_odd_frames_are_refused_with_a_reason():
    lldp_data = LldpSigner(SECRET).frame(5, 2, SRC, 1.0)
    tagged = lldp_data[:12] + struct.pack("!HH", 0x8100, 5) + lldp_data[12:]
    with pytest.raises(frames.FrameError, match="VLAN"):
        frames.parse(tagged)
    with pytest.raises(frames.FrameError, match="longer"):
        frames.parse(b"\x00" * (frames.MAX_FRAME + 1))
    bad_op = bytearray(frames.arp_frame(Arp(REQUEST, SRC, "10.0.0.9", "00:00:00:00:00:00", "10.0.0.1")))
    bad_op[21] = 9
    with pytest.raises(frames.FrameError, match="operation"):
        frames.parse(bytes(bad_op))
    with pytest.raises(frames.FrameError, match="TLV"):
        frames.parse(lldp_data[:14] + b"\xff\xff" + lldp_data[16:])


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([0x88CC, 0x0806, 0x0800, 0x8100, 0x1234]))
def test_random_bytes_never_raise_anything_but_frame_error(body, ethertype):
    data = b"\x01\x80\xc2\x00\x00\x0e" + b"\x02\x00\x00\x00\x00\x01" + struct.pack("!H", ethertype) + body
    try:
        frames.parse(data)
    except frames.FrameError:
        pass


@pytest.mark.parametrize(
    "header",
    [
        "4f00001400010000401162440a14030a0a140163",  # header length says 60 bytes, 20 present
        "45000000000100004011 62440a14030a0a140163",  # total length 0
        "4500000a000100004011 62440a14030a0a140163",  # total length 10, shorter than the header
        "4500ffff000100004011 62440a14030a0a140163",  # total length 65535, far past the frame
    ],
)
def test_ipv4_headers_that_lie_about_their_length_are_refused(header):
    data = bytes.fromhex("024b4e440001020000000001" + "0800" + header.replace(" ", ""))
    with pytest.raises(frames.FrameError, match="IPv4"):
        frames.parse(data)
