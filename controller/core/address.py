"""Locator MACs: where a host is, written in the MAC address the controller gives out for it.

The controller answers every ARP request itself (controller.core.arp). For a host it
answers with a locator MAC instead of the host's own: ``0e:4b:LL:LL:HH:HH``, where ``LLLL``
is the label of the switch the host is cabled to and ``HHHH`` the host's number on that
switch. Frames then carry their destination switch in their destination MAC, so:

- a transit switch forwards on the label alone (one masked entry per destination switch,
  fewer with a default route, see compiler), never on hosts;
- only the host's own switch has an entry for the host: it puts the host's real MAC back
  before delivering (hosts only ever receive frames addressed to their own MAC).

Why a MAC and not a VLAN or MPLS label: a label pushed by the first switch would need an
entry per destination host at every first switch (switches x hosts again); a MAC the host
itself puts on the frame costs nothing there. VLAN tags are also already the detours'
(fast failover), and MPLS hides the IP header from the meters and routing after it.

``0e`` is a locally administered unicast first octet; ``4b`` ("K") makes a clash with a
host's own locally administered MAC unlikely, and the controller refuses to learn a host
whose MAC is in this range.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PREFIX = 0x0E4B
PREFIX_MAC = "0e:4b:00:00:00:00"
PREFIX_MASK = "ff:ff:00:00:00:00"
LABEL_MASK = "ff:ff:ff:ff:00:00"
MAX_LABEL = 0xFFFF
MAX_INDEX = 0xFFFF  # index 0 is the switch itself (routed traffic for its subnets)


def locator(label: int, index: int) -> str:
    value = (PREFIX << 32) | (label << 16) | index
    return ":".join(f"{(value >> s) & 0xFF:02x}" for s in range(40, -8, -8))


def label_mac(label: int) -> str:
    """The locator of a switch itself (index 0): routed frames for its subnets go to it."""
    return locator(label, 0)


def parse(mac: str) -> tuple[int, int] | None:
    """(label, index) of a locator MAC, None for any other MAC."""
    try:
        value = int(mac.replace(":", ""), 16)
    except ValueError:
        return None
    if value >> 32 != PREFIX or len(mac) != 17:
        return None
    return (value >> 16) & 0xFFFF, value & 0xFFFF


def is_locator(mac: str) -> bool:
    return parse(mac.lower()) is not None


@dataclass
class Locators:
    """Which label each switch has and which number each host has on its switch.

    Sticky: a host keeps its number while it stays on its switch (even when its port
    flaps), and both survive a controller restart (the state dir, and the flows a switch
    holds), because other hosts' ARP caches hold the locators given out.
    """

    labels: dict[int, int] = field(default_factory=dict)  # dpid -> label
    hosts: dict[str, tuple[int, int]] = field(default_factory=dict)  # mac -> (dpid, index)
    _by_label: dict[int, int] = field(default_factory=dict)
    _used: dict[int, set[int]] = field(default_factory=dict)  # dpid -> indexes taken
    _at: dict[tuple[int, int], str] = field(default_factory=dict)  # (dpid, index) -> mac
    _text: dict[str, str] = field(default_factory=dict)  # mac -> its locator, as written
    relabelled: int = 0  # times a switch's label changed (a compiled network must be rebuilt)
    # Labels handed out afresh (not remembered, not read back from a switch): after a restart
    # without the state dir, switches connect in any order, and a fresh label may be the one
    # another switch's flows still carry; that switch takes it back (see adopt).
    _fresh: set[int] = field(default_factory=set)

    def label(self, dpid: int) -> int:
        got = self.labels.get(dpid)
        if got is not None:
            return got
        n = next((i for i in range(1, MAX_LABEL + 1) if i not in self._by_label), None)
        if n is None:
            raise ValueError(f"more than {MAX_LABEL} switches: no label left for {dpid:#x}")
        self._set_label(dpid, n)
        self._fresh.add(dpid)
        return n

    def _set_label(self, dpid: int, label: int) -> None:
        old = self.labels.get(dpid)
        if old is not None:
            self._by_label.pop(old, None)
            self.relabelled += 1
        self.labels[dpid] = label
        self._by_label[label] = dpid
        self._text.clear()
        self._fresh.discard(dpid)

    def host(self, mac: str, dpid: int, present: Mapping[str, Any] | None = None) -> int:
        """The host's number on ``dpid``, given one if it has none there. ``present``: the
        hosts known now; numbers of others are reclaimed only when a switch runs out."""
        got = self.hosts.get(mac)
        if got is not None and got[0] == dpid:
            return got[1]
        used = self._used.setdefault(dpid, set())
        n = next((i for i in range(1, MAX_INDEX + 1) if i not in used), None)
        if n is None and present is not None:
            self._reclaim(dpid, present)
            n = next((i for i in range(1, MAX_INDEX + 1) if i not in used), None)
        if n is None:
            raise ValueError(f"more than {MAX_INDEX} hosts on switch {dpid:#x}")
        self._set_host(mac, dpid, n)
        return n

    def _set_host(self, mac: str, dpid: int, index: int) -> None:
        old = self.hosts.get(mac)
        if old is not None:
            self._used.get(old[0], set()).discard(old[1])
            self._at.pop(old, None)
        self.hosts[mac] = (dpid, index)
        self._used.setdefault(dpid, set()).add(index)
        self._text.pop(mac, None)
        self._at[(dpid, index)] = mac

    def _reclaim(self, dpid: int, present: Mapping[str, Any]) -> None:
        for mac in [m for m, (d, _i) in self.hosts.items() if d == dpid and m not in present]:
            got = self.hosts.pop(mac)
            self._text.pop(mac, None)
            self._used[dpid].discard(got[1])
            self._at.pop(got, None)

    def of(self, mac: str) -> str | None:
        text = self._text.get(mac)
        if text is not None:
            return text
        got = self.hosts.get(mac)
        if got is None or got[0] not in self.labels:
            return None
        text = self._text[mac] = locator(self.labels[got[0]], got[1])
        return text

    def mac_of(self, loc: str) -> str | None:
        """The host a locator was given out for."""
        got = parse(loc)
        if got is None or got[0] not in self._by_label:
            return None
        return self._at.get((self._by_label[got[0]], got[1]))

    def adopt(self, dpid: int, mac: str, loc: str) -> bool:
        """A locator a switch's flows (or the state dir) give for a host on ``dpid``, from
        before a restart: take it, unless its label or number is someone else's now."""
        got = parse(loc)
        if got is None:
            return False
        label, index = got
        owner = self._by_label.get(label)
        taken = owner if owner is not None and owner != dpid else None
        if taken is not None and (taken not in self._fresh or self._numbered(taken)):
            return False
        if self.labels.get(dpid) != label:
            if self._numbered(dpid):
                return False  # numbers were given out under the current label
            if taken is not None:
                # Its owner only had it afresh and no locator under it was given out: it
                # takes another one (its flows are compiled anew with the next change).
                del self.labels[taken]
                self.relabelled += 1
            self._set_label(dpid, label)
            if taken is not None:
                self.label(taken)
        holder = self._at.get((dpid, index))
        if holder is not None and holder != mac:
            return False
        self._set_host(mac, dpid, index)
        return True

    def _numbered(self, dpid: int) -> bool:
        return any(d == dpid for d, _i in self.hosts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "labels": {str(d): n for d, n in sorted(self.labels.items())},
            "hosts": {m: [d, i] for m, (d, i) in sorted(self.hosts.items())},
        }

    @classmethod
    def from_json(cls, doc: Any) -> Locators:
        """From the state dir; damaged entries are skipped (they only cost a new locator)."""
        out = cls()
        if not isinstance(doc, dict):
            return out
        labels = doc.get("labels")
        for d, n in (labels if isinstance(labels, dict) else {}).items():
            try:
                dpid, label = int(d), int(n)
            except (TypeError, ValueError, OverflowError):
                continue
            if 1 <= label <= MAX_LABEL and label not in out._by_label and dpid not in out.labels:
                out._set_label(dpid, label)
        hosts = doc.get("hosts")
        for mac, v in (hosts if isinstance(hosts, dict) else {}).items():
            if not isinstance(v, list) or len(v) != 2:
                continue  # [dpid, index], as to_json writes it
            try:
                dpid, index = int(v[0]), int(v[1])
            except (TypeError, ValueError, OverflowError):
                continue
            if isinstance(mac, str) and 1 <= index <= MAX_INDEX and index not in out._used.get(dpid, set()):
                out._set_host(mac.lower(), dpid, index)
        return out
