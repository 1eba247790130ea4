"""etcd as the shared state and the referee of `kendali controller --etcd` (high availability).

Keys (one prefix, ``/kendali/``)::

    /kendali/leader      the node id of the leader, attached to its lease (controller.core.election)
    /kendali/policies    the policies document (the same JSON as policies.json)
    /kendali/settings    the report's settings document (settings.json)
    /kendali/tokens      the API tokens document (tokens.json: hashes only)
    /kendali/network     what the leader knows of the network (hosts, meter numbers, switches:
                         network.json), written by the leader only, read by the next one
    /kendali/audit/...   one key per accepted change (the audit.jsonl line)

etcd is the one source of truth; each node's state dir holds a mirror of the documents,
rewritten whenever etcd's copy changes (the watch), so everything that reads the state dir
(the REST reads, `kendali report`, a restart without --etcd) reads what etcd holds. Every
write is a transaction that succeeds only if the document is still the one it was
checked against (its mod revision), so two nodes accepting writes at once cannot lose one.

Talks to etcd's JSON gateway (/v3/, etcd >= 3.4; Debian's etcd-server is 3.4) through
etcd3gw. No eventlet here (the controller gives etcd3gw a green session: controller.openflow.ha).
"""

from __future__ import annotations

import errno
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import etcd3gw
import requests
from etcd3gw import exceptions as etcd_errors
from etcd3gw.utils import _decode, _encode

from controller.errors import KendaliError

log = logging.getLogger("kendali.etcd")

PREFIX = "/kendali/"
LEADER = PREFIX + "leader"
POLICIES = PREFIX + "policies"
SETTINGS = PREFIX + "settings"
TOKENS = PREFIX + "tokens"
NETWORK = PREFIX + "network"
AUDIT = PREFIX + "audit/"
API_PATH = "/v3/"  # etcd >= 3.4's gateway; 3.3 had /v3beta/ (not supported: Debian 12 ships 3.4)

T = TypeVar("T")


class EtcdUnavailable(OSError):
    """No etcd endpoint answered: writes are refused (503), forwarding goes on."""

    def __init__(self, detail: str) -> None:
        super().__init__(errno.EHOSTUNREACH, f"etcd is unreachable ({detail}); try again when it is back")


class Conflict(OSError):
    """The document changed in etcd between reading and writing (another node wrote it)."""

    def __init__(self, what: str) -> None:
        super().__init__(errno.EAGAIN, f"{what} changed on another controller at the same moment; send it again")


@dataclass(frozen=True)
class Kv:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    lease: int


def parse_urls(text: str) -> list[tuple[str, str, int]]:
    """``--etcd http://a:2379,http://b:2379`` -> [(protocol, host, port)], or KendaliError naming the bad one."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        u = urlsplit(part if "://" in part else f"http://{part}")
        try:
            port = u.port or 2379
        except ValueError:
            raise KendaliError(f"{part!r} has a bad port", "--etcd") from None
        if u.scheme not in ("http", "https") or not u.hostname or u.path not in ("", "/"):
            raise KendaliError(f"{part!r} is not an etcd client URL like http://10.0.0.5:2379", "--etcd")
        out.append((u.scheme, u.hostname, port))
    if not out:
        raise KendaliError("give at least one etcd client URL (e.g. http://127.0.0.1:2379)", "--etcd")
    return out


def _kv(raw: dict[str, Any]) -> Kv:
    return Kv(
        _decode(raw["key"]).decode("utf-8", "replace"),
        _decode(raw.get("value", "")),
        int(raw.get("create_revision", 0)),
        int(raw.get("mod_revision", 0)),
        int(raw.get("lease", 0)),
    )


def _range_end(prefix: str) -> str:
    b = bytearray(prefix.encode())
    b[-1] += 1
    return _encode(bytes(b))


class Etcd:
    """The etcd cluster behind one or more client URLs: a request goes to the endpoint that
    answered last, and to the next ones when it does not answer."""

    def __init__(self, urls: str, timeout: float = 1.0) -> None:
        self.endpoints = parse_urls(urls)
        self.urls = urls
        self.clients = [
            etcd3gw.Etcd3Client(host=h, port=p, protocol=s, timeout=timeout, api_path=API_PATH)
            for s, h, p in self.endpoints
        ]
        self._current = 0

    def _call(self, fn: Callable[[etcd3gw.Etcd3Client], T]) -> T:
        problems = []
        n = len(self.clients)
        for i in range(n):
            k = (self._current + i) % n
            c = self.clients[k]
            try:
                out = fn(c)
            except (etcd_errors.Etcd3Exception, requests.RequestException, ValueError) as exc:
                # not answering, or answering an error (an etcd member without quorum): the next one
                problems.append(f"{c.host}:{c.port}: {_short(exc)}")
                continue
            self._current = k
            return out
        raise EtcdUnavailable("; ".join(problems))

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(lambda c: c.post(c.get_url(path), json=body))

    # ---- documents ---------------------------------------------------------------------------
    def get(self, key: str) -> Kv | None:
        got = self._post("/kv/range", {"key": _encode(key)})
        kvs = got.get("kvs") or []
        return _kv(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str) -> tuple[list[Kv], int]:
        """Every key under ``prefix`` and the store's revision at that read."""
        got = self._post("/kv/range", {"key": _encode(prefix), "range_end": _range_end(prefix)})
        return [_kv(r) for r in got.get("kvs") or []], int(got["header"]["revision"])

    def put_if(self, key: str, value: bytes, mod_revision: int, also: dict[str, bytes] | None = None) -> int | None:
        """Put ``value`` (and the ``also`` keys) only if ``key`` is still at ``mod_revision``
        (0: absent). The new revision, or None if someone changed it first."""
        puts = [
            {"request_put": {"key": _encode(k), "value": _encode(v)}} for k, v in {key: value, **(also or {})}.items()
        ]
        txn = {
            "compare": [{"key": _encode(key), "result": "EQUAL", "target": "MOD", "mod_revision": mod_revision}],
            "success": puts,
            "failure": [],
        }
        got = self._call(lambda c: c.transaction(txn))
        return int(got["header"]["revision"]) if got.get("succeeded") else None

    def put_if_leader(self, key: str, value: bytes, generation: int) -> bool:
        """Put only while the leader key is the one created at ``generation``: a deposed leader
        cannot overwrite what the new one wrote."""
        txn = {
            "compare": [{"key": _encode(LEADER), "result": "EQUAL", "target": "CREATE", "create_revision": generation}],
            "success": [{"request_put": {"key": _encode(key), "value": _encode(value)}}],
            "failure": [],
        }
        return bool(self._call(lambda c: c.transaction(txn)).get("succeeded"))

    # ---- the election (controller.core.election asks, these answer) --------------------------
    def grant(self, ttl: float) -> int:
        # etcd's lease TTL is whole seconds (and at least its own minimum, 2 s by default).
        got = self._post("/lease/grant", {"TTL": max(1, round(ttl)), "ID": 0})
        return int(got["ID"])

    def campaign(self, node: str, lease: int) -> tuple[bool, str | None, int | None, int | None]:
        """Create the leader key attached to ``lease`` if absent: (won, holder, create revision, its lease)."""
        k = _encode(LEADER)
        txn = {
            "compare": [{"key": k, "result": "EQUAL", "target": "CREATE", "create_revision": 0}],
            "success": [{"request_put": {"key": k, "value": _encode(node), "lease": lease}}],
            "failure": [{"request_range": {"key": k}}],
        }
        got = self._call(lambda c: c.transaction(txn))
        if got.get("succeeded"):
            rev = int(got["header"]["revision"])
            return True, node, rev, lease
        kvs = (got.get("responses") or [{}])[0].get("response_range", {}).get("kvs") or []
        if not kvs:
            return False, None, None, None
        kv = _kv(kvs[0])
        return False, kv.value.decode("utf-8", "replace"), kv.create_revision, kv.lease

    def renew(self, lease: int) -> tuple[bool, str | None, int | None, int | None]:
        """Keep ``lease`` alive, then read the leader key: (alive, holder, create revision, its lease)."""
        got = self._post("/lease/keepalive", {"ID": lease})
        alive = int(got.get("result", {}).get("TTL", -1)) > 0
        kv = self.get(LEADER)
        if kv is None:
            return alive, None, None, None
        return alive, kv.value.decode("utf-8", "replace"), kv.create_revision, kv.lease

    def revoke(self, lease: int) -> None:
        self._post("/kv/lease/revoke", {"ID": lease})

    # ---- the watch ------------------------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int, read_timeout: float) -> Iterator[Kv | None]:
        """Changes under ``prefix`` from ``start_revision`` on (a delete is a Kv with an empty value
        and mod_revision set); yields None when a progress notice arrives. Ends (raises
        EtcdUnavailable) when the stream breaks; the caller reads everything again and re-watches."""
        c = self.clients[self._current]
        body = {
            "create_request": {
                "key": _encode(prefix),
                "range_end": _range_end(prefix),
                "start_revision": start_revision,
                "progress_notify": True,
            }
        }
        try:
            resp = c.session.post(c.get_url("/watch"), data=json.dumps(body), stream=True, timeout=(1.0, read_timeout))
            resp.raise_for_status()
            for line in resp.iter_lines():
                if not line.strip():
                    continue
                result = json.loads(line).get("result", {})
                if result.get("compact_revision") or result.get("canceled"):
                    raise EtcdUnavailable("the watch was cancelled (history compacted)")
                events = result.get("events") or []
                if not events:
                    yield None
                for ev in events:
                    kv = ev["kv"]
                    if ev.get("type") == "DELETE":
                        kv = {**kv, "value": ""}
                    yield _kv(kv)
        except (requests.RequestException, ValueError) as exc:
            self._current = (self._current + 1) % len(self.clients)
            raise EtcdUnavailable(f"watch on {c.host}:{c.port}: {_short(exc)}") from None
        self._current = (self._current + 1) % len(self.clients)
        raise EtcdUnavailable(f"watch on {c.host}:{c.port} ended")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.splitlines()[0][:160]
