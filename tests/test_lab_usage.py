"""Usage telemetry end to end: real controller, Mininet lab, real traffic, a real Prometheus.

topologies/lab-meters.yaml with policies/lab-meters.yaml: OPD C (c1, capped 20/8 Mbit/s)
downloads from ``inet`` with more TCP than its cap, the uncapped office ``f1`` (a declared
subnet with no policy, counted under its subnet id ``free``) as fast as it can. What the
controller reports must agree with what the kernel counted on the hosts' interfaces:
delivered bytes within 2 %, drops within 5 % of what was offered to the OPD's switch and
not delivered. (Offered is counted where the frames enter edge-a, not at the sender: the
userspace core switch loses a few percent of a TCP burst in its own socket buffers before
any meter sees them, 6 % in one run.) ONE controller (polling every second) and ONE lab
serve the module; the controller-restart test runs last.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parent.parent
TOPO = ROOT / "topologies" / "lab-meters.yaml"
POLICIES = ROOT / "policies" / "lab-meters.yaml"
INTERVAL = 0.5  # --stats-interval for the lab controller: Prometheus sees counters this fresh
DELIVERED_TOL, DROPPED_TOL = 0.02, 0.05


class Env:
    def __init__(self, ctl: Any, lab: Any) -> None:
        self.ctl = ctl
        self.lab = lab
        self.started = time.time()

    def iface(self, host: str) -> tuple[int, int]:
        """(rx bytes, tx bytes) the host's own interface counted."""
        h = self.lab.host(host)
        intf = h.defaultIntf().name
        out = h.cmd(f"cat /sys/class/net/{intf}/statistics/rx_bytes /sys/class/net/{intf}/statistics/tx_bytes")
        rx, tx = (int(x) for x in out.split())
        return rx, tx

    def into(self, switch: str, peer: str) -> int:
        """Bytes the kernel counted into ``switch``'s port facing ``peer`` (a switch or a host)."""
        sw, other = self.lab.switch(switch), self.lab.net.get(self.lab.names.get(peer, peer))
        link = next(lk for lk in self.lab.net.links if {lk.intf1.node, lk.intf2.node} == {sw, other})
        intf = link.intf1 if link.intf1.node is sw else link.intf2
        return int(Path(f"/sys/class/net/{intf.name}/statistics/rx_bytes").read_text())

    def snapshot(self, hosts: tuple[str, ...]) -> tuple[dict[str, tuple[int, int]], dict[str, dict]]:
        """Host counters (and "edge-a": bytes into edge-a from the core), then usage sampled
        after them (nothing flows in between)."""
        t = time.time()
        counted = {h: self.iface(h) for h in hosts}
        counted["edge-a"] = (self.into("edge-a", "core"), 0)
        return counted, self.ctl.usage_after(t + 0.05)

    def load(self, src: str, dst: str, streams: int = 2, seconds: int = 5) -> Any:
        from controller.lab import traffic

        return traffic.run(self.lab, [traffic.Load(src, dst, streams)], seconds=seconds, omit=1)

    def metrics(self) -> str:
        req = urllib.request.Request(self.ctl.url + "/metrics", headers={"Authorization": f"Bearer {self.ctl.token}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.read().decode()


def diff(after: dict, before: dict, opd: str, direction: str, what: str = "bytes") -> int:
    return after[opd][direction][what] - before[opd][direction][what]


def near(got: float, want: float, tol: float) -> bool:
    return abs(got - want) <= tol * max(want, 1)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    from controller.lab.labctl import ControllerProcess
    from controller.lab.mininet_lab import Lab

    state = tmp_path_factory.mktemp("kendali-lab-usage") / "state"
    ctl = ControllerProcess(TOPO, POLICIES, state_dir=state, extra=["--stats-interval", str(INTERVAL)]).start()
    e = Env(ctl, None)
    try:
        with Lab(TOPO, controller_port=ctl.ofp_port, prefix="ktu") as lab:
            e.lab = lab
            took, matrix = lab.wait_reachable(60)
            assert matrix.complete, lab.report(matrix) + f"\ncontroller log:\n{ctl.log_tail()}"
            yield e
    finally:
        e.ctl.cleanup()


def test_capped_and_uncapped_transfers_match_what_the_hosts_counted(env: Env) -> None:
    t0 = time.time()
    hosts, before = env.snapshot(("inet", "c1", "f1"))
    r = env.load("inet", "c1")  # above OPD C's cap: its meter drops
    mid_hosts, mid = env.snapshot(("inet", "c1", "f1"))
    env.load("inet", "f1")  # uncapped
    after_hosts, after = env.snapshot(("inet", "c1", "f1"))
    got, offered = mid_hosts["c1"][0] - hosts["c1"][0], mid_hosts["edge-a"][0] - hosts["edge-a"][0]
    sent = mid_hosts["inet"][1] - hosts["inet"][1]
    show = (
        f"c1 received {got}, edge-a got {offered} from the core (inet sent {sent}); "
        f"usage before {before['opd-c']} after {mid['opd-c']}"
    )
    assert near(diff(mid, before, "opd-c", "down"), got, DELIVERED_TOL), show
    assert near(diff(mid, before, "opd-c", "up"), mid_hosts["c1"][1] - hosts["c1"][1], DELIVERED_TOL), show
    dropped = diff(mid, before, "opd-c", "down", "dropped_bytes")
    assert offered - got > 0.02 * offered, f"TCP was not pushed above the cap: {show}; {r}"
    assert near(dropped, offered - got, DROPPED_TOL), show
    free_rx = after_hosts["f1"][0] - mid_hosts["f1"][0]
    assert free_rx > 50e6, "the uncapped transfer moved too little to judge"
    assert near(diff(after, mid, "free", "down"), free_rx, DELIVERED_TOL), (free_rx, after["free"])
    assert diff(after, mid, "free", "down", "dropped_bytes") == 0
    assert after["free"]["kind"] == "subnet" and after["free"]["down"]["cap_kbps"] is None
    assert after["opd-c"]["down"]["cap_kbps"] == 20000

    # /metrics: the same counters
    text = env.metrics()
    line = next(x for x in text.splitlines() if x.startswith('kendali_opd_bytes_total{direction="down",opd="free"}'))
    assert float(line.split()[-1]) >= after["free"]["down"]["bytes"]
    # the history: what was counted since t0, once the next cycle is written
    time.sleep(2 * INTERVAL + 0.5)
    series = env.ctl.get(f"/v1/usage/free?from={t0 - 60}&step=1")
    in_history = sum(b for t, b in zip(series["t"], series["down"]["bytes"], strict=True) if t >= t0)
    counted = after["free"]["down"]["bytes"] - before["free"]["down"]["bytes"]
    assert near(in_history, counted, DELIVERED_TOL), (in_history, counted, series["tier"])
    capped = env.ctl.get(f"/v1/usage/opd-c?from={t0 - 60}&step=1")
    assert capped["summary"]["down"]["dropped_bytes"] >= 0.9 * dropped

    # the link that carried the uncapped transfer, in the same history (what the report reads)
    from controller.api.history import History
    from controller.core.topology import load

    edge = load(TOPO).subnets["free"].switch
    hist = History(env.ctl.state_dir / "usage.sqlite", reader=True)
    try:
        links = hist.meta_json("links")
        lid = next(i for i, lk in links.items() if {lk["a"], lk["b"]} == {"core", edge})
        summary = hist.query(lid, t0 - 60, time.time() + 1, 1, time.time())["summary"]
    finally:
        hist.close()
    core_sent = summary["up" if links[lid]["a"] == "core" else "down"]["bytes"]
    assert links[lid]["capacity_mbps"] == 1000
    assert 0.95 * free_rx <= core_sent <= 1.1 * free_rx + 1e6, (core_sent, free_rx, lid)


def test_the_report_of_the_run_shows_what_was_counted(env: Env, tmp_path: Path) -> None:
    """What `kendali demo` ends with: the report of the controller's own history. Its figures
    are the history's: an OPD's volume is what GET /v1/usage/{opd} summed over the period,
    the ISP hand-off is the uplink (not an OPD), the uncapped subnet is listed apart."""
    from controller.lab.demo import write_report
    from controller.report import data

    start = env.started // 300 * 300
    out = write_report(env.ctl, env.started, tmp_path / "report.html")
    assert "OPD C" in out.read_text(encoding="utf-8")
    now = time.time()
    doc = data.build(env.ctl.state_dir, start, now, now)
    series = env.ctl.get(f"/v1/usage/opd-c?from={start}&to={now}&step=300")
    opds = {o["opd"]: o for o in doc["opds"]}
    assert opds["opd-c"]["down"]["volume_bytes"] == series["summary"]["down"]["bytes"] > 10e6
    assert opds["opd-c"]["down"]["dropped_bytes"] == series["summary"]["down"]["dropped_bytes"] > 0
    assert [s["opd"] for s in doc["subnets"]] == ["free"]
    assert "isp" not in opds and doc["uplink"]["purchased_mbps"] == 1000
    # everything the OPDs and the free subnet downloaded came from the ISP, through the uplink
    assert doc["uplink"]["measured"]["peak_bps"] >= opds["opd-c"]["down"]["all"]["peak_bps"]
    assert sum(o["cost"]["by_use_idr"] for o in doc["opds"]) == doc["summary"]["budget_idr"]


def test_totals_survive_a_switch_reconnect(env: Env) -> None:
    hosts, before = env.snapshot(("c1",))
    sw = env.lab.switch("edge-a").name  # c1's switch
    target = f"tcp:127.0.0.1:{env.ctl.ofp_port}"
    subprocess.run(["ovs-vsctl", "del-controller", sw], check=True)
    deadline = time.monotonic() + 20
    while env.ctl.get("/v1/health")["switches_connected"] == 3:
        assert time.monotonic() < deadline, "edge-a never disconnected"
        time.sleep(0.2)
    subprocess.run(["ovs-vsctl", "set-controller", sw, target], check=True)
    while env.ctl.get("/v1/health")["switches_connected"] < 3:
        assert time.monotonic() < deadline, f"edge-a did not reconnect\n{env.ctl.log_tail()}"
        time.sleep(0.2)
    env.load("inet", "c1", streams=1, seconds=3)
    after_hosts, after = env.snapshot(("c1",))
    got = after_hosts["c1"][0] - hosts["c1"][0]
    assert got > 1e6
    # the switch kept its meters' counters through the reconnect: counted once, not again from 0
    assert near(diff(after, before, "opd-c", "down"), got, DELIVERED_TOL), (got, before["opd-c"], after["opd-c"])


def test_prometheus_rate_of_an_opds_bytes_matches_what_was_sent(env: Env, tmp_path: Path) -> None:
    from controller.lab.labctl import free_port

    prom = shutil.which("prometheus")
    assert prom, "Debian's prometheus is missing: run bash scripts/setup.sh"
    port = free_port()
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(
        json.dumps(
            {  # YAML is a superset of JSON
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "kendali",
                        "metrics_path": "/metrics",
                        "authorization": {"type": "Bearer", "credentials": env.ctl.token},
                        "static_configs": [{"targets": [f"127.0.0.1:{env.ctl.rest_port}"]}],
                    }
                ],
            }
        )
    )
    log = open(tmp_path / "prometheus.log", "wb")
    proc = subprocess.Popen(
        [
            prom,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def query(q: str) -> list[dict]:
        url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())["data"]["result"]

    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if query('up{job="kendali"}') and query('up{job="kendali"}')[0]["value"][1] == "1":
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()[-2000:]
            time.sleep(0.5)
        # 20 Mbit/s of UDP for 20 s from the Internet host to the uncapped office; Prometheus's
        # rate over 10 s of it against what the office's interface received in those 10 s. (The
        # counter moves once a poll: over 10 s that is within 5 %.)
        f1, inet = env.lab.host("f1"), env.lab.host("inet")
        f1_ip = next(h.ip for h in env.lab.topology.hosts if h.name == "f1")
        f1.cmd("iperf3 -s -1 -p 5409 >/dev/null 2>&1 &")
        server = f1.lastPid
        time.sleep(0.5)
        inet.sendCmd(f"iperf3 -c {f1_ip} -p 5409 -u -b 20M -l 1400 -t 20 >/dev/null 2>&1")
        time.sleep(6)
        rx0, t0 = env.iface("f1")[0], time.monotonic()
        time.sleep(10)
        rx1, t1 = env.iface("f1")[0], time.monotonic()
        rate = query('rate(kendali_opd_bytes_total{opd="free",direction="down"}[10s])')
        inet.waitOutput()
        f1.cmd(f"kill {server} 2>/dev/null")
        sent_bps = (rx1 - rx0) / (t1 - t0)  # frames the office's interface received
        assert rate, "Prometheus has no rate for the office's bytes"
        got = float(rate[0]["value"][1])
        assert near(got, sent_bps, 0.10), f"Prometheus rate {got * 8 / 1e6:.2f} Mbit/s, host {sent_bps * 8 / 1e6:.2f}"
        assert near(sent_bps * 8, 20e6 * 1442 / 1400, 0.10)  # 1400 B of UDP payload in a 1442 B frame
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def test_totals_survive_a_controller_restart(env: Env) -> None:
    from controller.lab.labctl import ControllerProcess

    hosts, before = env.snapshot(("c1",))
    old = env.ctl
    old.stop(kill=True)  # kill -9: the history has at most the last cycle missing
    # Traffic while no controller runs: the switches keep forwarding and counting.
    env.load("inet", "c1", streams=1, seconds=3)
    new = ControllerProcess(
        TOPO,
        POLICIES,
        state_dir=old.state_dir,
        extra=["--stats-interval", str(INTERVAL), "--ofp-port", str(old.ofp_port)],
    )
    new.ofp_port = old.ofp_port
    old.cleanup()
    env.ctl = new.start()
    deadline = time.monotonic() + 40  # Open vSwitch backs off up to 8 s between attempts
    while env.ctl.get("/v1/health")["switches_connected"] < 3:
        assert time.monotonic() < deadline, f"switches did not reconnect:\n{env.ctl.log_tail()}"
        time.sleep(0.2)
    after_hosts, after = env.snapshot(("c1",))
    got = after_hosts["c1"][0] - hosts["c1"][0]
    assert got > 1e6, "nothing flowed while the controller was away"
    assert after["opd-c"]["since"] == before["opd-c"]["since"]  # the same totals, continued
    assert near(diff(after, before, "opd-c", "down"), got, DELIVERED_TOL), (got, before["opd-c"], after["opd-c"])
