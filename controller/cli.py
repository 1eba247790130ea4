"""`kendali` command line: controller, lab, demo, bench.

Bad flags or files end with one line naming the problem and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

from controller.errors import KendaliError
from controller.core.topology import DEFAULT_TOPOLOGY

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(EXIT_USAGE, f"kendali: error: {message}\n")


def _port(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 1 <= v <= 65535:
        raise argparse.ArgumentTypeError(f"port {v} is outside 1-65535")
    return v


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.01 <= v <= 3600:
        raise argparse.ArgumentTypeError(f"{v} s is outside 0.01-3600")
    return v


def _existing_file(text: str) -> Path:
    p = Path(text)
    if not p.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return p


def _writable_file(text: str) -> Path:
    """A file we can write at the end of a long run: checked now, so minutes of
    measurement are not lost to a bad path."""
    p = Path(text)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a directory")
    existed = p.exists()
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "a"):
            pass
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"{text}: cannot write there ({exc.strerror})") from None
    if not existed:
        p.unlink()
    return p


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="kendali", description="Kendali SDN controller for a regency intranet")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("controller", help="run the OpenFlow controller")
    c.add_argument("--topology", type=_existing_file, help="declared topology YAML (optional: pure discovery without)")
    c.add_argument("--policies", type=_existing_file, help="policy YAML that seeds an empty state")
    c.add_argument("--state-dir", type=Path, default=Path("state"), help="where accepted policies live (default ./state)")
    c.add_argument("--ofp-port", type=_port, default=6653)
    c.add_argument("--rest-port", type=_port, default=8080)
    c.add_argument("--rest-host", default="0.0.0.0")
    c.add_argument("--lldp-interval", type=_seconds, default=0.1,
                   help="seconds between LLDP probes on each link (default 0.1; other ports about 1 s)")
    c.add_argument("--link-timeout", type=_seconds, default=None,
                   help="a link silent this long is routed around (default 5 x interval)")
    c.add_argument("--no-protect", action="store_true", help="no fast-failover groups (for comparison)")
    c.add_argument("--closed-reads", action="store_true", help="REST reads need the token too")
    c.add_argument("--stats-interval", type=_seconds, default=10.0,
                   help="seconds between usage polls of each switch (meters, ports; default 10)")
    c.add_argument("-v", "--verbose", action="store_true")

    lab = sub.add_parser("lab", help="Mininet lab of a topology file")
    lab.add_argument("--topology", type=_existing_file, default=DEFAULT_TOPOLOGY)
    lab.add_argument("--policies", type=_existing_file, help="policies for the lab's own controller")
    lab.add_argument("--controller-port", type=_port, default=None,
                     help="use the controller already listening on this port (default: start one)")
    lab.add_argument("--standalone", action="store_true", help="no controller: Open vSwitch's own RSTP")
    lab.add_argument("--script", type=_existing_file, help="run this Mininet CLI script instead of the CLI")
    lab.add_argument("--no-cli", dest="cli", action="store_false", help="bring up, check reachability, tear down")

    d = sub.add_parser("demo", help="the PPU lab with the controller: reachability and per-OPD caps")
    d.add_argument("--topology", type=_existing_file, default=DEFAULT_TOPOLOGY)
    d.add_argument("--policies", type=_existing_file, default=None)
    d.add_argument("--quick", action="store_true", help="reachability only")

    b = sub.add_parser("bench", help="benchmarks (see bench/)")
    b.add_argument("which", nargs="?", default="compile", choices=["compile", "reach", "meters", "failover", "stats"])
    b.add_argument("--json", type=_writable_file, help="also write the figures as JSON here")
    return ap


def _quiet_eventlet() -> None:
    # eventlet announces its maintenance status on import; users need not see it.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")


def _check_free(host: str, port: int, what: str) -> None:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise KendaliError(f"cannot listen on {host}:{port}: {exc.strerror}", what) from None


def run_controller(args: argparse.Namespace) -> int:
    link_timeout = args.link_timeout or 5 * args.lldp_interval
    if link_timeout < 2 * args.lldp_interval:
        raise KendaliError(f"must be at least twice --lldp-interval ({args.lldp_interval:g} s)", "--link-timeout")
    _quiet_eventlet()
    from os_ken.lib import hub

    hub.patch(thread=True)  # before anything creates a lock or a socket
    from controller.core import policy
    from controller.api import store as store_mod
    from controller.core import topology as topo_mod

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("kendali")
    # Everything that can be wrong with the files is found here, before any switch connects.
    topology = topo_mod.load(args.topology) if args.topology else None
    store = store_mod.PolicyStore(args.state_dir)
    if args.policies:
        note = store.seed(policy.load_file(args.policies), str(args.policies))
        if note:
            log.warning("%s", note)
    from controller.api import history

    history.check(args.state_dir / history.HISTORY_FILE)  # telemetry: a bad usage.sqlite is one line, before any switch
    _check_free("0.0.0.0", args.ofp_port, "--ofp-port")
    _check_free(args.rest_host, args.rest_port, "--rest-port")
    tokens, generated = store_mod.tokens(args.state_dir, os.environ)
    if generated:
        print(f"kendali: REST API token (shown once, kept in {args.state_dir}/token): {tokens['file']}", flush=True)
    for noisy in ("os_ken", "os_ken.base.app_manager", "os_ken.controller"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    from os_ken import cfg
    import os_ken.controller.ofp_handler  # noqa: F401  (registers its options)

    cfg.CONF(args=["--ofp-tcp-listen-port", str(args.ofp_port)], project="os_ken")
    from os_ken.base.app_manager import AppManager

    from controller.openflow import app

    app.SETTINGS.topology = topology
    app.SETTINGS.store = store
    app.SETTINGS.tokens = tokens
    app.SETTINGS.rest_port = args.rest_port
    app.SETTINGS.rest_host = args.rest_host
    app.SETTINGS.lldp_interval = args.lldp_interval
    app.SETTINGS.link_timeout = link_timeout
    app.SETTINGS.protect = not args.no_protect
    app.SETTINGS.open_reads = not args.closed_reads
    app.SETTINGS.stats_interval = args.stats_interval
    try:
        AppManager.run_apps(["os_ken.controller.ofp_handler", "controller.openflow.app"])
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "controller":
            return run_controller(args)
        if args.command == "lab":
            from controller.lab.mininet_lab import lab_main

            return lab_main(args)
        if args.command == "demo":
            from controller.lab.demo import demo_main

            return demo_main(args)
        if args.command == "bench":
            from controller.lab.bench import bench_main

            return bench_main(args)
    except KendaliError as exc:
        print(f"kendali: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
