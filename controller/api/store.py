"""The accepted policies, kept on disk so that REST changes survive restarts and crashes.

Layout of the state directory (mode 0700)::

    policies.json   the accepted policies; replaced atomically on every change
    settings.json   the report's settings (budget, uplink, office hours, holidays; SettingsFile)
    audit.jsonl     one JSON line per accepted change: time, who (token name), action, id, before, after;
                    action put, delete or seed (a policy, id = its id) or settings (id "settings")
    tokens.json     the API tokens, hashed (see tokens.py); 0600
    token           state dirs from before named tokens: the one generated token, now migrated into tokens.json

Crash safety: a change is written to a temporary file in the same directory, flushed and
fsync'd, renamed over policies.json (atomic on POSIX) and the directory fsync'd, all
BEFORE the caller replies. A kill -9 at any moment leaves either the old or the new file,
never a torn one. The audit line is appended (and fsync'd) right after the state file: a
crash between the two can lose that one audit line but never the change itself.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.core import settings as settings_mod
from controller.core.policy import Policy, PolicyError, check_overlap, validate
from controller.core.settings import Settings, SettingsError
from controller.errors import KendaliError

log = logging.getLogger("kendali.store")

FORMAT = "kendali-policies/1"
STATE_FILE = "policies.json"
AUDIT_FILE = "audit.jsonl"
SETTINGS_FILE = "settings.json"
SETTINGS_FORMAT = "kendali-settings/1"


def ensure_state_dir(state_dir: Path) -> Path:
    """Create the state directory (0700: it holds the API token) if absent."""
    state_dir = Path(state_dir)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise KendaliError(f"cannot create the state directory: {exc.strerror}", str(state_dir)) from None
    if not state_dir.is_dir():
        raise KendaliError("is not a directory", str(state_dir))
    return state_dir


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o600, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old or the new file, never a mix.

    ``owner`` (uid, gid): give the new file to them before it appears (root writing for another user).
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        if owner is not None:
            os.fchown(fd, *owner)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)  # the rename itself is durable only once the directory is


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def append_audit(path: Path, entries: list[dict[str, Any]]) -> None:
    """Append lines to the audit log (0600), fsync'd; never glued to a torn last line."""
    with open(path, "ab") as f:
        os.fchmod(f.fileno(), 0o600)
        if f.tell() > 0:
            # A crash mid-append may have left a line without its newline; do not glue to it.
            with open(path, "rb") as r:
                r.seek(-1, os.SEEK_END)
                if r.read(1) != b"\n":
                    f.write(b"\n")
        for e in entries:
            f.write((json.dumps(e, ensure_ascii=False, sort_keys=False) + "\n").encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())


def read_audit(path: Path) -> list[dict[str, Any]]:
    """The audit log, oldest first; a torn or foreign line (crash while appending, a hand edit) is skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


_FIX = "; fix it, or restore it from a backup (the change history is in audit.jsonl)"


def _read_json(path: Path) -> Any:
    """A state file's JSON, or KendaliError naming it."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KendaliError(f"cannot read: {exc.strerror}", where) from None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise KendaliError("is not UTF-8 text" + _FIX, where) from None
    except json.JSONDecodeError as exc:
        raise KendaliError(f"not valid JSON ({exc.msg})" + _FIX, where, f"line {exc.lineno}") from None


def load_policies(path: Path) -> dict[str, Policy]:
    """The policies of a policies.json (read-only: for the report); KendaliError naming the file and field."""
    return parse_policies(_read_json(path), str(path))


def parse_policies(doc: Any, where: str) -> dict[str, Policy]:
    """The policies of a policies document (parsed JSON; a file's or etcd's), or KendaliError naming ``where``."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("policies"), list):
        raise KendaliError(f"not a Kendali policy state file (expected format {FORMAT!r})" + _FIX, where)
    out: dict[str, Policy] = {}
    for i, item in enumerate(doc["policies"]):
        if isinstance(item, dict) and item.get("id") in out:
            raise KendaliError(f"duplicate id {item['id']!r}" + _FIX, where, f"policies.{i}.id")
        try:
            p = validate(item, others=out)
        except PolicyError as exc:
            raise KendaliError(exc.problem + _FIX, where, f"policies.{i}.{exc.field}") from None
        out[p.id] = p
    return out


def load_settings(state_dir: Path) -> Settings:
    """The settings in ``state_dir/settings.json``; the defaults when there is none.
    A damaged file is a KendaliError naming it and the field."""
    path = Path(state_dir) / SETTINGS_FILE
    if not path.exists():
        return settings_mod.DEFAULT
    doc = _read_json(path)
    where = str(path)
    if not isinstance(doc, dict) or doc.get("format") != SETTINGS_FORMAT or "settings" not in doc:
        raise KendaliError(
            f"not a Kendali settings file (expected format {SETTINGS_FORMAT!r} and 'settings'); fix it, "
            "or delete it to use the defaults",
            where,
        )
    try:
        return settings_mod.validate(doc["settings"])
    except SettingsError as exc:
        fld = "settings" if exc.field == "(body)" else f"settings.{exc.field}"
        raise KendaliError(
            f"{exc.problem}; fix it (PUT /v1/settings) or delete the file to use the defaults", where, fld
        ) from None


class SettingsFile:
    """The report's settings in ``state_dir/settings.json``; each accepted change audited."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / SETTINGS_FILE
        self.audit_path = self.state_dir / AUDIT_FILE
        self.lock = threading.RLock()

    def get(self) -> Settings:
        """Read at every call: a file edited by hand takes effect at once. KendaliError if damaged."""
        return load_settings(self.state_dir)

    def put(self, new: Settings, who: str) -> bool:
        """Save ``new``; False if it equals the saved settings (nothing written, nothing audited).
        A damaged file is replaced (its content cannot be the "before" of the audit line: null).
        Raises OSError when it cannot be saved: then nothing changed."""
        with self.lock:
            try:
                before: Settings | None = self.get()
            except KendaliError:
                before = None
            if before == new and self.path.exists():
                return False
            doc = {"format": SETTINGS_FORMAT, "saved": _now(), "settings": new.to_dict()}
            entry = {
                "time": _now(),
                "who": who,
                "action": "settings",
                "id": "settings",
                "before": before.to_dict() if before is not None else None,
                "after": new.to_dict(),
            }
            self._save((json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), entry)
            try:
                append_audit(self.audit_path, [entry])
            except OSError:
                log.exception("could not append to %s", self.audit_path)
            return True

    def _save(self, data: bytes, entry: dict[str, Any]) -> None:
        """Where the settings document goes (``entry``: its audit line, for a store that keeps both)."""
        ensure_state_dir(self.state_dir)
        atomic_write(self.path, data)


class PolicyStore:
    """Accepted policies, persisted in ``state_dir/policies.json``, audited in ``audit.jsonl``.

    Every method that changes something persists it before returning; when persisting
    fails (disk full, read-only) it raises OSError and nothing changed, in memory or on disk.
    """

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = ensure_state_dir(Path(state_dir))
        self.path = self.state_dir / STATE_FILE
        self.audit_path = self.state_dir / AUDIT_FILE
        # A green lock under eventlet: validation against current state and the write are one step.
        self.lock = threading.RLock()
        self._policies: dict[str, Policy] = {}
        self._exists = self.path.exists()
        if self._exists:
            self._policies = self._load()
        self._clean_tmp()

    # --- reading -----------------------------------------------------------------------------

    def _load(self) -> dict[str, Policy]:
        return load_policies(self.path)

    def _clean_tmp(self) -> None:
        # Leftovers of a crash in the middle of atomic_write: never the live file.
        for tmp in self.state_dir.glob(f".{STATE_FILE}.tmp-*"):
            try:
                tmp.unlink()
            except OSError:
                pass

    def get(self, policy_id: str) -> Policy | None:
        return self._policies.get(policy_id)

    def all(self) -> dict[str, Policy]:
        """A copy, sorted by id: callers may keep it while the store changes."""
        return dict(sorted(self._policies.items()))

    @property
    def exists(self) -> bool:
        """True once a state file exists (after the first seed or change), even if it is empty."""
        return self._exists

    def audit(self) -> list[dict[str, Any]]:
        """The audit log, oldest first; a torn last line (crash while appending) is skipped."""
        return read_audit(self.audit_path)

    def settings_file(self) -> SettingsFile:
        """Where the report's settings of this state are kept (with --etcd: in etcd, see api.etcdstore)."""
        return SettingsFile(self.state_dir)

    def document(self, policies: Mapping[str, Policy]) -> bytes:
        """policies.json's content for ``policies``."""
        doc = {"format": FORMAT, "saved": _now(), "policies": [policies[k].to_dict() for k in sorted(policies)]}
        return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    # --- writing -----------------------------------------------------------------------------

    def _save(self, policies: Mapping[str, Policy]) -> None:
        atomic_write(self.path, self.document(policies))
        self._exists = True

    def _audit(self, entries: list[dict[str, Any]]) -> None:
        append_audit(self.audit_path, entries)

    def _commit(self, new: dict[str, Policy], entries: list[dict[str, Any]]) -> None:
        self._save(new)  # raises -> nothing changed
        self._policies = new
        try:
            self._audit(entries)
        except OSError:
            # The change is saved and will be applied; losing its audit line must not undo it.
            log.exception("could not append to %s", self.audit_path)

    def _entry(self, who: str, action: str, pid: str, before: Policy | None, after: Policy | None) -> dict[str, Any]:
        return {
            "time": _now(),
            "who": who,
            "action": action,
            "id": pid,
            "before": before.to_dict() if before else None,
            "after": after.to_dict() if after else None,
        }

    def put(self, policy: Policy, who: str) -> bool:
        """Create or replace; True if created. Raises PolicyError (409) on overlap, OSError if not saved."""
        with self.lock:
            # Re-checked here under the lock so two concurrent PUTs cannot both claim a subnet.
            check_overlap(policy, self._policies)
            before = self._policies.get(policy.id)
            if before == policy and self._exists:
                return False  # idempotent PUT: nothing to save or audit
            new = dict(self._policies)
            new[policy.id] = policy
            self._commit(new, [self._entry(who, "put", policy.id, before, policy)])
            return before is None

    def delete(self, policy_id: str, who: str) -> bool:
        """Delete; False if there was no such policy (nothing written)."""
        with self.lock:
            before = self._policies.get(policy_id)
            if before is None:
                return False
            new = dict(self._policies)
            del new[policy_id]
            self._commit(new, [self._entry(who, "delete", policy_id, before, None)])
            return True

    def seed(self, policies: Mapping[str, Policy], source: str = "the policy file") -> str | None:
        """First start: take ``policies`` (from --policies) as the initial state.

        Once a state file exists (even an empty one, after deleting every policy through
        the REST API) the file is never applied again: REST changes win. Returns a message
        for the log when the file and the saved state differ, else None.
        """
        with self.lock:
            if not self._exists:
                new = dict(sorted(policies.items()))
                for p in new.values():
                    check_overlap(p, new)
                self._commit(new, [self._entry("seed", "seed", pid, None, p) for pid, p in new.items()])
                return None
            if dict(policies) == self._policies:
                return None
            only_file = sorted(set(policies) - set(self._policies))
            only_state = sorted(set(self._policies) - set(policies))
            changed = sorted(k for k in set(policies) & set(self._policies) if policies[k] != self._policies[k])
            parts = []
            if changed:
                parts.append(f"different: {', '.join(changed)}")
            if only_file:
                parts.append(f"only in the file: {', '.join(only_file)}")
            if only_state:
                parts.append(f"only in the saved state: {', '.join(only_state)}")
            return (
                f"{source} differs from the policies saved in {self.path} ({'; '.join(parts)}). "
                f"The saved policies (changed through the REST API) are in force; the file was NOT applied. "
                f"To start again from the file, stop the controller and move {self.path} aside."
            )
