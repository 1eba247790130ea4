"""controller.cli: bad flags and files end with exit code 2 and one line, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from controller.cli import EXIT_USAGE, build_parser
from controller.core.topology import DEFAULT_TOPOLOGY

ROOT = Path(__file__).resolve().parent.parent


def usage_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as ei:
        build_parser().parse_args(argv)
    assert ei.value.code == EXIT_USAGE == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err  # exactly one line
    assert err.startswith("kendali: error: ")
    return err


@pytest.mark.parametrize(
    "argv,words",
    [
        (["controller", "--ofp-port", "70000"], ["--ofp-port", "70000", "1-65535"]),
        (["controller", "--rest-port", "0"], ["--rest-port", "outside"]),
        (["controller", "--ofp-port", "http"], ["--ofp-port", "not a port number", "'http'"]),
        (["lab", "--controller-port", "-1"], ["--controller-port"]),
        (["controller", "--lldp-interval", "0"], ["--lldp-interval", "0.01-3600"]),
        (["controller", "--link-timeout", "9999"], ["--link-timeout", "outside"]),
        (["controller", "--lldp-interval", "soon"], ["--lldp-interval", "not a number of seconds"]),
        (["controller", "--stats-interval", "0"], ["--stats-interval", "0.01-3600"]),
        (["bench", "stats", "--json", "/proc/kendali/x.json"], ["--json", "cannot write there"]),
        (
            ["controller", "--topology", "/nonexistent/topo.yaml"],
            ["--topology", "/nonexistent/topo.yaml", "no such file"],
        ),
        (["controller", "--policies", "/nonexistent/p.yaml"], ["--policies", "no such file"]),
        (["lab", "--script", "/nonexistent/s.mn"], ["--script", "no such file"]),
        (["demo", "--topology", "/nonexistent/t.yaml"], ["--topology", "no such file"]),
        ([], ["required"]),
        (["fly"], ["invalid choice", "'fly'"]),
        (["controller", "--bogus"], ["unrecognized", "--bogus"]),
        (["bench", "everything"], ["invalid choice"]),
    ],
)
def test_bad_flags_exit_2_with_one_line(capsys, argv, words):
    err = usage_error(capsys, argv)
    for w in words:
        assert w in err, err


def test_a_directory_is_not_a_file(capsys, tmp_path):
    assert "no such file" in usage_error(capsys, ["controller", "--topology", str(tmp_path)])


def test_bench_json_path_is_checked_before_minutes_of_measuring(capsys, tmp_path):
    err = usage_error(capsys, ["bench", "failover", "--json", "/proc/kendali/x.json"])
    assert "--json" in err and "cannot write there" in err, err
    assert "is a directory" in usage_error(capsys, ["bench", "--json", str(tmp_path)])
    good = tmp_path / "new" / "figures.json"
    assert build_parser().parse_args(["bench", "--json", str(good)]).json == good
    assert not good.exists()  # checking leaves nothing behind


def test_defaults_and_good_values():
    a = build_parser().parse_args(["controller"])
    assert (a.command, a.topology, a.policies, a.ofp_port, a.rest_port, a.lldp_interval, a.link_timeout) == (
        "controller",
        None,
        None,
        6653,
        8080,
        None,
        None,
    )
    # Not given: LLDP on links every 0.1 s, 0.5 s of silence kills; with --switch-liveness
    # (the switches' BFD judges) every 2 s, 10 s. Given, they mean what they say either way.
    from controller.core.liveness import timers

    assert timers(a.lldp_interval, a.link_timeout, a.switch_liveness) == (0.1, 0.5)
    b = build_parser().parse_args(["controller", "--switch-liveness"])
    assert timers(b.lldp_interval, b.link_timeout, b.switch_liveness) == (2.0, 10.0)
    b = build_parser().parse_args(["controller", "--switch-liveness", "--lldp-interval", "1", "--link-timeout", "4"])
    assert timers(b.lldp_interval, b.link_timeout, b.switch_liveness) == (1.0, 4.0)
    assert not build_parser().parse_args(["lab"]).bfd and build_parser().parse_args(["demo", "--bfd"]).bfd
    assert build_parser().parse_args(["bench", "failover", "--no-bfd"]).no_bfd
    assert a.state_dir == Path("state") and not a.no_protect and a.stats_interval == 10.0
    assert build_parser().parse_args(["controller", "--stats-interval", "2.5"]).stats_interval == 2.5
    assert build_parser().parse_args(["bench", "stats"]).which == "stats"
    a = build_parser().parse_args(
        [
            "controller",
            "--topology",
            str(DEFAULT_TOPOLOGY),
            "--ofp-port",
            "1",
            "--rest-port",
            "65535",
            "--lldp-interval",
            "0.01",
            "--link-timeout",
            "3600",
        ]
    )
    assert (a.topology, a.ofp_port, a.rest_port, a.lldp_interval, a.link_timeout) == (
        DEFAULT_TOPOLOGY,
        1,
        65535,
        0.01,
        3600.0,
    )
    assert build_parser().parse_args(["lab"]).topology == DEFAULT_TOPOLOGY
    assert build_parser().parse_args(["bench"]).which == "compile"


SCRIPT = textwrap.dedent("""
    import io, json, sys, time, contextlib
    from controller.cli import main
    out = []
    for argv in json.loads(sys.argv[1]):
        err = io.StringIO()
        t0 = time.monotonic()
        with contextlib.redirect_stderr(err):
            rc = main(argv)
        out.append({"rc": rc, "err": err.getvalue(), "s": time.monotonic() - t0,
                    "app": "controller.openflow.app" in sys.modules})
    print(json.dumps(out))
""")


def test_controller_with_bad_files_returns_2_before_starting(tmp_path):
    bad_topo = tmp_path / "bad.yaml"
    bad_topo.write_text("switches:\n  - {name: s1, dpid: 1, colour: red}\n", encoding="utf-8")
    bad_pol = tmp_path / "pol.yaml"
    bad_pol.write_text(
        "policies:\n  - {id: x, name: X, subnets: [10.0.0.0/24], download_kbps: -1, upload_kbps: 1}\n", encoding="utf-8"
    )
    state = tmp_path / "state"
    runs = [
        ["controller", "--topology", str(bad_topo), "--state-dir", str(state)],
        [
            "controller",
            "--topology",
            str(DEFAULT_TOPOLOGY),
            "--policies",
            str(bad_pol),
            "--state-dir",
            str(tmp_path / "state2"),
            "--ofp-port",
            "1",
            "--rest-port",
            "1",
        ],
    ]
    t0 = time.monotonic()
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(runs)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - t0 < 20
    topo_run, pol_run = json.loads(p.stdout)
    for r in (topo_run, pol_run):
        assert r["rc"] == 2
        assert r["err"].count("\n") == 1 and r["err"].startswith("kendali: error: "), r["err"]
        assert not r["app"], "the os-ken app must not be imported before the files are checked"
        assert r["s"] < 5
    assert f"{bad_topo}: switches.0.colour: unknown field" in topo_run["err"]
    assert f"{bad_pol}: policies.0" in pol_run["err"] and "download_kbps" in pol_run["err"]
    assert not state.exists(), "a bad topology must fail before the state directory is created"


# --- REST flags ------------------------------------------------------------------------------------


def test_rest_bind_defaults_to_loopback_and_rest_host_is_its_old_name():
    assert build_parser().parse_args(["controller"]).rest_bind == "127.0.0.1"
    assert build_parser().parse_args(["controller", "--rest-bind", "0.0.0.0"]).rest_bind == "0.0.0.0"
    assert build_parser().parse_args(["controller", "--rest-host", "10.0.0.5"]).rest_bind == "10.0.0.5"
    a = build_parser().parse_args(["controller", "--closed-reads", "--open-metrics"])  # old flag still accepted
    assert a.closed_reads and a.open_metrics


@pytest.mark.parametrize(
    "argv,words",
    [
        (
            ["controller", "--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"],
            ["--tls-cert", "no such file"],
        ),
        (["token"], ["required", "action"]),
        (["token", "add"], ["required", "name"]),
        (["token", "add", "noc"], ["--role"]),
        (["token", "add", "noc", "--role", "admin"], ["--role", "invalid choice", "'admin'"]),
        (["token", "revoke"], ["required", "name"]),
        (["token", "forget", "x"], ["invalid choice", "'forget'"]),
    ],
)
def test_bad_token_and_tls_flags_exit_2_with_one_line(capsys, argv, words):
    err = usage_error(capsys, argv)
    for w in words:
        assert w in err, err


def run_main(capsys, argv):
    from controller.cli import main

    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_tls_needs_both_files_before_anything_starts(capsys, tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    state = tmp_path / "state"
    for flags, words in (
        (["--tls-cert", str(cert)], "--tls-cert: needs --tls-key too"),
        (["--tls-key", str(cert)], "--tls-key: needs --tls-cert too"),
        (["--tls-cert", str(cert), "--tls-key", str(cert)], f"--tls-cert {cert}: not a PEM certificate"),
    ):
        rc, out, err = run_main(capsys, ["controller", "--state-dir", str(state), *flags])
        assert rc == 2 and out == ""
        assert err.startswith(f"kendali: error: {words}") and err.count("\n") == 1, err
    assert not state.exists()  # found before anything was made or started


def test_token_add_list_revoke(capsys, tmp_path, monkeypatch):
    from controller.api import tokens as tokens_mod

    monkeypatch.setitem(tokens_mod.SCRYPT, "n", 2**4)
    state = tmp_path / "state"
    rc, out, err = run_main(capsys, ["token", "add", "noc", "--role", "write", "--state-dir", str(state)])
    assert rc == 0
    secret = out.strip()
    assert out == secret + "\n" and len(secret) == 43  # stdout is the secret alone: TOKEN=$(kendali token add ...)
    assert "'noc' (write) added" in err and secret not in err
    rc, out, _ = run_main(capsys, ["token", "add", "grafana", "--role", "read", "--state-dir", str(state)])
    rc, out, err = run_main(capsys, ["token", "list", "--state-dir", str(state)])
    assert rc == 0 and secret not in out
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "CREATED"]
    assert [line.split()[:2] for line in lines[1:]] == [["grafana", "read"], ["noc", "write"]]
    rc, out, err = run_main(capsys, ["token", "revoke", "grafana", "--state-dir", str(state)])
    assert rc == 0 and "revoked" in err
    rc, out, err = run_main(capsys, ["token", "list", "--state-dir", str(state)])
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["noc"]


@pytest.mark.parametrize(
    "argv,words",
    [
        (["token", "add", "NOC", "--role", "read"], "name: 'NOC' is not a valid token name"),
        (["token", "add", "env", "--role", "write"], "name: 'env' is reserved"),
        (["token", "revoke", "ghost"], "name: no token named 'ghost'"),
        (["token", "list", "--state-dir", "/nonexistent/state"], "/nonexistent/state: no such state directory"),
        (["token", "revoke", "noc", "--state-dir", "/nonexistent/state"], "no such state directory"),
    ],
)
def test_bad_token_input_is_one_line_exit_2(capsys, tmp_path, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "state").mkdir()
    rc, out, err = run_main(capsys, argv)
    assert rc == 2 and out == ""
    assert err.startswith("kendali: error: ") and err.count("\n") == 1 and words in err, err
    assert not (tmp_path / "state" / "tokens.json").exists()


def test_a_bad_name_makes_no_state_dir(capsys, tmp_path):
    rc, _, err = run_main(capsys, ["token", "add", "Bad Name", "--role", "read", "--state-dir", str(tmp_path / "s")])
    assert rc == 2 and "not a valid token name" in err
    assert not (tmp_path / "s").exists()


def test_token_list_of_an_empty_state_dir(capsys, tmp_path):
    (tmp_path / "state").mkdir()
    rc, out, _ = run_main(capsys, ["token", "list", "--state-dir", str(tmp_path / "state")])
    assert rc == 0 and "no stored tokens" in out


def test_controller_with_a_broken_usage_history_returns_2_naming_it(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "usage.sqlite").write_bytes(b"not a database at all" * 200)
    runs = [["controller", "--state-dir", str(state), "--ofp-port", "1", "--rest-port", "1"]]
    p = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(runs)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert p.returncode == 0, p.stderr
    (r,) = json.loads(p.stdout)
    assert r["rc"] == 2 and r["err"].count("\n") == 1 and not r["app"], r
    assert f"{state / 'usage.sqlite'}: the usage history cannot be used" in r["err"]
