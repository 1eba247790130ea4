"""A local single-node etcd for `kendali lab --ha` and the tests: its own data dir and ports.
Never a system service: nothing here depends on the one Debian's package may have started."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from controller.errors import KendaliError

ETCD = "etcd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalEtcd:
    """``with LocalEtcd() as etcd: etcd.url``; ``stop()``/``start()`` again keep the same data."""

    def __init__(self, client_port: int | None = None, peer_port: int | None = None, data_dir: Path | None = None):
        if shutil.which(ETCD) is None:
            raise KendaliError("etcd is not installed (Debian: apt-get install etcd-server; scripts/setup.sh does)")
        self.client_port = client_port or free_port()
        self.peer_port = peer_port or free_port()
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="kendali-etcd-")
        self.dir = Path(data_dir) if data_dir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: float = 10.0) -> None:
        peer = f"http://127.0.0.1:{self.peer_port}"
        cmd = [
            ETCD,
            "--name=kendali-lab",
            f"--data-dir={self.dir / 'data'}",
            f"--listen-client-urls={self.url}",
            f"--advertise-client-urls={self.url}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=kendali-lab={peer}",
            "--log-level=error",
        ]
        log = open(self.dir / "etcd.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        end = time.monotonic() + wait
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise KendaliError(f"etcd exited at start (see {self.dir / 'etcd.log'})")
            try:
                with urllib.request.urlopen(self.url + "/version", timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise KendaliError(f"etcd did not answer on {self.url} within {wait:g} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> LocalEtcd:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
