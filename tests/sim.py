"""A simulated network for the controller core: switches that hold what they are sent and
answer reads, cables that carry LLDP, hosts that answer ARP. No os-ken, no sockets, no
clock: the test moves time. Used to check the core's decisions end to end in
milliseconds (restart, audit and repair, forged LLDP, moves).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.core import frames
from controller.core.controller import Action, Config, Controller, PacketOut, ReadState, SendChanges
from controller.core.state import Flow, SwitchState, apply
from controller.core.topology import Topology

SECRET = b"s" * 32


@dataclass
class SimNet:
    cables: list[tuple[int, int, int, int]]  # (dpid, port, dpid, port)
    hosts: list[tuple[str, str, int, int]]  # (mac, ip, dpid, port)
    ports: dict[int, list[int]]
    held: dict[int, SwitchState] = field(default_factory=dict)
    foreign: dict[int, list[Flow]] = field(default_factory=dict)
    sent: list[tuple[float, SendChanges]] = field(default_factory=list)
    now: float = 0.0
    xid: int = 0

    @classmethod
    def from_topology(cls, t: Topology) -> SimNet:
        cables = [(t.switches[l.a].dpid, l.a_port, t.switches[l.b].dpid, l.b_port) for l in t.links]
        hosts = [(h.mac, h.ip, t.switches[h.switch].dpid, h.port) for h in t.hosts]
        ports: dict[int, list[int]] = {s.dpid: [] for s in t.switches.values()}
        for d1, p1, d2, p2 in cables:
            ports[d1].append(p1)
            ports[d2].append(p2)
        for _m, _ip, d, p in hosts:
            ports[d].append(p)
        return cls(cables, hosts, {d: sorted(ps) for d, ps in ports.items()})

    def controller(
        self,
        topology: Topology | None = None,
        policies: dict | None = None,
        memory: dict | None = None,
        **config: object,
    ) -> Controller:
        return Controller(Config(topology, lldp_secret=SECRET, **config), policies or {}, memory, self.now)  # type: ignore[arg-type]

    # ---- the wire ----------------------------------------------------------------------
    def peer(self, dpid: int, port: int) -> tuple[int, int] | None:
        for d1, p1, d2, p2 in self.cables:
            if (d1, p1) == (dpid, port):
                return d2, p2
            if (d2, p2) == (dpid, port):
                return d1, p1
        return None

    def host_at(self, dpid: int, port: int) -> tuple[str, str] | None:
        return next(((m, ip) for m, ip, d, p in self.hosts if (d, p) == (dpid, port)), None)

    def do(self, c: Controller, actions: list[Action]) -> None:
        """Carry out what the controller says, and feed back what comes of it."""
        queue = list(actions)
        while queue:
            a = queue.pop(0)
            if isinstance(a, SendChanges):
                self.sent.append((self.now, a))
                self.held[a.dpid] = apply(self.held.get(a.dpid, SwitchState()), a.changes)
                gone = {f.key for f in a.changes.foreign_del}
                self.foreign[a.dpid] = [f for f in self.foreign.get(a.dpid, []) if f.key not in gone]
                self.xid += 1
                c.sent(a.dpid, self.xid, self.now)
                c.barrier_reply(a.dpid, self.xid, self.now)
            elif isinstance(a, ReadState):
                queue += self.answer_read(c, a)
            elif isinstance(a, PacketOut):
                queue += self.deliver(c, a)

    def answer_read(self, c: Controller, a: ReadState) -> list[Action]:
        have = self.held.get(a.dpid, SwitchState())
        out: list[Action] = []
        for part in a.parts:
            if part == "flows":
                out += c.read_part(
                    a.dpid, "flows", list(have.flows.values()), self.now, foreign=list(self.foreign.get(a.dpid, []))
                )
            elif part == "groups":
                out += c.read_part(a.dpid, "groups", list(have.groups.values()), self.now)
            elif part == "meters":
                out += c.read_part(a.dpid, "meters", list(have.meters.values()), self.now)
            elif part == "counts":
                n = len(have.flows)
                out += c.read_part(a.dpid, "counts", [], self.now, counts=(n, n + len(self.foreign.get(a.dpid, []))))
        return out

    def deliver(self, c: Controller, a: PacketOut) -> list[Action]:
        f = frames.parse(a.data)
        if isinstance(f.payload, frames.Lldp):
            peer = self.peer(a.dpid, a.port)
            return c.packet_in(peer[0], peer[1], a.data, self.now) if peer and peer[0] in c.net.ports else []
        if isinstance(f.payload, frames.Arp) and f.payload.op == 1:
            host = self.host_at(a.dpid, a.port)
            if host and host[1] == f.payload.dst_ip:  # the host answers for its address
                reply = frames.Arp(2, host[0], host[1], f.payload.src_mac, f.payload.src_ip)
                return c.packet_in(a.dpid, a.port, frames.arp_frame(reply), self.now)
        return []

    # ---- time and events -----------------------------------------------------------------
    def connect(self, c: Controller, dpids: list[int] | None = None) -> None:
        for d in dpids if dpids is not None else sorted(self.ports):
            self.do(c, c.switch_connected(d, self.now))
            self.do(c, c.ports(d, {p: (True, f"02:00:00:00:{d:02x}:{p:02x}") for p in self.ports[d]}, self.now))

    def run(self, c: Controller, seconds: float, step: float = 0.1) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = round(self.now + step, 6)
            self.do(c, c.tick(self.now))
            if c.dirty:
                self.do(c, c.compile(self.now))

    def arp_from_hosts(self, c: Controller) -> None:
        """Every host announces itself (gratuitous ARP), as hosts do when they come up."""
        for mac, ip, d, p in self.hosts:
            data = frames.arp_frame(frames.Arp(1, mac, ip, "00:00:00:00:00:00", ip))
            self.do(c, c.packet_in(d, p, data, self.now))
