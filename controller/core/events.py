"""What happened to the network lately, for people: the web console's event list and
GET /v1/events. Pure: the caller passes the time; nothing here reads a clock or a file.

The controller (controller.core.controller) appends an event wherever it logs one:

    failover         a link lost carrier or liveness (BFD: its port is no longer OFPPS_LIVE);
                     fast failover bypassed it, shortest paths restored
    link_silent      a link's LLDP went silent (carrier up); routed around it
    link_up          a link was discovered (again)
    switch_up        a switch connected and reported its ports
    switch_down      a switch disconnected
    drift_repaired   the audit found a switch holding something else than it should; repaired
    topology_check   discovery and the declared topology disagree (or agree again)

Each event is a plain dict ``{"t": unix seconds, "kind": str, "text": str}`` plus optional
fields (``link``: "core:1-edge-a:1", ``switch``: a name, ``dpid``). Only the last
``MAX_EVENTS`` are kept: the log file is the complete record, this is the recent picture.
"""

from __future__ import annotations

from collections import deque
from typing import Any

MAX_EVENTS = 500

Event = dict[str, Any]


class Events:
    """A bounded list of recent events, oldest dropped first."""

    def __init__(self, maxlen: int = MAX_EVENTS) -> None:
        self._events: deque[Event] = deque(maxlen=maxlen)

    def add(self, t: float, kind: str, text: str, **fields: Any) -> Event:
        event: Event = {"t": t, "kind": kind, "text": text}
        event.update({k: v for k, v in fields.items() if v is not None})
        self._events.append(event)
        return event

    def __len__(self) -> int:
        return len(self._events)

    def query(self, since: float | None = None, limit: int | None = None) -> list[Event]:
        """Newest first: events at or after ``since`` (unix seconds), at most ``limit``.
        Copies: the caller (another green thread, the REST API) may keep them."""
        snapshot = list(self._events)  # one step: nothing is appended half-way through
        out: list[Event] = []
        for e in reversed(snapshot):
            if since is not None and e["t"] < since:
                continue  # not break: the wall clock the shell passes in may step back
            if limit is not None and len(out) >= limit:
                break
            out.append(dict(e))
        return out
