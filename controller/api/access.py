"""Who may use the REST API: the decision for each request, shared by every route (and /metrics).

    Access.authorise(authorization, address, need) -> Token, or Denied(401 | 403)

- ``Keyring`` knows the valid tokens: the hashed ones in ``<state>/tokens.json`` (re-read
  when the file changes, so `kendali token add|revoke` act on a running controller at
  its next request) and KENDALI_TOKEN (``env``, write role, in memory only).
- ``FailureBackoff`` slows down an address that keeps failing: after ``free`` failures,
  each further attempt from it waits twice as long as the one before (up to ``cap``)
  before it is even checked. Pure: every method takes ``now``.
- A failure answers only "not authorised" (401), whatever went wrong; the log line says
  what (address, method, path and reason; never the token).

A token that once verified is cached in memory (by its SHA-256) until the file changes,
so a client with a good token pays no scrypt and no delay on later requests.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NoReturn

from controller.api.tokens import ENV_NAME, TOKENS_FILE, Entry, Token, lookup_of, read_entries
from controller.errors import KendaliError

log = logging.getLogger("kendali.access")

NOT_AUTHORISED = "not authorised"
NEEDS_WRITE = "this needs a token with the write role"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="kendali"'}


class Denied(Exception):
    """The request is refused: 401 (not authenticated) or 403 (the token's role is not enough)."""

    def __init__(self, status: int, problem: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(problem)
        self.status = status
        self.problem = problem
        self.headers = headers or {}


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


class Keyring:
    """The valid tokens of a running controller."""

    def __init__(
        self, state_dir: Path | None, env_secret: str | None = None, entries: dict[str, Entry] | None = None
    ) -> None:
        self.path = Path(state_dir) / TOKENS_FILE if state_dir is not None else None
        self._env = _digest(env_secret) if env_secret else None
        self._entries: dict[str, Entry] = dict(entries or {})
        self._seen: tuple[int, ...] | None = None
        self._cache: dict[bytes, Token] = {}
        self.offload: Callable[[Callable[[], bool]], bool] = lambda fn: fn()  # server.serve: a real thread
        self.refresh()

    def refresh(self) -> None:
        """Re-read the tokens file if it changed since the last look: one stat() per request."""
        if self.path is None:
            return
        try:
            st = os.stat(self.path)
            seen: tuple[int, ...] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        except FileNotFoundError:
            seen = ()
        except OSError as exc:
            seen = (-1, exc.errno or 0)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            entries = read_entries(self.path) if seen else {}
        except KendaliError as exc:
            # Keep the tokens we had: a broken hand edit must not lock every operator out.
            log.error("tokens not reloaded, the previous ones stay in force: %s", exc)
            return
        if entries != self._entries:
            log.info("tokens (re)loaded from %s: %s", self.path, ", ".join(sorted(entries)) or "none")
        self._entries = entries
        self._cache.clear()

    def names(self) -> list[str]:
        return sorted(self._entries) + ([ENV_NAME] if self._env else [])

    def known(self, secret: str) -> Token | None:
        """The token if it verified before (no scrypt); else None."""
        return self._cache.get(_digest(secret))

    def verify(self, secret: str) -> Token | None:
        """The token this secret is, or None. Constant-time comparisons throughout."""
        key = _digest(secret)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        found: Token | None = None
        if self._env is not None and hmac.compare_digest(key, self._env):
            found = Token(ENV_NAME, "write")
        lookup = lookup_of(secret)
        for e in self._entries.values():
            # Only the entry whose lookup matches (or one without a lookup: a short old token) is hashed.
            if e.lookup is None or (lookup is not None and hmac.compare_digest(e.lookup, lookup)):
                if self.offload(partial(e.matches, secret)):
                    found = found or Token(e.name, e.role)
        if found is not None:
            self._cache[key] = found
        return found


@dataclass
class _Failures:
    count: int
    last: float
    next_check: float


class FailureBackoff:
    """Per-address exponential delay after repeated authentication failures. Pure: takes ``now``.

    After ``free`` failures from an address, its next attempt is checked no earlier than
    ``first`` seconds after the last failure, then 2x, 4x ... up to ``cap``. Attempts that
    arrive together queue one step apart (so opening many connections does not help), and
    one that would have to wait longer than ``cap`` is refused at once, unchecked. An
    address is forgotten after ``forget`` seconds without failures or on a success; at
    most ``max_addresses`` are remembered (the oldest is dropped first).
    """

    def __init__(
        self, free: int = 5, first: float = 0.5, cap: float = 30.0, forget: float = 600.0, max_addresses: int = 4096
    ) -> None:
        self.free, self.first, self.cap, self.forget, self.max_addresses = free, first, cap, forget, max_addresses
        self._by_addr: OrderedDict[str, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_addr)

    def step(self, count: int) -> float:
        """The pause after the ``count``-th failure."""
        if count < self.free:
            return 0.0
        return min(self.cap, self.first * 2 ** min(count - self.free, 64))

    def _get(self, addr: str, now: float) -> _Failures | None:
        rec = self._by_addr.get(addr)
        if rec is not None and now - rec.last > self.forget:
            del self._by_addr[addr]
            return None
        return rec

    def admit(self, addr: str, now: float) -> float | None:
        """Seconds to hold this address's attempt before checking it; None: refuse it unchecked."""
        rec = self._get(addr, now)
        if rec is None or rec.count < self.free:
            return 0.0
        slot = max(now, rec.next_check)
        if slot - now > self.cap:
            return None
        rec.next_check = slot + self.step(rec.count)
        return slot - now

    def failed(self, addr: str, now: float) -> int:
        """Record a failure; returns how many in a row from this address."""
        rec = self._get(addr, now)
        if rec is None:
            while len(self._by_addr) >= self.max_addresses:
                self._by_addr.popitem(last=False)
            rec = self._by_addr[addr] = _Failures(0, now, now)
        rec.count += 1
        rec.last = now
        rec.next_check = max(rec.next_check, now + self.step(rec.count))
        self._by_addr.move_to_end(addr)
        return rec.count

    def succeeded(self, addr: str) -> None:
        self._by_addr.pop(addr, None)


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, cred = (authorization or "").strip().partition(" ")
    cred = cred.strip()
    return cred if scheme.lower() == "bearer" and cred else None


def _sleep(seconds: float) -> None:
    # Looked up when called, not when this module was imported: in the controller, eventlet's
    # monkey-patching has made time.sleep a green sleep that holds up no other client.
    time.sleep(seconds)


class Access:
    """The decision for one request; ``clock`` is monotonic seconds, ``sleep`` must not block
    other clients. Not for real threads: the controller serves from green threads."""

    def __init__(
        self,
        keyring: Keyring,
        backoff: FailureBackoff | None = None,
        sleep: Callable[[float], None] = _sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.keyring = keyring
        self.backoff = backoff if backoff is not None else FailureBackoff()  # (an empty one is falsy)
        self.sleep = sleep
        self.clock = clock

    def authorise(self, authorization: str | None, address: str, need: str, what: str = "") -> Token:
        """The token a request carries if it may do ``need`` (read | write); else Denied.

        ``address``: the client's (REMOTE_ADDR); ``what``: "METHOD /path" for the log.
        """
        self.keyring.refresh()
        secret = bearer(authorization)
        token = self.keyring.known(secret) if secret else None
        if token is None:  # not a token seen good before: this is where guessing would happen
            wait = self.backoff.admit(address, self.clock())
            if wait is None:
                self._fail(address, what, "too many failures, refused unchecked")
            elif wait > 0:
                self.sleep(wait)
            if secret is None:
                self._fail(address, what, "no 'Authorization: Bearer' header")
            token = self.keyring.verify(secret)
            if token is None:
                self._fail(address, what, "unknown or revoked token")
            self.backoff.succeeded(address)
        if not token.may(need):
            log.warning("refused %s from %s: token %r has the %s role", what, address, token.name, token.role)
            raise Denied(403, NEEDS_WRITE)
        return token

    def _fail(self, address: str, what: str, reason: str) -> NoReturn:
        n = self.backoff.failed(address, self.clock())
        if n <= self.backoff.free or n & (n - 1) == 0:  # then every power of two: a flood cannot flood the log
            log.warning("not authorised: %s from %s (%s; %d in a row from there)", what, address, reason, n)
        raise Denied(401, NOT_AUTHORISED, dict(CHALLENGE))
