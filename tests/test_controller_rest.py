"""The REST API of a real `kendali controller` child process (no switches, no Mininet).

One controller serves the module; the persistence tests start their own on the same
state directory. Each start takes well under a second, the whole file a few seconds.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.core.policy import load_file
from controller.lab.labctl import ControllerProcess

ROOT = Path(__file__).resolve().parent.parent
TOPO = ROOT / "topologies" / "ppu.yaml"
POLICIES = ROOT / "policies" / "ppu.yaml"
FILE_POLICIES = load_file(POLICIES)

LAB_OPD = {
    "id": "lab-test",
    "name": "Lab test OPD",
    "subnets": ["10.99.1.0/24"],
    "download_kbps": 5000,
    "upload_kbps": 2000,
}


_sources = itertools.count(2)


def raw(
    ctl: ControllerProcess,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    fresh_source: bool = False,
) -> tuple[int, Any, Any]:
    """A request with exactly the given headers (labctl's helper always sends the token).

    ``fresh_source``: from an address of 127.0.0.0/8 not used before, so that deliberate
    failures are not slowed down by the ones of the tests before.
    """
    n = next(_sources)
    source = (f"127.0.{n // 250}.{n % 250 + 2}", 0) if fresh_source else None
    conn = http.client.HTTPConnection("127.0.0.1", ctl.rest_port, timeout=10, source_address=source)
    try:
        conn.request(method, path, body=json.dumps(body).encode() if body is not None else None, headers=headers or {})
        resp = conn.getresponse()
        text = resp.read()
        return resp.status, resp.headers, json.loads(text) if text else None
    finally:
        conn.close()


@pytest.fixture(scope="module")
def ctl() -> Iterator[ControllerProcess]:
    c = ControllerProcess(TOPO, POLICIES).start()
    try:
        yield c
    finally:
        c.cleanup()


# ------------------------------------------------------------------ reads


def test_health_reports_the_declared_network_and_seeded_policies(ctl: ControllerProcess) -> None:
    h = ctl.get("/v1/health")
    assert h["switches_declared"] == 27
    assert h["switches_connected"] == 0  # no lab: nothing connects
    assert h["status"] == "degraded"  # declared switches missing
    assert h["policies"] == len(FILE_POLICIES)


def test_topology_is_json(ctl: ControllerProcess) -> None:
    status, headers, body = raw(ctl, "GET", "/v1/topology", headers={"Authorization": "Bearer lab-token"})
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert isinstance(body, dict)


def test_policies_are_seeded_from_the_file(ctl: ControllerProcess) -> None:
    body = ctl.get("/v1/policies")
    ids = [p["id"] for p in body["policies"]]
    assert ids == sorted(ids) and set(ids) == set(FILE_POLICIES)
    one = ctl.get("/v1/policies/dinkes")
    assert one["download_kbps"] == FILE_POLICIES["dinkes"].download_kbps
    assert one["subnets"] == list(FILE_POLICIES["dinkes"].subnets)


def test_openapi_document(ctl: ControllerProcess) -> None:
    doc = ctl.get("/v1/openapi.json")
    assert doc["openapi"].startswith("3.1")
    assert {"put", "delete", "get"} <= set(doc["paths"]["/v1/policies/{id}"])
    assert "Policy" in doc["components"]["schemas"]


def test_events_and_the_console_are_served_by_the_running_controller(ctl: ControllerProcess) -> None:
    # The os-ken app is the REST view: its events must reach GET /v1/events (OSKenApp has
    # an attribute of its own named ``events``, a queue: it once shadowed the method).
    events = ctl.get("/v1/events?limit=50")["events"]
    seeded = [e for e in events if e["kind"] == "policy" and e["action"] == "seed"]
    assert len(seeded) == 1 and set(seeded[0]["ids"]) == set(FILE_POLICIES)
    with urllib.request.urlopen(ctl.url + "/", timeout=10) as resp:  # no token: the page asks for one
        assert resp.status == 200 and resp.headers["Content-Type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert b"/static/console.js" in resp.read()


def test_the_report_and_its_settings_are_served_by_the_running_controller(ctl: ControllerProcess) -> None:
    # The report is built in an OS thread (eventlet.tpool): the loop keeps answering meanwhile.
    doc = ctl.get("/v1/report?from=now-1d")
    assert doc["format"] == "kendali-report/1" and not doc["simulated"]
    assert {o["opd"] for o in doc["opds"]} == set(FILE_POLICIES)
    assert sum(o["cost"]["by_cap_idr"] for o in doc["opds"]) == doc["summary"]["budget_idr"] == 2_300_000_000
    status, body = ctl.request("PUT", "/v1/settings", {"annual_budget_idr": 1_000_000_001})
    assert status == 200, body
    doc = ctl.get("/v1/report?from=now-1d")
    assert sum(o["cost"]["by_cap_idr"] for o in doc["opds"]) == 1_000_000_001
    assert ctl.get("/v1/events?limit=5")["events"][0]["kind"] == "settings"
    req = urllib.request.Request(ctl.url + "/v1/report?format=html&lang=en")
    req.add_header("Authorization", f"Bearer {ctl.token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/html")
        assert "Dinas Kesehatan" in resp.read().decode()


def test_the_uplink_bought_applies_while_the_controller_runs(ctl: ControllerProcess) -> None:
    """PUT /v1/settings uplink_mbps is what is bought from then on: guarantees must fit it."""
    one = dict(ctl.get("/v1/policies/dinkes"))
    guaranteed = dict(one, download_min_kbps=20_000)
    status, body = ctl.request("PUT", "/v1/settings", {"uplink_mbps": 10})  # 10 Mbit/s bought
    assert status == 200, body
    try:
        deadline = time.monotonic() + 10  # the controller looks at its settings every 2 s
        while True:
            status, body = ctl.request("PUT", "/v1/policies/dinkes", guaranteed)
            if status == 409 or time.monotonic() > deadline:
                break
            ctl.request("PUT", "/v1/policies/dinkes", one)  # undo, try again
            time.sleep(0.5)
        assert status == 409 and "10,000" in body["error"]["problem"], body
    finally:
        assert ctl.request("PUT", "/v1/settings", {})[0] == 200  # the defaults: the topology's uplink
    deadline = time.monotonic() + 10
    while (status := ctl.request("PUT", "/v1/policies/dinkes", guaranteed)[0]) == 409:
        assert time.monotonic() < deadline, "the topology's uplink did not come back"
        time.sleep(0.5)
    assert status == 200
    assert ctl.request("PUT", "/v1/policies/dinkes", one)[0] == 200


def test_reads_need_a_token_except_health(ctl: ControllerProcess) -> None:
    assert raw(ctl, "GET", "/v1/health")[0] == 200
    for path in ("/v1/policies", "/v1/topology", "/v1/openapi.json"):
        status, _, body = raw(ctl, "GET", path, fresh_source=True)
        assert status == 401 and body["error"]["problem"] == "not authorised", path
    assert re.search(r"not authorised: GET '/v1/openapi.json' from 127\.0\.\d+\.\d+ ", ctl.log_tail(50))


def test_unknown_path_is_a_json_404(ctl: ControllerProcess) -> None:
    status, _, body = raw(ctl, "GET", "/v1/nope")
    assert status == 404 and body["error"]["status"] == 404


# ------------------------------------------------------------------ writes


def test_put_get_delete_round_trip(ctl: ControllerProcess) -> None:
    status, body = ctl.request("PUT", "/v1/policies/lab-test", LAB_OPD)
    assert status == 201, body
    assert body["download_kbps"] == 5000
    status, body = ctl.request("PUT", "/v1/policies/lab-test", dict(LAB_OPD, download_kbps=7000))
    assert status == 200 and body["download_kbps"] == 7000
    assert ctl.get("/v1/policies/lab-test")["download_kbps"] == 7000
    assert ctl.get("/v1/health")["policies"] == len(FILE_POLICIES) + 1
    status, body = ctl.request("DELETE", "/v1/policies/lab-test")
    assert status == 204 and body is None
    assert ctl.request("GET", "/v1/policies/lab-test")[0] == 404
    status, body = ctl.request("DELETE", "/v1/policies/lab-test")
    assert status == 404 and body["error"]["field"] == "id"


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic lab-token"}],
    ids=["none", "wrong", "not-bearer"],
)
def test_writes_without_the_token_are_401_and_change_nothing(
    ctl: ControllerProcess, method: str, headers: dict[str, str]
) -> None:
    before = ctl.get("/v1/policies/dinkes")
    body = dict(before, download_kbps=64) if method == "PUT" else None
    status, hdrs, err = raw(ctl, method, "/v1/policies/dinkes", body, headers, fresh_source=True)
    assert status == 401
    assert err["error"] == {"status": 401, "field": None, "problem": "not authorised"}
    assert (hdrs.get("WWW-Authenticate") or "").startswith("Bearer")
    assert ctl.get("/v1/policies/dinkes") == before


@pytest.mark.parametrize(
    "change, field",
    [
        ({"download_kbps": "lots"}, "download_kbps"),
        ({"download_kbps": 10}, "download_kbps"),  # below MIN_KBPS
        ({"upload_kbps": -1}, "upload_kbps"),
        ({"subnets": ["10.99.1.0/33"]}, "subnets.0"),
        ({"subnets": ["10.10.7.0/24"]}, "subnets.0"),  # dinkes' subnet: overlap (409)
        ({"colour": "red"}, "colour"),
        ({"id": "other"}, "id"),  # body id differs from the URL id
    ],
)
def test_a_bad_body_is_refused_naming_the_field(ctl: ControllerProcess, change: dict, field: str) -> None:
    status, body = ctl.request("PUT", "/v1/policies/lab-test", {**LAB_OPD, **change})
    assert 400 <= status < 500, body
    err = body["error"]
    assert err["status"] == status
    assert err["field"] == field, err
    assert err["problem"]
    assert ctl.request("GET", "/v1/policies/lab-test")[0] == 404  # nothing was created


def test_a_missing_field_is_named(ctl: ControllerProcess) -> None:
    body = {k: v for k, v in LAB_OPD.items() if k != "upload_kbps"}
    status, resp = ctl.request("PUT", "/v1/policies/lab-test", body)
    assert status == 400 and "upload_kbps" in (resp["error"]["field"] or "") + resp["error"]["problem"]


def test_a_body_that_is_not_json_is_400(ctl: ControllerProcess) -> None:
    req = urllib.request.Request(
        ctl.url + "/v1/policies/lab-test",
        data=b"{not json",
        method="PUT",
        headers={"Authorization": "Bearer lab-token"},
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=10)
    assert exc.value.code == 400
    assert json.loads(exc.value.read())["error"]["field"] == "(body)"


# ------------------------------------------------------------------ persistence


def _restart(old: ControllerProcess, kill: bool = False) -> ControllerProcess:
    old.stop(kill=kill)
    old.cleanup()  # its log; the state dir is the caller's
    # The same state dir, and --policies again: the file must NOT override the saved state.
    return ControllerProcess(TOPO, POLICIES, state_dir=old.state_dir).start()


def test_restart_keeps_rest_changes_over_the_policy_file(tmp_path: Path) -> None:
    ctl = ControllerProcess(TOPO, POLICIES, state_dir=tmp_path / "state").start()
    try:
        dinkes = ctl.get("/v1/policies/dinkes")
        assert ctl.request("PUT", "/v1/policies/dinkes", dict(dinkes, download_kbps=1234))[0] == 200
        assert ctl.request("DELETE", "/v1/policies/kel-nipah")[0] == 204
        assert ctl.request("PUT", "/v1/policies/lab-test", LAB_OPD)[0] == 201
        ctl = _restart(ctl)
        assert ctl.get("/v1/policies/dinkes")["download_kbps"] == 1234
        assert ctl.request("GET", "/v1/policies/kel-nipah")[0] == 404
        assert ctl.get("/v1/policies/lab-test")["download_kbps"] == LAB_OPD["download_kbps"]
        assert ctl.get("/v1/health")["policies"] == len(FILE_POLICIES)  # -1 +1
    finally:
        ctl.cleanup()


def test_kill_9_right_after_a_put_reply_keeps_the_change(tmp_path: Path) -> None:
    ctl = ControllerProcess(TOPO, POLICIES, state_dir=tmp_path / "state").start()
    try:
        for kbps in (4321, 4322):  # twice: a replaced state file, not only the first write
            dinkes = ctl.get("/v1/policies/dinkes")
            assert ctl.request("PUT", "/v1/policies/dinkes", dict(dinkes, download_kbps=kbps))[0] == 200
            ctl = _restart(ctl, kill=True)  # SIGKILL the moment the reply is in
            assert ctl.get("/v1/policies/dinkes")["download_kbps"] == kbps
    finally:
        ctl.cleanup()


# ------------------------------------------------------------------ tokens


def kendali(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "controller", *argv], capture_output=True, text=True, timeout=30, cwd=ROOT
    )


def test_first_start_prints_a_write_token_once_and_a_restart_keeps_it(tmp_path: Path) -> None:
    ctl = ControllerProcess(TOPO, state_dir=tmp_path / "state", token=None).start()
    try:
        printed = re.findall(r"REST API write token 'admin' .*: (\S+)$", ctl.log_path.read_text(), re.M)
        assert len(printed) == 1, ctl.log_tail()
        secret = printed[0]
        assert secret not in (tmp_path / "state" / "tokens.json").read_text()  # only its hash is kept
        assert ctl.request("GET", "/v1/policies", token=secret)[0] == 200
        ctl.cleanup()
        ctl = ControllerProcess(TOPO, state_dir=tmp_path / "state", token=None).start()
        assert "REST API write token" not in ctl.log_path.read_text()
        assert ctl.request("PUT", "/v1/policies/lab-test", LAB_OPD, token=secret)[0] == 201
        assert ctl.request("GET", "/v1/policies", token="lab-token")[0] == 401  # no KENDALI_TOKEN this time
    finally:
        ctl.cleanup()


def test_tokens_added_and_revoked_while_the_controller_runs(ctl: ControllerProcess) -> None:
    state = ctl.state_dir
    add = kendali("token", "add", "grafana", "--role", "read", "--state-dir", str(state))
    assert add.returncode == 0, add.stderr
    reader = add.stdout.strip()
    writer = kendali("token", "add", "noc", "--role", "write", "--state-dir", str(state)).stdout.strip()
    assert ctl.request("GET", "/v1/topology", token=reader)[0] == 200
    status, body = ctl.request("PUT", "/v1/policies/lab-test", LAB_OPD, token=reader)
    assert status == 403 and body["error"]["problem"] == "this needs a token with the write role"
    assert ctl.request("PUT", "/v1/policies/lab-test", LAB_OPD, token=writer)[0] == 201
    assert ctl.request("DELETE", "/v1/policies/lab-test")[0] == 204  # KENDALI_TOKEN still works beside them
    audit = [json.loads(line) for line in (state / "audit.jsonl").read_text().splitlines()]
    assert [(e["action"], e["who"]) for e in audit[-2:]] == [("put", "noc"), ("delete", "env")]
    listed = kendali("token", "list", "--state-dir", str(state)).stdout
    assert re.search(r"^grafana +read ", listed, re.M) and re.search(r"^noc +write ", listed, re.M)
    assert reader not in listed and writer not in listed
    assert kendali("token", "revoke", "grafana", "--state-dir", str(state)).returncode == 0
    assert ctl.request("GET", "/v1/topology", token=reader)[0] == 401  # at once, no restart
    assert ctl.request("GET", "/v1/topology", token=writer)[0] == 200


def test_an_old_state_dir_keeps_its_token_file_working(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    old = "Zq3-old-generated-token-from-an-older-kendali-xyz"
    (state / "token").write_text(old + "\n")
    (state / "token").chmod(0o600)
    ctl = ControllerProcess(TOPO, state_dir=state, token=None).start()
    try:
        assert "REST API write token" not in ctl.log_path.read_text()  # it had a token: none generated
        assert ctl.request("PUT", "/v1/policies/lab-test", LAB_OPD, token=old)[0] == 201
        assert json.loads((state / "audit.jsonl").read_text())["who"] == "file"
        assert re.search(r"^file +write ", kendali("token", "list", "--state-dir", str(state)).stdout, re.M)
        assert old not in (state / "tokens.json").read_text()
    finally:
        ctl.cleanup()
