"""The JSON views and the frames the shell builds (LLDP, ARP), without switches."""

from os_ken.lib.packet import arp, ethernet, packet

from controller.core import topology
from controller.core import views
from controller.openflow.app import arp_frame, lldp_frame, parse_lldp
from controller.core.arp import REPLY, Arp
from controller.core.compiler import GATEWAY_MAC
from controller.core.graph import Network
from tests.builders import NOW, from_topology


def test_lldp_frame_round_trip_and_foreign_lldp_ignored():
    pkt = packet.Packet(lldp_frame(0x1234, 7, "02:00:00:00:00:01"))
    assert parse_lldp(pkt) == (0x1234, 7)
    other = packet.Packet(lldp_frame(1, 1, "02:00:00:00:00:01").replace(b"kendali:", b"someone:"))
    assert parse_lldp(other) is None
    assert parse_lldp(packet.Packet(arp_frame(Arp(REPLY, GATEWAY_MAC, "10.0.0.1", "02:00:00:00:00:02",
                                                  "10.0.0.2")))) is None


def test_arp_reply_frame_is_addressed_to_the_asker():
    pkt = packet.Packet(arp_frame(Arp(REPLY, GATEWAY_MAC, "10.10.7.1", "02:4b:0a:0a:07:0a", "10.10.7.10")))
    eth, a = pkt.get_protocol(ethernet.ethernet), pkt.get_protocol(arp.arp)
    assert (eth.src, eth.dst) == (GATEWAY_MAC, "02:4b:0a:0a:07:0a")
    assert (a.opcode, a.src_ip, a.dst_ip) == (REPLY, "10.10.7.1", "10.10.7.10")


def test_topology_view_lists_declared_links_down_when_not_discovered():
    t = topology.load(topology.DEFAULT_TOPOLOGY)
    built = from_topology(t)
    view = views.topology(built.net)
    assert len(view["switches"]) == len(t.switches) and all(s["connected"] for s in view["switches"])
    assert len(view["links"]) == len(t.links) and {l["state"] for l in view["links"]} == {"up"}
    assert len(view["hosts"]) == len(t.hosts)
    assert view["discrepancies"] == []
    key = next(iter(built.net.links))
    built.net.port_status(key[0], key[1], False, NOW + 1)
    view = views.topology(built.net)
    down = [l for l in view["links"] if l["state"] == "down"]
    assert len(down) == 1 and down[0]["a"]["dpid"] == key[0] and down[0]["declared"]
    health = views.health(built.net, policies=3, uptime_s=10.0, last_compile_ms=1.234)
    assert health["status"] == "degraded" and health["discrepancies"] == 1 and health["policies"] == 3


def test_health_of_pure_discovery_is_ok():
    net = Network()
    net.switch_up(1, {1: True}, 0.0)
    h = views.health(net, policies=0, uptime_s=1.0, last_compile_ms=0.0)
    assert h["status"] == "ok" and h["switches_declared"] is None
