"""Recent events: the core's bounded list (controller.core.events), what the controller
appends to it on a simulated network (tests/sim.py), and GET /v1/events merging it with
the audit log through the real WSGI app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from webob import Request

from controller.api.rest import make_app
from controller.api.store import PolicyStore
from controller.core.events import MAX_EVENTS, Events
from controller.core.policy import validate
from tests.test_core_controller import steady

NOC = "noc-secret-for-tests"


# ---- the core's list ----------------------------------------------------------------------------


def test_events_keep_the_last_ones_newest_first_with_since_and_limit():
    ev = Events()
    for i in range(MAX_EVENTS + 20):
        ev.add(float(i), "link_up", f"link {i} up", link=f"l{i}", dpid=None)
    assert len(ev) == MAX_EVENTS
    newest = ev.query()
    assert [e["t"] for e in newest[:3]] == [519.0, 518.0, 517.0] and newest[-1]["t"] == 20.0
    assert "dpid" not in newest[0] and newest[0]["link"] == "l519"  # None fields are left out
    assert [e["t"] for e in ev.query(since=517.0)] == [519.0, 518.0, 517.0]
    assert [e["t"] for e in ev.query(limit=2)] == [519.0, 518.0]
    assert ev.query(since=1e9) == []
    ev.query()[0]["text"] = "changed by a reader"
    assert ev.query(limit=1)[0]["text"] == "link 519 up"  # readers get copies


# ---- what the controller appends ---------------------------------------------------------------


def kinds(c: Any) -> list[str]:
    return [e["kind"] for e in reversed(c.events.query())]


def test_a_carrier_loss_is_a_failover_event_naming_the_link():
    sim, c = steady(topology=True)
    assert kinds(c).count("switch_up") == 4 and kinds(c).count("link_up") == 4
    sim.now += 1
    sim.do(c, c.port_status(1, 1, False, "02:00:00:00:01:01", sim.now))
    e = c.events.query(limit=1)[0]
    assert e["kind"] == "failover" and e["t"] == sim.now
    assert e["link"] == "r1:1-r2:1" and "r1:1-r2:1" in e["text"] and "carrier" in e["text"]


def test_a_silent_link_a_switch_leaving_and_coming_back_are_events():
    sim, c = steady(topology=True)
    sim.cables = [cab for cab in sim.cables if cab[:2] != (2, 2) and cab[2:] != (2, 2)]  # r2:2-r3 goes silent
    sim.run(c, 2.0)
    silent = [e for e in c.events.query() if e["kind"] == "link_silent"]
    assert len(silent) == 1 and silent[0]["link"] == "r2:2-r3:1" and "silent" in silent[0]["text"]
    sim.do(c, c.switch_disconnected(4, sim.now))
    down = c.events.query(limit=1)[0]
    assert (down["kind"], down["switch"], down["dpid"]) == ("switch_down", "r4", 4)
    sim.connect(c, [4])
    assert c.events.query(limit=1)[0]["kind"] in ("switch_up", "link_up")
    assert "switch_up" in [e["kind"] for e in c.events.query(since=sim.now)]


def test_drift_repaired_by_the_audit_and_topology_check_are_events():
    sim, c = steady(topology=True, audit_interval=2.0)
    checks = [e for e in c.events.query() if e["kind"] == "topology_check"]
    assert checks and "matches" in checks[0]["text"]
    sim.held[3].flows.clear()  # ovs-ofctl del-flows on r3
    sim.run(c, 2.5)
    drift = [e for e in c.events.query() if e["kind"] == "drift_repaired"]
    assert drift and drift[0]["switch"] == "r3" and "repaired" in drift[0]["text"]
    sim.cables = [cab for cab in sim.cables if cab[0] != 3 and cab[2] != 3]  # r3 cut off, silently
    sim.run(c, 8.0)
    check = next(e for e in c.events.query() if e["kind"] == "topology_check")
    assert "difference" in check["text"] and check["problems"] and "r3" in check["text"]


# ---- GET /v1/events --------------------------------------------------------------------------------


class View:
    """The controller's side: its events as the os-ken app hands them over."""

    def __init__(self) -> None:
        self.events_list = Events()
        self.asked: list[tuple[float | None, int | None]] = []

    def topology(self) -> dict:
        return {"switches": [], "links": []}

    def health(self) -> dict:
        return {"status": "ok"}

    def recent_events(self, since: float | None, limit: int | None) -> list[dict[str, Any]]:
        self.asked.append((since, limit))
        return self.events_list.query(since, limit)


@pytest.fixture
def api(tmp_path: Path) -> Any:
    store = PolicyStore(tmp_path / "state")
    view = View()
    app = make_app(store, lambda p: None, view, {"noc": NOC})
    return app, store, view


def get(app: Any, path: str, token: str | None = NOC) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    resp = Request.blank(path, headers=headers).get_response(app)
    resp.data = json.loads(resp.body) if resp.body and resp.content_type == "application/json" else None
    return resp


def policy(pid: str, down: int, up: int = 4000) -> Any:
    return validate(
        {"id": pid, "name": pid.upper(), "subnets": [f"10.9.{len(pid)}.0/24"], "download_kbps": down, "upload_kbps": up}
    )


def test_events_merge_the_controllers_and_the_audit_log_newest_first_with_who(api: Any, tmp_path: Path) -> None:
    app, store, view = api
    store.put(policy("dinkes", 20000), "noc")
    store.put(policy("dinkes", 5000), "architect")
    store.delete("dinkes", "noc")
    times = [e["time"] for e in store.audit()]
    from datetime import datetime

    t_put, t_change, t_delete = (datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp() for t in times)
    view.events_list.add(t_put - 10, "switch_up", "switch core connected (3 ports)", switch="core", dpid=1)
    view.events_list.add(
        t_change - 0.0005, "failover", "failover: link core:1-edge:1 lost carrier", link="core:1-edge:1"
    )
    view.events_list.add(t_delete + 10, "link_up", "link core:1-edge:1 up", link="core:1-edge:1")
    r = get(app, "/v1/events")
    assert r.status_int == 200 and r.headers["Cache-Control"] == "no-store"
    got = r.data["events"]
    assert [e["kind"] for e in got] == ["link_up", "policy", "policy", "failover", "policy", "switch_up"]
    assert [e["t"] for e in got] == sorted((e["t"] for e in got), reverse=True)
    change = got[2]
    assert change["who"] == "architect" and change["source"] == "audit" and change["id"] == "dinkes"
    assert "architect" in change["text"] and "20 Mbit/s → 5 Mbit/s" in change["text"]
    assert got[1]["action"] == "delete" and "deleted by noc" in got[1]["text"]
    assert got[4]["action"] == "put" and "created by noc" in got[4]["text"]
    assert got[3]["source"] == "controller" and got[3]["link"] == "core:1-edge:1"
    # since and limit apply to the merged list
    r = get(app, f"/v1/events?since={t_change}")
    assert [e["kind"] for e in r.data["events"]] == ["link_up", "policy", "policy"]
    r = get(app, "/v1/events?limit=2")
    assert [e["kind"] for e in r.data["events"]] == ["link_up", "policy"]
    assert view.asked[-1] == (None, 2)
    r = get(app, "/v1/events?since=now-1h&limit=1000")
    assert len(r.data["events"]) == 6  # all of them happened within the hour
    assert get(app, "/v1/events?since=2000-01-01T00:00:00Z").status_int == 200


def test_a_first_starts_seeded_policies_are_one_event_and_settings_changes_show(api: Any) -> None:
    app, store, view = api
    store.seed({p.id: p for p in (policy("a", 1000), policy("bb", 2000), policy("ccc", 3000))})
    with open(store.audit_path, "a") as f:  # as helper A's PUT /v1/settings appends them
        entry = {
            "time": "2030-01-01T00:00:00.000Z",
            "who": "noc",
            "action": "settings",
            "before": {"annual_budget_idr": 1},
            "after": {"annual_budget_idr": 2},
        }
        f.write(json.dumps(entry) + "\n")
        f.write('{"time": "not a time", "who": "x", "action": "put"}\n{"torn": \n')
    got = get(app, "/v1/events").data["events"]
    assert [e["kind"] for e in got] == ["settings", "policy"]
    assert got[0]["who"] == "noc" and "annual_budget_idr" in got[0]["text"]
    assert (
        got[1]["ids"] == ["a", "bb", "ccc"]
        and got[1]["text"] == "3 policies loaded from the policy file: a, bb and ccc"
    )


@pytest.mark.parametrize(
    "query,field",
    [
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("limit=1.5", "limit"),
        ("limit=%205", "limit"),
        ("limit=5&limit=6", "limit"),
        ("since=yesterday", "since"),
        ("since=-5", "since"),
        ("since=1&since=2", "since"),
        ("after=1", "after"),
        ("limit=5&kind=policy", "kind"),
    ],
)
def test_bad_query_parameters_are_400_naming_them(api: Any, query: str, field: str) -> None:
    app, _store, _view = api
    r = get(app, f"/v1/events?{query}")
    assert r.status_int == 400, r.body
    assert r.data["error"]["field"] == field and r.data["error"]["problem"]


def test_events_need_a_token_and_are_documented(api: Any) -> None:
    app, _store, _view = api
    assert get(app, "/v1/events", token=None).status_int == 401
    assert get(app, "/v1/events", token="wrong").status_int == 401
    doc = get(app, "/v1/openapi.json").data
    op = doc["paths"]["/v1/events"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"since", "limit"}
    assert "Event" in doc["components"]["schemas"]
    assert get(app, "/v1/events").data["events"] == []


def test_a_view_without_events_still_shows_the_audit_log(tmp_path: Path) -> None:
    class Bare:
        def topology(self) -> dict:
            return {}

        def health(self) -> dict:
            return {}

    store = PolicyStore(tmp_path / "s")
    store.put(policy("dinkes", 20000), "noc")
    app = make_app(store, lambda p: None, Bare(), {"noc": NOC})
    assert [e["who"] for e in get(app, "/v1/events").data["events"]] == ["noc"]


# ---- the console's files ---------------------------------------------------------------------------


def test_the_console_page_and_its_files_are_served_without_a_token(api: Any) -> None:
    app, _store, _view = api
    r = get(app, "/", token=None)
    assert r.status_int == 200 and r.content_type == "text/html" and r.charset == "utf-8"
    assert b"/static/console.js" in r.body and b"<script" in r.body
    csp = r.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe" not in csp and r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-cache" and r.headers["ETag"]
    js = get(app, "/static/console.js", token=None)
    assert js.status_int == 200 and js.content_type == "text/javascript" and b"/v1/events" in js.body
    assert js.headers["Content-Security-Policy"] == csp
    css = get(app, "/static/console.css", token=None)
    assert css.status_int == 200 and css.content_type == "text/css"
    assert get(app, "/static/map.js", token=None).status_int == 200
    # unchanged: 304 without the body; HEAD: headers only
    again = Request.blank("/static/console.js", headers={"If-None-Match": js.headers["ETag"]}).get_response(app)
    assert again.status_int == 304 and again.body == b""
    head = Request.blank("/", method="HEAD").get_response(app)
    assert head.status_int == 200 and head.body == b""
    post = Request.blank("/", method="POST").get_response(app)
    assert post.status_int == 405 and post.headers["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(
    "path",
    [
        "/static/",
        "/static/nope.js",
        "/static/../rest.py",
        "/static/%2e%2e/rest.py",
        "/static/..%2frest.py",
        "/static/..%2Fstatic.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/./console.js",
        "/static/sub/console.js",
        "/static/console.js/",
        "/static/console.js%00.png",
        "/static/CONSOLE.JS",
        "/index.html",
        "/console.html",
    ],
)
def test_only_the_consoles_own_files_are_served(api: Any, path: str) -> None:
    app, _store, _view = api
    r = get(app, path, token=None)
    assert r.status_int == 404, (path, r.status_int)
    assert r.data["error"]["status"] == 404 and b"import" not in r.body  # never a source file


def test_changes_in_the_same_millisecond_come_out_newest_first() -> None:
    from controller.api.events_api import merged

    same = "2026-12-01T01:00:00.123Z"
    audit = [
        {"time": same, "who": "noc", "action": "put", "id": "a", "before": None, "after": {"download_kbps": 1}},
        {"time": same, "who": "architect", "action": "put", "id": "b", "before": None, "after": {"download_kbps": 2}},
    ]
    got = merged([], audit, None, 10)
    assert [e["who"] for e in got] == ["architect", "noc"]  # the later line is the newer change
