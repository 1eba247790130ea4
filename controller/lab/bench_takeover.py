"""`kendali bench takeover`: how long the intranet is without a leader when the leader dies.

Two controllers on a local etcd (controller.lab.hapair, TTL 2 s), switches connected to
both. The leader is killed (SIGKILL); the takeover is the time from the kill until the
survivor has been confirmed as MASTER by every switch (OFPRoleReply; GET /v1/health
``ha.master_on_all_at``, stamped by the survivor when the last switch answered). The
killed node is started again (it joins as follower) and the next run kills the other one.

- ``ppu``: the PPU lab (27 switches in Mininet, hosts, policies);
- ``bridges``: 100 Open vSwitch bridges with no links or hosts (userspace, fail-mode
  secure), connected to both controllers: the cost of many switches alone.

Most of a takeover is the lease: a follower may only lead once the dead leader's lease has
expired in etcd (TTL 2 s); ONOS's published figure is about 0.5 s with its own Raft.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from controller.errors import KendaliError
from controller.lab.bench import summary, table, write_json

ROOT = Path(__file__).resolve().parents[2]
RUNS = 3
BRIDGES = 100
BRIDGE_PREFIX = "kto"


def _health(c: Any) -> dict[str, Any]:
    try:
        return dict(c.get("/v1/health").get("ha") or {})
    except (OSError, KendaliError):
        return {}


def _wait(cond: Any, timeout: float, what: str, step: float = 0.02) -> Any:
    end = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > end:
            raise KendaliError(f"{what}: not within {timeout:g} s", "bench takeover")
        time.sleep(step)


def takeovers(pair: Any, switches: int, runs: int) -> list[dict[str, Any]]:
    """Kill the leader ``runs`` times; each run: seconds until the survivor leads and until
    every switch confirmed it as MASTER."""
    return [_takeover(pair, switches, run) for run in range(1, runs + 1)]


def _takeover(pair: Any, switches: int, run: int) -> dict[str, Any]:
    leader = pair.leader(timeout=30)
    _wait(lambda: _health(leader).get("master_on_all_at"), 60, f"every switch confirming {leader.node} first")
    _wait(lambda: _health(leader).get("switches") == switches, 60, f"{switches} switches on {leader.node}")
    survivor = next(c for c in pair.ctls if c is not leader)
    t_kill = time.time()
    leader.stop(kill=True)
    leads = _wait(lambda: _health(survivor).get("role") == "leader" and time.time(), 30, "a new leader")
    confirmed = _wait(lambda: _health(survivor).get("master_on_all_at"), 30, "every switch confirming it")
    print(f"  run {run}: killed {leader.node}; {survivor.node} MASTER on all after {confirmed - t_kill:.3f} s")
    leader.start()  # back as follower: the next run kills the other one
    _wait(lambda: _health(leader).get("role") == "follower", 30, f"{leader.node} back as follower")
    return {
        "run": run,
        "switches": switches,
        "killed": leader.node,
        "leads_s": leads - t_kill,
        "master_on_all_s": confirmed - t_kill,
    }


@contextmanager
def bridges(n: int, ports: tuple[int, ...]) -> Iterator[None]:
    """``n`` empty userspace bridges connected to the controllers on ``ports``, under the lab lock."""
    from controller.lab.mininet_lab import lab_lock

    names = [f"{BRIDGE_PREFIX}{i:03d}" for i in range(n)]
    targets = [f"tcp:127.0.0.1:{p}" for p in ports]
    with lab_lock():
        cmd: list[str] = ["ovs-vsctl"]
        for i, name in enumerate(names):
            cmd += ["--", "--may-exist", "add-br", name, "--", "set", "bridge", name, "datapath_type=netdev"]
            cmd += ["protocols=OpenFlow13", "fail_mode=secure", f"other-config:datapath-id={0x7000 + i:016x}"]
            cmd += ["--", "set-controller", name, *targets]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=120)
            yield
        finally:
            rm: list[str] = ["ovs-vsctl"]
            for name in names:
                rm += ["--", "--if-exists", "del-br", name]
            subprocess.run(rm, capture_output=True, timeout=120)


def run(args: Any) -> int:
    from controller.core.topology import DEFAULT_TOPOLOGY, load
    from controller.lab.hapair import HaPair
    from controller.lab.mininet_lab import Lab

    rows: list[dict[str, Any]] = []
    print(f"Takeover: two controllers on a local etcd (TTL 2 s), the leader killed {RUNS} times per network\n")
    print(f"PPU lab ({DEFAULT_TOPOLOGY.name}):", flush=True)
    topo = load(DEFAULT_TOPOLOGY)
    with HaPair(DEFAULT_TOPOLOGY, ROOT / "policies" / "ppu.yaml") as pair:
        ports = tuple(c.ofp_port for c in pair.ctls)
        with Lab(topo, controller_port=ports[0], more_controller_ports=ports[1:], prefix="kt"):
            rows += [dict(r, network="ppu") for r in takeovers(pair, len(topo.switches), RUNS)]
    print(f"\n{BRIDGES} empty bridges:", flush=True)
    with HaPair(None) as pair:
        with bridges(BRIDGES, tuple(c.ofp_port for c in pair.ctls)):
            rows += [dict(r, network=f"{BRIDGES} bridges") for r in takeovers(pair, BRIDGES, RUNS)]
    print(
        "\n"
        + table(
            rows,
            [
                ("network", "network"),
                ("run", "run"),
                ("switches", "switches"),
                ("killed", "killed"),
                ("leads_s", "leads after s"),
                ("master_on_all_s", "MASTER on all after s"),
            ],
        )
    )
    for net in ("ppu", f"{BRIDGES} bridges"):
        s = summary([r["master_on_all_s"] for r in rows if r["network"] == net])
        print(f"{net}: MASTER on every switch after {s['median']:.2f} s median ({s['min']:.2f}-{s['max']:.2f})")
    print("ONOS publishes about 0.5 s (its own Raft); here the 2 s lease must expire first.")
    out = write_json("takeover", {"benchmark": "takeover", "ttl_s": 2, "rows": rows}, args.json)
    print(f"\nJSON: {out}")
    return 0
