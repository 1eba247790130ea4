"""controller.core.topology: the shipped files load; every bad file names file, field and problem."""

from __future__ import annotations

import copy

import networkx as nx
import pytest
import yaml

from controller.core import topology
from controller.errors import KendaliError
from tests.builders import TOPOS, load

GOOD = {
    "name": "t",
    "switches": [{"name": "s1", "dpid": 1}, {"name": "s2", "dpid": 2}, {"name": "s3", "dpid": 3}],
    "links": [{"a": "s1", "b": "s2"}, {"a": "s2", "b": "s3", "a_port": 7}],
    "subnets": [
        {
            "id": "a",
            "cidr": "10.0.1.0/24",
            "gateway": "10.0.1.1",
            "switch": "s1",
            "hosts": [{"name": "h1", "ip": "10.0.1.10"}, {"name": "h2", "ip": "10.0.1.11", "port": 1}],
        },
        {
            "id": "b",
            "cidr": "10.0.2.0/24",
            "gateway": "10.0.2.1",
            "switch": "s3",
            "hosts": [{"name": "h3", "ip": "10.0.2.10"}],
        },
    ],
    "uplink": {"subnet": "b", "capacity_mbps": 100},
}


def write(tmp_path, doc, name="topo.yaml"):
    p = tmp_path / name
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc), encoding="utf-8")
    return p


def bad(tmp_path, doc) -> KendaliError:
    p = write(tmp_path, doc)
    with pytest.raises(KendaliError) as ei:
        topology.load(p)
    assert str(p) in str(ei.value), str(ei.value)
    assert "\n" not in str(ei.value)
    return ei.value


def mutated(fn):
    d = copy.deepcopy(GOOD)
    fn(d)
    return d


# ---- the shipped files -----------------------------------------------------------------------


def test_ppu_loads_with_the_expected_shape():
    t = load("ppu")
    roles = {}
    for s in t.switches.values():
        roles.setdefault(s.role, []).append(s.name)
    assert len(roles["edge"]) >= 15
    assert len(roles["core"]) == 1
    dist = roles["distribution"]
    assert len(dist) == 4
    core = roles["core"][0]
    g = nx.Graph()
    g.add_edges_from((l.a, l.b) for l in t.links)
    # The four kecamatan nodes form a ring (closed through the core).
    ring = g.subgraph(dist + [core])
    assert nx.is_connected(ring)
    assert any(set(dist) <= set(c) for c in nx.cycle_basis(ring))
    assert nx.is_connected(g)
    assert t.uplink is not None and t.uplink.subnet in t.subnets
    assert t.uplink.switch == t.subnets[t.uplink.subnet].switch
    for s in t.subnets.values():
        assert s.switch in t.switches
        net = s.network
        import ipaddress

        assert ipaddress.IPv4Address(s.gateway) in net
        for h in s.hosts:
            assert ipaddress.IPv4Address(h.ip) in net and h.ip != s.gateway
    # Every OPD edge switch has a subnet.
    assert set(roles["edge"]) <= {s.switch for s in t.subnets.values()}


def test_ring4_loads():
    t = load("ring4")
    assert sorted(s.dpid for s in t.switches.values()) == [1, 2, 3, 4]
    g = nx.Graph([(l.a, l.b) for l in t.links])
    assert len(nx.cycle_basis(g)) == 1 and len(nx.cycle_basis(g)[0]) == 4
    assert len(t.hosts) == 4 and t.uplink is None


@pytest.mark.parametrize("name", ["ppu", "ring4"])
def test_no_port_is_used_twice_and_loading_is_deterministic(name):
    t1, t2 = load(name), load(name)
    assert t1 == t2
    seen = set()
    for l in t1.links:
        for sw, p in ((l.a, l.a_port), (l.b, l.b_port)):
            assert (sw, p) not in seen
            seen.add((sw, p))
    for h in t1.hosts:
        assert (h.switch, h.port) not in seen
        seen.add((h.switch, h.port))
    assert len({h.mac for h in t1.hosts}) == len(t1.hosts)


def test_port_assignment_honours_explicit_ports_and_fills_the_rest(tmp_path):
    t = topology.load(write(tmp_path, GOOD))
    l12, l23 = t.links
    # s1: port 1 is claimed by host h2 explicitly, so the link gets 2, and h1 the next free (3).
    assert (l12.a, l12.a_port, l12.b, l12.b_port) == ("s1", 2, "s2", 1)
    assert (l23.a, l23.a_port, l23.b, l23.b_port) == ("s2", 7, "s3", 1)
    hosts = {h.name: h for h in t.hosts}
    assert (hosts["h2"].switch, hosts["h2"].port) == ("s1", 1)
    assert (hosts["h1"].switch, hosts["h1"].port) == ("s1", 3)
    assert (hosts["h3"].switch, hosts["h3"].port) == ("s3", 2)
    assert hosts["h1"].mac == topology.host_mac("10.0.1.10") == "02:4b:0a:00:01:0a"
    assert hosts["h1"].subnet == "a"
    assert t.uplink == topology.Uplink("s3", "b", 100)
    assert t.name == "t" and t.source == str(tmp_path / "topo.yaml")
    assert t.subnet_of("10.0.2.99").id == "b" and t.subnet_of("10.9.9.9") is None
    assert t.switch_by_dpid(2).name == "s2" and t.switch_by_dpid(9) is None


def test_explicit_mac_is_lowercased(tmp_path):
    d = mutated(lambda d: d["subnets"][0]["hosts"][0].update(mac="AA:BB:CC:DD:EE:0F"))
    assert topology.load(write(tmp_path, d)).subnets["a"].hosts[0].mac == "aa:bb:cc:dd:ee:0f"


# ---- bad files ---------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    p = tmp_path / "nope.yaml"
    with pytest.raises(KendaliError) as ei:
        topology.load(p)
    assert str(p) in str(ei.value) and "no such file" in str(ei.value)


def test_bad_yaml_names_the_line(tmp_path):
    text = "name: t\nswitches:\n  - {name: s1, dpid: 1}\n  - {name: s2, dpid: [\n"
    e = bad(tmp_path, text)
    assert "YAML" in e.problem
    assert e.field.startswith("line ") and int(e.field.split()[1]) >= 4


def test_bad_yaml_tab_indent_line(tmp_path):
    e = bad(tmp_path, "name: t\nswitches:\n\t- {name: s1, dpid: 1}\n")
    assert e.field == "line 3"


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_file(tmp_path, text):
    e = bad(tmp_path, text)
    assert "empty" in e.problem


def test_not_a_mapping(tmp_path):
    e = bad(tmp_path, "- a\n- b\n")
    assert e.field == "(top level)"


CASES = [
    # (mutation, field path, words in the problem)
    # schema errors: the field itself is named, and the fix
    (lambda d: d.update(colour="red"), "colour", "unknown field; allowed fields: name, description, switches"),
    (lambda d: d["switches"][1].update(speed=1), "switches.1.speed", "use capacity_mbps (Mbit/s) on the link"),
    (lambda d: d["links"][0].update(capcity_mbps=1), "links.0.capcity_mbps", "did you mean capacity_mbps?"),
    (lambda d: d["subnets"][0]["hosts"][1].update(gw="x"), "subnets.0.hosts.1.gw", "use gateway, on the subnet"),
    (lambda d: d["uplink"].update(switch="s1"), "uplink.switch", "allowed fields: subnet, capacity_mbps"),
    (lambda d: d.pop("switches"), "switches", "is required"),
    (lambda d: d["switches"][0].update(dpid=0), "switches.0.dpid", "must be at least 1 (got 0)"),
    (lambda d: d["switches"][0].update(name="bad name!"), "switches.0.name", "'bad name!' is not a valid name: use"),
    (lambda d: d["links"][0].update(a_port=0), "links.0.a_port", "must be at least 1 (got 0)"),
    (lambda d: d["links"][0].update(capacity_mbps=0), "links.0.capacity_mbps", "must be more than 0 Mbit/s (got 0)"),
    (
        lambda d: d["subnets"][0]["hosts"][0].update(mac="zz:00:00:00:00:00"),
        "subnets.0.hosts.0.mac",
        "is not a valid mac: write six hex pairs",
    ),
    (lambda d: d["switches"].append({"name": "s1", "dpid": 9}), "switches.3.name", "duplicate switch name 's1'"),
    (
        lambda d: d["switches"].append({"name": "s9", "dpid": 2}),
        "switches.3.dpid",
        "dpid 2 already used by switch 's2'",
    ),
    (lambda d: d["links"].append({"a": "s1", "b": "ghost"}), "links.2.b", "unknown switch 'ghost'"),
    (lambda d: d["links"].append({"a": "ghost", "b": "s1"}), "links.2.a", "unknown switch 'ghost'"),
    (lambda d: d["links"].append({"a": "s2", "b": "s2"}), "links.2", "itself"),
    (
        lambda d: d["links"].append({"a": "s1", "b": "s2", "b_port": 7}),
        "links.2.b_port",
        "port 7 of switch 's2' is already used by link s2-s3",
    ),
    (lambda d: d["links"][0].update(b_port=7), "links.1.a_port", "port 7 of switch 's2' is already used by link s1-s2"),
    (lambda d: d["subnets"][0]["hosts"][0].update(port=1), "subnets.0.hosts.1.port", "already used by host h1"),
    (
        lambda d: d["subnets"][1]["hosts"][0].update(port=7, switch="s2"),
        "subnets.1.hosts.0.port",
        "already used by link s2-s3",
    ),
    (lambda d: d["subnets"][0].update(cidr="10.0.1.0/33"), "subnets.0.cidr", "not an IPv4 network"),
    (lambda d: d["subnets"][0].update(cidr="banana"), "subnets.0.cidr", "not an IPv4 network"),
    (lambda d: d["subnets"][0].update(cidr="10.0.1.5/24"), "subnets.0.cidr", "host bits"),
    (lambda d: d["subnets"][1].update(cidr="10.0.0.0/16", gateway="10.0.0.1"), "subnets.1.cidr", "overlaps subnet 'a'"),
    (lambda d: d["subnets"][1].update(id="a"), "subnets.1.id", "duplicate subnet id 'a'"),
    (lambda d: d["subnets"][1].update(switch="ghost"), "subnets.1.switch", "unknown switch 'ghost'"),
    (lambda d: d["subnets"][0].update(gateway="10.0.2.1"), "subnets.0.gateway", "not a host address of 10.0.1.0/24"),
    (lambda d: d["subnets"][0].update(gateway="10.0.1.255"), "subnets.0.gateway", "not a host address"),
    (lambda d: d["subnets"][0].update(gateway="10.0.1"), "subnets.0.gateway", "not an IPv4 address"),
    (
        lambda d: d["subnets"][0]["hosts"][0].update(ip="10.0.2.10"),
        "subnets.0.hosts.0.ip",
        "not a free host address of 10.0.1.0/24",
    ),
    (lambda d: d["subnets"][0]["hosts"][0].update(ip="10.0.1.1"), "subnets.0.hosts.0.ip", "not a free host address"),
    (lambda d: d["subnets"][0]["hosts"][0].update(ip="10.0.1.0"), "subnets.0.hosts.0.ip", "not a free host address"),
    (lambda d: d["subnets"][0]["hosts"][0].update(ip="ten"), "subnets.0.hosts.0.ip", "not an IPv4 address"),
    (lambda d: d["subnets"][0]["hosts"][1].update(ip="10.0.1.10"), "subnets.0.hosts.1.ip", "10.0.1.10 is used twice"),
    (lambda d: d["subnets"][0]["hosts"][1].update(name="h1"), "subnets.0.hosts.1.name", "duplicate node name 'h1'"),
    (lambda d: d["subnets"][0]["hosts"][1].update(name="s2"), "subnets.0.hosts.1.name", "duplicate node name 's2'"),
    (
        lambda d: d["subnets"][0]["hosts"][0].update(switch="ghost"),
        "subnets.0.hosts.0.switch",
        "unknown switch 'ghost'",
    ),
    (lambda d: d["uplink"].update(subnet="nowhere"), "uplink.subnet", "unknown subnet 'nowhere'"),
    (lambda d: d["subnets"][1].update(hosts=[]), "uplink.subnet", "needs a host"),
]


@pytest.mark.parametrize("mutate,field,problem", CASES, ids=[c[1] + ":" + c[2] for c in CASES])
def test_bad_file_names_file_field_and_problem(tmp_path, mutate, field, problem):
    e = bad(tmp_path, mutated(mutate))
    assert e.field == field, str(e)
    assert problem in e.problem, str(e)
    assert str(e) == f"{tmp_path / 'topo.yaml'}: {field}: {e.problem}"


def test_parse_without_file_uses_given_source():
    with pytest.raises(KendaliError) as ei:
        topology.parse({"switches": []}, "api")
    assert str(ei.value).startswith("api: switches: ")
    t = topology.parse({"switches": [{"name": "x", "dpid": 5}]}, "dir/foo.yaml")
    assert t.name == "foo" and t.switches["x"].role == "edge" and t.links == [] and t.uplink is None


def test_shipped_files_are_in_place():
    assert topology.DEFAULT_TOPOLOGY == TOPOS / "ppu.yaml"


def test_unknown_subnet_switch_is_reported_at_the_subnet_even_with_host_ports(tmp_path):
    d = mutated(lambda d: (d["subnets"][1].update(switch="ghost"), d["subnets"][1]["hosts"][0].update(port=4)))
    e = bad(tmp_path, d)
    assert e.field == "subnets.1.switch", str(e)
