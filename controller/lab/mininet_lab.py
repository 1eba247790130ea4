"""The Mininet lab: the declared topology on userspace Open vSwitch, for demos and benchmarks.

    with Lab("topologies/ring4.yaml", standalone=True) as lab:
        elapsed, matrix = lab.wait_reachable(30)
        print(lab.report(matrix))

Two modes:

* controller mode (default): OVSSwitch(datapath='user', protocols='OpenFlow13',
  failMode='secure') connected to a RemoteController at 127.0.0.1:controller_port. The
  controller is a separate process that someone else starts; each host gets its subnet
  prefix and a default route via its subnet gateway.
* ``standalone=True``: no controller; bridges in fail_mode=standalone (plain learning
  switches) with Open vSwitch's own RSTP (``rstp_enable=true``) and host-facing ports
  marked RSTP admin-edge. This is the RSTP baseline of the failover benchmark. There is
  no router in that mode, so hosts are given one flat on-link prefix
  (controller.mntopo.flat_network(): 10.0.0.0/8 for ppu, 10.20.0.0/21 for ring4) with
  their declared addresses, and no default route.

Only this lab's own bridges, interfaces and processes are ever removed (never ``mn -c``,
which wipes every bridge on the machine). Mininet is imported lazily so that importing
this module (e.g. from controller.cli) works without it.
"""

from __future__ import annotations

import atexit
import codecs
import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.core.topology import DEFAULT_TOPOLOGY, Topology, load
from controller.errors import KendaliError

SETUP_HINT = "run `bash scripts/setup.sh` (then use .venv/bin/python or /usr/bin/python3)"


LAB_LOCK = "/run/kendali-lab.lock"
# BFD on every inter-switch interface (controller mode): Open vSwitch's fast-failover groups
# then bypass a silent failure themselves in (mult-1..mult) x interval plus ~10 ms
# (docs/liveness.md). Every BFD packet is handled by ovs-vswitchd's main thread, which here
# runs every lab bridge, sets up every new datapath flow and installs our flows: a stall
# longer than the detection time takes sessions down. In the PPU lab (58 sessions on two
# cores) 50 ms x 3 (150 ms) did that at start (3 of 4 labs never reachable) and 100 ms x 2
# (200 ms) under the 870 pings of a reachability round after a cut; 100 ms x 3 tolerates a
# 300 ms stall and detects in 200-300 ms, but not under load: the PPU reachability test's
# 1,740 probes at once took three sessions down (2026-12-01) and most pairs missed both
# probes while links flapped. So a lab has BFD only when asked (Lab(bfd_ms=BFD_MS), `kendali
# lab --bfd`, the BFD lab test and benchmarks); a real network, a CPU per switch and a few
# sessions each, runs 50 ms x 3 (docs/liveness.md).
# KENDALI_LAB_BFD sets the timers ("100x3") and turns BFD on for every lab of a process, or
# "0" off for all, e.g. to run the lab tests with and without BFD.
BFD_ENV = "KENDALI_LAB_BFD"


def _bfd_setting(text: str) -> tuple[int, int]:
    ms, _, mult = text.strip().lower().partition("x")
    try:
        out = (int(ms), int(mult or 3))
    except ValueError:
        raise KendaliError(f"{text!r}: use MSxMULT (e.g. 100x2) or 0 for no BFD", BFD_ENV) from None
    if out[0] and not (10 <= out[0] <= 10000 and 1 <= out[1] <= 255):
        raise KendaliError(f"{text!r}: 10-10000 ms and a multiplier of 1-255", BFD_ENV)
    return out


BFD_MS, BFD_MULT = _bfd_setting(os.environ.get(BFD_ENV) or "100x3")
LAB_BFD_MS = BFD_MS if os.environ.get(BFD_ENV) else 0  # a Lab's default: off unless the environment asks


def _inherited_lock() -> int | None:
    """A descriptor of the lab lock this process inherited (``flock /run/kendali-lab.lock CMD``)."""
    target = os.path.realpath(LAB_LOCK)
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in names:
        try:
            if os.readlink(f"/proc/self/fd/{name}") == target:
                return int(name)
        except (OSError, ValueError):
            continue
    return None


def take_lab_lock() -> int:
    """One lab at a time on a machine: a second one waits here (timings stay honest).
    Returns the lock's file descriptor; closing it releases the lock.

    Under ``flock /run/kendali-lab.lock CMD`` the lock is already ours, on a descriptor
    inherited from flock: locking that same open file again succeeds at once, where a new
    open() of the file would wait forever for our own parent (seen: a whole lab suite hung
    in its first fixture). A duplicate is returned, so closing it leaves flock's hold alone."""
    inherited = _inherited_lock()
    if inherited is not None:
        fcntl.flock(inherited, fcntl.LOCK_EX)  # ours already: no wait; merely open: a normal wait
        return os.dup(inherited)
    fd = os.open(LAB_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("kendali lab: another lab is running on this machine; waiting for it", file=sys.stderr, flush=True)
        fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@contextlib.contextmanager
def lab_lock() -> Iterator[None]:
    """The lab lock for work that is not a Lab (e.g. controller.ovs_floor)."""
    fd = take_lab_lock()
    try:
        yield
    finally:
        os.close(fd)


class LabError(KendaliError):
    """The lab could not be brought up or a lab operation failed."""


def _import_mininet() -> None:
    try:
        import mininet.net  # noqa: F401
    except ImportError:
        raise LabError(f"Mininet is not importable from {sys.executable}: {SETUP_HINT}", "lab") from None


def _preflight() -> None:
    """Fail early with one line instead of Mininet's exit(1) deep inside OVSSwitch.setup()."""
    if os.geteuid() != 0:
        raise LabError("the Mininet lab needs root", "lab")
    try:
        r = subprocess.run(["ovs-vsctl", "-t", "2", "show"], capture_output=True, text=True, timeout=5)
    except FileNotFoundError:
        raise LabError(f"Open vSwitch is not installed: {SETUP_HINT}", "lab") from None
    except subprocess.TimeoutExpired:
        r = None
    if r is None or r.returncode != 0:
        raise LabError(f"Open vSwitch is not running: {SETUP_HINT}", "lab")
    for tool in ("ethtool", "ping", "ip"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            raise LabError(f"{tool} is missing: {SETUP_HINT}", "lab")


class _LenientShell:
    """A node whose shell output is decoded with errors='replace'.

    Mininet decodes every node's shell output as strict UTF-8; one stray byte (seen once
    in a full lab run under load) would raise UnicodeDecodeError out of a lab round.
    """

    decoder: Any

    def startShell(self, *args: Any, **kwargs: Any) -> Any:
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return super().startShell(*args, **kwargs)  # type: ignore[misc]


def _make_host_class() -> type:
    from mininet.node import Host

    class KendaliHost(_LenientShell, Host):
        pass

    return KendaliHost


def _make_controller_class() -> type:
    from mininet.node import RemoteController

    class KendaliRemote(_LenientShell, RemoteController):
        """Mininet checks a remote controller with ``echo A | telnet ip port``: the
        controller answers with its binary OpenFlow HELLO, which the shell then prints.
        That was the stray non-UTF-8 byte (a HELLO's xid) that broke lab runs now and then."""

    return KendaliRemote


def _make_switch_class() -> type:
    from mininet.node import Host, OVSSwitch

    class KendaliSwitch(_LenientShell, OVSSwitch):
        """OVSSwitch that can enable RSTP, with host-facing ports as RSTP admin-edge.

        Mininet's own ``stp=True`` is classic 802.1D (30 s to forward); RSTP is what a
        real regency network would run, so it is the fair baseline. Admin-edge host
        ports forward at once instead of waiting out the migrate/forward-delay timers.
        Everything goes into the bridge's single creating ovs-vsctl transaction, so the
        bridge never exists without RSTP.
        """

        def __init__(
            self, name: str, rstp: bool = False, admin_edge: bool = True, bfd: str = "", **params: Any
        ) -> None:
            super().__init__(name, **params)
            self.rstp = rstp
            self.admin_edge = admin_edge
            self.bfd = bfd  # "bfd:enable=true bfd:min_tx=..." for inter-switch interfaces, or ""

        def bridgeOpts(self) -> str:
            opts = super().bridgeOpts()
            if self.rstp:
                opts += " rstp_enable=true"
            return opts

        def intfOpts(self, intf: Any) -> str:
            opts = super().intfOpts(intf)
            if intf.link is None:
                return opts
            peer = intf.link.intf1 if intf.link.intf2 is intf else intf.link.intf2
            if self.rstp and self.admin_edge and isinstance(peer.node, Host):
                opts += f" -- set Port {intf} other_config:rstp-port-admin-edge=true"
            if self.bfd and isinstance(peer.node, OVSSwitch):
                # Born with BFD: a port added first and given BFD later is live (no BFD yet) when
                # the switch connects, then not live until BFD is up: every link would count one
                # failure at lab start, and flap damping would hold any link failing within a minute.
                opts += f" -- set Interface {intf} {self.bfd}"
            return opts

    return KendaliSwitch


# ---------------------------------------------------------------- results


@dataclass
class Reachability:
    """Per-pair ping results: loss[(src, dst)] in percent, by topology host names."""

    hosts: list[str]
    loss: dict[tuple[str, str], float]
    seconds: float = 0.0  # how long the measuring round took

    @property
    def pairs(self) -> int:
        return len(self.loss)

    @property
    def reached(self) -> int:
        return sum(1 for v in self.loss.values() if v < 100.0)

    @property
    def complete(self) -> bool:
        """Every host reached every other host (no loss at all)."""
        return bool(self.loss) and all(v == 0.0 for v in self.loss.values())

    @property
    def loss_pct(self) -> float:
        return sum(self.loss.values()) / len(self.loss) if self.loss else 0.0

    def failed(self) -> list[tuple[str, str]]:
        return [p for p, v in self.loss.items() if v > 0.0]


# ---------------------------------------------------------------- the lab


class Lab:
    """A running Mininet network for one topology. Use as a context manager.

    topology: a Topology or a path to a topology file.
    controller_port: the RemoteController's TCP port on controller_ip (controller mode).
    prefix: switch-name prefix (1-6 chars, e.g. "k1" -> k1s1, k1s2, ...) so that two
        runs never share a bridge; None -> s1..sN.
    standalone: no controller; standalone bridges with RSTP (see module doc).
    rstp: enable RSTP on standalone bridges (False -> plain learning bridges; only
        safe on loop-free topologies).
    flat: hosts on one on-link prefix; default: same as standalone.
    bfd_ms: BFD on every inter-switch interface with min_tx = min_rx = bfd_ms and mult
        bfd_mult, set through OVSDB right after the start (controller mode only; the RSTP
        baseline stays plain). 0 or None: no BFD, silent failures are then the controller's
        LLDP's to find.
    """

    def __init__(
        self,
        topology: Topology | str | Path,
        controller_port: int = 6653,
        prefix: str | None = None,
        *,
        standalone: bool = False,
        rstp: bool = True,
        flat: bool | None = None,
        controller_ip: str = "127.0.0.1",
        more_controller_ports: tuple[int, ...] = (),
        admin_edge: bool = True,
        log_level: str = "output",  # "output" lets CLI/script results through, hides info chatter
        bfd_ms: int | None = LAB_BFD_MS,
        bfd_mult: int = BFD_MULT,
    ) -> None:
        self.topology = topology if isinstance(topology, Topology) else load(topology)
        self.controller_port = controller_port
        self.controller_ip = controller_ip
        self.more_controller_ports = tuple(more_controller_ports)  # a pair (--etcd): every switch to each
        self.prefix = prefix or ""
        self.standalone = standalone
        self.rstp = rstp and standalone
        self.flat = standalone if flat is None else flat
        self.admin_edge = admin_edge
        self.log_level = log_level
        self.bfd_ms = 0 if standalone or not bfd_ms else int(bfd_ms)
        self.bfd_mult = int(bfd_mult)
        self.net: Any = None
        self.topo: Any = None
        self.names: dict[str, str] = {}  # topology name -> Mininet name
        self.timings: dict[str, float] = {}  # build_s, start_s, reachable_after_start_s, stop_s
        self._t_started: float | None = None
        self._stopped = False
        self._old_sigterm: Any = None

    # -- life cycle

    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        """Build and start the network; on any failure, tear down what exists and re-raise."""
        if self.net is not None or self._stopped:
            raise LabError("a Lab runs once; make a new Lab", "lab")
        _import_mininet()
        _preflight()
        from mininet.log import setLogLevel
        from mininet.net import Mininet

        from controller.lab.mntopo import KendaliTopo

        setLogLevel(self.log_level)
        self._take_lab_lock()
        try:
            topo = KendaliTopo(self.topology, prefix=self.prefix, flat=self.flat)
            self._check_free(topo.names)  # before we own any name: never sweep another run's bridges
        except BaseException:
            self._release_lab_lock()
            raise
        self.topo, self.names = topo, dict(topo.names)
        switch_cls = _make_switch_class()
        params: dict[str, Any] = {"datapath": "user", "protocols": "OpenFlow13", "admin_edge": self.admin_edge}
        if self.standalone:
            params.update(failMode="standalone", rstp=self.rstp)
        else:
            params.update(failMode="secure", bfd=self._bfd_options())

        def make_switch(name: str, **kw: Any) -> Any:
            return switch_cls(name, **{**params, **kw})

        self._install_sigterm()
        atexit.register(self.stop)
        try:
            t0 = time.monotonic()
            # build=False: self.net exists before anything is created, so a failure in
            # build() can still be cleaned up by stop().
            self.net = Mininet(
                topo=self.topo,
                switch=make_switch,
                host=_make_host_class(),
                controller=None,
                build=False,
                autoSetMacs=False,
                autoStaticArp=False,
                cleanup=False,
                listenPort=None,
            )  # no ptcp:6654+ listeners: they could steal a controller's port
            if not self.standalone:
                for i, port in enumerate((self.controller_port, *self.more_controller_ports)):
                    self.net.addController(
                        f"c{i}", controller=_make_controller_class(), ip=self.controller_ip, port=port
                    )
            self.net.build()
            self.timings["build_s"] = time.monotonic() - t0
            t1 = time.monotonic()
            self.net.start()
            self._t_started = time.monotonic()
            self.timings["start_s"] = self._t_started - t1
            self._offloads_off()
        except BaseException:
            self.stop()
            raise

    def _take_lab_lock(self) -> None:
        self._lock_fd: int | None = take_lab_lock()

    def _release_lab_lock(self) -> None:
        fd = getattr(self, "_lock_fd", None)
        if fd is not None:
            os.close(fd)  # closing drops the flock
            self._lock_fd = None

    def _check_free(self, names: dict[str, str]) -> None:
        out = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()
        clash = sorted(set(out) & {names[s] for s in self.topology.switches})
        if clash:
            raise LabError(
                f"bridge(s) {', '.join(clash[:5])} already exist (another lab run?); give this run its own prefix",
                "lab",
            )

    def _install_sigterm(self) -> None:
        # SIGTERM would otherwise kill us without running __exit__, leaking bridges.
        if threading.current_thread() is threading.main_thread():

            def on_term(signum: int, frame: Any) -> None:
                raise SystemExit(128 + signum)

            self._old_sigterm = signal.signal(signal.SIGTERM, on_term)

    def _offloads_off(self) -> None:
        # Without this TCP stalls on veths behind userspace OVS (bad checksums).
        for h in self.net.hosts:
            for intf in h.intfList():
                if intf.name != "lo":
                    h.cmd(f"ethtool -K {intf.name} tx off rx off >/dev/null 2>&1")

    # -- BFD: switch configuration through OVSDB, never OpenFlow

    def switch_interfaces(self) -> list[str]:
        """The interfaces of inter-switch links (both ends), never host-facing ones."""
        self._need_net()
        switches = set(self.net.switches)
        return [
            i.name
            for l in self.net.links
            if l.intf1.node in switches and l.intf2.node in switches
            for i in (l.intf1, l.intf2)
        ]

    def _bfd_options(self) -> str:
        """The interface settings for BFD, set in each bridge's creating ovs-vsctl transaction
        (Mininet starts every switch in one), so no port is ever up without it.
        forwarding_if_rx, decay_min_rx and cpath_down stay unset (docs/research/bfd-liveness.md)."""
        if not self.bfd_ms:
            return ""
        ms, mult = self.bfd_ms, self.bfd_mult
        return f"bfd:enable=true bfd:min_tx={ms} bfd:min_rx={ms} bfd:mult={mult}"

    def bfd_status(self) -> dict[str, dict[str, str]]:
        """Interface -> its BFD status (state, forwarding, remote_state, flap_count, ...) for
        every inter-switch interface; empty dicts without BFD. Never judge by ``diagnostic``:
        Open vSwitch keeps the last failure's there after the session is back up."""
        names = self.switch_interfaces()
        if not names:
            return {}
        cmd = ["ovs-vsctl", "--format=json", "--columns=name,bfd_status", "find", "interface"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        out: dict[str, dict[str, str]] = {n: {} for n in names}
        try:
            for name, status in json.loads(r.stdout)["data"]:
                if name in out and isinstance(status, list) and status[0] == "map":
                    out[name] = {k: v for k, v in status[1]}
        except (ValueError, KeyError, TypeError, IndexError):
            raise LabError(f"cannot read bfd_status: {r.stderr.strip() or r.stdout[:200]}", "lab") from None
        return out

    def wait_bfd(self, timeout: float = 20.0) -> float:
        """Seconds until BFD forwards on every inter-switch interface (0 without BFD)."""
        if not self.bfd_ms:
            return 0.0
        t0 = time.monotonic()
        while True:
            status = self.bfd_status()
            down = sorted(n for n, st in status.items() if st.get("forwarding") != "true")
            if not down:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise LabError(f"BFD not forwarding after {timeout:.0f} s on {', '.join(down[:6])}", "lab")
            time.sleep(0.1)

    def bfd_flaps(self) -> int:
        """BFD state changes so far, over every inter-switch interface (a spurious flap shows here)."""
        return sum(int(st.get("flap_count", 0) or 0) for st in self.bfd_status().values())

    def stop(self) -> None:
        """Stop the network and remove only this lab's bridges and interfaces. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        main = threading.current_thread() is threading.main_thread()
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None  # no half teardown
        t0 = time.monotonic()
        try:
            if self.net is not None:
                self._quiesce_shells()
                try:
                    self.net.stop()
                except Exception as exc:  # keep going: the sweep below still removes our leftovers
                    print(f"kendali lab: net.stop() failed ({exc}); sweeping our own leftovers", file=sys.stderr)
            self._sweep()
        finally:
            self.timings["stop_s"] = time.monotonic() - t0
            self._release_lab_lock()
            if main:
                signal.signal(signal.SIGINT, old_int)
                if self._old_sigterm is not None:
                    signal.signal(signal.SIGTERM, self._old_sigterm)
            try:
                atexit.unregister(self.stop)
            except Exception:
                pass

    def _quiesce_shells(self) -> None:
        # An interrupt (Ctrl-C, SIGTERM) can land while host shells run a ping round
        # (sendCmd without waitOutput); Mininet then refuses every further cmd() on them,
        # which would break net.stop(). Interrupt and drain them, bounded in time.
        busy = [n for n in self.net.hosts + self.net.switches if getattr(n, "waiting", False) and n.shell]
        for node in busy:
            try:
                node.sendInt()
            except Exception:
                node.waiting = False
        deadline = time.monotonic() + 3.0
        for node in busy:
            while node.waiting and time.monotonic() < deadline:
                try:
                    node.monitor(timeoutms=200)
                except Exception:
                    break
            node.waiting = False

    def _sweep(self) -> None:
        """Delete leftovers that carry OUR names only: bridges and root-namespace interfaces."""
        if not self.names or self.topo is None:
            return
        bridges = [self.names[s] for s in self.topology.switches]
        existing = set(subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split())
        mine = [b for b in bridges if b in existing]
        if mine:
            cmd = ["ovs-vsctl"]
            for b in mine:
                cmd += ["--", "--if-exists", "del-br", b]
            subprocess.run(cmd, capture_output=True)
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        present = {m.group(1) for m in re.finditer(r"^\d+: ([^:@]+)[@:]", links, re.M)}
        ours = set(bridges)
        for b in bridges:
            ours |= {n for n in present if n.startswith(f"{b}-eth")}
        for name in sorted(ours & present):
            subprocess.run(["ip", "link", "del", name], capture_output=True)

    def leftovers(self) -> list[str]:
        """Names of this lab's bridges/interfaces still present (empty after a clean stop)."""
        bridges = {self.names[s] for s in self.topology.switches} if self.names else set()
        left = set(subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()) & bridges
        links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
        for m in re.finditer(r"^\d+: ([^:@]+)[@:]", links, re.M):
            n = m.group(1)
            if n in bridges or any(n.startswith(f"{b}-eth") for b in bridges):
                left.add(n)
        return sorted(left)

    # -- nodes

    def _need_net(self) -> None:
        if self.net is None or self._stopped:
            raise LabError("the lab is not running", "lab")

    def host(self, name: str) -> Any:
        """The Mininet Host for a topology host name (or a Mininet host name)."""
        self._need_net()
        mn = self.names.get(name, name)
        try:
            node = self.net.get(mn)
        except KeyError:
            raise LabError(f"no host {name!r} in this lab", "lab") from None
        if node not in self.net.hosts:
            raise LabError(f"{name!r} is not a host", "lab")
        return node

    def switch(self, name: str) -> Any:
        """The Mininet switch for a topology switch name (or a Mininet switch name)."""
        self._need_net()
        mn = self.names.get(name, name)
        try:
            node = self.net.get(mn)
        except KeyError:
            raise LabError(f"no switch {name!r} in this lab", "lab") from None
        if node not in self.net.switches:
            raise LabError(f"{name!r} is not a switch", "lab")
        return node

    def _ip(self, name: str) -> str:
        rev = {v: k for k, v in self.names.items()}
        for h in self.topology.hosts:
            if h.name in (name, rev.get(name)):
                return h.ip
        raise LabError(f"no host {name!r} in this lab", "lab")

    @property
    def host_names(self) -> list[str]:
        """Topology host names, in file order."""
        return [h.name for h in self.topology.hosts]

    # -- reachability

    def reachability(self, count: int = 1, wait_s: float = 1.0, hosts: list[str] | None = None) -> Reachability:
        """Every host pings every other host, all at once; returns per-pair loss.

        Each pair sends ``count`` probes one after another, each its own
        ``ping -c 1 -W wait_s``, so every probe gets the full wait_s to be answered.
        (One ``ping -c N`` would give later probes only max(2 x its fastest RTT,
        the interval) after the last send: on a busy machine a reply that arrives
        300 ms late would count as lost.) Pairs run as background jobs inside a
        subshell (whose ``wait`` only waits for those jobs), all hosts at the same
        time; one round takes about count x wait_s when something is unreachable.
        """
        self._need_net()
        names = hosts or self.host_names
        ips = {h.name: h.ip for h in self.topology.hosts}
        t0 = time.monotonic()
        nodes = {n: self.host(n) for n in names}
        probes = " ".join(str(i) for i in range(max(1, int(count))))
        for src, node in nodes.items():
            targets = " ".join(ips[d] for d in names if d != src)
            node.sendCmd(
                f"( for ip in {targets}; do ( for p in {probes}; do "
                f"if ping -n -q -c 1 -W {wait_s:g} $ip >/dev/null 2>&1; "
                f'then echo "R $ip 0"; else echo "R $ip 100"; fi; done ) & done; wait )'
            )
        loss: dict[tuple[str, str], float] = {}
        by_ip = {ips[n]: n for n in names}
        for src, node in nodes.items():
            out = node.waitOutput()
            got: dict[str, list[float]] = {}
            for m in re.finditer(r"^R (\S+) ([0-9.]+)\s*$", out, re.M):
                got.setdefault(by_ip.get(m.group(1), m.group(1)), []).append(float(m.group(2)))
            for dst in names:
                if dst != src:
                    seen = got.get(dst)
                    # no line at all: the shell never ran ping for it; count it unreached
                    loss[(src, dst)] = sum(seen) / len(seen) if seen else 100.0
        return Reachability(list(names), loss, time.monotonic() - t0)

    def wait_reachable(self, timeout: float = 30.0, wait_s: float = 1.0) -> tuple[float, Reachability]:
        """Poll full-mesh reachability until complete or timeout; never a blind sleep.

        Returns (seconds since this call, last matrix). On timeout the matrix is
        returned with ``complete == False`` (check it). The first success also records
        ``timings['reachable_after_start_s']`` (from the end of net.start()). Resolution
        is about one round: wait_s when something is unreachable (use 0.1-0.25 to time
        failovers), plus the round's own cost (~0.05 s ring4, ~2 s for ppu's 870 pings).
        """
        self._need_net()
        t0 = time.monotonic()
        while True:
            r0 = time.monotonic()
            matrix = self.reachability(count=1, wait_s=wait_s)
            now = time.monotonic()
            if matrix.complete:
                if self._t_started is not None and "reachable_after_start_s" not in self.timings:
                    self.timings["reachable_after_start_s"] = now - self._t_started
                return now - t0, matrix
            if now - t0 >= timeout:
                return now - t0, matrix
            if now - r0 < 0.1:  # a round that failed instantly (no route): don't spin
                time.sleep(0.1)

    def report(self, matrix: Reachability | None = None) -> str:
        """A short plain-text table: overall reachability, then one line per OPD."""
        m = matrix if matrix is not None else self.reachability()
        t = self.topology
        lines = [
            f"Kendali lab - {t.name}: {len(t.switches)} switches, {len(m.hosts)} hosts"
            + (" (standalone RSTP, no controller)" if self.standalone else ""),
            f"Pairs reached: {m.reached}/{m.pairs}   average loss: {m.loss_pct:.1f} %   "
            + ("ALL REACHABLE" if m.complete else "NOT ALL REACHABLE"),
            "",
            f"{'OPD / subnet':<34} {'hosts':>5} {'reached':>9} {'loss':>7}",
            f"{'-' * 34} {'-' * 5} {'-' * 9} {'-' * 7}",
        ]
        in_m = set(m.hosts)
        for sub in t.subnets.values():
            hs = [h.name for h in sub.hosts if h.name in in_m]
            if not hs:
                continue
            pairs = [(s, d) for (s, d) in m.loss if s in hs]
            reached = sum(1 for p in pairs if m.loss[p] < 100.0)
            loss = sum(m.loss[p] for p in pairs) / len(pairs) if pairs else 0.0
            label = sub.name if len(sub.name) <= 34 else sub.name[:31] + "..."
            lines.append(f"{label:<34} {len(hs):>5} {f'{reached}/{len(pairs)}':>9} {loss:>6.1f}%")
        failed = m.failed()
        for title, bad in (
            ("Not reached", [p for p in failed if m.loss[p] >= 100.0]),
            ("Some probes lost", [p for p in failed if m.loss[p] < 100.0]),
        ):
            if bad:
                shown = ", ".join(f"{s}->{d}" for s, d in bad[:8])
                lines += ["", f"{title} ({len(bad)}): {shown}" + (" ..." if len(bad) > 8 else "")]
        return "\n".join(lines)

    # -- failures

    def _links_between(self, a: str, b: str) -> list[Any]:
        sa, sb = self.switch(a), self.switch(b)
        found = [l for l in self.net.links if {l.intf1.node, l.intf2.node} == {sa, sb}]
        if not found:
            raise LabError(f"no link between {a!r} and {b!r}", "lab")
        return found

    def _set_link(self, a: str, b: str, state: str) -> None:
        for link in self._links_between(a, b):
            for intf in (link.intf1, link.intf2):
                intf.node.cmd(f"ip link set dev {intf.name} {state}")

    def link_down(self, a: str, b: str) -> None:
        """Carrier loss on the a-b link(s): both interfaces administratively down."""
        self._set_link(a, b, "down")

    def link_up(self, a: str, b: str) -> None:
        self._set_link(a, b, "up")

    # -- interactive

    def _print_names(self) -> None:
        sw = ", ".join(f"{self.names[s]}={s}" for s in self.topology.switches)
        renamed = [f"{self.names[h]}={h}" for h in self.host_names if self.names[h] != h]
        print(f"switches: {sw}")
        if renamed:
            print(f"renamed hosts: {', '.join(renamed)}")

    def run_cli(self) -> None:
        """Mininet's interactive CLI on this network."""
        self._need_net()
        from mininet.cli import CLI

        self._print_names()
        CLI(self.net)

    def run_script(self, path: str | Path) -> None:
        """Run a Mininet CLI script (one CLI command per line)."""
        self._need_net()
        if not Path(path).is_file():
            raise LabError("no such file", str(path))
        from mininet.cli import CLI

        CLI(self.net, script=str(path))


# ---------------------------------------------------------------- `kendali lab`


def controller_args(bfd: bool) -> list[str]:
    """The lab controller's flags for a lab with BFD on its links (or without, also when
    KENDALI_LAB_BFD=0)."""
    return ["--switch-liveness"] if bfd and BFD_MS else []


def lab_main(args: Any) -> int:
    """`kendali lab`: bring the topology up with a Kendali controller (its own, or one
    already listening on ``controller_port``), or standalone with RSTP.

    args: argparse.Namespace with topology (path or None), controller_port, script (path
    or None), cli (bool); optional standalone (bool), prefix (str), timeout (float).
    Exit codes: 0 ok; 1 not every host reached every other within the timeout (only
    with --no-cli and no script); 2 the lab could not be brought up.
    """
    path = getattr(args, "topology", None) or DEFAULT_TOPOLOGY
    ctl = None
    pair: Any = None
    more: tuple[int, ...] = ()
    try:
        topology = load(path)
        standalone = bool(getattr(args, "standalone", False))
        bfd = bool(getattr(args, "bfd", False) or LAB_BFD_MS)
        port = getattr(args, "controller_port", None)
        if getattr(args, "ha", False):
            if standalone or port is not None:
                raise KendaliError("--ha starts its own etcd and two controllers", "--ha")
            from controller.lab.hapair import HaPair

            pair = HaPair(path, getattr(args, "policies", None), keep_log=True, extra=controller_args(bfd)).start()
            port, more = pair.ctls[0].ofp_port, (pair.ctls[1].ofp_port,)
            print(f"kendali lab: etcd {pair.etcd.url} (data {pair.etcd.dir})")
            for c in pair.ctls:
                print(f"kendali lab: controller {c.node}: REST {c.url}/v1/ (token {c.token}), log {c.log_path}")
        elif port is None and not standalone:
            # No controller named: bring our own, so the lab works on its own.
            from controller.lab.labctl import ControllerProcess

            ctl = ControllerProcess(
                path, getattr(args, "policies", None), keep_log=True, extra=controller_args(bfd)
            ).start()
            port = ctl.ofp_port
            print(f"kendali lab: controller started: REST {ctl.url}/v1/ (token {ctl.token}), log {ctl.log_path}")
        lab = Lab(
            topology,
            controller_port=int(port or 6653),
            prefix=getattr(args, "prefix", None),
            standalone=standalone,
            more_controller_ports=more,
            bfd_ms=BFD_MS if bfd else 0,
        )
        print(
            f"kendali lab: bringing up {topology.name} ({len(topology.switches)} switches, "
            f"{len(topology.hosts)} hosts)"
            + ("" if lab.standalone else f", controller 127.0.0.1:{lab.controller_port}")
            + "".join(f" and 127.0.0.1:{p}" for p in more)
            + (f"; BFD {lab.bfd_ms} ms x {BFD_MULT} on inter-switch links" if lab.bfd_ms else "")
        )
        with lab:
            print(
                f"kendali lab: up in {lab.timings['build_s'] + lab.timings['start_s']:.1f} s; waiting for reachability"
            )
            elapsed, matrix = lab.wait_reachable(float(getattr(args, "timeout", 30.0) or 30.0))
            print(f"kendali lab: {'full reachability after' if matrix.complete else 'gave up after'} {elapsed:.1f} s")
            print(lab.report(matrix))
            if getattr(args, "script", None):
                lab.run_script(args.script)
            if getattr(args, "cli", True):
                lab.run_cli()
            elif not getattr(args, "script", None) and not matrix.complete:
                return 1
        return 0
    except KendaliError as exc:
        print(f"kendali lab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("kendali lab: interrupted; lab torn down", file=sys.stderr)
        return 130
    finally:
        if ctl is not None:
            ctl.cleanup()
        if pair is not None:
            pair.cleanup()
