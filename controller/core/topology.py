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
from typing import Any

import jsonschema

from controller.errors import KendaliError, read_yaml

_NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"}
_PORT = {"type": "integer", "minimum": 1, "maximum": 65279}
_MAC = {"type": "string", "pattern": "^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$"}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Kendali topology",
    "type": "object",
    "additionalProperties": False,
    "required": ["switches"],
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "switches": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "dpid"],
                "properties": {
                    "name": _NAME,
                    "dpid": {"type": "integer", "minimum": 1, "maximum": 2**48 - 1},
                    "role": {"enum": ["core", "distribution", "edge", "datacenter"]},
                    "site": {"type": "string"},
                },
            },
        },
        "links": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["a", "b"],
                "properties": {
                    "a": _NAME,
                    "b": _NAME,
                    "a_port": _PORT,
                    "b_port": _PORT,
                    "capacity_mbps": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e6},
                    "note": {"type": "string"},
                },
            },
        },
        "subnets": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "cidr", "gateway", "switch"],
                "properties": {
                    "id": _NAME,
                    "name": {"type": "string"},
                    "cidr": {"type": "string"},
                    "gateway": {"type": "string"},
                    "switch": _NAME,
                    "hosts": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["name", "ip"],
                            "properties": {
                                "name": _NAME,
                                "ip": {"type": "string"},
                                "mac": _MAC,
                                "port": _PORT,
                                "switch": _NAME,
                            },
                        },
                    },
                },
            },
        },
        "uplink": {
            "type": "object",
            "additionalProperties": False,
            "required": ["subnet"],
            "properties": {
                "subnet": _NAME,
                "capacity_mbps": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e6},
            },
        },
    },
}


@dataclass(frozen=True)
class Switch:
    name: str
    dpid: int
    role: str = "edge"
    site: str = ""


@dataclass(frozen=True)
class Link:
    a: str
    a_port: int
    b: str
    b_port: int
    capacity_mbps: float | None = None


@dataclass(frozen=True)
class Host:
    name: str
    ip: str
    mac: str
    switch: str
    port: int
    subnet: str  # subnet id


@dataclass(frozen=True)
class Subnet:
    id: str
    name: str
    cidr: str
    gateway: str
    switch: str
    hosts: tuple[Host, ...] = ()

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.cidr)


@dataclass(frozen=True)
class Uplink:
    switch: str  # the switch of the uplink subnet
    subnet: str
    capacity_mbps: float | None = None


@dataclass
class Topology:
    name: str = "discovered"
    description: str = ""
    switches: dict[str, Switch] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    uplink: Uplink | None = None
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


def host_mac(ip: str) -> str:
    """A stable, locally administered MAC for a declared host that names none."""
    octets = ipaddress.IPv4Address(ip).packed
    return "02:4b:" + ":".join(f"{b:02x}" for b in octets)


def _path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _fail(problem: str, where: str, fld: str = "") -> None:
    raise KendaliError(problem, where, fld)


def parse(data: Any, where: str = "<topology>") -> Topology:
    """Validate a parsed YAML/JSON document and build the Topology. Raises KendaliError."""
    if data is None:
        _fail("the file is empty", where)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        _fail(e.message, where, _path(e))

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
        topo.links.append(Link(l["a"], ports["a"], l["b"], ports["b"], l.get("capacity_mbps")))

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
            _fail(f"not an IPv4 network ({exc})", where, f"{fld}.cidr")
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
