"""The one owner of the intranet graph: switches, links, ports and hosts.

Pure Python over NetworkX: the os-ken shell feeds it events (switch up, port status,
LLDP sightings, ARP sightings) and reads snapshots from it. Time is passed in by the
caller (``now``), never read here.

Nodes of the graph are switch dpids. Links are edges of a MultiGraph (two switches may
be joined by several links), keyed by ``(dpid_a, port_a, dpid_b, port_b)`` with
``dpid_a < dpid_b`` (or equal dpids ordered by port).
"""

from __future__ import annotations

import copy
import ipaddress
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from controller.core import address
from controller.core.ratelog import RateLimitedLog
from controller.core.topology import Topology

LOG = logging.getLogger("kendali.hosts")

# OSPF-style cost: a reference bandwidth over the link capacity. Unknown capacity costs
# as a 1 Gbit/s link, so declared capacities only ever make a link look better or worse.
REFERENCE_MBPS = 100_000
DEFAULT_CAPACITY_MBPS = 1000

LinkKey = tuple[int, int, int, int]


class HostTable(dict[str, "HostEntry"]):
    """mac -> HostEntry that numbers each host on its switch as it is put in (its locator
    MAC, controller.core.address): every way a host is learned, moved or recovered goes
    through here, so no host is ever without a locator. Also indexes hosts by address and
    by port (lookups that a scan would make cost the number of hosts)."""

    def __init__(self, locators: address.Locators) -> None:
        super().__init__()
        self.locators = locators
        self.by_ip: dict[str, list[str]] = {}  # ip -> macs, oldest first
        self.by_port: dict[tuple[int, int], set[str]] = {}
        self.changed: set[str] = set()  # macs put in or taken out since the compiler last looked

    def __setitem__(self, mac: str, entry: HostEntry) -> None:
        self.changed.add(mac)
        self.locators.label(entry.dpid)
        self.locators.host(mac, entry.dpid, self)
        if mac in self:
            self._unindex(mac)
        super().__setitem__(mac, entry)
        if entry.ip:
            self.by_ip.setdefault(entry.ip, []).append(mac)
        self.by_port.setdefault((entry.dpid, entry.port), set()).add(mac)

    def __deepcopy__(self, memo: dict[int, Any]) -> HostTable:
        # copy's default would put every entry in again through __setitem__, after the
        # indexes were copied: each host indexed twice.
        out = HostTable(copy.deepcopy(self.locators, memo))
        memo[id(self)] = out
        dict.update(out, self)  # entries are immutable
        out.by_ip = {ip: list(macs) for ip, macs in self.by_ip.items()}
        out.by_port = {k: set(v) for k, v in self.by_port.items()}
        out.changed = set(self.changed)
        return out

    def __delitem__(self, mac: str) -> None:
        self.changed.add(mac)
        self._unindex(mac)
        super().__delitem__(mac)

    def _unindex(self, mac: str) -> None:
        old = self[mac]
        if old.ip and old.ip in self.by_ip:
            macs = self.by_ip[old.ip]
            macs.remove(mac)
            if not macs:
                del self.by_ip[old.ip]
        here = self.by_port.get((old.dpid, old.port))
        if here is not None:
            here.discard(mac)
            if not here:
                del self.by_port[(old.dpid, old.port)]


class LinkTable(dict[LinkKey, "LinkInfo"]):
    """key -> LinkInfo that indexes links by their ends, and notes what changed for the
    incremental compile (``changed`` keys, ``touched`` switches at both ends)."""

    def __init__(self) -> None:
        super().__init__()
        self.touched: set[int] = set()
        self.changed: set[LinkKey] = set()  # keys put in or taken out since the compiler last looked
        self.by_end: dict[tuple[int, int], LinkKey] = {}  # (dpid, port) -> the link there
        self.ports_of: dict[int, set[int]] = {}  # dpid -> its ports that are link ends

    def __setitem__(self, key: LinkKey, info: LinkInfo) -> None:
        self.touched.update((key[0], key[2]))
        self.changed.add(key)
        for end in ((key[0], key[1]), (key[2], key[3])):
            self.by_end[end] = key
            self.ports_of.setdefault(end[0], set()).add(end[1])
        super().__setitem__(key, info)

    def __delitem__(self, key: LinkKey) -> None:
        self.touched.update((key[0], key[2]))
        self.changed.add(key)
        for end in ((key[0], key[1]), (key[2], key[3])):
            if self.by_end.get(end) == key:
                del self.by_end[end]
                self.ports_of.get(end[0], set()).discard(end[1])
        super().__delitem__(key)

    def __deepcopy__(self, memo: dict[int, Any]) -> LinkTable:
        out = LinkTable()
        memo[id(self)] = out
        memo[id(self.touched)] = out.touched  # Network.touched is this same set
        for k, v in self.items():
            out[k] = copy.deepcopy(v, memo)
        out.touched.clear()
        out.touched |= self.touched
        out.changed = set(self.changed)
        return out


def link_key(d1: int, p1: int, d2: int, p2: int) -> LinkKey:
    return (d1, p1, d2, p2) if (d1, p1) <= (d2, p2) else (d2, p2, d1, p1)


def unicast_mac(mac: str) -> bool:
    """A MAC a host can own: not multicast/broadcast (group bit), not all zeros."""
    try:
        value = int(mac.replace(":", ""), 16)
    except ValueError:
        return False
    return value != 0 and not (value >> 40) & 1


def cost(capacity_mbps: float | None) -> int:
    return max(1, int(REFERENCE_MBPS / (capacity_mbps or DEFAULT_CAPACITY_MBPS)))


@dataclass(frozen=True)
class HostEntry:
    mac: str
    ip: str | None
    dpid: int
    port: int


@dataclass(frozen=True)
class PendingMove:
    """A claim on a known host's place (its MAC seen elsewhere, or its IP for another
    MAC), waiting for the old place to answer an ARP probe until ``deadline``."""

    claim: HostEntry
    old: HostEntry
    deadline: float
    ip_claim: bool = False


@dataclass
class PortInfo:
    up: bool = True
    since: float = 0.0  # when it came up (for the edge-port probation)


@dataclass
class LinkInfo:
    key: LinkKey
    capacity_mbps: float | None = None
    last_seen: float = 0.0
    declared: bool = False

    def port_of(self, dpid: int) -> int:
        d1, p1, d2, p2 = self.key
        return p1 if dpid == d1 else p2

    def peer(self, dpid: int) -> tuple[int, int]:
        d1, p1, d2, p2 = self.key
        return (d2, p2) if dpid == d1 else (d1, p1)


@dataclass
class Network:
    """Switches, links and hosts as seen now. ``topology`` (declared) is optional."""

    topology: Topology | None = None
    # A port with no LLDP heard on it for this long (seconds) counts as a host (edge) port.
    edge_probation: float = 2.0
    ports: dict[int, dict[int, PortInfo]] = field(default_factory=dict)
    links: LinkTable = field(default_factory=LinkTable)
    hosts: HostTable = field(init=False, repr=False)  # mac -> entry (set in __post_init__)
    version: int = 0  # bumped on every change that can alter forwarding
    # Flap damping: a link that went down n times within flap_window seconds is only
    # used again after it has been heard for hold_base * 2**(n-2) seconds (first return
    # is immediate), at most hold_max.
    flap_window: float = 60.0
    hold_base: float = 1.0
    hold_max: float = 30.0
    returning_gap: float = 2.0  # a held link not heard for this long starts its hold again
    # Hosts: bounds and rates against MAC flooding and address theft (see learn_host).
    max_hosts_per_port: int = 256  # an office switch behind one port; a flood stops here
    max_hosts: int = 50_000
    learn_rate: float = 5.0  # new hosts a second per port, after a burst of learn_burst
    learn_burst: int = 64
    host_idle_evict: float = 300.0  # a full port makes room by forgetting a host silent this long
    verify_seconds: float = 1.0  # how long the old place of a host has to answer our probe
    moves_per_window: int = 5  # claims on other hosts' places per port per move_window
    move_window: float = 10.0

    def __post_init__(self) -> None:
        self._declared_caps: dict[tuple[int, int], float | None] = {}
        self._declared_host_ports: set[tuple[int, int]] = set()
        self._known_host_ports: set[tuple[int, int]] = set()  # recovered from a switch's flows
        self._declared_link_ports: set[tuple[int, int]] = set()
        # Ports that have heard our LLDP face a switch until they go down, even if the
        # link later falls silent: they must never become flooding edge ports.
        self._switch_facing: set[tuple[int, int]] = set()
        self._downs: dict[LinkKey, list[float]] = {}  # when each link was lost, recently
        self._returning: dict[LinkKey, tuple[float, float]] = {}  # damped link -> (first, last) heard
        self._declared_hosts: dict[str, HostEntry] = {}
        self._declared_dpids: set[int] | None = None
        self._edge_seen: set[tuple[int, int]] = set()  # ports where hosts were learned: never links
        self._last_seen: dict[str, float] = {}
        self._learn_budget: dict[tuple[int, int], tuple[float, float]] = {}
        self._moves: dict[tuple[int, int], list[float]] = {}
        self.pending: dict[str, PendingMove] = {}
        self.verify_requests: list[HostEntry] = []  # old places to probe (arp.ArpResponder sends)
        self.refused_claims = 0
        self.refused_links = 0
        self.log = RateLimitedLog(LOG)
        # Switches whose ports, links or edge ports may have changed since the compiler
        # last looked (it empties this): what an incremental compile starts from.
        self.touched = self.links.touched
        self.locators = address.Locators()
        self.hosts = HostTable(self.locators)
        if self.topology:
            t = self.topology
            for l in t.links:
                a, b = t.switches[l.a].dpid, t.switches[l.b].dpid
                self._declared_caps[(a, l.a_port)] = l.capacity_mbps
                self._declared_caps[(b, l.b_port)] = l.capacity_mbps
                self._declared_link_ports |= {(a, l.a_port), (b, l.b_port)}
            for h in t.hosts:
                self._declared_host_ports.add((t.switches[h.switch].dpid, h.port))
                self._declared_hosts[h.mac.lower()] = HostEntry(h.mac.lower(), h.ip, t.switches[h.switch].dpid, h.port)

    # ---- switches and ports -------------------------------------------------------
    def switch_up(self, dpid: int, ports: dict[int, bool], now: float) -> None:
        self.ports[dpid] = {p: PortInfo(up, now) for p, up in ports.items()}
        self.locators.label(dpid)
        self.touched.add(dpid)
        self.version += 1

    def switch_down(self, dpid: int) -> None:
        self.ports.pop(dpid, None)
        self.touched.add(dpid)
        self._switch_facing = {fp for fp in self._switch_facing if fp[0] != dpid}
        self._known_host_ports = {fp for fp in self._known_host_ports if fp[0] != dpid}
        self._edge_seen = {fp for fp in self._edge_seen if fp[0] != dpid}
        for key in [k for k in self.links if dpid in (k[0], k[2])]:
            del self.links[key]
        for mac in [m for m, h in self.hosts.items() if h.dpid == dpid]:
            del self.hosts[mac]
        self.version += 1

    def port_status(self, dpid: int, port: int, up: bool, now: float) -> list[LinkKey]:
        """A port went up or down. Returns the links lost with it."""
        sw = self.ports.setdefault(dpid, {})
        old = sw.get(port)
        if old is None or old.up != up:
            sw[port] = PortInfo(up, now)
            self.touched.add(dpid)
            self.version += 1
        if up:
            return []
        self._switch_facing.discard((dpid, port))
        self._known_host_ports.discard((dpid, port))
        self._edge_seen.discard((dpid, port))  # unplugged: whatever is plugged in next is new
        here = self.links.by_end.get((dpid, port))
        lost = [here] if here is not None and here in self.links else []
        for k in lost:
            del self.links[k]
            self._record_down(k, now)
        gone = sorted(self.hosts.by_port.get((dpid, port), ()))
        for mac in gone:
            del self.hosts[mac]
        if lost or gone:
            self.version += 1
        return lost

    def port_up(self, dpid: int, port: int) -> bool:
        info = self.ports.get(dpid, {}).get(port)
        return bool(info and info.up)

    # ---- links ---------------------------------------------------------------------
    def link_seen(self, src: int, src_port: int, dst: int, dst_port: int, now: float) -> bool:
        """An LLDP frame from (src, src_port) arrived at (dst, dst_port). True if the link is new."""
        if src not in self.ports or dst not in self.ports:
            return False
        if not (self.port_up(src, src_port) and self.port_up(dst, dst_port)):
            return False
        if not (self.declared(src) and self.declared(dst)):
            return False  # an undeclared switch is reported (discrepancies), never forwarded through
        if (src, src_port) == (dst, dst_port):
            return False  # our own frame reflected back in: not a link
        edge = {(src, src_port), (dst, dst_port)} & self._edge_seen
        if edge:
            # Hosts were learned there: an edge port, and LLDP arriving at it is a host's
            # doing (TopoGuard's port classification). It becomes a link only after the
            # port has gone down and come up again.
            self.refused_links += 1
            self.log.warning(
                "LLDP at an edge port",
                now,
                "refused: LLDP from %s:%d at %s:%d, a port where hosts were seen",
                src,
                src_port,
                dst,
                dst_port,
            )
            return False
        self._switch_facing |= {(src, src_port), (dst, dst_port)}
        self.touched.update((src, dst))
        self._known_host_ports -= {(src, src_port), (dst, dst_port)}
        key = link_key(src, src_port, dst, dst_port)
        info = self.links.get(key)
        if info:
            info.last_seen = now
            return False
        hold = self.hold_time(key, now)
        if hold:
            first, last = self._returning.get(key, (now, now))
            if now - last > self.returning_gap:
                first = now  # silent again meanwhile: the hold starts over
            self._returning[key] = (first, now)
            if now - first < hold:
                return False  # a flapping link earns its way back
        self._returning.pop(key, None)
        # A port belongs to one link: a re-cabled port replaces its old link.
        for other in [k for k in self.links if {(k[0], k[1]), (k[2], k[3])} & {(src, src_port), (dst, dst_port)}]:
            del self.links[other]
        cap = self._declared_caps.get((src, src_port))
        self.links[key] = LinkInfo(key, cap, now, (src, src_port) in self._declared_caps)
        # Hosts wrongly learned on what is now known to be a switch port are forgotten.
        for mac in [m for m, h in self.hosts.items() if (h.dpid, h.port) in ((src, src_port), (dst, dst_port))]:
            del self.hosts[mac]
        self.version += 1
        return True

    def expire_unseen_since(self, cutoff: float, now: float, spare: Collection[int] = ()) -> list[LinkKey]:
        """Remove links last heard before ``cutoff`` (a silent failure); ``now`` dates the
        loss for damping. Links touching a switch in ``spare`` are not judged this time."""
        dead = [k for k, l in self.links.items() if l.last_seen < cutoff and k[0] not in spare and k[2] not in spare]
        for k in dead:
            del self.links[k]
            self._record_down(k, now)
        if dead:
            self.version += 1
        return dead

    def _record_down(self, key: LinkKey, now: float) -> None:
        recent = [t for t in self._downs.get(key, []) if now - t < self.flap_window]
        self._downs[key] = recent + [now]

    def hold_time(self, key: LinkKey, now: float) -> float:
        """How long a returning link must be heard before it carries traffic again."""
        n = sum(1 for t in self._downs.get(key, []) if now - t < self.flap_window)
        if n < 2:
            return 0.0
        doublings: int = 2 ** (n - 2)
        return min(self.hold_max, self.hold_base * doublings)

    def damped(self) -> dict[LinkKey, float]:
        """Links heard again but held back by damping -> when they were first heard."""
        return {k: first for k, (first, _last) in self._returning.items()}

    def link_ports(self, dpid: int) -> set[int]:
        """Ports of ``dpid`` that are ends of a known link."""
        return set(self.links.ports_of.get(dpid, ()))

    def edge_ports(self, dpid: int, now: float) -> list[int]:
        """Ports where hosts may live: up, not part of a link, past probation (or declared host ports)."""
        linked = self.link_ports(dpid)
        out = []
        for p, info in self.ports.get(dpid, {}).items():
            # A port declared for a link is not trusted as an edge port at once, but after
            # probation discovery wins: a host found there is served (and reported).
            if not info.up or p in linked or (dpid, p) in self._switch_facing:
                continue
            if (
                (dpid, p) in self._declared_host_ports
                or (dpid, p) in self._known_host_ports
                or now - info.since >= self.edge_probation
            ):
                out.append(p)
        return sorted(out)

    def is_edge_port(self, dpid: int, port: int, now: float) -> bool:
        return port in self.edge_ports(dpid, now)

    # ---- hosts ---------------------------------------------------------------------
    # Any PC can claim any MAC or IP address in an ARP frame. A claim that would take a
    # known host's place (its MAC at another port, or its IP for another MAC) is only
    # believed once the host is verified gone: an ARP probe goes out of its old port
    # (see arp.ArpResponder) and a host that answers keeps its place. Declared hosts
    # never move; learning is bounded and rate-limited per port (MAC flooding).
    def learn_host(self, mac: str, ip: str | None, dpid: int, port: int, now: float) -> bool:
        """A host was seen at an edge port. True if forwarding changes (new host, or a
        verified move); a claim on another host's place starts a verification instead."""
        mac = mac.lower()
        if not unicast_mac(mac) or address.is_locator(mac) or not self.is_edge_port(dpid, port, now):
            # A broadcast or multicast "host" would capture everyone's floods; one with a
            # locator MAC would capture another host's traffic.
            return False
        if ip is not None and ip in self.gateways():
            ip = None  # nobody else may answer for a gateway address
        declared = self._declared_hosts.get(mac)
        if declared is not None:
            if (dpid, port) != (declared.dpid, declared.port):
                self._refuse(
                    "declared host elsewhere",
                    now,
                    "refused: %s (declared at %s:%d) seen at %s:%d; a declared host never moves",
                    mac,
                    declared.dpid,
                    declared.port,
                    dpid,
                    port,
                )
                return False
            ip = declared.ip
        old = self.hosts.get(mac)
        if ip is None and old is not None:
            ip = old.ip
        self._last_seen[mac] = now
        if old is not None and (old.dpid, old.port) == (dpid, port):
            self._edge_seen.add((dpid, port))
            self._answered(mac, now)
            if old.ip == ip or ip is None:
                return False
        elif old is not None and self.port_up(old.dpid, old.port):
            return self._verify(PendingMove(HostEntry(mac, ip, dpid, port), old, now + self.verify_seconds), now)
        elif old is None and not self._room_for(mac, dpid, port, now):
            return False
        if ip:
            owner = self.host_by_ip(ip)
            if owner is not None and owner.mac != mac:
                if owner.mac in self._declared_hosts:
                    self._refuse(
                        "declared address claimed",
                        now,
                        "refused: %s at %s:%d claims %s, declared for %s",
                        mac,
                        dpid,
                        port,
                        ip,
                        owner.mac,
                    )
                    ip = old.ip if old is not None and old.ip != ip else None
                else:
                    self._verify(
                        PendingMove(HostEntry(mac, ip, dpid, port), owner, now + self.verify_seconds, ip_claim=True),
                        now,
                    )
                    ip = old.ip if old is not None and old.ip != ip else None
        entry = HostEntry(mac, ip, dpid, port)
        if old == entry:
            return False
        self._edge_seen.add((dpid, port))
        self.hosts[mac] = entry
        self.version += 1
        return True

    def _room_for(self, mac: str, dpid: int, port: int, now: float) -> bool:
        """A new host may be learned here: the port's table is not full (an idle host is
        evicted to make room) and the port has not taught us too many hosts just now."""
        here = [self.hosts[m] for m in self.hosts.by_port.get((dpid, port), ())]
        if len(here) >= self.max_hosts_per_port:
            idle = min(here, key=lambda h: self._last_seen.get(h.mac, 0.0))
            if now - self._last_seen.get(idle.mac, 0.0) < self.host_idle_evict:
                self._refuse(
                    "port host table full",
                    now,
                    "refused: new host %s at %s:%d; the port already has %d hosts (MAC flooding?)",
                    mac,
                    dpid,
                    port,
                    len(here),
                )
                return False
            del self.hosts[idle.mac]
        if len(self.hosts) >= self.max_hosts:
            self._refuse(
                "host table full",
                now,
                "refused: new host %s at %s:%d; %d hosts known",
                mac,
                dpid,
                port,
                len(self.hosts),
            )
            return False
        tokens, last = self._learn_budget.get((dpid, port), (float(self.learn_burst), now))
        tokens = min(float(self.learn_burst), tokens + (now - last) * self.learn_rate)
        if tokens < 1.0:
            self._learn_budget[(dpid, port)] = (tokens, now)
            self._refuse(
                "new hosts too fast",
                now,
                "refused: new host %s at %s:%d; more than %g new hosts a second there (MAC flooding?)",
                mac,
                dpid,
                port,
                self.learn_rate,
            )
            return False
        self._learn_budget[(dpid, port)] = (tokens - 1.0, now)
        return True

    def _verify(self, move: PendingMove, now: float) -> bool:
        key = f"ip:{move.claim.ip}" if move.ip_claim else move.claim.mac
        if key in self.pending:
            return False
        at = (move.claim.dpid, move.claim.port)
        recent = [t for t in self._moves.get(at, []) if now - t < self.move_window]
        if len(recent) >= self.moves_per_window:
            self._refuse(
                "moves too fast",
                now,
                "refused: %s at %s:%d claims the place of %s (%s) at %s:%d; "
                "more than %d such claims from that port in %.0f s",
                move.claim.mac,
                *at,
                move.old.mac,
                move.old.ip or "no IP",
                move.old.dpid,
                move.old.port,
                self.moves_per_window,
                self.move_window,
            )
            return False
        self._moves[at] = recent + [now]
        self.pending[key] = move
        self.verify_requests.append(move.old)
        return False

    def _answered(self, mac: str, now: float) -> None:
        """``mac`` spoke at its known place: every claim on that place is refused."""
        for key in [k for k, m in self.pending.items() if m.old.mac == mac]:
            m = self.pending.pop(key)
            self._refuse(
                "claim on a host that answers",
                now,
                "refused: %s at %s:%d claimed %s of %s at %s:%d, which still answers there",
                m.claim.mac,
                m.claim.dpid,
                m.claim.port,
                f"the address {m.old.ip}" if m.ip_claim else "the place",
                m.old.mac,
                m.old.dpid,
                m.old.port,
            )

    def verify_due(self, now: float) -> bool:
        """Apply the claims whose old owner did not answer in time. True if forwarding changes."""
        changed = False
        for key in [k for k, m in self.pending.items() if m.deadline <= now]:
            m = self.pending.pop(key)
            old = self.hosts.get(m.old.mac)
            if old != m.old:
                continue  # the old entry changed meanwhile (its port went down, it moved)
            claimant = m.claim
            if m.ip_claim:
                self.hosts[old.mac] = HostEntry(old.mac, None, old.dpid, old.port)
                cur = self.hosts.get(claimant.mac)
                if cur is None or (cur.dpid, cur.port) != (claimant.dpid, claimant.port):
                    changed = True
                    continue
            LOG.info(
                "host %s %s: %s:%d -> %s:%d (the old place did not answer)",
                claimant.mac,
                f"took over {claimant.ip}" if m.ip_claim else "moved",
                old.dpid,
                old.port,
                claimant.dpid,
                claimant.port,
            )
            for other in [
                x for x, h in self.hosts.items() if claimant.ip and h.ip == claimant.ip and x != claimant.mac
            ]:
                self.hosts[other] = HostEntry(other, None, self.hosts[other].dpid, self.hosts[other].port)
            self.hosts[claimant.mac] = claimant
            changed = True
        if changed:
            self.version += 1
        return changed

    def _refuse(self, reason: str, now: float, msg: str, *args: object) -> None:
        self.refused_claims += 1
        self.log.warning(reason, now, msg, *args)

    def recover_host(self, mac: str, ip: str | None, dpid: int, port: int, locator: str | None = None) -> bool:
        """A host that a switch's own flows (or the state dir) place at (dpid, port), from
        before a controller restart: trusted at once (no probation), unless the port is
        known to face a switch. ``locator``: the locator MAC it had then (other hosts'
        ARP caches hold it), kept when still free."""
        if (dpid, port) in self._switch_facing or port in self.link_ports(dpid) or mac.lower() in self.hosts:
            return False
        if locator:
            self.locators.adopt(dpid, mac.lower(), locator)
        self._known_host_ports.add((dpid, port))
        self.touched.add(dpid)
        self._edge_seen.add((dpid, port))
        self.hosts[mac.lower()] = HostEntry(mac.lower(), ip, dpid, port)
        self.version += 1
        return True

    def restore_locators(self, locators: address.Locators) -> None:
        """Labels and host numbers remembered from before a restart (the state dir)."""
        self.locators = locators
        self.hosts.locators = locators

    def locator(self, mac: str) -> str:
        """The locator MAC of a known host (what ARP answers for it, what frames to it carry)."""
        loc = self.locators.of(mac)
        if loc is None:
            raise KeyError(mac)
        return loc

    def label(self, dpid: int) -> int:
        return self.locators.label(dpid)

    def host_by_ip(self, ip: str) -> HostEntry | None:
        macs = self.hosts.by_ip.get(ip)
        return self.hosts[macs[0]] if macs else None

    # ---- views ---------------------------------------------------------------------
    def declared(self, dpid: int) -> bool:
        """Without a topology every switch is; with one, only those it names."""
        if self.topology is None:
            return True
        if self._declared_dpids is None:
            self._declared_dpids = {s.dpid for s in self.topology.switches.values()}
        return dpid in self._declared_dpids

    def graph(self) -> nx.MultiGraph:
        """Usable links between present (and, with a topology, declared) switches, with
        port, capacity and cost attributes."""
        g = nx.MultiGraph()
        g.add_nodes_from(d for d in self.ports if self.declared(d))
        for key, info in self.links.items():
            d1, p1, d2, p2 = key
            g.add_edge(
                d1,
                d2,
                key=key,
                ports={d1: p1, d2: p2} if d1 != d2 else {d1: p1},
                capacity_mbps=info.capacity_mbps,
                cost=cost(info.capacity_mbps),
            )
        return g

    def gateways(self) -> dict[str, str]:
        """Gateway IP -> subnet CIDR for every declared subnet."""
        if not self.topology:
            return {}
        return {s.gateway: s.cidr for s in self.topology.subnets.values()}

    def subnet_of(self, ip: str) -> str | None:
        if not self.topology:
            return None
        s = self.topology.subnet_of(ip)
        return s.cidr if s else None

    def uplink_router(self) -> HostEntry | None:
        """The learned ISP router (first declared host of the uplink subnet), if any."""
        t = self.topology
        if not t or not t.uplink:
            return None
        return self.host_by_ip(t.subnets[t.uplink.subnet].hosts[0].ip)

    def discrepancies(self) -> list[str]:
        """Where discovery and declaration disagree: missing link, unexpected link, wrong port."""
        t = self.topology
        if not t:
            return []
        name = {s.dpid: s.name for s in t.switches.values()}
        out = []
        declared = {}
        for l in t.links:
            a, b = t.switches[l.a].dpid, t.switches[l.b].dpid
            declared[link_key(a, l.a_port, b, l.b_port)] = l
        found = set(self.links)
        pairs_found: dict[frozenset[int], list[LinkKey]] = {}
        for k in found:
            pairs_found.setdefault(frozenset((k[0], k[2])), []).append(k)

        def fmt(k: LinkKey) -> str:
            return f"{name.get(k[0], hex(k[0]))}:{k[1]} - {name.get(k[2], hex(k[2]))}:{k[3]}"

        for k in declared:
            if k in found:
                continue
            if k[0] not in self.ports or k[2] not in self.ports:
                continue  # a switch is absent; reported as such below
            alt = [f for f in pairs_found.get(frozenset((k[0], k[2])), []) if f not in declared]
            if alt:
                out.append(f"wrong port: declared {fmt(k)}, discovered {fmt(alt[0])}")
            else:
                out.append(f"missing link: declared {fmt(k)} not discovered")
        declared_pairs = {frozenset((k[0], k[2])) for k in declared}
        for k in found - set(declared):
            if frozenset((k[0], k[2])) not in declared_pairs:
                out.append(f"unexpected link: discovered {fmt(k)} not declared")
        for h in self.hosts.values():
            if (h.dpid, h.port) in self._declared_link_ports:
                out.append(
                    f"unexpected host: {h.mac} ({h.ip or 'no IP'}) on {name.get(h.dpid, hex(h.dpid))}:{h.port},"
                    " a port declared for a link"
                )
        for s in t.switches.values():
            if s.dpid not in self.ports:
                out.append(f"missing switch: {s.name} (dpid {s.dpid}) not connected")
        for dpid in self.ports:
            if dpid not in name:
                out.append(f"unexpected switch: dpid {dpid:#x} not declared")
        return sorted(out)

    def same_subnet(self, ip1: str, ip2: str) -> bool:
        s = self.subnet_of(ip1)
        return s is not None and ipaddress.IPv4Address(ip2) in ipaddress.IPv4Network(s)
