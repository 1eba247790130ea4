"""Where an OPD's caps are enforced, proven on the table model (which meters a frame passes,
and at what rate: the meters are those the switches were sent, parsed back from the wire)."""

from controller.core import topology
from controller.core.compiler import AGGREGATE_METER, Compiler, meter_burst, meter_rate
from controller.lab.tablemodel import Fabric, ModelMeter, links_of
from tests.builders import NOW, Pol, from_topology, routed, unicast

DOC = {
    "switches": [{"name": "core", "dpid": 1}, {"name": "a", "dpid": 2}, {"name": "b", "dpid": 3}],
    "links": [{"a": "core", "b": "a"}, {"a": "core", "b": "b"}, {"a": "a", "b": "b"}],
    "subnets": [
        {
            "id": "isp",
            "cidr": "10.255.255.0/29",
            "gateway": "10.255.255.1",
            "switch": "core",
            "hosts": [{"name": "isp", "ip": "10.255.255.2"}],
        },
        # One OPD behind two switches: its main office on a, a branch on b.
        {
            "id": "dinkes",
            "cidr": "10.10.7.0/24",
            "gateway": "10.10.7.1",
            "switch": "a",
            "hosts": [{"name": "dk1", "ip": "10.10.7.10"}, {"name": "dk2", "ip": "10.10.7.11", "switch": "b"}],
        },
        {
            "id": "bappeda",
            "cidr": "10.10.4.0/24",
            "gateway": "10.10.4.1",
            "switch": "b",
            "hosts": [{"name": "bp1", "ip": "10.10.4.10"}],
        },
    ],
    "uplink": {"subnet": "isp"},
}


def _setup(policies):
    built = from_topology(topology.parse(DOC, "t.yaml"))
    comp = Compiler()
    state = comp.compile(built.net, policies, now=NOW)
    hosts = {h.name: h for h in built.hosts}
    return built, comp, state, Fabric(state, links_of(built.net)), hosts


def _meters(res):
    return sorted(res.meters)


def _rates(fab, res) -> set[ModelMeter]:
    """The meters a frame passed, as the switches hold them."""
    return {fab.switches[d].meters[m] for d, m in res.meters}


def _cap(kbps: int) -> ModelMeter:
    rate = meter_rate(kbps)
    return ModelMeter(pps=False, rate=rate, burst=meter_burst(rate, None))


def test_multi_switch_opd_internet_traffic_is_capped_in_aggregate_at_the_uplink():
    built, comp, state, fab, h = _setup({"dinkes": Pol("dinkes", ("10.10.7.0/24",), 20000, 10000)})
    ids = comp.meter_ids("dinkes")
    for member in ("dk1", "dk2"):
        down = fab.inject(h["isp"].dpid, h["isp"].port, routed(h["isp"], h[member]))
        assert down.delivered_to() == [(h[member].dpid, h[member].port)]
        # the uplink aggregate at core, then the member's own switch meter
        assert _meters(down) == sorted([(1, AGGREGATE_METER | ids.download_id), (h[member].dpid, ids.download_id)])
        assert _rates(fab, down) == {_cap(20000)}
        up = fab.inject(h[member].dpid, h[member].port, routed(h[member], h["isp"]))
        assert up.delivered_to() == [(h["isp"].dpid, h["isp"].port)]
        assert _meters(up) == sorted([(h[member].dpid, ids.upload_id), (1, AGGREGATE_METER | ids.upload_id)])
        assert _rates(fab, up) == {_cap(10000)}


def test_traffic_inside_the_opd_is_not_metered_and_other_opds_use_their_own_meters():
    pols = {
        "dinkes": Pol("dinkes", ("10.10.7.0/24",), 20000, 10000),
        "bappeda": Pol("bappeda", ("10.10.4.0/24",), 5000, 5000),
    }
    built, comp, state, fab, h = _setup(pols)
    inside = fab.inject(h["dk1"].dpid, h["dk1"].port, unicast(h["dk1"], h["dk2"]))
    assert inside.delivered_to() == [(h["dk2"].dpid, h["dk2"].port)]
    assert _meters(inside) == []
    cross = fab.inject(h["bp1"].dpid, h["bp1"].port, routed(h["bp1"], h["dk1"]))
    assert cross.delivered_to() == [(h["dk1"].dpid, h["dk1"].port)]
    bp, dk = comp.meter_ids("bappeda"), comp.meter_ids("dinkes")
    assert _meters(cross) == sorted([(3, bp.upload_id), (2, dk.download_id)])
    assert _rates(fab, cross) == {_cap(5000), _cap(20000)}


def test_single_switch_opd_has_no_uplink_aggregate():
    built, comp, state, fab, h = _setup({"bappeda": Pol("bappeda", ("10.10.4.0/24",), 5000, 5000)})
    assert not [m for m in state[1].meters if m & AGGREGATE_METER]
    down = fab.inject(h["isp"].dpid, h["isp"].port, routed(h["isp"], h["bp1"]))
    assert _meters(down) == [(3, comp.meter_ids("bappeda").download_id)]
