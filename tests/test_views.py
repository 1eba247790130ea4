"""The JSON views, without switches."""

from controller.core import topology, views
from controller.core.graph import Network
from tests.builders import NOW, from_topology


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
