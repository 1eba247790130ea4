"""controller.api.memory: what a restart needs, kept in the state dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.api import memory
from controller.errors import KendaliError


def test_round_trip_and_a_damaged_file_is_ignored_not_fatal(tmp_path: Path) -> None:
    assert memory.load(tmp_path) == {}
    doc = {
        "hosts": [{"mac": "02:00:00:00:00:01", "ip": "10.0.0.1", "dpid": 1, "port": 3}],
        "meter_ids": {"dinkes": 0},
        "switches": [1, 2],
    }
    memory.save(tmp_path, doc)
    assert memory.load(tmp_path) == dict(doc, format=memory.FORMAT)
    (tmp_path / memory.NETWORK_FILE).write_text("{torn")
    assert memory.load(tmp_path) == {}
    (tmp_path / memory.NETWORK_FILE).write_text('{"format": "something-else"}')
    assert memory.load(tmp_path) == {}


def test_the_lldp_key_is_made_once_kept_private_and_checked(tmp_path: Path) -> None:
    key = memory.lldp_secret(tmp_path)
    assert len(key) == 32 and memory.lldp_secret(tmp_path) == key
    path = tmp_path / memory.LLDP_KEY_FILE
    assert os.stat(path).st_mode & 0o777 == 0o600
    os.chmod(path, 0o644)
    with pytest.raises(KendaliError, match="chmod 600"):
        memory.lldp_secret(tmp_path)
    os.chmod(path, 0o600)
    path.write_text("not hex\n")
    with pytest.raises(KendaliError, match="delete it"):
        memory.lldp_secret(tmp_path)
