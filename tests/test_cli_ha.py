"""`kendali controller --etcd ...` flags: bad values and an unreachable etcd end with one line, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from controller.cli import EXIT_USAGE, build_parser
from controller.lab.etcdlocal import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "argv,words",
    [
        (["controller", "--etcd-ttl", "1"], ["--etcd-ttl", "2-60"]),
        (["controller", "--etcd-ttl", "2.5"], ["--etcd-ttl", "whole number"]),
        (["controller", "--node-id", "a b"], ["--node-id", "letters"]),
    ],
)
def test_bad_ha_flags_exit_2_with_one_line(capsys, argv, words) -> None:
    with pytest.raises(SystemExit) as ei:
        build_parser().parse_args(argv)
    assert ei.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(w in err for w in words), err


def test_ha_defaults() -> None:
    a = build_parser().parse_args(["controller"])
    assert (a.etcd, a.node_id, a.etcd_ttl) == (None, None, None)
    a = build_parser().parse_args(["controller", "--etcd", "http://e1:2379,http://e2:2379", "--node-id", "k-a"])
    assert (a.etcd, a.node_id) == ("http://e1:2379,http://e2:2379", "k-a")


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "controller", "--state-dir", str(tmp_path / "s"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "KENDALI_TOKEN": "t" * 40},
    )


def test_ha_flags_without_etcd_and_an_unreachable_etcd_are_one_line(tmp_path: Path) -> None:
    p = _run(tmp_path, "--node-id", "a", "--ofp-port", str(free_port()), "--rest-port", str(free_port()))
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "--node-id" in p.stderr and "only means something with --etcd" in p.stderr
    url = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    p = _run(tmp_path, "--etcd", url, "--ofp-port", str(free_port()), "--rest-port", str(free_port()))
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "etcd is unreachable" in p.stderr and "needs etcd to start" in p.stderr
    p = _run(tmp_path, "--etcd", "ftp://x", "--ofp-port", str(free_port()), "--rest-port", str(free_port()))
    assert p.returncode == 2 and "not an etcd client URL" in p.stderr, p.stderr
