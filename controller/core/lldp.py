"""Signed LLDP: frames only Kendali can make, each accepted once, fresh. Pure (time passed in).

Any PC on an OPD's port can send LLDP. Unsigned, a forged frame claiming to come from
another switch's port would make the controller see a link that does not exist and
route traffic into a host (topology poisoning, TopoGuard NDSS 2015). So every frame
Kendali sends carries a sequence number, the time it was sent and an HMAC-SHA256 over
(dpid, port, sequence, time) with a secret kept in the state directory. A frame is
accepted only if

- its HMAC is right (only the controller knows the secret);
- it is fresh (sent at most ``max_age`` seconds ago);
- its sequence number is one we sent out of exactly that (dpid, port) and have not seen
  come back yet: a copy captured on one port and replayed from another is refused,
  because the original already came back, or it left through an edge port and then
  comes back at a port where hosts have been seen (the graph refuses those).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from controller.core.frames import Lldp, lldp_frame, lldp_signed_part

MAC_BYTES = 16


@dataclass
class LldpSigner:
    secret: bytes
    max_age: float = 2.0  # a switch busy installing thousands of flows holds our LLDP that long
    _seq: int = 0
    # seq -> (dpid, port, sent at): frames sent and not yet come back.
    _outstanding: dict[int, tuple[int, int, float]] = field(default_factory=dict)

    def _mac(self, dpid: int, port: int, seq: int, sent_ms: int) -> bytes:
        return hmac.new(self.secret, lldp_signed_part(dpid, port, seq, sent_ms), hashlib.sha256).digest()[:MAC_BYTES]

    def frame(self, dpid: int, port: int, src_mac: str, now: float) -> bytes:
        self._seq += 1
        sent_ms = int(now * 1000)
        self._outstanding[self._seq] = (dpid, port, now)
        return lldp_frame(dpid, port, src_mac, (self._seq, sent_ms, self._mac(dpid, port, self._seq, sent_ms)))

    def verify(self, lldp: Lldp, now: float) -> str | None:
        """None if the frame is genuine, fresh and new; else why it is refused."""
        if lldp.seq is None or lldp.sent_ms is None or lldp.mac is None:
            return "no Kendali proof"
        if not hmac.compare_digest(lldp.mac, self._mac(lldp.dpid, lldp.port, lldp.seq, lldp.sent_ms)):
            return "wrong proof (forged)"
        age = now - lldp.sent_ms / 1000
        if age > self.max_age:
            return f"stale: sent {age:.1f} s ago (replayed?)"
        sent = self._outstanding.pop(lldp.seq, None)
        if sent is None:
            return "already seen or never sent by this controller (replayed)"
        if sent[:2] != (lldp.dpid, lldp.port):
            return "sequence number of another port (replayed)"
        return None

    def expire(self, now: float) -> None:
        """Forget frames older than ``max_age``: they can no longer be accepted anyway."""
        cutoff = now - self.max_age
        for seq in [s for s, (_d, _p, t) in self._outstanding.items() if t < cutoff]:
            del self._outstanding[seq]

    @property
    def outstanding(self) -> int:
        return len(self._outstanding)
