"""Named API tokens with a role, stored hashed in the state dir; what `kendali token` manages.

    <state>/tokens.json   {"format": "kendali-tokens/1", "tokens": [{name, role, created, scrypt, salt, hash,
                          lookup}, ...]}, mode 0600, replaced atomically on every change

A token is a random secret (43 URL-safe characters, 256 bits) shown once when it is
made. Only its scrypt hash (per-token salt) is kept, so a copy of the state dir does not
give the API away. ``lookup`` is the secret's first 8 characters: it picks the one entry
to hash against, so a wrong token costs no scrypt at all and a right one costs one (the
remaining 35 characters, 210 bits, are still secret).

Roles: ``read`` may use every GET; ``write`` may also change policies. Two tokens are not
in this file: ``env`` (KENDALI_TOKEN, a write token, held in memory only) and, in state
dirs from before tokens had names, ``<state>/token``: it is hashed into this file once as
the write token ``file`` and keeps working (the plain file is left for scripts that read
it; ``kendali token revoke file`` removes both).

Never imported with os-ken or eventlet; the running controller reads the file through
``access.Keyring``, which notices a change on its next request.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.api.store import atomic_write, ensure_state_dir
from controller.errors import KendaliError

log = logging.getLogger("kendali.tokens")

FORMAT = "kendali-tokens/1"
TOKENS_FILE = "tokens.json"
OLD_TOKEN_FILE = "token"  # the single generated token of state dirs from before named tokens
LOCK_FILE = ".tokens.lock"
ROLES = ("read", "write")
ENV_NAME = "env"  # KENDALI_TOKEN
FILE_NAME = "file"  # the migrated <state>/token
FIRST_NAME = "admin"  # generated at the first start when there is no token at all
# "seed" is the audit log's name for policies taken from --policies at first start.
RESERVED = frozenset({ENV_NAME, FILE_NAME, "seed"})
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,31}$"
NAME_HINT = "use 1-32 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. noc, grafana)"
LOOKUP_CHARS = 8
# scrypt cost: 16 MiB and about 40 ms per hash; paid once per token and controller run
# (then cached), never for a token whose lookup matches nothing.
SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_MAXMEM = 64 * 1024 * 1024


@dataclass(frozen=True)
class Token:
    """Who a request is: the token's name (what the audit log records) and its role."""

    name: str
    role: str

    def may(self, need: str) -> bool:
        return need == "read" or self.role == "write"


@dataclass(frozen=True)
class Entry:
    """One stored token: everything but the secret."""

    name: str
    role: str
    created: str
    salt: str  # hex
    hash: str  # hex, scrypt(secret, salt)
    lookup: str | None
    n: int  # the scrypt cost it was made with
    r: int
    p: int

    def matches(self, secret: str) -> bool:
        got = scrypt(secret, bytes.fromhex(self.salt), self.n, self.r, self.p)
        return hmac.compare_digest(got, bytes.fromhex(self.hash))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "created": self.created,
            "scrypt": {"n": self.n, "r": self.r, "p": self.p},
            "salt": self.salt,
            "hash": self.hash,
            "lookup": self.lookup,
        }


def scrypt(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=32)


def lookup_of(secret: str) -> str | None:
    # Only for long secrets: for a short hand-made one, 8 characters would give most of it away.
    return secret[:LOOKUP_CHARS] if len(secret) >= 32 else None


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def make_entry(name: str, role: str, secret: str, created: str | None = None) -> Entry:
    salt = secrets.token_bytes(16)
    n, r, p = SCRYPT["n"], SCRYPT["r"], SCRYPT["p"]
    return Entry(
        name=name,
        role=role,
        created=created or _now(),
        salt=salt.hex(),
        hash=scrypt(secret, salt, n, r, p).hex(),
        lookup=lookup_of(secret),
        n=n,
        r=r,
        p=p,
    )


def check_name(name: str, reserved_ok: bool = False) -> str:
    """The name, or KendaliError saying what a token name must look like."""
    if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
        raise KendaliError(f"{name!r} is not a valid token name: {NAME_HINT}", "name")
    if name in RESERVED and not reserved_ok:
        raise KendaliError(
            f"{name!r} is reserved ({', '.join(sorted(RESERVED))} name tokens Kendali makes itself)", "name"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise KendaliError(f"{role!r} is not a role: use read or write", "role")
    return role


# --- the file -----------------------------------------------------------------------------------


def _hex(value: Any, nbytes: int) -> bool:
    return isinstance(value, str) and re.fullmatch(f"[0-9a-f]{{{2 * nbytes}}}", value) is not None


def parse(raw: bytes, where: str) -> dict[str, Entry]:
    """The entries of a tokens file, or KendaliError naming the file and the field."""
    hint = "; fix it, or move it aside and add tokens again with: kendali token add NAME --role read|write"
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise KendaliError(f"not valid JSON ({exc})" + hint, where) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("tokens"), list):
        raise KendaliError(f"not a Kendali tokens file (expected format {FORMAT!r})" + hint, where)
    out: dict[str, Entry] = {}
    for i, item in enumerate(doc["tokens"]):

        def bad(field: str, problem: str, i: int = i) -> KendaliError:
            return KendaliError(problem + hint, where, f"tokens.{i}.{field}")

        if not isinstance(item, dict):
            raise bad("", "must be an object")
        name, role, cost = item.get("name"), item.get("role"), item.get("scrypt")
        if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
            raise bad("name", f"not a valid token name: {NAME_HINT}")
        if name in out:
            raise bad("name", f"{name!r} appears twice")
        if role not in ROLES:
            raise bad("role", "must be read or write")
        if not isinstance(item.get("created"), str):
            raise bad("created", "must be a time (text)")
        if not _hex(item.get("salt"), 16):
            raise bad("salt", "must be 32 hex digits")
        if not _hex(item.get("hash"), 32):
            raise bad("hash", "must be 64 hex digits")
        lookup = item.get("lookup")
        if lookup is not None and (not isinstance(lookup, str) or len(lookup) != LOOKUP_CHARS):
            raise bad("lookup", f"must be null or {LOOKUP_CHARS} characters")
        if not isinstance(cost, dict) or not all(type(cost.get(k)) is int for k in ("n", "r", "p")):
            raise bad("scrypt", "must be {n, r, p} whole numbers")
        n, r, p = cost["n"], cost["r"], cost["p"]
        # Bounded so that a hand-edited file cannot make each request take minutes or all memory.
        if not (2 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16 and 128 * n * r <= _MAXMEM):
            raise bad("scrypt", "cost out of range (n a power of two up to 2^20, r 1-32, p 1-16, 64 MiB at most)")
        out[name] = Entry(name, role, item["created"], item["salt"], item["hash"], lookup, n, r, p)
    return out


def dump(entries: Mapping[str, Entry]) -> bytes:
    doc = {"format": FORMAT, "tokens": [entries[k].to_dict() for k in sorted(entries)]}
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")


def check_private(path: Path) -> os.stat_result:
    """The file's stat; KendaliError when other users may read it (it holds secrets or their hashes)."""
    try:
        st = path.stat()
    except OSError as exc:
        raise KendaliError(f"cannot read: {exc.strerror}", str(path)) from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KendaliError(
            f"other users can read it (mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}", str(path)
        )
    return st


def read_entries(path: Path) -> dict[str, Entry]:
    """The stored tokens; {} when the file does not exist."""
    if not path.exists():
        return {}
    check_private(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KendaliError(f"cannot read: {exc.strerror}", str(path)) from None
    return parse(raw, str(path))


class TokenFile:
    """``<state>/tokens.json`` for `kendali token` and the controller's start (not for requests)."""

    def __init__(self, state_dir: Path, create: bool = True) -> None:
        state_dir = Path(state_dir)
        if create:
            ensure_state_dir(state_dir)
        elif not state_dir.is_dir():
            raise KendaliError("no such state directory (give the controller's --state-dir)", str(state_dir))
        self.state_dir = state_dir
        self.path = state_dir / TOKENS_FILE
        self.old_path = state_dir / OLD_TOKEN_FILE

    @contextmanager
    def locked(self) -> Iterator[dict[str, Entry]]:
        """The entries, under a lock against another `kendali token` changing them at the same time."""
        try:
            fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise KendaliError(f"cannot lock the tokens: {exc.strerror}", str(self.state_dir)) from None
        try:
            owner = _dir_owner(self.state_dir)
            if owner is not None:
                os.fchown(fd, *owner)
            fcntl.flock(fd, fcntl.LOCK_EX)
            for tmp in self.state_dir.glob(f".{TOKENS_FILE}.tmp-*"):  # a crash mid-write; never the live file
                tmp.unlink(missing_ok=True)
            yield self._migrated(read_entries(self.path))
        finally:
            os.close(fd)

    def entries(self) -> dict[str, Entry]:
        with self.locked() as entries:
            return entries

    def save(self, entries: Mapping[str, Entry]) -> None:
        try:
            atomic_write(self.path, dump(entries), mode=0o600, owner=_dir_owner(self.state_dir))
        except OSError as exc:
            raise KendaliError(f"cannot write: {exc.strerror}", str(self.path)) from None

    def _migrated(self, entries: dict[str, Entry]) -> dict[str, Entry]:
        """Hash a state dir's old plain ``token`` file in as the write token ``file``, once."""
        if FILE_NAME in entries or not self.old_path.exists():
            return entries
        st = check_private(self.old_path)
        try:
            secret = self.old_path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise KendaliError(f"cannot read the old API token: {exc}", str(self.old_path)) from None
        if not secret:
            raise KendaliError(
                "is empty; delete it (tokens are now managed with: kendali token add)", str(self.old_path)
            )
        created = datetime.fromtimestamp(st.st_mtime, UTC).isoformat(timespec="seconds")
        entries = {**entries, FILE_NAME: make_entry(FILE_NAME, "write", secret, created.replace("+00:00", "Z"))}
        self.save(entries)
        log.warning(
            "the API token in %s is now the write token %r in %s; it keeps working", self.old_path, FILE_NAME, self.path
        )
        return entries

    # --- what `kendali token` does ----------------------------------------------------------------

    def add(self, name: str, role: str) -> str:
        """Store a new token; returns its secret (the only time anyone sees it)."""
        check_name(name)
        check_role(role)
        with self.locked() as entries:
            if name in entries:
                raise KendaliError(f"a token named {name!r} exists; revoke it first or pick another name", "name")
            secret = new_secret()
            self.save({**entries, name: make_entry(name, role, secret)})
        return secret

    def revoke(self, name: str) -> None:
        with self.locked() as entries:
            if name not in entries:
                known = ", ".join(sorted(entries)) or "none"
                raise KendaliError(f"no token named {name!r} (tokens: {known})", "name")
            if name == FILE_NAME:
                try:
                    self.old_path.unlink(missing_ok=True)  # first, so that it is not migrated again
                except OSError as exc:
                    raise KendaliError(f"cannot remove: {exc.strerror}", str(self.old_path)) from None
            self.save({k: v for k, v in entries.items() if k != name})

    def first_start(self, env: Mapping[str, str]) -> tuple[str | None, str | None]:
        """At the controller's start: (KENDALI_TOKEN or None, a generated secret to print once or None).

        A token is generated (write role, named ``admin``) only when there is none at all:
        no KENDALI_TOKEN, no stored token, no old token file.
        """
        env_secret = env.get("KENDALI_TOKEN")
        if env_secret is not None:
            env_secret = env_secret.strip()
            if not env_secret:
                raise KendaliError("is set but empty; unset it or give it a token", "KENDALI_TOKEN")
        with self.locked() as entries:
            if entries or env_secret:
                return env_secret, None
            secret = new_secret()
            self.save({FIRST_NAME: make_entry(FIRST_NAME, "write", secret)})
        return None, secret


def _dir_owner(directory: Path) -> tuple[int, int] | None:
    """When root manages the tokens of a controller that runs as another user, keep the file theirs."""
    if os.geteuid() != 0:
        return None
    st = directory.stat()
    return (st.st_uid, st.st_gid) if st.st_uid != 0 else None
