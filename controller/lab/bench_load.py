"""`kendali bench load`: the REST API under 50 concurrent clients, during a lab failover.

ring4 in Mininet with its own controller (declared topology, its own state dir).
CLIENTS clients on loopback, each on its own keep-alive HTTP/1.1 connection, send one
request after another (no pause: the controller is kept as busy as they can make it)
for SECONDS: reads (GET /v1/policies, /v1/policies/{id}, /v1/topology, /v1/health)
and writes (PUT and DELETE of the client's own two policies), every request with the
token. Meanwhile the r1-r2 link loses carrier at CUT_AT and comes back at RESTORE_AT,
so the controller fails over and restores paths while it serves, and a UDP probe
stream h1 -> h2 crosses that link.

Checked at the end, per policy id: the writes the clients were told succeeded, in the
order they were told, are exactly that id's lines in the state dir's audit.jsonl, and
the final GET /v1/policies holds the last of them (absent if it was a DELETE). A write
that timed out or lost its connection has an unknown outcome: it is counted, and its
policy id is left out of the check. Every PUT changes the policy (a new download
rate), so every acknowledged PUT must have its own audit line.

Clients are coroutines in one asyncio loop (a small HTTP/1.1 client: no thread per
client competing for the interpreter lock), so latencies are the server's, plus the
loop's own turn.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.errors import KendaliError

ROOT = Path(__file__).resolve().parents[2]
RING4 = ROOT / "topologies" / "ring4.yaml"
CLIENTS = 50
SECONDS = 20.0
CUT_AT, RESTORE_AT = 6.0, 12.0
CUT = ("r1", "r2")
PROBE = ("h1", "h2")  # adjacent on r1-r2: the stream crosses the cut link
REQUEST_TIMEOUT = 10.0
# Share of each kind in the mix (reads 75 %, writes 25 %).
MIX = {
    "GET policies": 20,
    "GET policy": 15,
    "GET topology": 25,
    "GET health": 15,
    "PUT policy": 15,
    "DELETE policy": 10,
}


@dataclass
class Client:
    n: int
    ids: tuple[str, ...]
    rng: random.Random
    present: dict[str, bool] = field(default_factory=dict)
    version: dict[str, int] = field(default_factory=dict)
    # id -> the writes this client was told succeeded, in order: ("put", kbps) or ("delete", None)
    acked: dict[str, list[tuple[str, int | None]]] = field(default_factory=dict)
    unknown: set[str] = field(default_factory=set)  # ids with a write of unknown outcome

    def policy(self, pid: str) -> dict[str, Any]:
        i = self.ids.index(pid)
        # 172.16.<client>.<0|128>/25: no two policies overlap, none is a lab subnet.
        return {
            "id": pid,
            "name": f"Load client {self.n} policy {i}",
            "subnets": [f"172.16.{self.n}.{128 * i}/25"],
            "download_kbps": 1000 + self.version[pid],
            "upload_kbps": 2000,
        }


@dataclass
class Sample:
    kind: str
    started: float  # seconds since the run started
    latency: float
    ok: bool
    detail: str = ""


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split()[1])
    length, chunked, close = 0, False, False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding" and "chunked" in value:
            chunked = True
        elif name == "connection" and "close" in value:
            close = True
    if not chunked:
        return status, (await reader.readexactly(length) if length else b""), close
    body = b""
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return status, body, close
        body += await reader.readexactly(size)
        await reader.readline()


class Connection:
    """One client's keep-alive connection; reopened after any failure."""

    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        data = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Length: {len(data)}\r\n"
        )
        if body is not None:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + data)
        await self.writer.drain()
        status, raw, close = await _read_response(self.reader)
        if close:
            await self.close()
        return status, raw

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


async def _client(c: Client, port: int, token: str, t0: float, until: float, samples: list[Sample]) -> None:
    conn = Connection(port, token)
    kinds, weights = list(MIX), list(MIX.values())
    try:
        while time.monotonic() < until:
            kind = c.rng.choices(kinds, weights)[0]
            pid = c.rng.choice(c.ids)
            if kind == "DELETE policy" and not c.present[pid]:
                kind = "PUT policy"  # deleting what is not there teaches nothing
            method, path, body, want = {
                "GET policies": ("GET", "/v1/policies", None, (200,)),
                "GET policy": (
                    "GET",
                    f"/v1/policies/{pid}",
                    None,
                    (200, 404) if pid in c.unknown else (200,) if c.present[pid] else (404,),
                ),
                "GET topology": ("GET", "/v1/topology", None, (200,)),
                "GET health": ("GET", "/v1/health", None, (200,)),
                "PUT policy": ("PUT", f"/v1/policies/{pid}", None, (200, 201)),
                "DELETE policy": ("DELETE", f"/v1/policies/{pid}", None, (204,)),
            }[kind]
            if kind == "PUT policy":
                c.version[pid] += 1
                body = c.policy(pid)
            start = time.monotonic()
            try:
                status, raw = await asyncio.wait_for(conn.request(method, path, body), REQUEST_TIMEOUT)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
                samples.append(Sample(kind, start - t0, time.monotonic() - start, False, f"{type(exc).__name__}"))
                if method in ("PUT", "DELETE"):
                    c.unknown.add(pid)
                await conn.close()
                continue
            ok = status in want
            samples.append(
                Sample(
                    kind,
                    start - t0,
                    time.monotonic() - start,
                    ok,
                    "" if ok else f"{status} {raw[:120].decode('utf-8', 'replace')}",
                )
            )
            if ok and kind == "PUT policy":
                c.present[pid] = True
                c.acked[pid].append(("put", c.policy(pid)["download_kbps"]))
            elif ok and kind == "DELETE policy":
                c.present[pid] = False
                c.acked[pid].append(("delete", None))
            elif not ok and method in ("PUT", "DELETE"):
                c.unknown.add(pid)  # refused or failed: the check below cannot say what it should be
    finally:
        await conn.close()


async def _all_clients(clients: list[Client], port: int, token: str, t0: float, seconds: float) -> list[Sample]:
    samples: list[Sample] = []
    until = t0 + seconds
    await asyncio.gather(*(_client(c, port, token, t0, until, samples) for c in clients))
    return samples


def make_clients(n: int, seed: int = 13) -> list[Client]:
    clients = []
    for i in range(n):
        ids = (f"load{i:02d}a", f"load{i:02d}b")
        c = Client(i, ids, random.Random(seed * 1000 + i))
        for pid in ids:
            c.present[pid], c.version[pid], c.acked[pid] = False, 0, []
        clients.append(c)
    return clients


# ---------------------------------------------------------------- the check


def check_writes(clients: list[Client], final: dict[str, dict], audit: list[dict]) -> dict[str, Any]:
    """Per policy id: acknowledged writes == audit lines (in order) and the final state == the last one."""
    by_id: dict[str, list[tuple[str, int | None]]] = {}
    for e in audit:
        if e.get("action") == "put":
            by_id.setdefault(e["id"], []).append(("put", (e.get("after") or {}).get("download_kbps")))
        elif e.get("action") == "delete":
            by_id.setdefault(e["id"], []).append(("delete", None))
    lost, reordered, extra, wrong_final, checked, skipped = [], [], [], [], 0, 0
    for c in clients:
        for pid in c.ids:
            if pid in c.unknown:
                skipped += 1
                continue
            checked += 1
            told, logged = c.acked[pid], by_id.get(pid, [])
            if told != logged:
                if sorted(told, key=str) == sorted(logged, key=str):
                    reordered.append(pid)
                elif len(told) > len(logged) or any(w not in logged for w in told):
                    lost.append(pid)
                else:
                    extra.append(pid)
            last = told[-1] if told else ("delete", None)
            have = final.get(pid)
            if (last[0] == "put") != (have is not None) or (have is not None and have["download_kbps"] != last[1]):
                wrong_final.append(pid)
    return {
        "policy_ids_checked": checked,
        "policy_ids_unknown_outcome": skipped,
        "writes_acknowledged": sum(len(c.acked[p]) for c in clients for p in c.ids),
        "lost": lost,
        "reordered": reordered,
        "unexplained_audit_lines": extra,
        "final_state_wrong": wrong_final,
        "ok": not (lost or reordered or extra or wrong_final),
    }


def _pct(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def summarise(samples: list[Sample], seconds: float) -> list[dict[str, Any]]:
    rows = []
    for kind in [*MIX, "all"]:
        mine = [s for s in samples if kind == "all" or s.kind == kind]
        lat = [s.latency * 1000 for s in mine]
        rows.append(
            {
                "kind": kind,
                "requests": len(mine),
                "per_s": len(mine) / seconds,
                "errors": sum(1 for s in mine if not s.ok),
                "p50_ms": statistics.median(lat) if lat else None,
                "p99_ms": _pct(lat, 0.99),
                "max_ms": max(lat) if lat else None,
            }
        )
    return rows


def by_phase(samples: list[Sample]) -> list[dict[str, Any]]:
    """Latency before the cut, while failing over and restoring, and after."""
    phases = [
        ("before the cut", 0.0, CUT_AT),
        ("link down", CUT_AT, RESTORE_AT),
        ("link back", RESTORE_AT, SECONDS + 1),
    ]
    rows = []
    for name, a, b in phases:
        lat = [s.latency * 1000 for s in samples if a <= s.started < b]
        rows.append(
            {
                "kind": f"all, {name}",
                "requests": len(lat),
                "per_s": len(lat) / (min(b, SECONDS) - a),
                "errors": sum(1 for s in samples if a <= s.started < b and not s.ok),
                "p50_ms": statistics.median(lat) if lat else None,
                "p99_ms": _pct(lat, 0.99),
                "max_ms": max(lat) if lat else None,
            }
        )
    return rows


COLUMNS = [
    ("kind", "request"),
    ("requests", "count"),
    ("per_s", "per s"),
    ("errors", "errors"),
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
    ("max_ms", "max ms"),
]


# ---------------------------------------------------------------- the run


def bench(clients_n: int = CLIENTS, seconds: float = SECONDS, log: Any = print) -> dict[str, Any]:
    from controller.lab.bench_failover import ProbeStream, wait_link_in_use
    from controller.lab.labctl import ControllerProcess
    from controller.lab.mininet_lab import Lab

    ctl = ControllerProcess(RING4, keep_log=True)
    log(f"controller log: {ctl.log_path}")
    token = ctl.token
    assert token is not None  # ControllerProcess's default token; every client sends it
    with ctl:
        with Lab(RING4, controller_port=ctl.ofp_port, prefix="kbl") as lab:
            _, m = lab.wait_reachable(60, wait_s=0.5)
            if not m.complete:
                raise KendaliError("ring4 not fully reachable: " + lab.report(m), "bench load")
            if wait_link_in_use(ctl, *CUT, timeout=20) is None:
                raise KendaliError(f"link {CUT[0]}-{CUT[1]} not in use", "bench load")
            clients = make_clients(clients_n)
            stream = ProbeStream(lab, PROBE[0], PROBE[1], seconds, interval=0.001, port=9601).start()
            t0 = time.monotonic()
            box: dict[str, Any] = {}

            def load() -> None:
                try:
                    box["samples"] = asyncio.run(_all_clients(clients, ctl.rest_port, token, t0, seconds))
                except BaseException as exc:  # reported by the main thread
                    box["error"] = exc

            runner = threading.Thread(target=load, daemon=True)
            runner.start()
            events: dict[str, float | None] = {}
            _sleep_until(t0 + CUT_AT)
            lab.link_down(*CUT)
            events["cut_s"] = time.monotonic() - t0
            events["controller_saw_cut_s"] = _wait_link_state(ctl, CUT, "down", 5.0, t0)
            _sleep_until(t0 + RESTORE_AT)
            lab.link_up(*CUT)
            restored = events["restored_s"] = time.monotonic() - t0
            back = wait_link_in_use(ctl, *CUT, timeout=max(1.0, seconds - RESTORE_AT))
            events["link_in_use_again_s"] = None if back is None else restored + back
            runner.join(seconds + REQUEST_TIMEOUT + 10)
            probe = stream.finish()
            if "error" in box:
                raise KendaliError(f"the clients failed: {box['error']!r}", "bench load")
            samples: list[Sample] = box.get("samples", [])
            final = {p["id"]: p for p in ctl.get("/v1/policies")["policies"]}
            audit = _read_audit(ctl.state_dir / "audit.jsonl")
            alive = ctl.proc is not None and ctl.proc.poll() is None
    check = check_writes(clients, final, audit)
    errors = [s for s in samples if not s.ok]
    return {
        "benchmark": "load",
        "topology": "ring4",
        "clients": clients_n,
        "seconds": seconds,
        "cut": f"{CUT[0]}-{CUT[1]}",
        "events": events,
        "mix_percent": MIX,
        "rows": summarise(samples, seconds),
        "phases": by_phase(samples),
        "throughput_per_s": len(samples) / seconds,
        "errors": len(errors),
        "error_examples": sorted({f"{s.kind}: {s.detail}" for s in errors})[:10],
        "writes": check,
        "controller_alive": alive,
        "probe_h1_h2": {
            k: probe.get(k) for k in ("sent", "lost", "max_gap_ms", "unrecovered", "duplicates", "lost_runs")
        },
    }


def _sleep_until(t: float) -> None:
    delay = t - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def _wait_link_state(ctl: Any, link: tuple[str, str], state: str, timeout: float, t0: float) -> float | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for k in ctl.get("/v1/topology")["links"]:
            if {k["a"]["name"], k["b"]["name"]} == set(link) and k["state"] == state:
                return time.monotonic() - t0
        time.sleep(0.02)
    return None


def _read_audit(path: Path) -> list[dict]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line: the store skips it too
    return out


def run(args: Any) -> int:
    from controller.lab.bench import table, write_json

    print(
        f"REST under load: {CLIENTS} clients on loopback, one keep-alive connection each, no pause between\n"
        f"requests, {SECONDS:g} s; reads and writes mixed ({', '.join(f'{k} {v} %' for k, v in MIX.items())}),\n"
        f"every request with the token. ring4 lab: link {CUT[0]}-{CUT[1]} loses carrier at {CUT_AT:g} s and comes\n"
        f"back at {RESTORE_AT:g} s, while probes h1 -> h2 cross it.\n",
        flush=True,
    )
    res = bench()
    print(table(res["rows"] + res["phases"], COLUMNS))
    ev, w, p = res["events"], res["writes"], res["probe_h1_h2"]
    print(
        f"\nthroughput {res['throughput_per_s']:,.0f} requests/s; errors {res['errors']}"
        + (f" (e.g. {res['error_examples'][:3]})" if res["errors"] else "")
    )
    print(
        f"failover: cut at {ev['cut_s']:.2f} s, controller showed it down at "
        f"{_s(ev['controller_saw_cut_s'])}; restored at {ev['restored_s']:.2f} s, in use again at "
        f"{_s(ev['link_in_use_again_s'])}; probes h1 -> h2: {p['lost']} of {p['sent']} lost, "
        f"longest gap {p['max_gap_ms'] or 0:.1f} ms; losses (start s, count): "
        f"{[(round(a * 0.001, 2), n) for a, n in (p.get('lost_runs') or [])[:8]]}"
    )
    print(
        f"writes: {w['writes_acknowledged']} acknowledged on {w['policy_ids_checked']} policy ids "
        f"({w['policy_ids_unknown_outcome']} ids left out: a write of unknown outcome); "
        + (
            "audit log and final state agree with every client, in order"
            if w["ok"]
            else f"LOST {w['lost']} REORDERED {w['reordered']} UNEXPLAINED {w['unexplained_audit_lines']} "
            f"WRONG FINAL STATE {w['final_state_wrong']}"
        )
    )
    out = write_json("load", res, getattr(args, "json", None))
    print(f"\nJSON: {out}")
    return 0 if w["ok"] and res["controller_alive"] else 1


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} s"
