"""A Kendali controller as a child process, for the demo, lab tests and benchmarks."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from controller.errors import KendaliError


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the parent dies, so no controller outlives its lab."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# On a shared lab machine each user of the lab may be given its own range of ports
# ("18300-18399"): lab controllers then take theirs from it instead of the kernel's.
PORT_RANGE_ENV = "KENDALI_LAB_PORTS"


def _port_range(text: str) -> range:
    lo, sep, hi = text.partition("-")
    try:
        first, last = int(lo), int(hi if sep else lo)
    except ValueError:
        raise KendaliError(f"{text!r} is not a port range; use e.g. 18300-18399", PORT_RANGE_ENV) from None
    if not 1 <= first <= last <= 65535:
        raise KendaliError(f"{text!r} is not a port range within 1-65535", PORT_RANGE_ENV)
    return range(first, last + 1)


_last_given = 0  # the range is walked round-robin: a port just handed out may not be bound yet


def free_port() -> int:
    """A TCP port nobody listens on: from KENDALI_LAB_PORTS if set, else any the kernel gives."""
    text = os.environ.get(PORT_RANGE_ENV, "").strip()
    if not text:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    global _last_given
    ports = _port_range(text)
    start = (_last_given - ports.start + 1) % len(ports) if _last_given in ports else 0
    for i in range(len(ports)):
        port = ports[(start + i) % len(ports)]
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue
        _last_given = port
        return port
    raise KendaliError(f"no free port left in {text}", PORT_RANGE_ENV)


class ControllerProcess:
    """``kendali controller`` in a subprocess on free ports, with its own state dir."""

    def __init__(
        self,
        topology: str | Path | None = None,
        policies: str | Path | None = None,
        state_dir: str | Path | None = None,
        extra: list[str] | None = None,
        token: str | None = "lab-token",
        log_path: str | Path | None = None,
        keep_log: bool = False,
        ofp_port: int | None = None,
        rest_port: int | None = None,
    ) -> None:
        # Given ports: a restarted controller takes over its predecessor's, so the lab's
        # switches and REST clients find it where they found the old one.
        self.ofp_port = ofp_port or free_port()
        self.rest_port = rest_port or free_port()
        self._tmp = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kendali-state-")
            state_dir = self._tmp.name
        self.state_dir = Path(state_dir)
        self.token = token  # KENDALI_TOKEN for the child; None: no such variable (tokens from the state dir)
        self.args = [
            sys.executable,
            "-m",
            "controller",
            "controller",
            "--ofp-port",
            str(self.ofp_port),
            "--rest-port",
            str(self.rest_port),
            "--rest-bind",
            "127.0.0.1",
            "--state-dir",
            str(self.state_dir),
        ]
        if topology:
            self.args += ["--topology", str(topology)]
        if policies:
            self.args += ["--policies", str(policies)]
        self.args += extra or []
        self._own_ports = not {"--ofp-port", "--rest-port"} & set(extra or [])  # else the caller chose them
        self.log_path = Path(log_path) if log_path else Path(tempfile.mkstemp(prefix="kendali-ctl-", suffix=".log")[1])
        # A log we made up is removed at cleanup unless someone was told where it is.
        self._drop_log = not log_path and not keep_log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def start(self, timeout: float = 20.0, tries: int = 3) -> ControllerProcess:
        """Start and wait until it answers. A port that another process took between
        free_port() and the child binding it (seen on a busy machine: ports from the
        ephemeral range are also other programs' outgoing ports) means new ports and
        another try, unless the caller chose the ports."""
        for attempt in range(tries):
            try:
                return self._start(timeout)
            except KendaliError as exc:
                if "cannot listen on" not in str(exc) or not self._own_ports or attempt == tries - 1:
                    raise
                self.ofp_port, self.rest_port = free_port(), free_port()
                self.args[self.args.index("--ofp-port") + 1] = str(self.ofp_port)
                self.args[self.args.index("--rest-port") + 1] = str(self.rest_port)
        raise AssertionError("unreachable")

    def _start(self, timeout: float) -> ControllerProcess:
        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
        env.pop("KENDALI_TOKEN", None)
        if self.token is not None:
            env["KENDALI_TOKEN"] = self.token
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise KendaliError(f"controller exited with {self.proc.returncode}: {self.log_tail()}", "controller")
            try:
                self.get("/v1/health")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.stop()
        raise KendaliError(f"controller did not answer within {timeout:.0f} s: {self.log_tail()}", "controller")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if getattr(self, "_log", None):
            self._log.close()

    def cleanup(self) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()
        if self._drop_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> ControllerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    # REST helpers
    def request(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        """Every request carries the token (reads need one too; /v1/health ignores it)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        if token or self.token:
            req.add_header("Authorization", f"Bearer {token or self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        if status != 200:
            raise KendaliError(f"GET {path} answered {status}: {body}", "controller")
        return body

    def usage_after(self, t: float, timeout: float = 30.0) -> dict[str, dict]:
        """GET /v1/usage by OPD, once every OPD's last counter samples were asked for after
        ``t`` (unix time), so the figures include everything that happened before ``t``."""
        deadline = time.monotonic() + timeout
        while True:
            rows = {o["opd"]: o for o in self.get("/v1/usage")["opds"]}
            windows = [o["window"] for o in rows.values() if o["window"]]
            if windows and all(w["from"] > t for w in windows):
                return rows
            if time.monotonic() > deadline:
                raise KendaliError(f"no usage sampled after {t:.1f} within {timeout:.0f} s", "controller")
            time.sleep(0.2)
