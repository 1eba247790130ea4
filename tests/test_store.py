"""controller.api.store: persistence, crash safety, audit, seeding (tokens: test_tokens.py)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from controller.api.store import PolicyStore, atomic_write
from controller.core.policy import Policy, PolicyError, validate
from controller.errors import KendaliError

DINKES = validate(
    {
        "id": "dinkes",
        "name": "Dinas Kesehatan",
        "subnets": ["10.10.7.0/24"],
        "download_kbps": 20000,
        "upload_kbps": 10000,
    }
)
RSUD = validate(
    {
        "id": "rsud",
        "name": "RSUD",
        "subnets": ["10.10.11.0/24"],
        "download_kbps": 150000,
        "upload_kbps": 80000,
        "burst_kbit": 9000,
        "note": "SIMRS",
    }
)


def test_state_dir_is_created_private(tmp_path: Path) -> None:
    d = tmp_path / "a" / "state"
    PolicyStore(d)
    assert d.is_dir()
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_round_trip_through_disk(tmp_path: Path) -> None:
    s = PolicyStore(tmp_path)
    assert s.all() == {} and not s.exists
    assert s.put(DINKES, "env") is True
    assert s.put(RSUD, "env") is True
    changed = Policy(**{**DINKES.__dict__, "download_kbps": 30000})
    assert s.put(changed, "env") is False
    again = PolicyStore(tmp_path)
    assert again.all() == {"dinkes": changed, "rsud": RSUD}
    assert again.get("rsud") == RSUD and again.get("nope") is None
    assert again.delete("rsud", "env") is True
    assert again.delete("rsud", "env") is False
    assert PolicyStore(tmp_path).all() == {"dinkes": changed}
    doc = json.loads((tmp_path / "policies.json").read_text())
    assert doc["format"] == "kendali-policies/1" and doc["policies"] == [changed.to_dict()]
    assert stat.S_IMODE((tmp_path / "policies.json").stat().st_mode) == 0o600


def test_all_returns_a_copy(tmp_path: Path) -> None:
    s = PolicyStore(tmp_path)
    s.put(DINKES, "env")
    snapshot = s.all()
    s.delete("dinkes", "env")
    assert snapshot == {"dinkes": DINKES}


def test_put_refuses_overlap_even_without_rest(tmp_path: Path) -> None:
    s = PolicyStore(tmp_path)
    s.put(DINKES, "env")
    clash = Policy("x", "X", ("10.10.7.128/25",), 1000, 1000)
    with pytest.raises(PolicyError) as info:
        s.put(clash, "env")
    assert info.value.status == 409
    assert PolicyStore(tmp_path).all() == {"dinkes": DINKES}


def test_crash_during_replace_leaves_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = PolicyStore(tmp_path)
    s.put(DINKES, "env")
    before = (tmp_path / "policies.json").read_bytes()

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        s.put(RSUD, "env")
    with pytest.raises(OSError):
        s.delete("dinkes", "env")
    monkeypatch.undo()
    assert (tmp_path / "policies.json").read_bytes() == before
    assert s.all() == {"dinkes": DINKES}  # memory unchanged too: no half-applied change
    assert [e["action"] for e in s.audit()] == ["put"]
    assert not list(tmp_path.glob(".policies.json.tmp-*"))  # temp file cleaned up
    assert PolicyStore(tmp_path).all() == {"dinkes": DINKES}


def test_crash_during_write_leaves_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = PolicyStore(tmp_path)
    s.put(DINKES, "env")
    before = (tmp_path / "policies.json").read_bytes()
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError):
        s.put(RSUD, "env")
    monkeypatch.undo()
    assert (tmp_path / "policies.json").read_bytes() == before
    assert s.all() == {"dinkes": DINKES}


def test_leftover_temp_file_from_kill9_is_ignored_and_removed(tmp_path: Path) -> None:
    s = PolicyStore(tmp_path)
    s.put(DINKES, "env")
    torn = tmp_path / ".policies.json.tmp-123-abcd"
    torn.write_text('{"format": "kendali-pol')  # killed mid-write: never renamed
    assert PolicyStore(tmp_path).all() == {"dinkes": DINKES}
    assert not torn.exists()


def test_atomic_write_gives_the_file_to_its_owner_before_it_appears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int, bool]] = []
    real = os.fchown

    def fchown(fd: int, uid: int, gid: int) -> None:
        seen.append((uid, gid, (tmp_path / "f").exists()))
        real(fd, uid, gid)

    monkeypatch.setattr(os, "fchown", fchown)
    atomic_write(tmp_path / "f", b"x", owner=(os.getuid(), os.getgid()))
    atomic_write(tmp_path / "g", b"y")
    assert seen == [(os.getuid(), os.getgid(), False)]
    assert (tmp_path / "f").read_bytes() == b"x" and stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600


def test_atomic_write_fsyncs_file_and_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    atomic_write(tmp_path / "f", b"x")
    assert len(synced) == 2 and (tmp_path / "f").read_bytes() == b"x"


@pytest.mark.parametrize(
    "content,words",
    [
        (b'{"format": "kendali-policies/1", "policies": [', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[]", "not a Kendali policy state file"),
        (b'{"format": "other", "policies": []}', "not a Kendali policy state file"),
        (b'{"format": "kendali-policies/1", "policies": [{"id": "x"}]}', "is required"),
    ],
)
def test_corrupt_state_file_is_an_error_not_data_loss(tmp_path: Path, content: bytes, words: str) -> None:
    (tmp_path / "policies.json").write_bytes(content)
    with pytest.raises(KendaliError) as info:
        PolicyStore(tmp_path)
    assert info.value.where == str(tmp_path / "policies.json")
    assert words in info.value.problem
    assert (tmp_path / "policies.json").read_bytes() == content  # untouched


def test_audit_lines(tmp_path: Path) -> None:
    s = PolicyStore(tmp_path)
    s.put(DINKES, "env")
    changed = Policy(**{**DINKES.__dict__, "upload_kbps": 5000})
    s.put(changed, "noc-budi")
    s.put(changed, "noc-budi")  # unchanged: not a change, no line
    s.delete("dinkes", "env")
    s.delete("dinkes", "env")  # absent: no line
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [(e["action"], e["who"], e["id"]) for e in entries] == [
        ("put", "env", "dinkes"),
        ("put", "noc-budi", "dinkes"),
        ("delete", "env", "dinkes"),
    ]
    assert entries[0]["before"] is None and entries[0]["after"] == DINKES.to_dict()
    assert entries[1]["before"] == DINKES.to_dict() and entries[1]["after"] == changed.to_dict()
    assert entries[2]["before"] == changed.to_dict() and entries[2]["after"] is None
    for e in entries:
        assert e["time"].endswith("Z") and "T" in e["time"]


def test_torn_audit_line_does_not_glue_to_the_next(tmp_path: Path) -> None:
    s = PolicyStore(tmp_path)
    s.put(DINKES, "env")
    with open(tmp_path / "audit.jsonl", "ab") as f:
        f.write(b'{"time": "2026-')  # crash mid-append
    s.put(RSUD, "env")
    assert [e["id"] for e in s.audit()] == ["dinkes", "rsud"]


def test_seed_fills_only_a_first_start(tmp_path: Path) -> None:
    s = PolicyStore(tmp_path)
    assert s.seed({"dinkes": DINKES, "rsud": RSUD}, "policies/ppu.yaml") is None
    assert s.all() == {"dinkes": DINKES, "rsud": RSUD}
    assert [(e["action"], e["who"]) for e in s.audit()] == [("seed", "seed"), ("seed", "seed")]
    # Restart with the same file: nothing to say, nothing written.
    s2 = PolicyStore(tmp_path)
    assert s2.seed({"dinkes": DINKES, "rsud": RSUD}) is None
    assert len(s2.audit()) == 2


def test_seed_never_overrides_rest_changes(tmp_path: Path) -> None:
    s = PolicyStore(tmp_path)
    s.seed({"dinkes": DINKES, "rsud": RSUD})
    changed = Policy(**{**DINKES.__dict__, "download_kbps": 5000})
    s.put(changed, "env")
    s.delete("rsud", "env")
    s2 = PolicyStore(tmp_path)
    msg = s2.seed({"dinkes": DINKES, "rsud": RSUD}, "policies/ppu.yaml")
    assert msg is not None
    assert "policies/ppu.yaml" in msg and "NOT applied" in msg
    assert "different: dinkes" in msg and "only in the file: rsud" in msg
    assert s2.all() == {"dinkes": changed}


def test_seed_after_everything_was_deleted_is_not_a_first_start(tmp_path: Path) -> None:
    s = PolicyStore(tmp_path)
    s.seed({"dinkes": DINKES})
    s.delete("dinkes", "env")
    s2 = PolicyStore(tmp_path)
    assert s2.exists and s2.all() == {}
    assert s2.seed({"dinkes": DINKES}) is not None
    assert s2.all() == {}


WRITER = """
import sys
from controller.core.policy import Policy
from controller.api.store import PolicyStore
s = PolicyStore(sys.argv[1])
i = 0
while True:
    i += 1
    if i == 2:
        print("ready", flush=True)  # one put is done
    s.put(Policy("dinkes", "Dinas Kesehatan", ("10.10.7.0/24",), 64 + i, 10000, note="x" * (i % 400)), "env")
"""


@pytest.mark.parametrize("delay", [0.05, 0.13, 0.29])
def test_kill_9_at_any_moment_leaves_a_whole_file(tmp_path: Path, delay: float) -> None:
    import signal
    import subprocess
    import sys
    import time

    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)],
        cwd=root,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        time.sleep(delay)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    s = PolicyStore(tmp_path)  # must load: old or new file, never a torn one
    p = s.get("dinkes")
    assert p is not None and p.download_kbps > 64
    # Audit lines, except perhaps a torn last one, are whole and at most one behind the state.
    last = s.audit()[-1]
    assert last["after"]["download_kbps"] in (p.download_kbps, p.download_kbps - 1)
