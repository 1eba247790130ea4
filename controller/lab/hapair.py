"""A local etcd and two (or three) controllers on it, for `kendali lab --ha`, the HA lab tests
and benchmarks. Ports from KENDALI_LAB_PORTS when set (controller.lab.labctl.free_port)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from controller.errors import KendaliError
from controller.lab.etcdlocal import LocalEtcd
from controller.lab.labctl import ControllerProcess, free_port


class HaPair:
    def __init__(
        self,
        topology: str | Path | None,
        policies: str | Path | None = None,
        nodes: tuple[str, ...] = ("a", "b"),
        ttl: int = 2,
        extra: list[str] | None = None,
        token: str = "lab-token",
        keep_log: bool = False,
    ) -> None:
        self.etcd = LocalEtcd(free_port(), free_port())
        self.ttl = ttl
        self.ctls: list[ControllerProcess] = []
        for n in nodes:
            c = ControllerProcess(
                topology,
                policies,
                extra=["--etcd", self.etcd.url, "--node-id", n, "--etcd-ttl", str(ttl), *(extra or [])],
                token=token,
                keep_log=keep_log,
            )
            c.node = n  # type: ignore[attr-defined]
            self.ctls.append(c)

    def start(self) -> HaPair:
        try:
            self.etcd.start()
            for c in self.ctls:  # one after the other: the first seeds etcd from --policies
                c.start()
            self.leader(timeout=3 * self.ttl + 5)
        except BaseException:
            self.cleanup()
            raise
        return self

    def by_node(self, node: str) -> ControllerProcess:
        return next(c for c in self.ctls if c.node == node)  # type: ignore[attr-defined]

    def health(self, c: ControllerProcess) -> dict[str, Any] | None:
        try:
            return dict(c.get("/v1/health"))
        except (OSError, KendaliError):
            return None

    def leader(self, timeout: float = 10.0, besides: ControllerProcess | None = None) -> ControllerProcess:
        """The controller that says it leads (other than ``besides``), waiting up to ``timeout``."""
        end = time.monotonic() + timeout
        while True:
            for c in self.ctls:
                if c is besides or c.proc is None or c.proc.poll() is not None:
                    continue
                h = self.health(c)
                if h and h.get("ha", {}).get("role") == "leader":
                    return c
            if time.monotonic() > end:
                logs = "\n".join(f"--- {c.node}:\n{c.log_tail(15)}" for c in self.ctls)  # type: ignore[attr-defined]
                raise KendaliError(f"no leader within {timeout:g} s\n{logs}", "ha")
            time.sleep(0.05)

    def cleanup(self) -> None:
        for c in self.ctls:
            c.cleanup()
        self.etcd.__exit__()

    def __enter__(self) -> HaPair:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()
