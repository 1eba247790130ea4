"""ARP by the controller: learn hosts, answer for gateways and known hosts, flood the rest
over edge ports only (never over inter-switch links, so ARP can never loop). Pure.

Hosts are only ever told each other's locator MACs (controller.core.address), never the
real ones: answers carry the target's locator, and a request or reply passed on carries
its sender's. So every frame between hosts is addressed to a locator, which the network
forwards on the switch label it holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.core.compiler import GATEWAY_MAC
from controller.core.frames import BROADCAST, Arp
from controller.core.graph import HostEntry, Network

REQUEST, REPLY = 1, 2
__all__ = ["Arp", "ArpResponder", "BROADCAST", "REPLY", "REQUEST", "Send"]


@dataclass(frozen=True)
class Send:
    """A frame to send out of (dpid, port). ``arp`` None means: the frame that came in."""

    dpid: int
    port: int
    arp: Arp | None = None


@dataclass
class ArpResponder:
    net: Network
    # The same request seen again this soon is a copy (or a storm), not news.
    dedup_seconds: float = 0.5
    _recent: dict[tuple[str, str], float] = field(default_factory=dict)

    def handle(self, dpid: int, in_port: int, arp: Arp, now: float) -> tuple[bool, list[Send]]:
        """Returns (forwarding changed, frames to send)."""
        net = self.net
        if not net.is_edge_port(dpid, in_port, now) or arp.src_mac.lower() == GATEWAY_MAC:
            return False, []  # only hosts speak here, and none may pose as the gateway
        src_ip = arp.src_ip if arp.src_ip != "0.0.0.0" else None
        mac = arp.src_mac.lower()
        before = net.locators.of(mac)  # sticky: also for a host forgotten with its port
        changed = net.learn_host(arp.src_mac, src_ip, dpid, in_port, now)
        moved = self._announce_move(mac, before, now)
        probes = self.verify_probes()
        known = net.hosts.get(arp.src_mac.lower())
        if probes or (known is not None and (known.dpid, known.port) != (dpid, in_port)):
            # A claim on another host's place: ask that place first, and answer nothing
            # from here until the claim is believed.
            return changed, probes
        # Not learned (refused, or no room): it may be answered, but nothing passes on its
        # behalf (there is no locator to give out for it).
        own = net.locators.of(known.mac) if known is not None else None
        if arp.op == REPLY:
            if arp.dst_mac.lower() == GATEWAY_MAC:
                return changed, moved
            dst = self._host_of(arp.dst_mac.lower())
            if dst is None or own is None:
                return changed, moved
            reply = Arp(REPLY, own, arp.src_ip, dst.mac, arp.dst_ip)
            return changed, moved + [Send(dst.dpid, dst.port, reply)]
        if arp.op != REQUEST or src_ip is None or arp.dst_ip == arp.src_ip:
            return changed, moved  # probes and gratuitous ARP only teach us
        gateways = net.gateways()
        if arp.dst_ip in gateways:
            return changed, moved + [Send(dpid, in_port, Arp(REPLY, GATEWAY_MAC, arp.dst_ip, arp.src_mac, arp.src_ip))]
        target = net.host_by_ip(arp.dst_ip)
        if target and target.mac != arp.src_mac.lower():
            answer = Arp(REPLY, net.locator(target.mac), arp.dst_ip, arp.src_mac, arp.src_ip)
            return changed, moved + [Send(dpid, in_port, answer)]
        key = (arp.src_mac.lower(), arp.dst_ip)
        if now - self._recent.get(key, -1e9) < self.dedup_seconds:
            return changed, []
        self._recent[key] = now
        if len(self._recent) > 4096:
            self._recent = {k: t for k, t in self._recent.items() if now - t < self.dedup_seconds}
        if own is None:
            return changed, moved
        ask = Arp(REQUEST, own, arp.src_ip, "00:00:00:00:00:00", arp.dst_ip)
        return changed, moved + [Send(f.dpid, f.port, ask) for f in self._flood(now, exclude=(dpid, in_port))]

    def _host_of(self, mac: str) -> HostEntry | None:
        """The host a reply is for: by its real MAC, or by the locator we gave out for it."""
        h = self.net.hosts.get(mac)
        if h is not None:
            return h
        real = self.net.locators.mac_of(mac)
        return self.net.hosts.get(real) if real else None

    def announce_moves(self, before: dict[str, tuple[str | None, str | None]], now: float) -> list[Send]:
        """Gratuitous ARP for each host whose (locator, address) is no longer what ``before``
        held: a move or an address taken over that a verification (Network.verify_due)
        applied, with nobody's ARP in hand to answer."""
        out = []
        for mac, was in sorted(before.items()):
            h = self.net.hosts.get(mac)
            if h is None or not h.ip or (self.net.locators.of(mac), h.ip) == was:
                continue
            out += self._gratuitous(h, now)
        return out

    def _gratuitous(self, h: HostEntry, now: float) -> list[Send]:
        """A gratuitous ARP from ``h`` (its locator and address) out of every other edge port."""
        assert h.ip is not None
        news = Arp(REQUEST, self.net.locator(h.mac), h.ip, "00:00:00:00:00:00", h.ip)
        return [Send(f.dpid, f.port, news) for f in self._flood(now, exclude=(h.dpid, h.port))]

    def _announce_move(self, mac: str, before: str | None, now: float) -> list[Send]:
        """A host that moved to another switch has a new locator; other hosts' ARP caches
        hold the old one. A gratuitous ARP from it, over edge ports, updates them at once
        (Linux takes it for an entry it already has)."""
        h = self.net.hosts.get(mac)
        if before is None or h is None or not h.ip or self.net.locators.of(mac) == before:
            return []
        return self._gratuitous(h, now)

    def verify_probes(self) -> list[Send]:
        """ARP probes out of the old place of each host whose place someone claims: a
        host still there answers, and the claim is refused (graph.Network.learn_host)."""
        out = [self._probe_at(h) for h in self.net.verify_requests if h.ip]
        self.net.verify_requests.clear()
        return out

    def _probe_at(self, h: HostEntry) -> Send:
        subnet = self.net.subnet_of(h.ip) if h.ip else None
        gw = next((g for g, c in self.net.gateways().items() if c == subnet), "0.0.0.0")
        return Send(h.dpid, h.port, Arp(REQUEST, GATEWAY_MAC, gw, "00:00:00:00:00:00", h.ip or "0.0.0.0"))

    def probe(self, ip: str, now: float) -> list[Send]:
        """ARP for an unknown host of a declared subnet, from its gateway address."""
        subnet = self.net.subnet_of(ip)
        if not subnet:
            return []
        gw = next((g for g, c in self.net.gateways().items() if c == subnet), None)
        key = ("probe", ip)
        if gw is None or now - self._recent.get(key, -1e9) < self.dedup_seconds:
            return []
        self._recent[key] = now
        request = Arp(REQUEST, GATEWAY_MAC, gw, "00:00:00:00:00:00", ip)
        return [Send(s.dpid, s.port, request) for s in self._flood(now)]

    def probe_declared(self, now: float) -> list[Send]:
        """ARP, at its declared switch port, for every declared host not learned yet, so
        forwarding to it is in place before anyone sends it traffic."""
        t = self.net.topology
        if t is None:
            return []
        out = []
        for sub in t.subnets.values():
            for h in sub.hosts:
                dpid = t.switches[h.switch].dpid
                key = ("declared", h.ip)
                if (
                    self.net.host_by_ip(h.ip)
                    or not self.net.port_up(dpid, h.port)
                    or now - self._recent.get(key, -1e9) < self.dedup_seconds
                ):
                    continue
                self._recent[key] = now
                out.append(Send(dpid, h.port, Arp(REQUEST, GATEWAY_MAC, sub.gateway, "00:00:00:00:00:00", h.ip)))
        return out

    def _flood(self, now: float, exclude: tuple[int, int] | None = None) -> list[Send]:
        return [
            Send(dpid, port)
            for dpid in sorted(self.net.ports)
            for port in self.net.edge_ports(dpid, now)
            if (dpid, port) != exclude
        ]
