"""Label routes: from every switch, the out port towards every destination switch. Pure.

Frames between switches carry their destination switch's label in their destination MAC
(controller.core.address), so a switch needs one route per destination switch, not per
host. Most of a switch's routes leave by the same port (an office switch has one or two
uplinks), so each switch gets a default route for the port most of its routes use, and
one entry per destination that leaves by another port (an exception). That is longest
prefix routing with two prefix lengths; it forwards exactly as the full table would.

A default route also catches labels nobody has (a stale or forged locator). Such a frame
follows default routes only, so those must never form a cycle: where they would, the
switch with the lowest dpid on the cycle gets no default (all its routes are explicit
and an unknown label is dropped there).

Shortest paths are computed in C (scipy's Dijkstra, from every destination at once); the
tie between equal-cost next hops goes to the neighbour with the lowest dpid, as
NetworkX-based code did before, so paths are the same.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

CHUNK = 256  # destinations per Dijkstra call: bounds the working memory at any size


@dataclass(frozen=True)
class Edge:
    """One direction of a usable link: ``src`` leaves by ``port`` to reach ``dst``."""

    src: int
    dst: int
    cost: int
    port: int


@dataclass
class SwitchRoutes:
    default: int | None  # out port of the default route (None: no default here)
    exceptions: dict[int, int]  # destination dpid -> out port, where it is not the default

    def port_to(self, dest: int) -> int | None:
        return self.exceptions.get(dest, self.default)


class NextHops:
    """Out ports from every switch to every destination, as a matrix (destinations x switches)."""

    def __init__(self, switches: Sequence[int], edges: Iterable[Edge], destinations: Iterable[int]) -> None:
        self.switches = sorted(switches)
        col = {d: i for i, d in enumerate(self.switches)}
        self.col = col
        # One edge per (src, dst), the cheapest (lowest port among equals): scipy's sparse
        # matrix would add up the costs of parallel links into one longer link.
        best: dict[tuple[int, int], tuple[int, int]] = {}
        for e in edges:
            if e.src in col and e.dst in col and e.src != e.dst:
                pair = (col[e.src], col[e.dst])
                best[pair] = min(best.get(pair, (e.cost, e.port)), (e.cost, e.port))
        es = sorted((s, t, c, p) for (s, t), (c, p) in best.items())
        self.dests = sorted(d for d in set(destinations) if d in col)
        n, k = len(self.switches), len(self.dests)
        self.ports = np.full((k, n), -1, dtype=np.int64)
        self.neighbour: dict[tuple[int, int], int] = {(self.switches[s], p): self.switches[t] for s, t, _c, p in es}
        if not es or not k:
            return
        src = np.array([e[0] for e in es], dtype=np.int64)
        dst = np.array([e[1] for e in es], dtype=np.int64)
        cost = np.array([e[2] for e in es], dtype=np.float64)
        port = np.array([e[3] for e in es] + [-1], dtype=np.int64)
        graph = csr_matrix((cost, (src, dst)), shape=(n, n))
        starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
        owners = src[starts]
        pos = np.arange(len(es), dtype=np.int64)
        none = len(es)
        for lo in range(0, k, CHUNK):
            rows = [col[d] for d in self.dests[lo : lo + CHUNK]]
            # Links are symmetric: the distance from a destination is the distance to it.
            dist = dijkstra(graph, directed=True, indices=rows)
            tight = (dist[:, dst] + cost[None, :] == dist[:, src]) & np.isfinite(dist[:, src])
            first = np.minimum.reduceat(np.where(tight, pos[None, :], none), starts, axis=1)
            self.ports[lo : lo + len(rows)][:, owners] = port[first]

    def table(self) -> dict[int, SwitchRoutes]:
        """Every switch's routes, compressed to a default and exceptions."""
        defaults: dict[int, int | None] = {}
        columns = {}
        for j, s in enumerate(self.switches):
            c = self.ports[:, j]
            used = c[c >= 0]
            defaults[s] = int(np.bincount(used).argmax()) if used.size else None
            columns[s] = c
        for s in _cycle_breakers(defaults, self.neighbour):
            defaults[s] = None
        dests = np.array(self.dests, dtype=np.int64)
        out = {}
        for s, c in columns.items():
            d = defaults[s]
            keep = (c >= 0) & (c != (-2 if d is None else d))
            out[s] = SwitchRoutes(d, dict(zip(dests[keep].tolist(), c[keep].tolist(), strict=True)))
        return out


def _cycle_breakers(defaults: dict[int, int | None], neighbour: dict[tuple[int, int], int]) -> list[int]:
    """The lowest dpid on each cycle of default routes."""
    nxt = {s: neighbour.get((s, p)) for s, p in defaults.items() if p is not None}
    state: dict[int, int] = {}  # 1: on the current walk, 2: done
    out = []
    for start in sorted(nxt):
        walk = []
        s: int | None = start
        while s is not None and s in nxt and state.get(s) is None:
            state[s] = 1
            walk.append(s)
            s = nxt[s]
        if s is not None and state.get(s) == 1:
            out.append(min(walk[walk.index(s) :]))
        for w in walk:
            state[w] = 2
    return out
