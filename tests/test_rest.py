"""controller.api.rest through the real WSGI app (webob.Request.blank): routes, errors, access."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from webob import Request

from controller.api.access import NEEDS_WRITE, NOT_AUTHORISED, Access, FailureBackoff, Keyring
from controller.api.rest import make_app, protect
from controller.api.store import PolicyStore
from controller.api.tokens import TokenFile
from controller.core.policy import SCHEMA, Policy

TOKEN = "t0ken-for-tests-only"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DINKES = {
    "id": "dinkes",
    "name": "Dinas Kesehatan",
    "subnets": ["10.10.7.0/24"],
    "download_kbps": 20000,
    "upload_kbps": 10000,
}


class FakeView:
    def __init__(self) -> None:
        self.fail = False

    def topology(self) -> dict:
        if self.fail:
            raise RuntimeError("no switch connected yet")
        return {"switches": [{"name": "core", "dpid": 1}], "links": []}

    def health(self) -> dict:
        return {"ok": True, "switches_connected": 1}


class FakeClock:
    """time.monotonic and a sleep that only moves it: the slowdown is seen, never waited for."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class Env:
    """A state dir with tokens as `kendali token add` makes them, KENDALI_TOKEN, and the app."""

    tokens: dict[str, str] = {}

    def __init__(self, tmp_path: Path, **kw: Any) -> None:
        self.store = PolicyStore(tmp_path / "state")
        self.changes: list[dict[str, Policy]] = []
        self.view = FakeView()
        self.fail_change = False
        if not Env.tokens:  # scrypt takes ~40 ms a token: once per test session
            files = TokenFile(tmp_path / "keep")
            Env.tokens = {
                "noc": files.add("noc", "write"),
                "grafana": files.add("grafana", "read"),
                "_file": (tmp_path / "keep" / "tokens.json").read_text(),
            }
        (tmp_path / "state" / "tokens.json").write_text(Env.tokens["_file"])
        (tmp_path / "state" / "tokens.json").chmod(0o600)
        self.clock = FakeClock()
        self.access = Access(Keyring(tmp_path / "state", TOKEN), FailureBackoff(), self.clock.sleep, self.clock)
        self.app = make_app(self.store, self.on_change, self.view, self.access, **kw)

    def on_change(self, policies: dict[str, Policy]) -> None:
        self.changes.append(policies)
        if self.fail_change:
            raise RuntimeError("switch 107 went away")

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        headers: dict | None = None,
        addr: str = "192.0.2.10",
    ) -> Any:
        """A request; with the env (write) token unless ``headers`` are given."""
        req = Request.blank(
            path, method=method, headers=AUTH if headers is None else headers, environ={"REMOTE_ADDR": addr}
        )
        if raw is not None:
            req.body = raw
        elif body is not None:
            req.body = json.dumps(body).encode()
            req.content_type = "application/json"
        resp = req.get_response(self.app)
        resp.data = json.loads(resp.body) if resp.body else None
        return resp


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def assert_error(resp: Any, status: int, field: str | None = None, words: str = "") -> None:
    assert resp.status_int == status, resp.body
    assert resp.content_type == "application/json"
    err = resp.data["error"]
    assert err["status"] == status
    assert set(err) == {"status", "field", "problem"}
    if field is not None:
        assert err["field"] == field
    assert words in err["problem"]


# --- happy paths ---------------------------------------------------------------------------------


def test_crud(env: Env) -> None:
    assert env.call("GET", "/v1/policies").data == {"policies": []}
    r = env.call("PUT", "/v1/policies/dinkes", DINKES, headers=AUTH)
    assert r.status_int == 201 and r.data == DINKES and r.headers["Location"].endswith("/v1/policies/dinkes")
    assert r.content_type == "application/json"
    r = env.call("PUT", "/v1/policies/dinkes", {**DINKES, "download_kbps": 30000}, headers=AUTH)
    assert r.status_int == 200 and r.data["download_kbps"] == 30000
    assert env.call("GET", "/v1/policies/dinkes").data["download_kbps"] == 30000
    assert [p["id"] for p in env.call("GET", "/v1/policies").data["policies"]] == ["dinkes"]
    r = env.call("DELETE", "/v1/policies/dinkes", headers=AUTH)
    assert r.status_int == 204 and r.body == b""
    assert_error(env.call("DELETE", "/v1/policies/dinkes", headers=AUTH), 404, "id", "no policy 'dinkes'")
    assert_error(env.call("GET", "/v1/policies/dinkes"), 404, "id")
    # on_change saw each accepted change, with the persisted state
    assert [sorted(c) for c in env.changes] == [["dinkes"], ["dinkes"], []]
    assert env.changes[1]["dinkes"].download_kbps == 30000


def test_put_without_body_id_takes_url_id(env: Env) -> None:
    body = {k: v for k, v in DINKES.items() if k != "id"}
    r = env.call("PUT", "/v1/policies/dinkes", body, headers=AUTH)
    assert r.status_int == 201 and r.data["id"] == "dinkes"


def test_get_result_can_be_put_back(env: Env) -> None:
    env.call("PUT", "/v1/policies/dinkes", {**DINKES, "burst_kbit": 2000, "note": "tiket 7"}, headers=AUTH)
    got = env.call("GET", "/v1/policies/dinkes").data
    assert env.call("PUT", "/v1/policies/dinkes", got, headers=AUTH).status_int == 200


def test_list_is_sorted(env: Env) -> None:
    for i, pid in enumerate(["zeta", "alpha", "mid"]):
        env.call("PUT", f"/v1/policies/{pid}", {**DINKES, "id": pid, "subnets": [f"10.20.{i}.0/24"]}, headers=AUTH)
    assert [p["id"] for p in env.call("GET", "/v1/policies").data["policies"]] == ["alpha", "mid", "zeta"]


def test_changes_persist_and_audit_names_the_token_not_its_value(env: Env, tmp_path: Path) -> None:
    env.call("PUT", "/v1/policies/dinkes", DINKES, headers={"Authorization": f"Bearer {Env.tokens['noc']}"})
    env.call("DELETE", "/v1/policies/dinkes", headers=AUTH)
    env.call("PUT", "/v1/policies/dinkes", DINKES, headers=AUTH)
    assert PolicyStore(tmp_path / "state").all()["dinkes"].download_kbps == 20000
    audit = (tmp_path / "state" / "audit.jsonl").read_text()
    assert [(e["action"], e["who"]) for e in map(json.loads, audit.splitlines())] == [
        ("put", "noc"),
        ("delete", "env"),
        ("put", "env"),
    ]
    assert TOKEN not in audit and Env.tokens["noc"] not in audit


def test_topology_health_openapi(env: Env) -> None:
    assert env.call("GET", "/v1/topology").data["switches"][0]["name"] == "core"
    assert env.call("GET", "/v1/health").data["ok"] is True
    doc = env.call("GET", "/v1/openapi.json").data
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["schemas"]["Policy"] == json.loads(json.dumps(SCHEMA))
    # every route the app serves is documented, and nothing more
    assert set(doc["paths"]) == {
        "/v1/policies",
        "/v1/policies/{id}",
        "/v1/topology",
        "/v1/health",
        "/v1/openapi.json",
        "/v1/usage",
        "/v1/usage/{opd}",
        "/metrics",
        "/v1/events",
        "/v1/settings",
        "/v1/report",
    }


def test_view_failure_is_503_not_500(env: Env) -> None:
    env.view.fail = True
    assert_error(env.call("GET", "/v1/topology"), 503, None, "no switch connected yet")


def test_head_works_like_get(env: Env) -> None:
    r = env.call("HEAD", "/v1/health")
    assert r.status_int == 200 and r.body == b""


# --- errors: body and policy ---------------------------------------------------------------------


BAD_BODIES = [
    # (raw body, status, field, words)
    (b"", 400, "(body)", "empty"),
    (b"   ", 400, "(body)", "empty"),
    (b"{not json", 400, "(body)", "not valid JSON"),
    (b"name=dinkes&download_kbps=1", 400, "(body)", "not valid JSON"),
    (b"\xff\xfe{}", 400, "(body)", "not UTF-8"),
    (b"[]", 400, "(body)", "must be an object"),
    (b'"dinkes"', 400, "(body)", "must be an object"),
    (b"null", 400, "(body)", "must be an object"),
    (b"42", 400, "(body)", "must be an object"),
    (b"[" * 5000 + b"]" * 5000, 400, "(body)", "nested too deeply"),
    (b'{"download_kbps": NaN}', 400, "(body)", "NaN"),
    (b'{"download_kbps": Infinity}', 400, "(body)", "Infinity"),
    (b'{"download_kbps": 1' + b"0" * 5000 + b"}", 400, "(body)", "not acceptable JSON"),
    (json.dumps(DINKES)[:-1].encode() + b', "download_kbps": 900000}', 400, "(body)", "'download_kbps' appears twice"),
]


@pytest.mark.parametrize("raw,status,field,words", BAD_BODIES)
def test_bad_bodies(env: Env, raw: bytes, status: int, field: str, words: str) -> None:
    assert_error(env.call("PUT", "/v1/policies/dinkes", raw=raw, headers=AUTH), status, field, words)
    assert env.store.all() == {} and env.changes == []


BAD_POLICIES = [
    ({**DINKES, "download_kbps": "20000"}, "download_kbps", "whole number"),
    ({**DINKES, "download_kbps": -1}, "download_kbps", "at least 64"),
    ({**DINKES, "upload_kbps": 0}, "upload_kbps", "at least 64"),
    ({**DINKES, "upload_kbps": 10**15}, "upload_kbps", "at most"),
    ({**DINKES, "subnets": ["10.10.7.7/24"]}, "subnets.0", "host bits"),
    ({**DINKES, "subnets": ["10.10.7/24"]}, "subnets.0", "not an IPv4 network"),
    ({**DINKES, "subnets": "10.10.7.0/24"}, "subnets", "must be a list"),
    ({**DINKES, "id": "rsud"}, "id", "must match"),
    ({**DINKES, "limit_at": 1000}, "limit_at", "unknown field"),
    ({**DINKES, "colour": "red"}, "colour", "unknown field"),
    ({k: v for k, v in DINKES.items() if k != "name"}, "name", "is required"),
]


@pytest.mark.parametrize("body,field,words", BAD_POLICIES)
def test_bad_policies(env: Env, body: dict, field: str, words: str) -> None:
    assert_error(env.call("PUT", "/v1/policies/dinkes", body, headers=AUTH), 400, field, words)
    assert env.store.all() == {} and env.changes == []
    assert not (env.store.state_dir / "audit.jsonl").exists()


def test_invalid_url_id(env: Env) -> None:
    assert_error(
        env.call("PUT", "/v1/policies/Not_OK", {k: v for k, v in DINKES.items() if k != "id"}, headers=AUTH),
        400,
        "id",
        "not a valid id",
    )
    assert_error(env.call("GET", "/v1/policies/Not_OK"), 404)


def test_overlap_is_409_and_changes_nothing(env: Env) -> None:
    env.call("PUT", "/v1/policies/dinkes", DINKES, headers=AUTH)
    rsud = {**DINKES, "id": "rsud", "name": "RSUD", "subnets": ["10.10.11.0/24", "10.10.7.0/25"]}
    r = env.call("PUT", "/v1/policies/rsud", rsud, headers=AUTH)
    assert_error(r, 409, "subnets.1", "'dinkes'")
    assert "Dinas Kesehatan" in r.data["error"]["problem"]
    assert sorted(env.store.all()) == ["dinkes"] and len(env.changes) == 1


def test_too_large_is_413(tmp_path: Path) -> None:
    env = Env(tmp_path, max_body=1000)
    body = {**DINKES, "note": "x" * 2000}
    assert_error(env.call("PUT", "/v1/policies/dinkes", body, headers=AUTH), 413, "(body)", "at most 1000")
    # a lying/missing Content-Length is still bounded by reading at most max_body + 1
    req = Request.blank("/v1/policies/dinkes", method="PUT", headers=AUTH)
    req.body = json.dumps(body).encode()
    del req.headers["Content-Length"]
    req.is_body_readable = True
    resp = req.get_response(env.app)
    assert resp.status_int == 413


def test_default_max_body_is_64k(env: Env) -> None:
    assert_error(env.call("PUT", "/v1/policies/dinkes", raw=b" " * 65537, headers=AUTH), 413)


# --- errors: routing and methods ------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1",
        "/v1/policies/",
        "/v1/policies/a/b",
        "/v2/policies",
        "/v1/policy/dinkes",
        "/v1/topology/x",
        "/V1/health",
    ],
)
def test_unknown_path_404(env: Env, path: str) -> None:
    assert_error(env.call("GET", path), 404, None, "openapi.json")


@pytest.mark.parametrize(
    "method,path,allow",
    [
        ("POST", "/v1/policies", "GET, HEAD"),
        ("PUT", "/v1/policies", "GET, HEAD"),
        ("DELETE", "/v1/policies", "GET, HEAD"),
        ("POST", "/v1/policies/dinkes", "DELETE, GET, PUT, HEAD"),
        ("PATCH", "/v1/policies/dinkes", "DELETE, GET, PUT, HEAD"),
        ("PUT", "/v1/topology", "GET, HEAD"),
        ("DELETE", "/v1/health", "GET, HEAD"),
        ("POST", "/v1/openapi.json", "GET, HEAD"),
    ],
)
def test_wrong_method_405_with_allow(env: Env, method: str, path: str, allow: str) -> None:
    r = env.call(method, path, DINKES, headers=AUTH)
    assert_error(r, 405)
    assert r.headers["Allow"] == allow


def test_post_hint_points_to_put(env: Env) -> None:
    assert "PUT /v1/policies/{id}" in env.call("POST", "/v1/policies", DINKES).data["error"]["problem"]


# --- access ---------------------------------------------------------------------------------------


def read_auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {Env.tokens['grafana']}"}


def write_auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {Env.tokens['noc']}"}


NOT_ACCEPTED = [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": TOKEN},
    {"Authorization": "Bearer wrong"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},
    {"Authorization": "Bearer t\u00f6ken"},
]


@pytest.mark.parametrize("headers", NOT_ACCEPTED)
def test_writes_need_a_token_and_failure_says_only_not_authorised(env: Env, headers: dict) -> None:
    for method, body in (("PUT", DINKES), ("DELETE", None)):
        r = env.call(method, "/v1/policies/dinkes", body, headers=headers)
        assert_error(r, 401, None)
        assert r.data["error"]["problem"] == NOT_AUTHORISED
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert env.store.all() == {} and env.changes == []


@pytest.mark.parametrize("path", ["/v1/policies", "/v1/policies/dinkes", "/v1/topology", "/v1/openapi.json"])
def test_reads_need_a_token_too(env: Env, path: str) -> None:
    for headers in NOT_ACCEPTED:
        r = env.call("GET", path, headers=headers)
        assert_error(r, 401)
        assert r.data["error"]["problem"] == NOT_AUTHORISED
    assert env.call("HEAD", path, headers={}).status_int == 401
    for headers in (read_auth(), write_auth(), AUTH):
        assert env.call("GET", path, headers=headers).status_int in (200, 404)


def test_health_is_open(env: Env) -> None:
    assert env.call("GET", "/v1/health", headers={}).data["ok"] is True
    assert env.call("HEAD", "/v1/health", headers={}).status_int == 200
    assert env.call("GET", "/v1/health", headers={"Authorization": "Bearer wrong"}).status_int == 200


def test_a_read_token_reads_but_cannot_write(env: Env) -> None:
    env.call("PUT", "/v1/policies/dinkes", DINKES)
    assert env.call("GET", "/v1/policies/dinkes", headers=read_auth()).data == DINKES
    for method, body in (("PUT", {**DINKES, "download_kbps": 64}), ("DELETE", None), ("PUT", None)):
        r = env.call(method, "/v1/policies/dinkes", body, headers=read_auth())
        assert_error(r, 403, None)
        assert r.data["error"]["problem"] == NEEDS_WRITE
    assert env.store.get("dinkes").download_kbps == 20000 and len(env.changes) == 1
    assert [e["who"] for e in env.store.audit()] == ["env"]


def test_scheme_is_case_insensitive(env: Env) -> None:
    r = env.call("PUT", "/v1/policies/dinkes", DINKES, headers={"Authorization": f"bearer {TOKEN}"})
    assert r.status_int == 201


def test_auth_is_checked_before_the_body(env: Env) -> None:
    assert_error(env.call("PUT", "/v1/policies/dinkes", raw=b"{broken", headers={}), 401)
    assert_error(env.call("PUT", "/v1/policies/dinkes", raw=b"{broken", headers=read_auth()), 403)


def test_open_reads_still_possible_for_embedding(tmp_path: Path) -> None:
    env = Env(tmp_path, open_reads=True)
    for path in ("/v1/policies", "/v1/topology", "/v1/health", "/v1/openapi.json"):
        assert env.call("GET", path, headers={}).status_int == 200
    assert_error(env.call("PUT", "/v1/policies/dinkes", DINKES, headers={}), 401)


def test_a_plain_mapping_of_tokens_still_works(tmp_path: Path) -> None:
    app = make_app(PolicyStore(tmp_path), lambda p: None, FakeView(), {"ops": "plain-secret"})
    req = Request.blank("/v1/policies/dinkes", method="PUT", headers={"Authorization": "Bearer plain-secret"})
    req.body = json.dumps(DINKES).encode()
    assert req.get_response(app).status_int == 201
    assert PolicyStore(tmp_path).audit()[0]["who"] == "ops"
    with pytest.raises(ValueError):
        make_app(PolicyStore(tmp_path), lambda p: None, FakeView(), {})


def test_failures_are_logged_without_the_token(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kendali.access"):
        env.call("GET", "/v1/topology", headers={"Authorization": "Bearer guess-123456"}, addr="192.0.2.99")
        env.call("DELETE", "/v1/policies/x", headers={}, addr="192.0.2.99")
        env.call("DELETE", "/v1/policies/x", headers=read_auth(), addr="192.0.2.98")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "192.0.2.99" in lines[0] and "/v1/topology" in lines[0] and "GET" in lines[0]
    assert "/v1/policies/x" in lines[1] and "DELETE" in lines[1]
    assert "'grafana'" in lines[2] and "read role" in lines[2]
    assert not any("guess-123456" in line or Env.tokens["grafana"] in line for line in lines)


def test_repeated_failures_from_one_address_are_slowed_down(env: Env) -> None:
    bad = {"Authorization": "Bearer guess"}
    for _ in range(5):
        assert env.call("GET", "/v1/policies", headers=bad, addr="192.0.2.66").status_int == 401
    assert env.clock.slept == []  # a few mistakes cost nothing
    for _ in range(4):
        assert env.call("GET", "/v1/policies", headers=bad, addr="192.0.2.66").status_int == 401
    assert env.clock.slept == [0.5, 1.0, 2.0, 4.0]
    # another address, and a token that already worked from this one, are not held up
    assert env.call("GET", "/v1/policies", headers=bad, addr="192.0.2.67").status_int == 401
    assert env.call("GET", "/v1/policies", headers=write_auth(), addr="192.0.2.67").status_int == 200
    assert env.call("GET", "/v1/policies", headers=write_auth(), addr="192.0.2.66").status_int == 200
    assert env.clock.slept == [0.5, 1.0, 2.0, 4.0]
    # a token not seen before waits its turn at that address, then works and clears the record
    assert env.call("GET", "/v1/policies", headers=read_auth(), addr="192.0.2.66").status_int == 200
    assert env.clock.slept == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert env.call("GET", "/v1/policies", headers=bad, addr="192.0.2.66").status_int == 401
    assert env.clock.slept[-1] == 8.0  # nothing new waited


def test_protect_puts_the_same_check_in_front_of_another_app(env: Env) -> None:
    def metrics(environ: dict, start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"who {environ['kendali.token']}\n".encode()]

    app = protect(metrics, env.access)
    for headers, status in (({}, 401), ({"Authorization": "Bearer nope"}, 401), (read_auth(), 200), (AUTH, 200)):
        resp = Request.blank("/metrics", headers=headers, environ={"REMOTE_ADDR": "192.0.2.5"}).get_response(app)
        assert resp.status_int == status
        if status == 401:
            assert json.loads(resp.body)["error"]["problem"] == NOT_AUTHORISED
    assert Request.blank("/metrics", headers=read_auth()).get_response(app).body == b"who grafana\n"
    only_writers = protect(metrics, env.access, need="write")
    assert Request.blank("/metrics", headers=read_auth()).get_response(only_writers).status_int == 403


def test_openapi_says_who_may_call_what(env: Env) -> None:
    doc = env.call("GET", "/v1/openapi.json").data
    assert doc["paths"]["/v1/health"]["get"]["security"] == []
    assert "401" not in doc["paths"]["/v1/health"]["get"]["responses"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters" or path == "/v1/health":
                continue
            assert op["security"] == [{"bearer": []}], (path, method)
            assert "401" in op["responses"]
            assert ("403" in op["responses"]) == (method != "get"), (path, method)
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


# --- failures after validation ---------------------------------------------------------------------


def test_on_change_failure_is_logged_and_change_kept(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.fail_change = True
    with caplog.at_level(logging.ERROR, logger="kendali.rest"):
        r = env.call("PUT", "/v1/policies/dinkes", DINKES, headers=AUTH)
    assert r.status_int == 201
    assert "re-compiling them failed" in caplog.text
    assert PolicyStore(env.store.state_dir).get("dinkes") is not None
    assert env.call("DELETE", "/v1/policies/dinkes", headers=AUTH).status_int == 204


def test_save_failure_is_503_and_changes_nothing(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    env.call("PUT", "/v1/policies/dinkes", DINKES, headers=AUTH)
    monkeypatch.setattr(os, "replace", lambda a, b: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    r = env.call("PUT", "/v1/policies/dinkes", {**DINKES, "download_kbps": 999}, headers=AUTH)
    assert_error(r, 503, None, "No space left on device")
    assert_error(env.call("DELETE", "/v1/policies/dinkes", headers=AUTH), 503, None, "nothing was changed")
    monkeypatch.undo()
    assert env.store.get("dinkes").download_kbps == 20000
    assert len(env.changes) == 1


# --- no input gives a 500 ----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=10), kids, max_size=4),
    max_leaves=20,
)
policy_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["dinkes", "rsud", "", "X"]) | st.text(max_size=5),
        "name": st.text(max_size=5) | json_values,
        "subnets": st.lists(st.sampled_from(["10.10.7.0/24", "10.10.7.1/24", "10.0.0.0/8", "::/0", "x"]), max_size=3)
        | json_values,
        "download_kbps": st.integers(-10, 10**9) | json_values,
        "upload_kbps": st.integers(-10, 10**9) | json_values,
        "burst_kbit": json_values,
        "note": json_values,
        "extra": json_values,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from(["GET", "PUT", "DELETE", "POST", "PATCH", "HEAD", "OPTIONS"]),
    path=st.sampled_from(
        [
            "/v1/policies",
            "/v1/policies/dinkes",
            "/v1/policies/rsud",
            "/v1/policies/%00",
            "/v1/x",
            "/v1/policies/" + "a" * 300,
            "/v1/health",
        ]
    ),
    body=policy_like | json_values,
    raw=st.none() | st.binary(max_size=50),
    auth=st.booleans(),
)
def test_no_input_gives_500(env: Env, method: str, path: str, body: Any, raw: bytes | None, auth: bool) -> None:
    r = env.call(method, path, body, raw=raw, headers=AUTH if auth else {})
    assert r.status_int < 500, r.body
    assert r.status_int in (200, 201, 204, 400, 401, 404, 405, 409)
    if r.status_int >= 400 and method != "HEAD":
        assert set(r.data["error"]) == {"status", "field", "problem"}


def test_chunked_body_as_eventlet_delivers_it(env: Env) -> None:
    # eventlet.wsgi: no Content-Length, Transfer-Encoding: chunked, wsgi.input already de-chunked.
    import io

    for size, status in ((None, 201), (70000, 413)):
        raw = json.dumps(DINKES).encode() if size is None else b" " * size
        req = Request.blank("/v1/policies/dinkes", method="PUT", headers={**AUTH, "Transfer-Encoding": "chunked"})
        req.environ["wsgi.input"] = io.BytesIO(raw)
        req.environ.pop("CONTENT_LENGTH", None)
        assert req.get_response(env.app).status_int == status
