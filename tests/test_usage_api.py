"""GET /v1/usage, GET /v1/usage/{opd}, GET /metrics through the real WSGI app; link usage in the
topology view; the OpenAPI fragments."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from webob import Request

from controller.api.history import History
from controller.api.rest import make_app
from controller.api.store import PolicyStore
from controller.api.usage_api import OPENAPI_PATHS, OPENAPI_SCHEMAS
from controller.core import topology, views
from controller.core.usage import Cycle, PortSample, Usage
from tests.builders import from_topology

T0 = (time.time() // 86400 - 1) * 86400  # yesterday 00:00 UTC: raw history is still kept


class View:
    """A controller with a history of two OPDs, one of them deleted since."""

    def __init__(self, tmp_path: Path) -> None:
        self.hist = History(tmp_path / "usage.sqlite")
        for i in range(1, 61):
            deltas = {"dinkes": (1000 * i, i, 10, 1, 5000, 5, 0, 0)}
            if i <= 30:
                deltas["gone"] = (100, 1, 0, 0, 0, 0, 0, 0)
            self.hist.write(Cycle(T0 + 10 * i, 10.0, deltas, {}, [], {o: ("policy", o.title()) for o in deltas}))
        self.asked: list[tuple] = []

    def topology(self) -> dict:
        return {}

    def health(self) -> dict:
        return {}

    def usage(self) -> dict:
        return {"interval_s": 10.0, "at": T0, "opds": [{"opd": "dinkes"}]}

    def usage_history(self, opd: str, frm: float, to: float, step: int | None, now: float) -> dict | None:
        self.asked.append((opd, frm, to, step))
        if not self.hist.known(opd):
            return None
        return self.hist.query(opd, frm, to, step, now)

    def metrics(self) -> tuple[bytes, str]:
        return b"kendali_links_up 3\n", "text/plain; version=0.0.4; charset=utf-8"


@pytest.fixture
def env(tmp_path: Path) -> tuple[Any, View]:
    view = View(tmp_path)
    app = make_app(PolicyStore(tmp_path / "state"), lambda p: None, view, {"t": "tok"})
    return app, view


def get(app: Any, path: str, **headers: str) -> Any:
    resp = Request.blank(path, headers={"Authorization": "Bearer tok", **headers}).get_response(app)
    resp.data = json.loads(resp.body) if resp.content_type == "application/json" else resp.body
    return resp


def test_usage_lists_what_the_controller_counts(env):
    app, _ = env
    r = get(app, "/v1/usage")
    assert r.status_int == 200 and r.data["opds"] == [{"opd": "dinkes"}]


def test_an_opds_series_with_from_to_step(env):
    app, view = env
    r = get(app, f"/v1/usage/dinkes?from={T0}&to={T0 + 600}&step=5m")
    assert r.status_int == 200, r.data
    assert r.data["tier"] == "5m" and r.data["step"] == 300
    assert sum(r.data["up"]["bytes"]) == sum(1000 * i for i in range(1, 61))
    assert len(r.data["t"]) == len(r.data["up"]["bps"]) == len(r.data["down"]["dropped_bytes"]) == 2
    assert r.data["summary"]["up"]["p95_bps"] is not None
    iso = datetime.fromtimestamp(T0, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = get(app, f"/v1/usage/dinkes?from={iso}&to={T0 + 600}&step=60")
    assert r.data["tier"] == "raw" and r.data["t"][:2] == [T0, T0 + 60] and r.data["seconds"][0] == 50.0


def test_a_deleted_opd_keeps_its_past(env):
    app, _ = env
    r = get(app, f"/v1/usage/gone?from={T0}&to={T0 + 3600}&step=1h")
    assert r.status_int == 200 and r.data["summary"]["up"]["bytes"] == 30 * 100


def test_defaults_are_the_last_day(env):
    app, view = env
    get(app, "/v1/usage/dinkes")
    opd, frm, to, step = view.asked[-1]
    assert to - frm == 86400 and step is None


@pytest.mark.parametrize(
    "query,field",
    [
        ("from=yesterday", "from"),
        ("to=x", "to"),
        ("step=0", "step"),
        ("step=5y", "step"),
        (f"from={T0 + 10}&to={T0}", "to"),
        (f"from={T0 - 400 * 86400}&to={T0}&step=1", "step"),
        ("frm=1", "frm"),
    ],
)
def test_bad_parameters_are_400_naming_the_field(env, query, field):
    app, _ = env
    r = get(app, f"/v1/usage/dinkes?{query}")
    assert r.status_int == 400 and r.data["error"]["field"] == field and r.data["error"]["problem"]


def test_an_opd_never_counted_is_404(env):
    app, _ = env
    r = get(app, "/v1/usage/nobody")
    assert r.status_int == 404 and "GET /v1/usage" in r.data["error"]["problem"]


def test_metrics_in_prometheus_text_format_need_a_read_token_unless_open(env, tmp_path):
    app, view = env
    assert Request.blank("/metrics").get_response(app).status_int == 401
    r = Request.blank("/metrics", headers={"Authorization": "Bearer tok"}).get_response(app)
    assert r.status_int == 200 and r.body == b"kendali_links_up 3\n"
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    open_app = make_app(PolicyStore(tmp_path / "open"), lambda p: None, view, {"t": "tok"}, open_metrics=True)
    assert Request.blank("/metrics").get_response(open_app).status_int == 200  # --open-metrics
    assert Request.blank("/v1/usage").get_response(open_app).status_int == 401  # only /metrics is open


def test_a_controller_that_does_not_count_answers_503(tmp_path):
    class Bare:
        def topology(self) -> dict:
            return {}

        def health(self) -> dict:
            return {}

    app = make_app(PolicyStore(tmp_path / "s"), lambda p: None, Bare(), {"t": "tok"})
    assert get(app, "/v1/usage").status_int == 503
    assert get(app, "/metrics").status_int == 503


def test_openapi_fragments_describe_the_paths():
    assert set(OPENAPI_PATHS) == {"/v1/usage", "/v1/usage/{opd}", "/metrics"}
    params = {p["name"] for p in OPENAPI_PATHS["/v1/usage/{opd}"]["get"]["parameters"]}
    assert params == {"opd", "from", "to", "step"}
    refs = json.dumps(OPENAPI_PATHS)
    assert all(f"#/components/schemas/{k}" in refs for k in OPENAPI_SCHEMAS)


def test_topology_links_carry_their_usage():
    t = topology.load(topology.DEFAULT_TOPOLOGY)
    net = from_topology(t).net
    key = sorted(net.links)[0]
    u = Usage()
    for at, nbytes in ((1.0, 0), (11.0, 12_500_000)):
        u.port_samples(key[0], [PortSample(key[1], 0, nbytes, 0, 0, at)], at)
    caps = {k: link.capacity_mbps for k, link in net.links.items()}
    view = views.topology(net, u.links(caps, 12.0))
    link = next(x for x in view["links"] if (x["a"]["dpid"], x["a"]["port"]) == key[:2])
    cap = net.links[key].capacity_mbps
    assert link["usage"]["a_to_b"]["bps"] == 10_000_000
    assert link["usage"]["a_to_b"]["utilisation"] == round(10e6 / (cap * 1e6), 4)
    assert views.link_label(net, key).startswith(f"{t.switch_by_dpid(key[0]).name}:{key[1]}-")
    assert "usage" not in views.topology(net)["links"][0]
