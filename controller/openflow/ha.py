"""High availability's green threads: the election loop and the etcd watch (``--etcd``).

The election loop does the requests controller.core.election asks for, reports each
answer with the time the request was SENT, and posts a role change to the app whenever
``leading`` changes (including when the lease's time simply runs out: it wakes for that).
The watch keeps the policies, settings and tokens in step with etcd
(controller.api.etcdstore.Shared). Neither ever touches a switch: the app does, on its loop.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from eventlet.green.http import client as green_http
from os_ken.lib import hub

from controller.api import etcd as e
from controller.api.etcdstore import Shared
from controller.core.election import Election, Op

LOG = logging.getLogger("kendali.ha")


class Ha:
    """One node of a pair (or three): its election, its etcd, what it tells the app."""

    def __init__(self, etcd: e.Etcd, election: Election, shared: Shared) -> None:
        self.etcd = etcd
        self.election = election
        self.shared = shared
        self.reachable = True  # etcd answered the last request
        self._posted = (False, 0)  # (leading, generation) last posted to the app
        self._memory: bytes | None = None  # the leader's network.json, to write at the next wake
        self._on_role: Callable[[bool, int, dict[str, Any] | None], None] | None = None
        # The controller's eventlet patches threads, not sockets: etcd3gw's requests would block
        # the whole loop, and in OS threads (tpool) urllib3's pool locks, made green, hung the
        # process in the lab. So etcd3gw posts through eventlet's green http.client instead.
        for c in etcd.clients:
            c.session = GreenSession()  # type: ignore[assignment]

    def leading(self) -> bool:
        return self.election.leading(time.monotonic())

    def status(self) -> dict[str, Any]:
        out = self.election.status(time.monotonic())
        out["etcd"] = "reachable" if self.reachable else "unreachable"
        return out

    def start(
        self,
        on_role: Callable[[bool, int, dict[str, Any] | None], None],
        on_policies: Callable[[dict[str, Any]], None],
    ) -> list[Any]:
        """``on_role(leading, generation, network memory or None)`` on every change of role;
        ``on_policies(policies)`` whenever the policies in etcd change."""
        self._on_role = on_role
        self.shared.on_policies = on_policies
        return [hub.spawn(self._elect), hub.spawn(self._watch)]

    def remember(self, data: bytes) -> None:
        """The leader's network memory (hosts, meter numbers, switches) for the next leader."""
        self._memory = data

    def fenced(self) -> None:
        """A switch refused us (stale generation, or we are its slave): step down now."""
        self.election.fenced(time.monotonic())
        self._check()

    # ---- the loops ------------------------------------------------------------------------------
    def _check(self) -> None:
        now = time.monotonic()
        leading = self.election.leading(now)
        posted = (leading, self.election.generation)
        # A new generation matters to a follower too: its SLAVE requests must carry it.
        if posted == self._posted or self._on_role is None:
            return
        changed = leading != self._posted[0]
        memory = None
        if leading:
            try:
                kv = self.etcd.get(e.NETWORK)
                memory = _json(kv.value) if kv else None
            except e.EtcdUnavailable as exc:
                LOG.warning("leading without the last leader's network memory: %s", exc)
        self._posted = posted
        if changed:
            LOG.warning(
                "%s (node %s, generation %d, leader %s)",
                "now the LEADER" if leading else "now a follower",
                self.election.node_id,
                self.election.generation,
                self.election.leader,
            )
        self._on_role(leading, self.election.generation, memory)

    def _elect(self) -> None:
        el = self.election
        while True:
            try:
                self._once()
            except Exception:  # a bug must not end the election: log it, step down by time
                LOG.exception("election step failed")
                el.failed(time.monotonic())
            self._check()
            if self._memory is not None and self.election.leading(time.monotonic()):
                data, self._memory = self._memory, None
                try:
                    self.etcd.put_if_leader(e.NETWORK, data, el.generation)
                except e.EtcdUnavailable:
                    self._memory = self._memory or data
            s = el.step(time.monotonic())
            if s.op is Op.WAIT:
                wake = min(s.at, el.lease_valid_until) if el.leading(time.monotonic()) else s.at
                hub.sleep(max(0.005, wake - time.monotonic()))

    def _once(self) -> None:
        el = self.election
        sent = time.monotonic()
        s = el.step(sent)
        try:
            if s.op is Op.GRANT:
                lease = self.etcd.grant(el.ttl)
                el.granted(lease, sent, time.monotonic())
            elif s.op is Op.CAMPAIGN:
                assert s.lease is not None
                el.campaigned(*self.etcd.campaign(el.node_id, s.lease), sent, time.monotonic())
            elif s.op is Op.RENEW:
                assert s.lease is not None
                el.renewed(*self.etcd.renew(s.lease), sent, time.monotonic())
            else:
                return
        except e.EtcdUnavailable as exc:
            if self.reachable:
                LOG.error("%s; forwarding goes on, REST writes are refused", exc.strerror)
            self.reachable = False
            el.failed(time.monotonic())
            return
        if not self.reachable:
            LOG.warning("etcd reachable again")
            self.reachable = True

    def _watch(self) -> None:
        start: int | None = None
        while True:
            try:
                if start is None:
                    start = self.shared.resync()
                for kv in self.etcd.watch(e.PREFIX, start, read_timeout=max(30.0, 3 * self.election.ttl)):
                    if kv is not None:
                        start = kv.mod_revision + 1
                        self.shared.apply(kv)
            except e.EtcdUnavailable as exc:
                LOG.debug("watch: %s", exc)
            except Exception:
                LOG.exception("watch failed")
            start = None  # read everything again: changes made while away are not lost
            hub.sleep(self.election.every)


class GreenResponse:
    """What etcd3gw and controller.api.etcd read of a requests.Response."""

    def __init__(self, conn: Any, resp: Any, stream: bool) -> None:
        self.status_code = int(resp.status)
        self.reason = str(resp.reason)
        self._conn, self._resp = conn, resp
        self.content = b""
        if not stream:
            try:
                self.content = resp.read()
            finally:
                conn.close()

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            self._conn.close()
            raise requests.exceptions.HTTPError(f"{self.status_code} {self.reason}")

    def iter_lines(self) -> Iterator[bytes]:
        try:
            while True:
                line = self._resp.readline()  # http.client undoes the chunking
                if not line:
                    return
                yield line.rstrip(b"\r\n")
        except TimeoutError as exc:
            raise requests.exceptions.ReadTimeout(str(exc)) from None
        except OSError as exc:
            raise requests.exceptions.ConnectionError(str(exc)) from None
        finally:
            self._conn.close()


class GreenSession:
    """The one requests.Session method etcd3gw uses (``post``), on eventlet's green http.client:
    one connection per request (a few a second, on a LAN), errors as requests' exceptions."""

    verify: Any = True
    cert: Any = None

    def post(
        self, url: str, data: Any = None, json: Any = None, timeout: Any = None, stream: bool = False, **_: Any
    ) -> GreenResponse:
        u = urlsplit(url)
        connect_t, read_t = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        cls = green_http.HTTPSConnection if u.scheme == "https" else green_http.HTTPConnection
        conn = cls(u.hostname, u.port, timeout=connect_t)
        body = data if data is not None else _dumps(json)
        try:
            conn.connect()
            conn.sock.settimeout(read_t)
            conn.request("POST", u.path or "/", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return GreenResponse(conn, resp, stream)
        except TimeoutError as exc:
            conn.close()
            raise requests.exceptions.Timeout(str(exc) or "timed out") from None
        except OSError as exc:
            conn.close()
            raise requests.exceptions.ConnectionError(str(exc)) from None


def _dumps(doc: Any) -> str:
    return json.dumps(doc)


def _json(data: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
