"""The declared topology: a YAML file an architect writes, validated into plain dataclasses.

The same file drives the controller (capacities, names, subnets, gateways, the uplink)
and the Mininet lab (switches, links, hosts). Port numbers not given in the file are
assigned here, deterministically, so the lab and the controller always agree.

File format (see topologies/ppu.yaml for a full example)::

    name: ppu
    switches:
      - {name: core, dpid: 1, role: core, site: "Diskominfo NOC, Penajam"}
    links:
      - {a: core, b: dist-waru, capacity_mbps: 1000}          # ports optional
      - {a: core, a_port: 5, b: dist-sepaku, b_port: 1}
    subnets:
      - id: dinkes
        name: Dinas Kesehatan
        cidr: 10.10.3.0/24
        gateway: 10.10.3.1
        switch: edge-dinkes
        hosts:
          - {name: dinkes1, ip: 10.10.3.10}                    # mac, port optional
    uplink:                 # optional: the ISP hand-off
      subnet: isp           # a subnet whose first host is the ISP router (default route)
      capacity_mbps: 1000
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, NoReturn

import jsonschema

from controller.core import schema
from controller.core.schema import Spec
from controller.errors import KendaliError, read_yaml

# Every field written in the file carries a Spec: the dataclasses below are the one
# definition of the file (JSON Schema, docs/topology.md, error messages). Fields without
# one (assigned ports, the uplink's switch, the host's subnet) are filled in by ``parse``.

NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
MAX_PORT = 65279  # 0xfeff: the highest physical port number OpenFlow 1.0 allows (OFPP_MAX is 0xff00)
MAX_DPID = 2**48 - 1  # the low 48 bits of a datapath id (a MAC); the high 16 stay 0 here
MAX_MBPS = 1_000_000  # 1 Tbit/s: above any link in the regency; larger is a typo (kbit/s?)

_NAME_FIX = "use 1-32 letters, digits, '.', '-' or '_', starting with a letter or digit (e.g. sw-dinkes)"
_MBPS_ADVICE = {"maximum": "capacities are in Mbit/s (10 Gbit/s = 10000)"}


def _name(doc: str, **rules: Any) -> Spec:
    """A name another field refers to (a switch, a subnet, a host): same rule everywhere."""
    return Spec(doc, pattern=NAME_PATTERN, advice={"pattern": _NAME_FIX}, **rules)


def _port(doc: str) -> Spec:
    return Spec(doc, required=False, minimum=1, maximum=MAX_PORT)


def _mbps(doc: str) -> Spec:
    return Spec(doc, unit="Mbit/s", above=0, maximum=MAX_MBPS, advice=_MBPS_ADVICE)


@dataclass(frozen=True)
class Switch:
    name: Annotated[str, _name("Name of the switch; links, subnets and hosts refer to it.")]
    dpid: Annotated[
        int,
        Spec(
            "OpenFlow datapath id the switch connects with (Open vSwitch: other-config:datapath-id, in hex there).",
            minimum=1,
            maximum=MAX_DPID,
            advice={"minimum": "0 is not a valid datapath id"},
        ),
    ]
    role: Annotated[
        str,
        Spec(
            "What the switch is for; shown in GET /v1/topology.",
            choices=("core", "distribution", "edge", "datacenter"),
        ),
    ] = "edge"
    site: Annotated[str, Spec("Where the switch is: building, office; free text.")] = ""


@dataclass(frozen=True)
class Link:
    a: Annotated[str, _name("One end: a switch name.")]
    a_port: Annotated[
        int,
        _port(
            "Port on switch a. When absent: the lowest port of switch a still free after the ports the file "
            "gives, assigned in file order (links first, then hosts).",
        ),
    ]
    b: Annotated[str, _name("The other end: a switch name.")]
    b_port: Annotated[int, _port("Port on switch b; assigned like a_port when absent.")]
    capacity_mbps: Annotated[
        float | None,
        _mbps(
            "Link speed in Mbit/s; it sets the path cost (100000 / capacity). Absent: 1000.",
        ),
    ] = None
    note: Annotated[str, Spec("Free text: medium, circuit id, why it is there.")] = field(default="", compare=False)


@dataclass(frozen=True)
class Host:
    name: Annotated[str, _name("Name of the host (must not be a switch's name); in the lab, a Mininet host.")]
    ip: Annotated[str, Spec("IPv4 address: a free host address of the subnet (not its gateway).")]
    mac: Annotated[
        str,
        Spec(
            "MAC address. Absent: 02:4b followed by the IPv4 address in hex (locally administered).",
            required=False,
            pattern="^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$",
            advice={"pattern": "write six hex pairs separated by ':' (e.g. 02:4b:0a:0a:03:0a)"},
        ),
    ]
    switch: Annotated[str, _name("Switch the host is cabled to. Absent: the subnet's switch.", required=False)]
    port: Annotated[int, _port("Port on that switch; assigned like a link's port when absent.")]
    subnet: str  # subnet id


@dataclass(frozen=True)
class Subnet:
    id: Annotated[str, _name("Short name of the subnet (the OPD); an uplink and policies refer to it.")]
    name: Annotated[str, Spec("Human name of the OPD or site. Absent: the id.", required=False)]
    cidr: Annotated[str, Spec("IPv4 network in CIDR notation with the host bits zero; subnets may not overlap.")]
    gateway: Annotated[
        str,
        Spec(
            "IPv4 address the hosts use as default gateway (the controller answers ARP for it); a host address "
            "of cidr.",
        ),
    ]
    switch: Annotated[str, _name("Switch the subnet's hosts are on unless a host says otherwise.")]
    hosts: Annotated[tuple[Host, ...], Spec("Declared hosts; more are learned from their traffic.")] = ()

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)


@dataclass(frozen=True)
class Uplink:
    switch: str  # the switch of the uplink subnet
    subnet: Annotated[str, _name("The subnet of the ISP hand-off; its first host is the ISP router (default route).")]
    capacity_mbps: Annotated[
        float | None,
        _mbps(
            "What the ISP delivers, Mbit/s; policy files sum their caps against it.",
        ),
    ] = None


@dataclass
class Topology:
    """The intranet as the architect declares it: switches, links, subnets and the ISP uplink."""

    name: Annotated[str, Spec("Name of the topology. Absent: the file name without .yaml.")] = "discovered"
    description: Annotated[str, Spec("Free text.")] = ""
    switches: Annotated[dict[str, Switch], Spec("The switches (at least one).", required=True, min_items=1)] = field(
        default_factory=dict
    )
    links: Annotated[list[Link], Spec("Cables between two switches.")] = field(default_factory=list)
    subnets: Annotated[dict[str, Subnet], Spec("The IPv4 subnets, one per OPD or site, and their hosts.")] = field(
        default_factory=dict
    )
    uplink: Annotated[Uplink | None, Spec("The ISP hand-off, if the network has one.")] = None
    source: str = ""

    def switch_by_dpid(self, dpid: int) -> Switch | None:
        for sw in self.switches.values():
            if sw.dpid == dpid:
                return sw
        return None

    @property
    def hosts(self) -> list[Host]:
        return [h for s in self.subnets.values() for h in s.hosts]

    def subnet_of(self, ip: str) -> Subnet | None:
        addr = ipaddress.IPv4Address(ip)
        for s in self.subnets.values():
            if addr in s.network:
                return s
        return None


SCHEMA: dict[str, Any] = schema.json_schema(Topology, "Kendali topology", (Topology.__doc__ or "").strip())
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
_TOP = "(top level)"
# Fields people try; say what to use instead.
_FIELD_HINTS = {
    "capacity": "use capacity_mbps (Mbit/s)",
    "bandwidth": "use capacity_mbps (Mbit/s)",
    "speed": "use capacity_mbps (Mbit/s) on the link",
    "mac_address": "use mac",
    "gw": "use gateway, on the subnet",
}


def fields_markdown() -> str:
    """The field table of docs/topology.md, generated from Topology (a test keeps them equal)."""
    return schema.markdown_table(Topology)


def host_mac(ip: str) -> str:
    """A stable, locally administered MAC for a declared host that names none."""
    octets = ipaddress.IPv4Address(ip).packed
    return "02:4b:" + ":".join(f"{b:02x}" for b in octets)


def _fail(problem: str, where: str, fld: str = "") -> NoReturn:
    raise KendaliError(problem, where, fld)


def parse(data: Any, where: str = "<topology>") -> Topology:
    """Validate a parsed YAML/JSON document and build the Topology. Raises KendaliError."""
    if data is None:
        _fail("the file is empty", where)
    error = schema.first_error(_VALIDATOR, data, Topology, _TOP, _FIELD_HINTS)
    if error:
        fld, problem = error
        _fail(problem, where, fld)

    topo = Topology(name=data.get("name", Path(where).stem), description=data.get("description", ""), source=where)
    dpids: dict[int, str] = {}
    for i, s in enumerate(data["switches"]):
        if s["name"] in topo.switches:
            _fail(f"duplicate switch name {s['name']!r}", where, f"switches.{i}.name")
        if s["dpid"] in dpids:
            _fail(f"dpid {s['dpid']} already used by switch {dpids[s['dpid']]!r}", where, f"switches.{i}.dpid")
        dpids[s["dpid"]] = s["name"]
        topo.switches[s["name"]] = Switch(s["name"], s["dpid"], s.get("role", "edge"), s.get("site", ""))

    used: dict[tuple[str, int], str] = {}  # (switch, port) -> what uses it

    def claim(sw: str, port: int, what: str, fld: str) -> None:
        if (sw, port) in used:
            _fail(f"port {port} of switch {sw!r} is already used by {used[(sw, port)]}", where, fld)
        used[(sw, port)] = what

    def next_free(sw: str) -> int:
        port = 1
        while (sw, port) in used:
            port += 1
        return port

    def known_switch(name: str, fld: str) -> None:
        if name not in topo.switches:
            _fail(f"unknown switch {name!r}", where, fld)

    raw_links = data.get("links", [])
    # Explicit ports are claimed first so that assigned ones never collide with them.
    for i, l in enumerate(raw_links):
        known_switch(l["a"], f"links.{i}.a")
        known_switch(l["b"], f"links.{i}.b")
        if l["a"] == l["b"]:
            _fail("a link cannot join a switch to itself", where, f"links.{i}")
        for end in ("a", "b"):
            if f"{end}_port" in l:
                claim(l[end], l[f"{end}_port"], f"link {l['a']}-{l['b']}", f"links.{i}.{end}_port")
    raw_subnets = data.get("subnets", [])
    for i, s in enumerate(raw_subnets):
        known_switch(s["switch"], f"subnets.{i}.switch")
        for j, h in enumerate(s.get("hosts", [])):
            if "port" in h:
                sw = h.get("switch", s["switch"])
                known_switch(sw, f"subnets.{i}.hosts.{j}.switch")
                claim(sw, h["port"], f"host {h['name']}", f"subnets.{i}.hosts.{j}.port")
    for i, l in enumerate(raw_links):
        ports = {}
        for end in ("a", "b"):
            ports[end] = l.get(f"{end}_port")
            if ports[end] is None:
                ports[end] = next_free(l[end])
                claim(l[end], ports[end], f"link {l['a']}-{l['b']}", f"links.{i}")
        topo.links.append(Link(l["a"], ports["a"], l["b"], ports["b"], l.get("capacity_mbps"), l.get("note", "")))

    networks: dict[str, ipaddress.IPv4Network] = {}
    host_names: set[str] = set()
    ips: set[str] = set()
    for i, s in enumerate(raw_subnets):
        fld = f"subnets.{i}"
        if s["id"] in topo.subnets:
            _fail(f"duplicate subnet id {s['id']!r}", where, f"{fld}.id")
        known_switch(s["switch"], f"{fld}.switch")
        try:
            net = ipaddress.IPv4Network(s["cidr"], strict=True)
        except ValueError as exc:
            if "host bits set" in str(exc):
                base = ipaddress.IPv4Network(s["cidr"], strict=False)
                _fail(f"{s['cidr']} has host bits set; the network is {base}", where, f"{fld}.cidr")
            _fail(f"not an IPv4 network ({exc}); write it like 10.10.3.0/24", where, f"{fld}.cidr")
        for other, onet in networks.items():
            if net.overlaps(onet):
                _fail(f"{net} overlaps subnet {other!r} ({onet})", where, f"{fld}.cidr")
        networks[s["id"]] = net
        try:
            gw = ipaddress.IPv4Address(s["gateway"])
        except ValueError:
            _fail(f"not an IPv4 address: {s['gateway']!r}", where, f"{fld}.gateway")
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            _fail(f"gateway {gw} is not a host address of {net}", where, f"{fld}.gateway")
        hosts = []
        for j, h in enumerate(s.get("hosts", [])):
            hf = f"{fld}.hosts.{j}"
            if h["name"] in host_names or h["name"] in topo.switches:
                _fail(f"duplicate node name {h['name']!r}", where, f"{hf}.name")
            host_names.add(h["name"])
            try:
                ip = ipaddress.IPv4Address(h["ip"])
            except ValueError:
                _fail(f"not an IPv4 address: {h['ip']!r}", where, f"{hf}.ip")
            if ip not in net or ip in (net.network_address, net.broadcast_address, gw):
                _fail(f"{ip} is not a free host address of {net}", where, f"{hf}.ip")
            if str(ip) in ips:
                _fail(f"address {ip} is used twice", where, f"{hf}.ip")
            ips.add(str(ip))
            sw = h.get("switch", s["switch"])
            known_switch(sw, f"{hf}.switch")
            port = h.get("port")
            if port is None:
                port = next_free(sw)
                claim(sw, port, f"host {h['name']}", hf)
            mac = h.get("mac", host_mac(str(ip))).lower()
            hosts.append(Host(h["name"], str(ip), mac, sw, port, s["id"]))
        topo.subnets[s["id"]] = Subnet(s["id"], s.get("name", s["id"]), str(net), str(gw), s["switch"], tuple(hosts))

    if "uplink" in data:
        u = data["uplink"]
        sub = topo.subnets.get(u["subnet"])
        if sub is None:
            _fail(f"unknown subnet {u['subnet']!r}", where, "uplink.subnet")
        if not sub.hosts:
            _fail(f"subnet {sub.id!r} needs a host: the ISP router", where, "uplink.subnet")
        topo.uplink = Uplink(sub.switch, u["subnet"], u.get("capacity_mbps"))
    return topo


def load(path: str | Path) -> Topology:
    """Read and validate a topology file. Raises KendaliError naming file, field and problem."""
    return parse(read_yaml(path), str(path))


DEFAULT_TOPOLOGY = Path(__file__).resolve().parents[2] / "topologies" / "ppu.yaml"
