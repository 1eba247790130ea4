"""controller.api.access: the keyring (reload while running, KENDALI_TOKEN, cache), the slowdown, the decision."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from controller.api import tokens as tokens_mod
from controller.api.access import NEEDS_WRITE, NOT_AUTHORISED, Access, Denied, FailureBackoff, Keyring, bearer
from controller.api.tokens import Token, TokenFile


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(tokens_mod.SCRYPT, "n", 2**4)


class Counting:
    """An offload that counts the scrypt checks it runs."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, fn):  # type: ignore[no-untyped-def]
        self.calls += 1
        return fn()


def _touch_later(path: Path) -> None:
    # A change within the same clock tick must still be seen: the inode changes on every atomic write,
    # but keep the test independent of that by moving mtime forward too.
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))


# --- keyring ------------------------------------------------------------------------------------------


def test_stored_tokens_and_their_roles(tmp_path: Path) -> None:
    files = TokenFile(tmp_path)
    w, r = files.add("noc", "write"), files.add("grafana", "read")
    ring = Keyring(tmp_path)
    assert ring.verify(w) == Token("noc", "write")
    assert ring.verify(r) == Token("grafana", "read")
    assert ring.verify(w[:-1]) is None and ring.verify(w + "x") is None and ring.verify("") is None
    assert ring.names() == ["grafana", "noc"]


def test_kendali_token_is_the_write_token_env(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, "s3cret-from-the-environment")
    assert ring.verify("s3cret-from-the-environment") == Token("env", "write")
    assert ring.verify("s3cret-from-the-environment ") is None
    assert ring.names() == ["env"]


def test_revoke_and_add_while_running(tmp_path: Path) -> None:
    files = TokenFile(tmp_path)
    w = files.add("noc", "write")
    ring = Keyring(tmp_path)
    assert ring.verify(w) == Token("noc", "write")
    assert ring.known(w) == Token("noc", "write")  # cached
    files.revoke("noc")
    ring.refresh()
    assert ring.known(w) is None and ring.verify(w) is None
    again = files.add("noc", "read")
    ring.refresh()
    assert ring.verify(again) == Token("noc", "read") and ring.verify(w) is None


def test_a_file_deleted_while_running_leaves_only_kendali_token(tmp_path: Path) -> None:
    w = TokenFile(tmp_path).add("noc", "write")
    ring = Keyring(tmp_path, "envtoken")
    assert ring.verify(w)
    (tmp_path / "tokens.json").unlink()
    ring.refresh()
    assert ring.verify(w) is None and ring.verify("envtoken") == Token("env", "write")


def test_a_broken_edit_keeps_the_tokens_in_force(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = TokenFile(tmp_path)
    w = files.add("noc", "write")
    ring = Keyring(tmp_path)
    assert ring.verify(w)
    (tmp_path / "tokens.json").write_text("{broken")
    _touch_later(tmp_path / "tokens.json")
    with caplog.at_level(logging.ERROR, logger="kendali.access"):
        ring.refresh()
        ring.refresh()  # reported once per change, not per request
    assert ring.verify(w) == Token("noc", "write")
    assert len(caplog.records) == 1 and "previous ones stay in force" in caplog.records[0].getMessage()
    assert "tokens.json" in caplog.records[0].getMessage()


def test_a_wrong_token_costs_no_scrypt_and_a_right_one_costs_one(tmp_path: Path) -> None:
    files = TokenFile(tmp_path)
    secrets = [files.add(f"t{i}", "read") for i in range(5)]
    ring = Keyring(tmp_path)
    ring.offload = count = Counting()
    assert ring.verify("x" * 43) is None and ring.verify("nope") is None
    assert count.calls == 0
    assert ring.verify(secrets[3]) == Token("t3", "read")
    assert count.calls == 1
    assert ring.verify(secrets[3]) == Token("t3", "read")  # cached now
    assert count.calls == 1
    assert ring.verify(secrets[3][:8] + "y" * 35) is None  # same lookup, wrong rest: one scrypt, refused
    assert count.calls == 2


def test_a_short_migrated_token_is_still_found(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("short-one\n")
    (tmp_path / "token").chmod(0o600)
    TokenFile(tmp_path).first_start({})
    assert Keyring(tmp_path).verify("short-one") == Token("file", "write")


# --- the slowdown (pure, a fake clock) --------------------------------------------------------------------


def test_a_few_failures_are_free_then_the_wait_doubles_up_to_the_cap() -> None:
    b = FailureBackoff(free=3, first=1.0, cap=8.0)
    now = 0.0
    waits = []
    for _ in range(9):
        wait = b.admit("a", now)
        assert wait is not None
        waits.append(wait)
        now += wait
        b.failed("a", now)
    assert waits == [0, 0, 0, 1, 2, 4, 8, 8, 8]
    assert b.admit("b", now) == 0  # another address is not touched


def test_waiting_out_the_pause_by_oneself_gives_no_extra_wait() -> None:
    b = FailureBackoff(free=1, first=2.0, cap=60.0)
    b.failed("a", 100.0)  # next check at 102
    assert b.admit("a", 101.0) == 1.0
    b.failed("a", 102.0)  # 2 in a row: next check at 106
    assert b.admit("a", 110.0) == 0.0


def test_attempts_arriving_together_queue_one_step_apart() -> None:
    b = FailureBackoff(free=1, first=1.0, cap=5.0)
    b.failed("a", 0.0)
    assert [b.admit("a", 0.0) for _ in range(6)] == [1.0, 2.0, 3.0, 4.0, 5.0, None]  # None: refused unchecked


def test_success_and_time_forgive() -> None:
    b = FailureBackoff(free=1, first=1.0, cap=30.0, forget=60.0)
    for t in range(5):
        b.failed("a", float(t))
    assert b.admit("a", 5.0) > 0
    b.succeeded("a")
    assert b.admit("a", 5.0) == 0 and len(b) == 0
    for t in range(5):
        b.failed("a", float(t))
    assert b.admit("a", 4.0 + 61.0) == 0 and len(b) == 0  # forgotten after a quiet minute


def test_memory_is_bounded() -> None:
    b = FailureBackoff(free=1, first=1.0, max_addresses=100)
    for i in range(10_000):
        b.failed(f"10.0.{i // 256}.{i % 256}", float(i))
    assert len(b) == 100
    assert b.admit("10.0.39.15", 9_999.0) == 1.0  # the newest are kept
    assert b.admit("10.0.0.0", 9_999.0) == 0  # the oldest were dropped


def test_the_step_does_not_overflow() -> None:
    assert FailureBackoff(free=1, first=0.5, cap=30.0).step(10**9) == 30.0


# --- the decision -------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Access, Clock, str, str]:
    files = TokenFile(tmp_path)
    w, r = files.add("noc", "write"), files.add("grafana", "read")
    clock = Clock()
    return (
        Access(Keyring(tmp_path, "envtoken"), FailureBackoff(free=2, first=1.0, cap=4.0), clock.sleep, clock),
        clock,
        w,
        r,
    )


def test_roles(setup: tuple[Access, Clock, str, str]) -> None:
    access, _, w, r = setup
    assert access.authorise(f"Bearer {w}", "a", "write") == Token("noc", "write")
    assert access.authorise(f"Bearer {w}", "a", "read") == Token("noc", "write")
    assert access.authorise(f"bearer   {r} ", "a", "read") == Token("grafana", "read")
    assert access.authorise("Bearer envtoken", "a", "write") == Token("env", "write")
    with pytest.raises(Denied) as info:
        access.authorise(f"Bearer {r}", "a", "write")
    assert (info.value.status, info.value.problem, info.value.headers) == (403, NEEDS_WRITE, {})


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Token x", "Bearer wrong"])
def test_every_failure_says_the_same(setup: tuple[Access, Clock, str, str], header: str | None) -> None:
    access = setup[0]
    with pytest.raises(Denied) as info:
        access.authorise(header, "a", "read")
    assert (info.value.status, info.value.problem) == (401, NOT_AUTHORISED)
    assert info.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_log_lines_stop_growing_with_a_flood(
    setup: tuple[Access, Clock, str, str], caplog: pytest.LogCaptureFixture
) -> None:
    access, clock, _, _ = setup
    with caplog.at_level(logging.WARNING, logger="kendali.access"):
        for _ in range(100):
            with pytest.raises(Denied):
                access.authorise("Bearer guess-000", "192.0.2.1", "read", "GET '/v1/topology'")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 7  # 1, 2 (free), then 4, 8, 16, 32, 64
    assert "GET '/v1/topology' from 192.0.2.1" in lines[0] and "64 in a row" in lines[-1]
    assert not any("guess-000" in line for line in lines)
    assert sum(clock.slept) <= 100 * 4.0  # the cap holds


def test_a_token_that_worked_is_never_held_up(setup: tuple[Access, Clock, str, str]) -> None:
    access, clock, w, r = setup
    access.authorise(f"Bearer {w}", "a", "write")
    for _ in range(6):
        with pytest.raises(Denied):
            access.authorise("Bearer guess", "a", "read")
    slept = len(clock.slept)
    assert slept > 0
    access.authorise(f"Bearer {w}", "a", "write")
    assert len(clock.slept) == slept
    access.authorise(f"Bearer {r}", "a", "read")  # new here: waits its turn once, then clears the address
    assert len(clock.slept) == slept + 1
    access.authorise(f"Bearer {r}", "b", "read")
    assert len(clock.slept) == slept + 1


def test_bearer_parsing() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("  BEARER   abc  ") == "abc"
    assert bearer("Bearer a b") == "a b"  # the whole rest: such a token simply does not match
    assert bearer("Basic abc") is None and bearer(None) is None and bearer("Bearer") is None
