"""controller.api.tokens: the tokens file, hashing, roles, migration of the old token file, first start."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from controller.api import tokens as tokens_mod
from controller.api.tokens import FILE_NAME, FIRST_NAME, Entry, TokenFile, check_name, make_entry, parse, read_entries
from controller.errors import KendaliError


@pytest.fixture(autouse=True)
def cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real cost is 40 ms a hash; the tests need the algorithm, not the cost."""
    monkeypatch.setitem(tokens_mod.SCRYPT, "n", 2**4)


def test_add_stores_only_a_salted_hash(tmp_path: Path) -> None:
    files = TokenFile(tmp_path / "state")
    a = files.add("noc", "write")
    b = files.add("grafana", "read")
    assert a != b and len(a) == 43 and len(b) == 43
    path = tmp_path / "state" / "tokens.json"
    text = path.read_text()
    assert a not in text and b not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    doc = json.loads(text)
    assert doc["format"] == "kendali-tokens/1"
    assert [(t["name"], t["role"]) for t in doc["tokens"]] == [("grafana", "read"), ("noc", "write")]
    salts = {t["salt"] for t in doc["tokens"]}
    assert len(salts) == 2  # one salt per token
    entries = read_entries(path)
    assert entries["noc"].matches(a) and not entries["noc"].matches(b)
    assert entries["grafana"].matches(b) and not entries["grafana"].matches(a + "x")
    assert entries["noc"].lookup == a[:8]


def test_same_secret_hashes_differently_per_token() -> None:
    one, two = make_entry("a", "read", "same-secret"), make_entry("b", "read", "same-secret")
    assert one.hash != two.hash and one.salt != two.salt
    assert one.matches("same-secret") and two.matches("same-secret")
    assert one.lookup is None  # a short secret gives nothing away in the file


def test_list_and_revoke(tmp_path: Path) -> None:
    files = TokenFile(tmp_path)
    files.add("noc", "write")
    files.add("grafana", "read")
    assert [(e.name, e.role) for e in files.entries().values()] == [("grafana", "read"), ("noc", "write")]
    files.revoke("grafana")
    assert list(files.entries()) == ["noc"]
    with pytest.raises(KendaliError, match=r"no token named 'grafana' \(tokens: noc\)"):
        files.revoke("grafana")


def test_a_name_is_used_once(tmp_path: Path) -> None:
    files = TokenFile(tmp_path)
    files.add("noc", "write")
    with pytest.raises(KendaliError, match="exists; revoke it first"):
        files.add("noc", "read")
    assert files.entries()["noc"].role == "write"


@pytest.mark.parametrize(
    "name,words",
    [
        ("", "not a valid token name"),
        ("NOC", "not a valid token name"),
        ("-noc", "not a valid token name"),
        ("n" * 33, "not a valid token name"),
        ("noc ops", "not a valid token name"),
        ("env", "reserved"),
        ("seed", "reserved"),
        ("file", "reserved"),
    ],
)
def test_bad_names(tmp_path: Path, name: str, words: str) -> None:
    with pytest.raises(KendaliError, match=words):
        TokenFile(tmp_path).add(name, "read")
    assert not (tmp_path / "tokens.json").exists()


def test_good_names() -> None:
    for name in ("noc", "grafana-2", "budi.s", "a", "x_y", "9" * 32):
        assert check_name(name) == name


def test_bad_role(tmp_path: Path) -> None:
    with pytest.raises(KendaliError, match="'admin' is not a role: use read or write"):
        TokenFile(tmp_path).add("noc", "admin")


def test_list_of_a_missing_state_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KendaliError, match="no such state directory"):
        TokenFile(tmp_path / "nope", create=False)
    assert not (tmp_path / "nope").exists()


def test_a_readable_tokens_file_is_refused(tmp_path: Path) -> None:
    files = TokenFile(tmp_path)
    files.add("noc", "write")
    os.chmod(tmp_path / "tokens.json", 0o644)
    with pytest.raises(KendaliError, match="chmod 600"):
        files.entries()


BAD_FILES = [
    (b"{", "not valid JSON"),
    (b"\xff", "not valid JSON"),
    (b"[]", "not a Kendali tokens file"),
    (b'{"format": "kendali-tokens/9", "tokens": []}', "not a Kendali tokens file"),
    (b'{"format": "kendali-tokens/1", "tokens": [1]}', "tokens.0.: must be an object"),
]


GOOD = Entry("noc", "write", "2026-01-01T00:00:00Z", "ab" * 16, "cd" * 32, "xxxxxxxx", 2**14, 8, 1).to_dict()


def _doc(**change: object) -> bytes:
    good = GOOD
    return json.dumps({"format": "kendali-tokens/1", "tokens": [{**good, **change}]}).encode()


@pytest.mark.parametrize(
    "raw,words",
    BAD_FILES
    + [
        (_doc(name="NOC"), "tokens.0.name"),
        (_doc(role="root"), "tokens.0.role: must be read or write"),
        (_doc(created=5), "tokens.0.created"),
        (_doc(salt="zz"), "tokens.0.salt"),
        (_doc(hash="00"), "tokens.0.hash"),
        (_doc(lookup="abc"), "tokens.0.lookup"),
        (_doc(scrypt={"n": 3, "r": 8, "p": 1}), "tokens.0.scrypt: cost out of range"),
        (_doc(scrypt={"n": 2**30, "r": 8, "p": 1}), "tokens.0.scrypt: cost out of range"),
        (_doc(scrypt={"n": 16384, "r": 8}), "tokens.0.scrypt"),
        (_doc(scrypt={"n": 16384.0, "r": 8, "p": 1}), "tokens.0.scrypt"),
    ],
)
def test_a_broken_file_is_named_with_its_field(raw: bytes, words: str) -> None:
    with pytest.raises(KendaliError) as info:
        parse(raw, "/s/tokens.json")
    assert str(info.value).startswith("/s/tokens.json")
    assert words in str(info.value)
    assert "kendali token add" in str(info.value)


def test_duplicate_names_in_the_file() -> None:
    raw = json.dumps({"format": "kendali-tokens/1", "tokens": [GOOD, GOOD]}).encode()
    with pytest.raises(KendaliError, match="tokens.1.name: 'noc' appears twice"):
        parse(raw, "t")


def test_round_trip_keeps_the_cost_of_each_entry(tmp_path: Path) -> None:
    e = Entry("old", "read", "2020-01-01T00:00:00Z", "00" * 16, "11" * 32, None, 1024, 4, 2)
    assert parse(tokens_mod.dump({"old": e}), "t") == {"old": e}


# --- migration of <state>/token and the first start ------------------------------------------------


def _old_state(tmp_path: Path, secret: str = "old-generated-secret-from-before-named-tokens-1") -> Path:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "token").write_text(secret + "\n")
    (state / "token").chmod(0o600)
    return state


def test_the_old_token_file_becomes_the_write_token_file(tmp_path: Path) -> None:
    state = _old_state(tmp_path)
    files = TokenFile(state)
    assert files.first_start({}) == (None, None)  # it had a token: none is generated
    entries = read_entries(state / "tokens.json")
    assert list(entries) == [FILE_NAME] and entries[FILE_NAME].role == "write"
    assert entries[FILE_NAME].matches("old-generated-secret-from-before-named-tokens-1")
    assert "old-generated" not in (state / "tokens.json").read_text()
    assert (state / "token").exists()  # left for scripts that read it
    # once only: the hash stays the same on the next start
    files.add("noc", "read")
    assert read_entries(state / "tokens.json")[FILE_NAME] == entries[FILE_NAME]


def test_revoking_file_removes_the_old_file_so_it_does_not_come_back(tmp_path: Path) -> None:
    state = _old_state(tmp_path)
    files = TokenFile(state)
    files.entries()
    files.revoke(FILE_NAME)
    assert not (state / "token").exists()
    assert FILE_NAME not in files.entries()


def test_an_old_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    state = _old_state(tmp_path)
    (state / "token").chmod(0o644)
    with pytest.raises(KendaliError, match="chmod 600"):
        TokenFile(state).first_start({})
    assert not (state / "tokens.json").exists()


def test_an_empty_old_token_file_is_an_error(tmp_path: Path) -> None:
    state = _old_state(tmp_path, "")
    with pytest.raises(KendaliError, match="is empty"):
        TokenFile(state).first_start({})


def test_first_start_without_any_token_generates_a_write_token_once(tmp_path: Path) -> None:
    files = TokenFile(tmp_path / "state")
    env_secret, secret = files.first_start({})
    assert env_secret is None and secret is not None and len(secret) == 43
    entries = files.entries()
    assert list(entries) == [FIRST_NAME] and entries[FIRST_NAME].role == "write"
    assert entries[FIRST_NAME].matches(secret)
    assert files.first_start({}) == (None, None)
    assert not (tmp_path / "state" / "token").exists()  # no plain copy any more


def test_kendali_token_env_means_no_generated_token(tmp_path: Path) -> None:
    files = TokenFile(tmp_path / "state")
    assert files.first_start({"KENDALI_TOKEN": " s3cret \n"}) == ("s3cret", None)
    assert files.entries() == {}


def test_empty_kendali_token_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KendaliError, match="KENDALI_TOKEN: is set but empty"):
        TokenFile(tmp_path).first_start({"KENDALI_TOKEN": "  "})


def test_leftover_temporary_files_are_removed(tmp_path: Path) -> None:
    files = TokenFile(tmp_path)
    (tmp_path / ".tokens.json.tmp-1-ab").write_text("half")
    files.add("noc", "read")
    assert not (tmp_path / ".tokens.json.tmp-1-ab").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
def test_root_managing_another_users_state_dir_leaves_the_files_theirs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)  # as if the controller ran as nobody
    TokenFile(state).add("noc", "write")
    for name in ("tokens.json", ".tokens.lock"):
        st = (state / name).stat()
        assert (st.st_uid, st.st_gid) == (65534, 65534), name
