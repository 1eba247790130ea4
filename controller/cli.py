"""`kendali` command line: controller, token, report, history, lab, demo, bench.

Bad flags or files end with one line naming the problem and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from controller.core.topology import DEFAULT_TOPOLOGY
from controller.errors import KendaliError

if TYPE_CHECKING:
    from controller.api.access import Access
    from controller.api.tokens import TokenFile
    from controller.core.sharing import Settings as SharingSettings
    from controller.core.topology import Topology
    from controller.openflow.ha import Ha

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(EXIT_USAGE, f"kendali: error: {message}\n")


def _whole(text: str, lo: int, hi: int, not_one: str, outside: str) -> int:
    """A whole number in [lo, hi] from the command line; the messages name the text ({text}) or
    the value ({v})."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(not_one.format(text=repr(text))) from None
    if not lo <= v <= hi:
        raise argparse.ArgumentTypeError(outside.format(v=v))
    return v


def _port(text: str) -> int:
    return _whole(text, 1, 65535, "not a port number: {text}", "port {v} is outside 1-65535")


def _seconds(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0.01 <= v <= 3600:
        raise argparse.ArgumentTypeError(f"{v} s is outside 0.01-3600")
    return v


def _audit_seconds(text: str) -> float:
    if text.strip() in ("0", "0.0"):
        return 0.0
    return _seconds(text)


def _days(text: str) -> int:
    return _whole(
        text, 1, 400, "not a whole number of days: {text}", "{v} days is outside 1-400 (the 5-minute history keeps 400)"
    )


def _seed(text: str) -> int:
    return _whole(text, 0, 2**63 - 1, "not a whole number: {text}", "{v} is outside 0-2^63")


def _node_id(text: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", text):
        raise argparse.ArgumentTypeError(f"{text!r}: use 1-63 letters, digits, '.', '_' or '-' (e.g. kendali-a)")
    return text


def _ttl(text: str) -> int:
    return _whole(
        text,
        2,
        60,
        "not a whole number of seconds: {text} (etcd's leases are)",
        "{v} s is outside 2-60 (etcd's shortest lease is 2 s)",
    )


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
    c.add_argument(
        "--state-dir",
        type=Path,
        default=Path("state"),
        help="where accepted policies and API tokens live (default ./state)",
    )
    c.add_argument("--ofp-port", type=_port, default=6653)
    c.add_argument(
        "--ofp-bind",
        default="0.0.0.0",
        metavar="ADDR",
        help="address the OpenFlow listener binds to (default 0.0.0.0: every interface)",
    )
    c.add_argument("--rest-port", type=_port, default=8080)
    c.add_argument(
        "--rest-bind",
        metavar="ADDR",
        default="127.0.0.1",
        help="address the REST API listens on (default 127.0.0.1; 0.0.0.0 or :: for every interface)",
    )
    c.add_argument("--rest-host", dest="rest_bind", metavar="ADDR", help="old name of --rest-bind")
    c.add_argument(
        "--tls-cert",
        type=_existing_file,
        metavar="FILE",
        help="serve HTTPS with this PEM certificate (chain); needs --tls-key",
    )
    c.add_argument("--tls-key", type=_existing_file, metavar="FILE", help="the certificate's PEM private key")
    c.add_argument("--open-metrics", action="store_true", help="GET /metrics without a token (for a scraper)")
    c.add_argument(
        "--lldp-interval",
        type=_seconds,
        default=None,
        help="seconds between LLDP probes on each link (default 0.1, or 2 with --switch-liveness; "
        "other ports about 1 s)",
    )
    c.add_argument(
        "--link-timeout",
        type=_seconds,
        default=None,
        help="a link silent this long is routed around (default 5 x interval)",
    )
    c.add_argument(
        "--switch-liveness",
        action="store_true",
        help="the switches judge their links' liveness (BFD on inter-switch interfaces, reported as "
        "OFPPS_LIVE; docs/liveness.md): silent failures are theirs to bypass and LLDP on links only "
        "checks the cabling, every 2 s by default (default: the controller's LLDP judges, every 0.1 s)",
    )
    c.add_argument("--no-protect", action="store_true", help="no fast-failover groups (for comparison)")
    c.add_argument(
        "--audit-interval",
        type=_audit_seconds,
        default=5.0,
        help="seconds between audits that compare each switch with what it should hold and repair "
        "any difference (default 5; 0 turns audits off)",
    )
    c.add_argument(
        "--keep-foreign",
        action="store_true",
        help="keep flows with another cookie than Kendali's (default: removed and logged)",
    )
    c.add_argument(
        "--closed-reads",
        action="store_true",
        help="accepted for old scripts: REST reads always need a token now (except /v1/health)",
    )
    c.add_argument(
        "--stats-interval",
        type=_seconds,
        default=10.0,
        help="seconds between usage polls of each switch (meters, ports; default 10)",
    )
    c.add_argument(
        "--sharing",
        action="store_true",
        help="share the purchased uplink by need: guarantees, priorities and caps that follow demand "
        "(docs/sharing.md; needs the topology's uplink with capacity_mbps); default: static caps",
    )
    c.add_argument(
        "--sharing-period",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="with --sharing: seconds between reallocations (default 5)",
    )
    c.add_argument(
        "--etcd",
        metavar="URL[,URL...]",
        help="high availability: keep policies, settings and tokens in this etcd cluster and elect one "
        "leader among the controllers that share it (docs/ha.md); default: the state dir alone",
    )
    c.add_argument(
        "--node-id",
        type=_node_id,
        default=None,
        metavar="NAME",
        help="with --etcd: this controller's name among the others (default: the host name)",
    )
    c.add_argument(
        "--etcd-ttl",
        type=_ttl,
        default=None,
        metavar="SECONDS",
        help="with --etcd: the leader's lease; a dead leader is replaced this long after it died (default 2)",
    )
    c.add_argument("-v", "--verbose", action="store_true")

    t = sub.add_parser("token", help="REST API tokens: add, list, revoke (works while the controller runs)")
    tsub = t.add_subparsers(dest="action", required=True, parser_class=_Parser)
    ta = tsub.add_parser("add", help="make a token and print its secret (the only time it is shown)")
    ta.add_argument("name", help="who or what uses it (e.g. noc, grafana); the audit log records it")
    ta.add_argument(
        "--role", required=True, choices=["read", "write"], help="read: every GET; write: also PUT and DELETE"
    )
    tl = tsub.add_parser("list", help="names, roles and creation times (never the secrets)")
    tr = tsub.add_parser("revoke", help="remove a token; a running controller refuses it from its next request on")
    tr.add_argument("name")
    for tp in (ta, tl, tr):
        tp.add_argument("--state-dir", type=Path, default=Path("state"), help="the controller's (default ./state)")
        tp.add_argument("--etcd", metavar="URL[,URL...]", help="the controllers' etcd (kendali controller --etcd)")

    lab = sub.add_parser("lab", help="Mininet lab of a topology file")
    lab.add_argument("--topology", type=_existing_file, default=DEFAULT_TOPOLOGY)
    lab.add_argument("--policies", type=_existing_file, help="policies for the lab's own controller")
    lab.add_argument(
        "--controller-port",
        type=_port,
        default=None,
        help="use the controller already listening on this port (default: start one)",
    )
    lab.add_argument("--standalone", action="store_true", help="no controller: Open vSwitch's own RSTP")
    lab.add_argument(
        "--ha",
        action="store_true",
        help="a local etcd and two controllers (--etcd), every switch connected to both (docs/ha.md)",
    )
    lab.add_argument(
        "--bfd",
        action="store_true",
        help="BFD (100 ms x 3) on the inter-switch links, the lab's controller with --switch-liveness: the "
        "switches bypass silent failures themselves (off by default: the lab's one ovs-vswitchd cannot "
        "keep 58 sessions under load; docs/liveness.md)",
    )
    lab.add_argument("--script", type=_existing_file, help="run this Mininet CLI script instead of the CLI")
    lab.add_argument("--no-cli", dest="cli", action="store_false", help="bring up, check reachability, tear down")

    d = sub.add_parser("demo", help="the PPU lab with the controller: reachability and per-OPD caps")
    d.add_argument("--topology", type=_existing_file, default=DEFAULT_TOPOLOGY)
    d.add_argument("--policies", type=_existing_file, default=None)
    d.add_argument("--quick", action="store_true", help="reachability only")
    d.add_argument("--bfd", action="store_true", help="BFD on the inter-switch links (as kendali lab --bfd)")

    r = sub.add_parser("report", help="the usage report of a state dir: needs, cost per OPD (html, json or csv)")
    r.add_argument("--state-dir", type=Path, default=Path("state"), help="the controller's (default ./state)")
    r.add_argument(
        "--from",
        dest="frm",
        metavar="DATE",
        help="start: a date or time (local to the settings' time zone unless it has an offset), "
        "unix seconds or now-30d (default: 30 days before --to)",
    )
    r.add_argument(
        "--to", metavar="DATE", help="end, exclusive (default: now); a month: --from 2026-11-01 --to 2026-12-01"
    )
    r.add_argument("--format", choices=["html", "json", "csv"], default="html", help="default html")
    r.add_argument("--lang", choices=["id", "en"], default="id", help="html language: id (default) or en")
    r.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="write here (default: stdout for json and csv, report-<from>-<to>.html for html)",
    )

    h = sub.add_parser("history", help="usage history tools")
    hsub = h.add_subparsers(dest="action", required=True, parser_class=_Parser)
    hs = hsub.add_parser("simulate", help="fill a state dir with simulated usage for demonstrations (marked SIMULATED)")
    hs.add_argument("--days", type=_days, default=30, help="how many days up to --end (default 30, at most 400)")
    hs.add_argument("--state-dir", type=Path, default=Path("state"), help="default ./state")
    hs.add_argument("--seed", type=_seed, default=1, help="the same seed makes the same history (default 1)")
    hs.add_argument(
        "--end", metavar="DATE", help="where the simulated history ends (default now); a date is local midnight"
    )
    hs.add_argument("--force", action="store_true", help="replace a measured history (it is moved aside, not deleted)")

    sh = sub.add_parser(
        "screenshots", help="regenerate docs/report.png (a simulated month) and docs/console.png (the PPU lab; root)"
    )
    sh.add_argument("--out", type=Path, default=Path("docs"), help="where to write them (default docs/)")
    sh.add_argument("--only", choices=["report", "console"], help="just one of them")

    b = sub.add_parser("bench", help="benchmarks (see bench/)")
    b.add_argument(
        "which",
        nargs="?",
        default="compile",
        choices=["compile", "reach", "meters", "failover", "load", "stats", "report", "sharing", "takeover", "idle"],
    )
    b.add_argument(
        "--no-bfd",
        action="store_true",
        help="failover: the lab without BFD and the controller's fast LLDP (the figures before BFD)",
    )
    b.add_argument("--json", type=_writable_file, help="also write the figures as JSON here")
    b.add_argument(
        "--switches",
        type=_bench_size,
        help="compile: one generated network of this many switches (default: 200, 2,000 and 5,000)",
    )
    b.add_argument("--hosts", type=_bench_hosts, help="compile: hosts in it (default: 10 per switch)")
    return ap


def _bench_size(text: str) -> int:
    return _whole(text, 6, 20_000, "not a number of switches: {text}", "{v} switches: give 6 to 20,000")


def _bench_hosts(text: str) -> int:
    return _whole(text, 0, 500_000, "not a number of hosts: {text}", "{v} hosts: give 0 to 500,000")


def _quiet_eventlet() -> None:
    # eventlet announces its maintenance status on import; users need not see it.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")


def _check_free(host: str, port: int, what: str) -> None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise KendaliError(f"cannot listen on {host}:{port}: {exc.strerror}", what) from None


def run_controller(args: argparse.Namespace) -> int:
    from controller.core.liveness import timers

    lldp_interval, link_timeout = timers(args.lldp_interval, args.link_timeout, args.switch_liveness)
    if link_timeout < 2 * lldp_interval:
        raise KendaliError(f"must be at least twice --lldp-interval ({lldp_interval:g} s)", "--link-timeout")
    from controller.api import server

    tls = server.check_tls(args.tls_cert, args.tls_key)  # a bad certificate is found before anything starts
    _quiet_eventlet()
    from os_ken.lib import hub

    hub.patch(thread=True)  # before anything creates a lock or a socket
    from controller.api import memory
    from controller.api import store as store_mod
    from controller.core import policy
    from controller.core import topology as topo_mod

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("kendali")
    # Everything that can be wrong with the files is found here, before any switch connects.
    topology = topo_mod.load(args.topology) if args.topology else None
    from controller.core.controller import purchased_uplink_kbps

    ha = _ha(args)  # with --etcd: the state dir is now etcd's mirror
    # What is bought: the report settings' uplink_mbps (PUT /v1/settings) when set, else the
    # topology's uplink; read at start (a damaged settings.json stops here, naming it).
    bought = store_mod.load_settings(args.state_dir).uplink_mbps if args.state_dir.is_dir() else None
    uplink_kbps = purchased_uplink_kbps(topology, bought)
    sharing = _sharing_settings(args, topology, uplink_kbps)
    store = ha.shared.store if ha is not None else store_mod.PolicyStore(args.state_dir)
    if args.policies:
        note = store.seed(policy.load_file(args.policies, uplink_kbps), str(args.policies))
        if note:
            log.warning("%s", note)
    from controller.api import history

    history.check(args.state_dir / history.HISTORY_FILE)  # a bad usage.sqlite is one line, before any switch
    ofp_opts = ["--ofp-listen-host", args.ofp_bind, "--ofp-tcp-listen-port", str(args.ofp_port)]
    _check_free(args.ofp_bind, args.ofp_port, "--ofp-port")
    _check_free(args.rest_bind, args.rest_port, "--rest-port")
    access = _access(args.state_dir, ha.shared.tokens if ha is not None else None)
    for noisy in ("os_ken", "os_ken.base.app_manager", "os_ken.controller"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import os_ken.controller.ofp_handler  # noqa: F401  (registers its options)
    from os_ken import cfg

    cfg.CONF(args=ofp_opts, project="os_ken")
    from os_ken.base.app_manager import AppManager

    from controller.openflow import app

    app.SETTINGS.topology = topology
    app.SETTINGS.store = store
    app.SETTINGS.state_dir = args.state_dir
    app.SETTINGS.lldp_secret = memory.lldp_secret(args.state_dir)
    app.SETTINGS.keep_foreign = args.keep_foreign
    app.SETTINGS.audit_interval = args.audit_interval
    app.SETTINGS.access = access
    app.SETTINGS.rest_port = args.rest_port
    app.SETTINGS.rest_host = args.rest_bind
    app.SETTINGS.rest_tls = (args.tls_cert, args.tls_key) if tls is not None else None
    app.SETTINGS.open_metrics = args.open_metrics
    app.SETTINGS.lldp_interval = lldp_interval
    app.SETTINGS.link_timeout = link_timeout
    app.SETTINGS.switch_liveness = args.switch_liveness
    app.SETTINGS.protect = not args.no_protect
    app.SETTINGS.stats_interval = args.stats_interval
    app.SETTINGS.sharing = sharing
    app.SETTINGS.uplink_kbps = uplink_kbps
    app.SETTINGS.ha = ha
    try:
        AppManager.run_apps(["os_ken.controller.ofp_handler", "controller.openflow.app"])
    except KeyboardInterrupt:
        pass
    return 0


def _sharing_settings(
    args: argparse.Namespace, topology: Topology | None, uplink_kbps: float | None
) -> SharingSettings | None:
    """--sharing's settings (None: static caps), or a clear error naming what is missing."""
    if not args.sharing:
        if args.sharing_period is not None:
            raise KendaliError("only means something with --sharing", "--sharing-period")
        return None
    if uplink_kbps is None:
        need = "the uplink (the ISP router's subnet) with capacity_mbps, what it buys: the capacity to share"
        where = "needs a --topology that declares" if topology is None else f"{args.topology} must declare"
        raise KendaliError(f"{where} {need} (docs/sharing.md)", "--sharing")
    from controller.core.sharing import Settings

    return Settings(period=args.sharing_period or 5.0)


def _ha(args: argparse.Namespace) -> Ha | None:
    """With --etcd: this node's election and shared state (etcd must answer now); else None."""
    if not args.etcd:
        for flag, value in (("--node-id", args.node_id), ("--etcd-ttl", args.etcd_ttl)):
            if value is not None:
                raise KendaliError("only means something with --etcd", flag)
        return None
    import socket

    from controller.api.etcd import Etcd, EtcdUnavailable
    from controller.api.etcdstore import EtcdPolicyStore, EtcdTokenFile, Shared
    from controller.core.election import DEFAULT_TTL, Election
    from controller.openflow.ha import Ha

    node = args.node_id or _node_id(socket.gethostname().split(".")[0] or "kendali")
    ttl = float(args.etcd_ttl or DEFAULT_TTL)
    etcd = Etcd(args.etcd, timeout=max(0.5, ttl / 2))
    try:
        store = EtcdPolicyStore(args.state_dir, etcd, node)
        tokens = EtcdTokenFile(args.state_dir, etcd)
        tokens.sync()
    except EtcdUnavailable as exc:
        raise KendaliError(f"{exc.strerror}; a controller needs etcd to start (docs/ha.md)", "--etcd") from None
    shared = Shared(store, tokens)  # the app hooks its policies_changed in (Ha.start)
    return Ha(etcd, Election(node, ttl), shared)


def _access(state_dir: Path, tokens: TokenFile | None = None) -> Access:
    """The controller's token check; at the very first start it makes a write token and prints it once."""
    from controller.api.access import Access, Keyring
    from controller.api.tokens import FIRST_NAME, TokenFile

    env_secret, generated = (tokens or TokenFile(state_dir)).first_start(os.environ)
    if generated:
        print(
            f"kendali: REST API write token {FIRST_NAME!r} (shown once, stored hashed in {state_dir}/tokens.json; "
            f"make more with: kendali token add NAME --role read|write): {generated}",
            flush=True,
        )
    return Access(Keyring(state_dir, env_secret))


def run_token(args: argparse.Namespace) -> int:
    from controller.api.tokens import ENV_NAME, TokenFile, check_name

    def token_file(create: bool = True) -> TokenFile:
        if not args.etcd:
            return TokenFile(args.state_dir, create=create)
        from controller.api.etcd import Etcd
        from controller.api.etcdstore import EtcdTokenFile

        return EtcdTokenFile(args.state_dir, Etcd(args.etcd), create=create)

    if args.action == "add":
        check_name(args.name)  # before a state dir is made for it
        secret = token_file().add(args.name, args.role)
        print(secret, flush=True)  # alone on stdout: TOKEN=$(kendali token add noc --role write)
        print(
            f"kendali: token {args.name!r} ({args.role}) added in {args.state_dir}; its secret is shown above, "
            "this once only",
            file=sys.stderr,
        )
        return 0
    files = token_file(create=False)
    if args.action == "revoke":
        files.revoke(args.name)
        print(
            f"kendali: token {args.name!r} revoked; a running controller refuses it from its next request on",
            file=sys.stderr,
        )
        return 0
    entries = files.entries()
    rows = [("NAME", "ROLE", "CREATED")] + [(e.name, e.role, e.created) for _, e in sorted(entries.items())]
    width = max(len(r[0]) for r in rows)
    for name, role, created in rows:
        print(f"{name:<{width}}  {role:<5}  {created}")
    if not entries:
        print(f"(no stored tokens in {args.state_dir}; KENDALI_TOKEN, if set, is the write token {ENV_NAME!r})")
    return 0


def _flagged(exc: Exception, flags: dict[str, str]) -> KendaliError:
    """A HistoryError (problem, field) as a KendaliError naming the command-line flag."""
    field = getattr(exc, "field", "")
    return KendaliError(getattr(exc, "problem", str(exc)), "", flags.get(field, field))


def run_report(args: argparse.Namespace) -> int:
    import time

    from controller.api.history import HistoryError
    from controller.report import data

    if not args.state_dir.is_dir():
        raise KendaliError("no such state directory (give the controller's --state-dir)", str(args.state_dir))
    now = time.time()
    try:
        frm, to = data.period_of(args.state_dir, args.frm, args.to, now)
    except HistoryError as exc:
        raise _flagged(exc, {"from": "--from", "to": "--to"}) from None
    if args.format == "html":
        try:
            data.html_renderer()  # before the work: say at once that html cannot be made here
        except data.Unavailable as exc:
            raise KendaliError(str(exc), "", "--format") from None
    doc = data.build(args.state_dir, frm, to, now)
    text = data.render(doc, args.format, args.lang, os.cpu_count() or 1)
    out = args.out
    if out is None and args.format == "html":
        out = Path(data.file_name(doc, "html"))
    if out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise KendaliError(f"cannot write the report: {exc.strerror}", str(out), "--out") from None
    print(out.resolve())
    return 0


def run_history(args: argparse.Namespace) -> int:
    import time

    from controller.api.history import HistoryError
    from controller.api.store import load_settings
    from controller.report.data import parse_when
    from controller.report.simulate import simulate

    try:
        zone = load_settings(args.state_dir).office_hours.timezone  # a date is the offices' midnight
        end = parse_when(args.end, "end", time.time(), zone) if args.end else time.time()
    except HistoryError as exc:
        raise _flagged(exc, {"end": "--end"}) from None
    t0 = time.monotonic()
    made = simulate(args.state_dir, args.days, end, args.seed, args.force)
    if made["moved"]:
        print(f"kendali: the measured history was moved aside to {made['moved']}", file=sys.stderr)
    outgrow, idle = (", ".join(made["roles"][k]) or "-" for k in ("outgrow", "idle"))
    print(
        f"simulated {made['days']} days of usage for {made['opds']} OPDs and {made['links']} links in "
        f"{args.state_dir} ({time.monotonic() - t0:.1f} s; outgrowing their caps: {outgrow}; "
        f"barely using theirs: {idle}).\n"
        f"Every report of it says SIMULATED: kendali report --state-dir {args.state_dir}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "controller":
            return run_controller(args)
        if args.command == "token":
            return run_token(args)
        if args.command == "report":
            return run_report(args)
        if args.command == "history":
            return run_history(args)
        if args.command == "lab":
            from controller.lab.mininet_lab import lab_main

            return lab_main(args)
        if args.command == "demo":
            from controller.lab.demo import demo_main

            return demo_main(args)
        if args.command == "screenshots":
            from controller.lab.screenshots import screenshots_main

            return screenshots_main(args)
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
