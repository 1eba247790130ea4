"""The policies, the report's settings and the API tokens kept in etcd (``--etcd``).

Each class is the state-dir class it replaces with etcd as the truth: every write is a
transaction against the revision last read (controller.api.etcd), and the state dir's
file is rewritten as a mirror of what etcd holds, after every write and every change the
watch reports (``Shared.apply``). What reads the state dir (the report, a restart without
--etcd, the controller's token check) therefore reads what etcd holds. When etcd cannot
be reached, a write raises EtcdUnavailable (an OSError: the REST API answers 503 and
nothing changes anywhere); reads keep answering from the mirror.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from controller.api import etcd as e
from controller.api.store import (
    PolicyStore,
    SettingsFile,
    append_audit,
    atomic_write,
    parse_policies,
    read_audit,
)
from controller.api.tokens import TOKENS_FILE, Entry, TokenFile, dump
from controller.api.tokens import parse as parse_tokens
from controller.core import settings as settings_mod
from controller.core.policy import Policy
from controller.core.settings import Settings
from controller.errors import KendaliError

log = logging.getLogger("kendali.etcd")


def _audit_keys(node: str, entries: list[dict[str, Any]]) -> dict[str, bytes]:
    # Time-ordered keys: GET /v1/events lists every node's changes in the order they happened.
    t = time.time_ns()
    return {
        f"{e.AUDIT}{t:020d}-{node}-{i}": json.dumps(x, ensure_ascii=False).encode("utf-8")
        for i, x in enumerate(entries)
    }


def _mirror(path: Path, data: bytes) -> None:
    try:
        atomic_write(path, data)
    except OSError as exc:
        log.error("cannot mirror %s from etcd: %s", path, exc)


class EtcdPolicyStore(PolicyStore):
    """The policies in etcd (``/kendali/policies``); policies.json is its mirror."""

    def __init__(self, state_dir: Path, etcd: e.Etcd, node: str) -> None:
        super().__init__(state_dir)  # the mirror, as the last run left it
        self.etcd = etcd
        self.node = node
        self.revision = 0  # of /kendali/policies as last read or written
        self.settings = EtcdSettingsFile(self.state_dir, etcd, node)
        kv = etcd.get(e.POLICIES)
        if kv is None and self._exists:
            # A single controller's state dir becomes the pair's: its policies go up once.
            if etcd.put_if(e.POLICIES, self.path.read_bytes(), 0) is not None:
                log.info("policies of %s copied into etcd (%s)", self.path, e.POLICIES)
            kv = etcd.get(e.POLICIES)
        self._exists = kv is not None
        self.apply(kv)

    def settings_file(self) -> SettingsFile:
        return self.settings

    def apply(self, kv: e.Kv | None) -> bool:
        """etcd's copy (read or watched); True when the policies in force changed."""
        if kv is None or kv.mod_revision <= self.revision or not kv.value:
            return False
        try:
            new = parse_policies(json.loads(kv.value), f"etcd {e.POLICIES}")
        except (KendaliError, ValueError) as exc:
            log.error("the policies in etcd are not valid, the previous ones stay in force: %s", exc)
            return False
        with self.lock:
            self.revision = kv.mod_revision
            self._exists = True
            changed = new != self._policies
            self._policies = new
            _mirror(self.path, kv.value)
        return changed

    def sync(self) -> bool:
        return self.apply(self.etcd.get(e.POLICIES))

    def _commit(self, new: dict[str, Policy], entries: list[dict[str, Any]]) -> None:
        data = self.document(new)
        rev = self.etcd.put_if(e.POLICIES, data, self.revision, _audit_keys(self.node, entries))
        if rev is None:
            self.sync()
            raise e.Conflict("the policies")
        self.revision, self._policies, self._exists = rev, new, True
        _mirror(self.path, data)
        try:
            append_audit(self.audit_path, entries)  # this node's own copy; etcd's is the shared one
        except OSError:
            log.exception("could not append to %s", self.audit_path)

    def put(self, policy: Policy, who: str) -> bool:
        with self.lock:
            self.sync()  # checked against etcd's latest, not a watch event still on its way
            return super().put(policy, who)

    def delete(self, policy_id: str, who: str) -> bool:
        with self.lock:
            self.sync()
            return super().delete(policy_id, who)

    def seed(self, policies: Mapping[str, Policy], source: str = "the policy file") -> str | None:
        """--policies at the first start of the first node; two nodes starting at once seed once."""
        with self.lock:
            self.sync()
            try:
                return super().seed(policies, source)
            except e.Conflict:
                self.sync()  # the other node's seed went in first: compare with it
                return super().seed(policies, source)

    def audit(self) -> list[dict[str, Any]]:
        """Every node's accepted changes, from etcd; this node's own file when etcd is away."""
        try:
            kvs, _rev = self.etcd.get_prefix(e.AUDIT)
        except e.EtcdUnavailable:
            return read_audit(self.audit_path)
        out = []
        for kv in sorted(kvs, key=lambda k: k.key):
            try:
                entry = json.loads(kv.value)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out


class EtcdSettingsFile(SettingsFile):
    """The report's settings in etcd (``/kendali/settings``); settings.json is its mirror (``get`` reads it)."""

    def __init__(self, state_dir: Path, etcd: e.Etcd, node: str) -> None:
        super().__init__(state_dir)
        self.etcd, self.node = etcd, node
        self.revision = 0
        kv = etcd.get(e.SETTINGS)
        if kv is None and self.path.exists():
            etcd.put_if(e.SETTINGS, self.path.read_bytes(), 0)
            kv = etcd.get(e.SETTINGS)
        self.apply(kv)

    def apply(self, kv: e.Kv | None) -> bool:
        if kv is None or kv.mod_revision <= self.revision or not kv.value:
            return False
        try:
            doc = json.loads(kv.value)
            settings_mod.validate(doc["settings"])
        except (ValueError, KeyError, TypeError, settings_mod.SettingsError) as exc:
            log.error("the settings in etcd are not valid, the previous ones stay in force: %s", exc)
            return False
        with self.lock:
            self.revision = kv.mod_revision
            _mirror(self.path, kv.value)
        return True

    def put(self, new: Settings, who: str) -> bool:
        with self.lock:
            self.apply(self.etcd.get(e.SETTINGS))  # compare with, and write after, etcd's latest
            return super().put(new, who)

    def _save(self, data: bytes, entry: dict[str, Any]) -> None:
        """Into etcd with its audit line, in one transaction on the revision read; then the mirror."""
        rev = self.etcd.put_if(e.SETTINGS, data, self.revision, _audit_keys(self.node, [entry]))
        if rev is None:
            raise e.Conflict("the settings")
        self.revision = rev
        _mirror(self.path, data)


class EtcdTokenFile(TokenFile):
    """The API tokens in etcd (``/kendali/tokens``, hashes only); tokens.json is its mirror, which
    the running controller's token check (access.Keyring) reads."""

    def __init__(self, state_dir: Path, etcd: e.Etcd, create: bool = True) -> None:
        super().__init__(state_dir, create)
        self.etcd = etcd
        self.revision = 0

    def apply(self, kv: e.Kv | None) -> bool:
        if kv is None or kv.mod_revision <= self.revision or not kv.value:
            return False
        try:
            parse_tokens(kv.value, f"etcd {e.TOKENS}")
        except KendaliError as exc:
            log.error("the tokens in etcd are not valid, the previous ones stay in force: %s", exc)
            return False
        self.revision = kv.mod_revision
        try:
            TokenFile.save(self, parse_tokens(kv.value, f"etcd {e.TOKENS}"))
        except KendaliError as exc:
            log.error("cannot mirror the tokens: %s", exc)
        return True

    def sync(self) -> None:
        kv = self.etcd.get(e.TOKENS)
        if kv is None and (self.state_dir / TOKENS_FILE).exists():
            # A single controller's tokens become the pair's: they go up once.
            self.etcd.put_if(e.TOKENS, (self.state_dir / TOKENS_FILE).read_bytes(), 0)
            kv = self.etcd.get(e.TOKENS)
        self.apply(kv)

    @contextmanager
    def locked(self) -> Iterator[dict[str, Entry]]:
        try:
            self.sync()
        except e.EtcdUnavailable as exc:
            raise KendaliError(str(exc.strerror), f"--etcd {self.etcd.urls}") from None
        with super().locked() as entries:
            yield entries

    def save(self, entries: Mapping[str, Entry]) -> None:
        data = dump(entries)
        try:
            rev = self.etcd.put_if(e.TOKENS, data, self.revision)
        except e.EtcdUnavailable as exc:
            raise KendaliError(str(exc.strerror), f"--etcd {self.etcd.urls}") from None
        if rev is None:
            raise KendaliError("the tokens changed in etcd at the same moment; run the command again", e.TOKENS)
        self.revision = rev
        super().save(entries)


class Shared:
    """The documents one node keeps in step with etcd: what the watch hands ``apply``."""

    def __init__(
        self,
        store: EtcdPolicyStore,
        tokens: EtcdTokenFile,
        on_policies: Callable[[dict[str, Policy]], None] = lambda policies: None,
    ) -> None:
        self.store, self.tokens = store, tokens
        self.on_policies = on_policies  # the app's policies_changed: the leader enforces what etcd holds

    def apply(self, kv: e.Kv) -> None:
        if kv.key == e.POLICIES:
            if self.store.apply(kv):
                self.on_policies(self.store.all())
        elif kv.key == e.SETTINGS:
            self.store.settings.apply(kv)
        elif kv.key == e.TOKENS:
            self.tokens.apply(kv)

    def resync(self) -> int:
        """Everything read again (after the watch broke); the revision to watch from."""
        kvs, rev = self.store.etcd.get_prefix(e.POLICIES)  # the store's revision comes with it
        for key in (e.SETTINGS, e.TOKENS):
            kv = self.store.etcd.get(key)
            if kv is not None:
                kvs.append(kv)
        for kv in kvs:
            self.apply(kv)
        return rev + 1
