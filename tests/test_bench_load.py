"""The load benchmark's write check: what clients were told against audit log and final state."""

from __future__ import annotations

from controller.lab.bench_load import check_writes, make_clients


def _audit(*entries: tuple[str, str, int | None]) -> list[dict]:
    return [
        {"action": a, "id": pid, "after": {"download_kbps": kbps} if a == "put" else None} for a, pid, kbps in entries
    ]


def _one_client(*writes: tuple[str, int | None]):
    (c,) = make_clients(1)
    c.acked["load00a"] = list(writes)
    return [c]


def test_agreeing_log_and_state_pass() -> None:
    clients = _one_client(("put", 1001), ("delete", None), ("put", 1003))
    audit = _audit(("put", "load00a", 1001), ("delete", "load00a", None), ("put", "load00a", 1003))
    r = check_writes(clients, {"load00a": {"download_kbps": 1003}}, audit)
    assert r["ok"] and r["writes_acknowledged"] == 3 and r["policy_ids_checked"] == 2


def test_a_write_missing_from_the_log_is_lost() -> None:
    clients = _one_client(("put", 1001), ("put", 1002))
    r = check_writes(clients, {"load00a": {"download_kbps": 1002}}, _audit(("put", "load00a", 1001)))
    assert r["lost"] == ["load00a"] and not r["ok"]


def test_writes_logged_out_of_order_are_reordered() -> None:
    clients = _one_client(("put", 1001), ("put", 1002))
    audit = _audit(("put", "load00a", 1002), ("put", "load00a", 1001))
    r = check_writes(clients, {"load00a": {"download_kbps": 1002}}, audit)
    assert r["reordered"] == ["load00a"] and not r["ok"]


def test_final_state_must_be_the_last_acknowledged_write() -> None:
    clients = _one_client(("put", 1001), ("delete", None))
    audit = _audit(("put", "load00a", 1001), ("delete", "load00a", None))
    assert check_writes(clients, {}, audit)["ok"]
    r = check_writes(clients, {"load00a": {"download_kbps": 1001}}, audit)
    assert r["final_state_wrong"] == ["load00a"]


def test_an_id_with_a_write_of_unknown_outcome_is_left_out() -> None:
    clients = _one_client(("put", 1001))
    clients[0].unknown.add("load00a")
    r = check_writes(clients, {}, [])
    assert r["ok"] and r["policy_ids_unknown_outcome"] == 1
