"""`kendali bench failover`: how long traffic stops when a ring link fails or comes back.

A UDP probe stream (controller.lab.probe, one datagram every PROBE_INTERVAL) runs between
two hosts whose path crosses the ring link r1-r2 (or another ring link, in rotation);
during the stream the link

* loses carrier (both veth ends administratively down),
* fails silently: carrier stays up, both ends stop transmitting (a tc clsact egress
  filter whose classic-BPF program returns TC_ACT_SHOT; the kernel here has neither
  netem nor gact/matchall, see silent_fail()), so only LLDP (Kendali) or missed BPDUs
  (RSTP) can tell,
* comes back (carrier restored after a failure the network had already routed around).

The receiver reports the longest gap between consecutive arrivals and the lost probes.
The same is done with Open vSwitch's own RSTP (standalone bridges, no controller) on
the same topology in the same run, and a no-failure baseline shows the stream's own
noise floor on this machine (a Python sender inside a Mininet host on a shared CPU).
Last, controller.lab.ovs_floor measures Open vSwitch's own fast-failover on a bridge alone:
the floor under any controller's carrier-loss figure here.

Helpers here (silent_fail, ProbeStream, path_switches, ...) are shared with
tests/test_lab_failover.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import networkx as nx

from controller.errors import KendaliError
from controller.lab import ovs_floor
from controller.lab.mininet_lab import controller_args

REPO = Path(__file__).resolve().parents[2]
RING4 = REPO / "topologies" / "ring4.yaml"
SYSTEM_PYTHON = "/usr/bin/python3"  # Mininet hosts run the probe with the system Python
PROBE_INTERVAL = 0.0005
RUNS = 5
RSTP_SILENT_RUNS = 3  # each takes ~10 s: RSTP only notices after three missed hellos
# With BFD (mininet_lab.BFD_MS x BFD_MULT) on every inter-switch interface, the controller told that
# the switches judge liveness (LLDP on links every 2 s). NO_BFD_ARGS: the controller judges
# alone, LLDP on each link every 0.1 s, 0.5 s of silence kills (`kendali bench failover --no-bfd`).
CONTROLLER_ARGS: list[str] = controller_args(bfd=True)  # [] with KENDALI_LAB_BFD=0
NO_BFD_ARGS: list[str] = []

# Classic BPF, one instruction: "ret #2" = TC_ACT_SHOT in direct-action mode: drop all.
_DROP_ALL_BPF = "1,6 0 0 2"


# ---------------------------------------------------------------- failures


def _link_intfs(lab: Any, a: str, b: str) -> list[Any]:
    return [i for link in lab._links_between(a, b) for i in (link.intf1, link.intf2)]


def silent_fail(lab: Any, a: str, b: str) -> None:
    """The a-b link stops passing frames both ways while its carrier stays up.

    An egress (not ingress) drop on both veth ends: OVS's userspace datapath reads
    frames with an AF_PACKET socket, which sees them before tc ingress runs, so an
    ingress drop would not stop OVS from receiving. Egress clsact runs in
    dev_queue_xmit before the frame reaches the veth peer.
    """
    for intf in _link_intfs(lab, a, b):
        for cmd in (
            f"tc qdisc add dev {intf.name} clsact",
            f"tc filter add dev {intf.name} egress bpf da bytecode '{_DROP_ALL_BPF}'",
        ):
            r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
            if r.returncode:
                raise KendaliError(f"{cmd}: {r.stderr.strip()}", "silent failure")


def silent_restore(lab: Any, a: str, b: str) -> None:
    for intf in _link_intfs(lab, a, b):
        subprocess.run(["tc", "qdisc", "del", "dev", intf.name, "clsact"], capture_output=True)


def carrier(lab: Any, a: str, b: str) -> bool:
    """True if both ends of the a-b link report carrier (LOWER_UP)."""
    for intf in _link_intfs(lab, a, b):
        out = subprocess.run(["ip", "-o", "link", "show", intf.name], capture_output=True, text=True).stdout
        if "LOWER_UP" not in out:
            return False
    return True


# ---------------------------------------------------------------- paths


def host_switch(topology: Any, host: str) -> str:
    h = next(h for h in topology.hosts if h.name == host)
    return topology.subnets[h.subnet].switch


def path_switches(topology: Any, src: str, dst: str, cut: tuple[str, str] | None = None) -> list[str]:
    """Kendali's path src -> dst by switch name, from the same next_hops the compiler uses."""
    from controller.core.compiler import next_hops
    from controller.core.graph import cost

    g = nx.Graph()
    for l in topology.links:
        if cut and {l.a, l.b} == set(cut):
            continue
        g.add_edge(topology.switches[l.a].dpid, topology.switches[l.b].dpid, cost=cost(l.capacity_mbps))
    by_dpid = {s.dpid: s.name for s in topology.switches.values()}
    s, d = topology.switches[host_switch(topology, src)].dpid, topology.switches[host_switch(topology, dst)].dpid
    hops = next_hops(g, d)
    path = [s]
    while path[-1] != d:
        path.append(hops[path[-1]])
    return [by_dpid[p] for p in path]


def crosses(path: list[str], a: str, b: str) -> bool:
    return any({x, y} == {a, b} for x, y in pairwise(path))


def rstp_forwarding_links(lab: Any, candidates: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Candidate links whose both ends are RSTP Forwarding (on the active tree)."""
    states: dict[str, str] = {}
    for sw in lab.topology.switches:
        br = lab.names[sw]
        out = subprocess.run(["ovs-appctl", "rstp/show", br], capture_output=True, text=True).stdout
        for m in re.finditer(r"^\s+(\S+)\s+(\w+)\s+(\w+)\s+\d+", out, re.M):
            states[m.group(1)] = m.group(3).lower()  # interface, role, state
    fwd = []
    for a, b in candidates:
        if all(states.get(i.name) == "forwarding" for i in _link_intfs(lab, a, b)):
            fwd.append((a, b))
    return fwd


# ---------------------------------------------------------------- probe stream


class ProbeStream:
    """controller.lab.probe between two lab hosts: receiver in the background, sender in its shell."""

    def __init__(
        self, lab: Any, src: str, dst: str, seconds: float, interval: float = PROBE_INTERVAL, port: int = 9000
    ) -> None:
        self.lab, self.src, self.dst = lab, src, dst
        self.seconds, self.interval, self.port = seconds, interval, port
        fd, name = tempfile.mkstemp(prefix="kendali-probe-", suffix=".json")
        os.close(fd)
        self.out = Path(name)
        self.t_start = 0.0

    def _env(self) -> str:
        return f"cd {REPO} && PYTHONPATH={REPO} {SYSTEM_PYTHON} -m controller.lab.probe"

    def start(self) -> ProbeStream:
        d, s = self.lab.host(self.dst), self.lab.host(self.src)
        d.cmd(f"( {self._env()} recv --port {self.port} --seconds {self.seconds + 1.5:g} > {self.out} 2>&1 & )")
        deadline = time.monotonic() + 5
        while not d.cmd(f"ss -Hlun 'sport = :{self.port}'").strip():
            if time.monotonic() > deadline:
                raise KendaliError("probe receiver did not start", "probe")
            time.sleep(0.02)
        dst_ip = self.lab._ip(self.dst)
        s.sendCmd(
            f"{self._env()} send --to {dst_ip} --port {self.port} --seconds {self.seconds:g} "
            f"--interval {self.interval:g}"
        )
        self.t_start = time.monotonic()
        return self

    def at(self, t: float) -> None:
        """Sleep until t seconds into the stream."""
        delay = self.t_start + t - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def finish(self) -> dict[str, Any]:
        sent_out = self.lab.host(self.src).waitOutput()
        m = re.search(r"\{.*\}", sent_out)
        sent = json.loads(m.group(0))["sent"] if m else None
        deadline = time.monotonic() + 10
        text = ""
        while time.monotonic() < deadline:
            text = self.out.read_text() if self.out.exists() else ""
            if text.strip().endswith("}"):
                break
            time.sleep(0.05)
        self.out.unlink(missing_ok=True)
        try:
            res = json.loads(text[text.find("{") :])
        except ValueError:
            raise KendaliError(f"probe receiver gave no result: {text.strip()[:200]}", "probe") from None
        res["sent"] = sent
        if sent is not None:
            # Probes lost at the very end are invisible to the receiver's own count.
            res["lost"] = max(res.get("lost") or 0, sent - res.get("unique", 0))
        if res.get("gap_after_seq") is not None:
            res["gap_at_s"] = res["gap_after_seq"] * self.interval
        if sent and res.get("received"):
            # A stream that starts late or never comes back has its longest gap at an end,
            # which gaps between arrivals cannot show: count it in sender time.
            lead = res["first_seq"] * self.interval * 1000
            tail = (sent - 1 - res["last_seq"]) * self.interval * 1000
            res["unrecovered"] = tail > 100
            if max(lead, tail) > (res.get("max_gap_ms") or 0):
                res["max_gap_ms"] = max(lead, tail)
                res["gap_at_s"] = 0.0 if lead >= tail else (res["last_seq"] + 1) * self.interval
        return res


# ---------------------------------------------------------------- the benchmark


def _link_up_in_controller(ctl: Any, a: str, b: str) -> bool:
    for l in ctl.get("/v1/topology")["links"]:
        if {l["a"]["name"], l["b"]["name"]} == {a, b}:
            return l["state"] == "up"
    return False


def wait_link_in_use(ctl: Any, a: str, b: str, timeout: float = 40.0) -> float | None:
    """Seconds until the controller uses a-b again (flap damping may hold it back); None: not in time."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if _link_up_in_controller(ctl, a, b):
            return time.monotonic() - t0
        time.sleep(0.05)
    return None


def _pair_for(topology: Any, a: str, b: str) -> tuple[str, str]:
    """A host on a and one on b: adjacent switches, so the path is the a-b link itself."""
    ha = next(h.name for h in topology.hosts if topology.subnets[h.subnet].switch == a)
    hb = next(h.name for h in topology.hosts if topology.subnets[h.subnet].switch == b)
    return ha, hb


def wait_pair(lab: Any, pair: tuple[str, str], timeout: float = 30.0, settle: float = 1.0) -> None:
    """Poll until src reaches dst (ping), then let the network settle a moment."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if lab.reachability(count=1, wait_s=0.2, hosts=list(pair)).complete:
            time.sleep(settle)
            return
    raise KendaliError(f"{pair[0]} does not reach {pair[1]} after {timeout:.0f} s", "bench failover")


def one_event(
    lab: Any,
    kind: str,
    link: tuple[str, str],
    pair: tuple[str, str],
    *,
    seconds: float = 3.0,
    at: float = 1.0,
    port: int = 9000,
    after: Callable[[], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One probe stream across one event ('none', 'carrier', 'silent', 'recovery').

    The link is left working afterwards (for 'recovery' it is failed before the stream
    and restored at ``at``). ``after`` runs right after the event while the stream
    goes on; what it returns is merged into the result.
    """
    a, b = link
    if kind == "recovery":
        lab.link_down(a, b)
        wait_pair(lab, pair)  # the stream must start on a converged network (RSTP needs longer)
    stream = ProbeStream(lab, pair[0], pair[1], seconds, port=port).start()
    stream.at(at)
    t_event = time.monotonic()
    if kind == "carrier":
        lab.link_down(a, b)
    elif kind == "silent":
        silent_fail(lab, a, b)
    elif kind == "recovery":
        lab.link_up(a, b)
    extra = after() if after else {}
    res = stream.finish()
    res["event_at_s"] = t_event - stream.t_start
    res.update(extra)
    if kind == "carrier":
        lab.link_up(a, b)
    elif kind == "silent":
        silent_restore(lab, a, b)
    return res


def _row(system: str, event: str, results: list[dict[str, Any]], note: str = "") -> dict[str, Any]:
    from controller.lab.bench import summary

    gaps = [r["max_gap_ms"] for r in results if r.get("max_gap_ms") is not None]
    lost = [float(r["lost"]) for r in results if r.get("lost") is not None]
    g, l = summary(gaps), summary(lost)
    return {
        "system": system,
        "event": event,
        "runs": len(results),
        "gap_min": g.get("min"),
        "gap_med": g.get("median"),
        "gap_max": g.get("max"),
        "lost_min": l.get("min"),
        "lost_med": l.get("median"),
        "lost_max": l.get("max"),
        "dups": sum(r.get("duplicates", 0) or 0 for r in results),
        "unrec": sum(1 for r in results if r.get("unrecovered")),
        "reord": sum(r.get("reordered", 0) or 0 for r in results),
        "note": note,
    }


COLUMNS = [
    ("system", "system"),
    ("event", "event"),
    ("runs", "runs"),
    ("gap_min", "gap min ms"),
    ("gap_med", "gap med ms"),
    ("gap_max", "gap max ms"),
    ("lost_min", "lost min"),
    ("lost_med", "lost med"),
    ("lost_max", "lost max"),
    ("dups", "dup"),
    ("reord", "reord"),
    ("unrec", "unrecovered"),
    ("note", "note"),
]


# The floor: Open vSwitch's own fast-failover on a bridge alone (3 ports), and with as many
# ports on the same ovs-vswitchd as the ring4 lab has (12), since one main thread polls them all.
FLOOR_IDLE_PORTS = 9
FLOOR_COLUMNS = [
    ("ports", "ports on the ovs-vswitchd"),
    ("runs", "cuts"),
    ("outage_min", "outage min ms"),
    ("outage_med", "outage med ms"),
    ("outage_max", "outage max ms"),
]


def bench_kendali(runs: int, log: Any, bfd: bool = True) -> tuple[list[dict[str, Any]], dict[str, Any], str]:
    from controller.core.topology import load
    from controller.lab.labctl import ControllerProcess
    from controller.lab.mininet_lab import BFD_MS, Lab

    topology = load(RING4)
    ring = [(l.a, l.b) for l in topology.links]
    raw: dict[str, list[dict[str, Any]]] = {"baseline": [], "carrier": [], "silent": [], "recovery": []}
    ctl = ControllerProcess(RING4, extra=CONTROLLER_ARGS if bfd else NO_BFD_ARGS)
    with ctl:
        with Lab(RING4, controller_port=ctl.ofp_port, prefix="kbf", bfd_ms=BFD_MS if bfd else 0) as lab:
            lab.wait_bfd()
            flaps0 = lab.bfd_flaps()
            _, m = lab.wait_reachable(60, wait_s=0.25)
            if not m.complete:
                raise KendaliError("ring4 not fully reachable: " + lab.report(m), "bench failover")
            for i in range(runs):
                for kind in ("baseline", "carrier", "silent", "recovery"):
                    # Each kind starts on a different ring link and moves on one link per run,
                    # so no link fails often enough for flap damping to hold it back long.
                    offset = {"baseline": 0, "carrier": 0, "silent": 1, "recovery": 2}[kind]
                    link = ring[(i + offset) % len(ring)]
                    pair = _pair_for(topology, *link)
                    assert crosses(path_switches(topology, *pair), *link)
                    # Every ring link, not just this one: a neighbour still held back by flap
                    # damping would leave no detour and the event would measure the hold.
                    for other in ring:
                        if wait_link_in_use(ctl, *other) is None:
                            raise KendaliError(f"link {other[0]}-{other[1]} not in use after 40 s", "bench failover")
                    seconds = {"silent": 3.5, "recovery": 7.0}.get(kind, 3.0)

                    # Recovery: flap damping may hold the link back a few seconds; the stream
                    # must also cover the moment the controller moves paths back onto it.
                    def back_in_use(link: tuple[str, str] = link) -> dict[str, Any]:
                        return {"back_in_use_s": wait_link_in_use(ctl, *link, timeout=5.0)}

                    after = back_in_use if kind == "recovery" else None
                    r = one_event(lab, kind if kind != "baseline" else "none", link, pair, seconds=seconds, after=after)
                    r.update(link=f"{link[0]}-{link[1]}", pair=f"{pair[0]}->{pair[1]}", run=i)
                    raw[kind].append(r)
                    back_note = (
                        f", link back in use {r['back_in_use_s']:.2f} s after carrier"
                        if r.get("back_in_use_s") is not None
                        else ""
                    )
                    log(
                        f"  kendali {kind:<9} {r['link']:<6} gap {r['max_gap_ms'] or 0:8.1f} ms  lost {r['lost']}"
                        f" in {len(r.get('lost_runs') or [])} outage(s)"
                        f"  (gap at {r.get('gap_at_s', 0):.2f} s, event at {r['event_at_s']:.2f} s{back_note})"
                    )
            for a, b in ring:  # leave everything healthy
                if wait_link_in_use(ctl, a, b) is None:
                    raise KendaliError(f"link {a}-{b} not back in use after 40 s", "bench failover")
            # Each failure and restore counts a down and an up on both ends of its link (carrier
            # and silent: 2 x 2 a run, recovery 2 x 2): more is a spurious flap.
            raw["bfd_flaps"] = [{"expected": 12 * runs, "counted": lab.bfd_flaps() - flaps0}] if bfd else []
        log_text = ctl.log_tail(400)
    rows = [_row("kendali" if bfd else "kendali, no BFD", k, v) for k, v in raw.items() if k != "bfd_flaps"]
    back = [r["back_in_use_s"] for r in raw["recovery"] if r.get("back_in_use_s") is not None]
    missed = len(raw["recovery"]) - len(back)
    if back:
        rows[-1]["note"] = f"link back in use {min(back):.1f}-{max(back):.1f} s after carrier (flap damping)" + (
            f"; {missed} run(s) not within the stream" if missed else ""
        )
    return rows, raw, log_text


def bench_rstp(runs: int, silent_runs: int, log: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from controller.core.topology import load
    from controller.lab.mininet_lab import Lab

    topology = load(RING4)
    ring = [(l.a, l.b) for l in topology.links]
    raw: dict[str, list[dict[str, Any]]] = {"baseline": [], "carrier": [], "silent": [], "recovery": []}
    with Lab(RING4, prefix="kbr", standalone=True) as lab:
        _, m = lab.wait_reachable(60, wait_s=0.25)
        if not m.complete:
            raise KendaliError("ring4 (RSTP) not fully reachable: " + lab.report(m), "bench failover")
        for i in range(runs):
            for kind in ("baseline", "carrier", "silent", "recovery"):
                if kind == "silent" and i >= silent_runs:
                    continue
                _, m = lab.wait_reachable(60, wait_s=0.25)
                fwd = rstp_forwarding_links(lab, ring)
                if not fwd:
                    raise KendaliError("no forwarding ring link found in rstp/show", "bench failover")
                link = fwd[i % len(fwd)]
                pair = _pair_for(topology, *link)
                seconds = 3.0 if kind != "silent" else 10.0
                r = one_event(lab, kind if kind != "baseline" else "none", link, pair, seconds=seconds)
                r.update(link=f"{link[0]}-{link[1]}", pair=f"{pair[0]}->{pair[1]}", run=i)
                raw[kind].append(r)
                log(
                    f"  rstp    {kind:<9} {r['link']:<6} gap {r['max_gap_ms'] or 0:8.1f} ms  lost {r['lost']}"
                    f"  (gap at {r.get('gap_at_s', 0):.2f} s, event at {r['event_at_s']:.2f} s)"
                )
                time.sleep(1.0)  # let RSTP settle back (recovery can re-elect ports)
    return [_row("ovs-rstp", k, v) for k, v in raw.items()], raw


def failover_log_lines(log_text: str) -> list[str]:
    return [l for l in log_text.splitlines() if "failover" in l or " up after" in l]


def run(args: Any) -> int:
    from controller.lab.bench import table, write_json
    from controller.lab.mininet_lab import BFD_MS, BFD_MULT

    runs = int(os.environ.get("KENDALI_BENCH_RUNS", RUNS))
    bfd = not getattr(args, "no_bfd", False)
    ctl_args = CONTROLLER_ARGS if bfd else NO_BFD_ARGS
    print(
        f"Failover on ring4: UDP probes every {PROBE_INTERVAL * 1000:g} ms between the hosts at both ends of\n"
        f"a ring link; event 1.0 s into a 3 s stream (silent: 3.5 s Kendali, 10 s RSTP); {runs} runs each.\n"
        f"Kendali: controller {' '.join(ctl_args) or 'with default settings'}, fast-failover groups on, "
        f"{f'BFD {BFD_MS} ms x {BFD_MULT} on ring links' if bfd else 'no BFD'}; "
        f"links rotate\n"
        f"around the ring. RSTP: OVS standalone bridges, rstp_enable, host ports admin-edge,\n"
        f"cut a link RSTP is forwarding on. Silent failure = tc egress drop on both veth ends,\n"
        f"carrier up. gap = longest time between two arriving probes; baseline = no event.\n",
        flush=True,
    )
    k_rows, k_raw, log_text = bench_kendali(runs, lambda s: print(s, flush=True), bfd)
    r_rows, r_raw = bench_rstp(runs, min(runs, RSTP_SILENT_RUNS), lambda s: print(s, flush=True))
    for r in k_rows:
        if r["event"] == "silent":
            r["note"] = (
                f"switches' BFD {BFD_MS} ms x {BFD_MULT}" if bfd else "LLDP every 0.1 s, dead after 0.5 s silence"
            )
    for r in r_rows:
        if r["event"] == "silent":
            r["note"] = "RSTP: 3 missed BPDUs (hello 2 s)"
        if r["event"] == "carrier":
            r["note"] = "RSTP alternate port takes over"
    rows = k_rows + r_rows
    print(
        "\nOpen vSwitch alone: one bridge, one fast-failover group, no controller; the floor\n"
        "under any controller's carrier-loss failover here (controller.ovs_floor):",
        flush=True,
    )
    floor = [ovs_floor.measure(3 * runs, idle, lambda s: print(s, flush=True)) for idle in (0, FLOOR_IDLE_PORTS)]
    print("\n" + table(rows, COLUMNS))
    print("\n" + table(floor, FLOOR_COLUMNS))
    lines = failover_log_lines(log_text)
    if lines:
        print("\nController log (failover lines, last 12):")
        for l in lines[-12:]:
            print("  " + l)
    out = write_json(
        "failover",
        {
            "benchmark": "failover",
            "topology": "ring4",
            "probe_interval_s": PROBE_INTERVAL,
            "controller_args": ctl_args,
            "bfd_ms": BFD_MS if bfd else 0,
            "bfd_mult": BFD_MULT,
            "bfd_flaps": k_raw.get("bfd_flaps"),
            "rows": rows,
            "ovs_alone": floor,
            "raw": {"kendali": k_raw, "ovs-rstp": r_raw},
            "controller_failover_log": lines,
        },
        getattr(args, "json", None),
    )
    print(f"\nJSON: {out}")
    return 0
