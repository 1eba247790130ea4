"""The REST API of a real `kendali controller` child process (no switches, no Mininet).

One controller serves the module; the persistence tests start their own on the same
state directory. Each start takes well under a second, the whole file a few seconds.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from controller.lab.labctl import ControllerProcess
from controller.core.policy import load_file

ROOT = Path(__file__).resolve().parent.parent
TOPO = ROOT / "topologies" / "ppu.yaml"
POLICIES = ROOT / "policies" / "ppu.yaml"
FILE_POLICIES = load_file(POLICIES)

LAB_OPD = {"id": "lab-test", "name": "Lab test OPD", "subnets": ["10.99.1.0/24"],
           "download_kbps": 5000, "upload_kbps": 2000}


def raw(ctl: ControllerProcess, method: str, path: str, body: Any = None,
        headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """A request with exactly the given headers (labctl's helper always sends the token)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(ctl.url + path, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read()
            return resp.status, resp.headers, json.loads(text) if text else None
    except urllib.error.HTTPError as exc:
        text = exc.read()
        return exc.code, exc.headers, json.loads(text) if text else None


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
    status, headers, body = raw(ctl, "GET", "/v1/topology")
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


def test_reads_need_no_token_by_default(ctl: ControllerProcess) -> None:
    for path in ("/v1/health", "/v1/policies", "/v1/topology", "/v1/openapi.json"):
        assert raw(ctl, "GET", path)[0] == 200, path


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
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic lab-token"}],
                         ids=["none", "wrong", "not-bearer"])
def test_writes_without_the_token_are_401_and_change_nothing(ctl: ControllerProcess, method: str,
                                                             headers: dict[str, str]) -> None:
    before = ctl.get("/v1/policies/dinkes")
    body = dict(before, download_kbps=64) if method == "PUT" else None
    status, hdrs, err = raw(ctl, method, "/v1/policies/dinkes", body, headers)
    assert status == 401
    assert err["error"]["status"] == 401 and "token" in err["error"]["problem"]
    assert (hdrs.get("WWW-Authenticate") or "").startswith("Bearer")
    assert ctl.get("/v1/policies/dinkes") == before


@pytest.mark.parametrize("change, field", [
    ({"download_kbps": "lots"}, "download_kbps"),
    ({"download_kbps": 10}, "download_kbps"),  # below MIN_KBPS
    ({"upload_kbps": -1}, "upload_kbps"),
    ({"subnets": ["10.99.1.0/33"]}, "subnets.0"),
    ({"subnets": ["10.10.7.0/24"]}, "subnets.0"),  # dinkes' subnet: overlap (409)
    ({"colour": "red"}, "colour"),
    ({"id": "other"}, "id"),  # body id differs from the URL id
])
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
    req = urllib.request.Request(ctl.url + "/v1/policies/lab-test", data=b"{not json", method="PUT",
                                 headers={"Authorization": "Bearer lab-token"})
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
