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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

CHUNK = 256  # destinations per Dijkstra call: bounds the working memory at any size
UNREACHABLE = 2**30  # a distance no path reaches (costs are at most 100,000 a link)

Pair = tuple[int, int]  # two switches, lower dpid first


@dataclass(frozen=True)
class PairLink:
    """The link two switches use between them (the best of parallel links)."""

    cost: int
    key: tuple[int, int, int, int]
    ports: tuple[int, int]  # (port at the lower dpid, port at the higher)


@dataclass
class SwitchRoutes:
    default: int | None  # out port of the default route (None: no default here)
    exceptions: dict[int, int]  # destination dpid -> out port, where it is not the default

    def port_to(self, dest: int) -> int | None:
        return self.exceptions.get(dest, self.default)


class RouteTable:
    """Distances and out ports between all switches: row = destination, column = switch.

    ``change`` recomputes only the rows (destinations) a changed link can matter to: those
    whose shortest paths used it, and those it offers a path at least as short.
    """

    def __init__(self, switches: Iterable[int], links: Mapping[Pair, PairLink]) -> None:
        self.switches = sorted(switches)
        self.col = {d: i for i, d in enumerate(self.switches)}
        n = len(self.switches)
        self.dist = np.full((n, n), np.inf)
        self.ports = np.full((n, n), -1, dtype=np.int32)
        self.nh = np.full((n, n), -1, dtype=np.int32)  # the next switch (its column), -1: none
        self._edges(links)
        self._rows(np.arange(n))

    def _edges(self, links: Mapping[Pair, PairLink]) -> None:
        col = self.col
        es = []
        for (u, v), pl in links.items():
            if u in col and v in col:
                es.append((col[u], col[v], pl.cost, pl.ports[0]))
                es.append((col[v], col[u], pl.cost, pl.ports[1]))
        es.sort()
        self._src = np.array([e[0] for e in es], dtype=np.int64)
        self._dst = np.array([e[1] for e in es], dtype=np.int64)
        self._cost = np.array([e[2] for e in es], dtype=np.float64)
        self._port = np.array([e[3] for e in es] + [-1], dtype=np.int64)
        self.neighbour = {(self.switches[a], p): self.switches[b] for a, b, _c, p in es}
        self._derived()

    def _derived(self) -> None:
        n = len(self.switches)
        self._dst_ext = np.r_[self._dst, -1]
        self._icost = self._cost.astype(np.int32)
        self._graph = csr_matrix((self._cost, (self._src, self._dst)), shape=(n, n))
        has = len(self._src) > 0
        self._starts = np.flatnonzero(np.r_[True, self._src[1:] != self._src[:-1]]) if has else np.array([], dtype=int)

    def _patch(self, iu: int, iv: int, old: PairLink | None, new: PairLink | None) -> None:
        """The edge arrays with one pair's link replaced (what _edges would build, without
        going through every link in Python)."""
        src, dst, n = self._src, self._dst, len(self.switches)
        keep = ~(((src == iu) & (dst == iv)) | ((src == iv) & (dst == iu)))
        src, dst, cst, port = src[keep], dst[keep], self._cost[keep], self._port[:-1][keep]
        if old is not None:
            self.neighbour.pop((self.switches[iu], old.ports[0]), None)
            self.neighbour.pop((self.switches[iv], old.ports[1]), None)
        if new is not None:
            for a, b, p in ((iu, iv, new.ports[0]), (iv, iu, new.ports[1])):
                at = int(np.searchsorted(src * n + dst, a * n + b))
                src, dst = np.insert(src, at, a), np.insert(dst, at, b)
                cst, port = np.insert(cst, at, float(new.cost)), np.insert(port, at, p)
                self.neighbour[(self.switches[a], p)] = self.switches[b]
        self._src, self._dst, self._cost, self._port = src, dst, cst, np.r_[port, -1]
        self._derived()

    def _rows(self, rows: np.ndarray) -> None:
        if not len(rows):
            return
        if not len(self._src):
            self.dist[rows] = np.inf
            self.dist[rows, rows] = 0.0
            self.ports[rows] = -1
            self.nh[rows] = -1
            return
        owners = self._src[self._starts]
        pos = np.arange(len(self._src), dtype=np.int64)
        none = len(self._src)
        for lo in range(0, len(rows), CHUNK):
            chunk = rows[lo : lo + CHUNK]
            # Links are symmetric: the distance from a destination is the distance to it.
            dist = dijkstra(self._graph, directed=True, indices=chunk)
            self.dist[chunk] = dist
            # Costs are whole numbers: compare distances as int32 (half the memory to go
            # through as float64); unreachable is a number no path reaches.
            whole = np.where(np.isfinite(dist), dist, UNREACHABLE).astype(np.int32)
            via = whole[:, self._dst]
            via += self._icost
            tight = (via == whole[:, self._src]) & (whole[:, self._src] < UNREACHABLE)
            first = np.minimum.reduceat(np.where(tight, pos[None, :], none), self._starts, axis=1)
            out = np.full((len(chunk), len(self.switches)), -1, dtype=np.int32)
            out[:, owners] = self._port[first]
            self.ports[chunk] = out
            out[:, owners] = self._dst_ext[first]
            self.nh[chunk] = out

    def change(
        self, links: Mapping[Pair, PairLink], changed: Mapping[Pair, tuple[PairLink | None, PairLink | None]]
    ) -> set[int]:
        """The links are now ``links``; ``changed``: pair -> (before, after). Returns the
        switches whose out port to some destination changed.

        One link lost or added (the common case) is repaired where it can be: a switch
        that no shortest path passes through only needs its own entry recomputed from its
        neighbours' distances; a new link that makes no one else's path shorter likewise.
        Everything else recomputes the destinations concerned (their whole rows)."""
        col = self.col
        real = {pr: ba for pr, ba in changed.items() if pr[0] in col and pr[1] in col}
        if len(real) == 1:
            ((u, v), (old, new)) = next(iter(real.items()))
            self._patch(col[u], col[v], old, new)
            if old is not None and new is not None and old.cost == new.cost:
                return self._ports_moved(col[u], col[v], new)
            if new is None:
                return self._removed(col[u], col[v])
            if old is None:
                return self._added(col[u], col[v], new)
        affected = np.zeros(len(self.switches), dtype=bool)
        for (u, v), (old, new) in real.items():
            du, dv = self.dist[:, col[u]], self.dist[:, col[v]]
            if old is not None:  # destinations whose shortest paths may have used it
                affected |= (du + old.cost == dv) | (dv + old.cost == du)
            if new is not None:  # destinations it may offer a path at least as short to
                affected |= (du + new.cost <= dv) | (dv + new.cost <= du)
        self._edges(links)
        return self._recompute(np.flatnonzero(affected))

    def _recompute(self, rows: np.ndarray) -> set[int]:
        if not len(rows):
            return set()
        before = self.ports[rows].copy()
        self._rows(rows)
        moved = (before != self.ports[rows]).any(axis=0)
        return {self.switches[j] for j in np.flatnonzero(moved).tolist()}

    def _ports_moved(self, iu: int, iv: int, new: PairLink) -> set[int]:
        """Same cost, other ports (a parallel link took over): only the ports change."""
        out = set()
        for a, b, port in ((iu, iv, new.ports[0]), (iv, iu, new.ports[1])):
            rows = np.flatnonzero(self.nh[:, a] == b)
            if len(rows) and (self.ports[rows, a] != port).any():
                self.ports[rows, a] = port
                out.add(self.switches[a])
        return out

    def _removed(self, iu: int, iv: int) -> set[int]:
        moved: set[int] = set()
        full = np.zeros(len(self.switches), dtype=bool)
        for a, b in ((iu, iv), (iv, iu)):
            rows = np.flatnonzero(self.nh[:, a] == b)
            if not len(rows):
                continue
            # Through a switch some other switch's path passes, the loss spreads: recompute.
            through = (self.nh[rows] == a).any(axis=1)
            full[rows[through]] = True
            leaf = rows[~through]
            if len(leaf) and self._repair(a, leaf):
                moved.add(self.switches[a])
        return moved | self._recompute(np.flatnonzero(full))

    def _repair(self, a: int, rows: np.ndarray) -> bool:
        """Switch ``a``'s own entry in ``rows``, where no path passes through it: the best of
        its neighbours (whose distances do not depend on it), lowest dpid on a tie."""
        mine = self._src == a
        ws, cs, ps = self._dst[mine], self._cost[mine], self._port[:-1][mine]
        before = self.ports[rows, a].copy()
        if not len(ws):
            self.dist[rows, a] = np.inf
            self.ports[rows, a] = -1
            self.nh[rows, a] = -1
        else:
            cand = self.dist[np.ix_(rows, ws)] + cs[None, :]
            best = cand.min(axis=1)
            ok = np.isfinite(best)
            first = ((cand == best[:, None]) & ok[:, None]).argmax(axis=1)
            self.dist[rows, a] = best
            self.ports[rows, a] = np.where(ok, ps[first], -1)
            self.nh[rows, a] = np.where(ok, ws[first], -1)
        return bool((before != self.ports[rows, a]).any())

    def _added(self, iu: int, iv: int, new: PairLink) -> set[int]:
        moved: set[int] = set()
        full = np.zeros(len(self.switches), dtype=bool)
        for a, b, port in ((iu, iv, new.ports[0]), (iv, iu, new.ports[1])):
            via = self.dist[:, b] + new.cost
            here = self.dist[:, a]
            # A tie: no distance changes, a's next hop is the lowest dpid of the equal ones.
            tie = np.flatnonzero((via == here) & np.isfinite(via) & (b < self.nh[:, a]))
            if len(tie):
                self.ports[tie, a] = port
                self.nh[tie, a] = b
                moved.add(self.switches[a])
            better = np.flatnonzero(via < here)
            if not len(better):
                continue
            # Shorter for a: local only if no neighbour of a gets a path as short through a.
            mine = (self._src == a) & (self._dst != b)
            xs, cs = self._dst[mine], self._cost[mine]
            spreads = (
                (via[better, None] + cs[None, :] <= self.dist[np.ix_(better, xs)]).any(axis=1)
                if len(xs)
                else np.zeros(len(better), dtype=bool)
            )
            full[better[spreads]] = True
            local = better[~spreads]
            if len(local):
                self.dist[local, a] = via[local]
                self.ports[local, a] = port
                self.nh[local, a] = b
                moved.add(self.switches[a])
        return moved | self._recompute(np.flatnonzero(full))

    def mode(self, dpid: int) -> int | None:
        """The out port most of ``dpid``'s routes use (lowest port on a tie)."""
        c = self.ports[:, self.col[dpid]]
        used = c[c >= 0]
        return int(np.bincount(used).argmax()) if used.size else None

    def routes(self, dpid: int, default: int | None) -> SwitchRoutes:
        c = self.ports[:, self.col[dpid]]
        keep = (c >= 0) & (c != (-2 if default is None else default))
        dests = [self.switches[j] for j in np.flatnonzero(keep).tolist()]
        return SwitchRoutes(default, dict(zip(dests, c[keep].tolist(), strict=True)))

    def distance(self, a: int, b: int) -> float:
        return float(self.dist[self.col[a], self.col[b]])


def cycle_breakers(defaults: Mapping[int, int | None], neighbour: Mapping[tuple[int, int], int]) -> set[int]:
    """The lowest dpid on each cycle of default routes."""
    nxt = {s: neighbour.get((s, p)) for s, p in defaults.items() if p is not None}
    state: dict[int, int] = {}  # 1: on the current walk, 2: done
    out = set()
    for start in sorted(nxt):
        walk = []
        s: int | None = start
        while s is not None and s in nxt and state.get(s) is None:
            state[s] = 1
            walk.append(s)
            s = nxt[s]
        if s is not None and state.get(s) == 1:
            out.add(min(walk[walk.index(s) :]))
        for w in walk:
            state[w] = 2
    return out
