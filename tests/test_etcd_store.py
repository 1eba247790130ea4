"""Policies, settings and tokens kept in a real etcd (controller.api.etcdstore), two nodes' state dirs
beside it; and the election's requests (controller.api.etcd) against it. A local etcd on free ports."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.api import etcd as e
from controller.api.etcdstore import EtcdPolicyStore, EtcdTokenFile, Shared
from controller.api.rest import make_app
from controller.api.store import PolicyStore
from controller.core.policy import validate
from controller.errors import KendaliError
from controller.lab.etcdlocal import LocalEtcd, free_port

pytestmark = pytest.mark.skipif(shutil.which("etcd") is None, reason="etcd is not installed (scripts/setup.sh)")


@pytest.fixture(scope="module")
def etcd_server() -> Iterator[LocalEtcd]:
    with LocalEtcd() as server:
        yield server


@pytest.fixture
def etcd(etcd_server: LocalEtcd) -> e.Etcd:
    client = e.Etcd(etcd_server.url)
    for key in (e.POLICIES, e.SETTINGS, e.TOKENS, e.LEADER, e.NETWORK):
        client._call(lambda c, key=key: c.delete(key))
    client._call(lambda c: c.delete_prefix(e.AUDIT))
    return client


def policy(pid: str, subnet: str, kbps: int = 5000) -> dict:
    return {"id": pid, "name": pid.title(), "subnets": [subnet], "download_kbps": kbps, "upload_kbps": kbps}


def test_a_write_on_one_node_is_etcd_s_and_every_node_s_mirror(etcd: e.Etcd, tmp_path: Path) -> None:
    a = EtcdPolicyStore(tmp_path / "a", etcd, "a")
    b = EtcdPolicyStore(tmp_path / "b", etcd, "b")
    seen: list[dict] = []
    shared_b = Shared(b, EtcdTokenFile(tmp_path / "b", etcd), seen.append)
    assert a.put(validate(policy("dinkes", "10.1.0.0/24")), "noc") is True
    kv = etcd.get(e.POLICIES)
    assert kv is not None and json.loads(kv.value)["policies"][0]["id"] == "dinkes"
    shared_b.apply(kv)  # what b's watch hands it
    assert list(b.all()) == ["dinkes"] and list(seen[-1]) == ["dinkes"]
    assert json.loads((tmp_path / "b" / "policies.json").read_text())["policies"][0]["id"] == "dinkes"
    # both nodes list the one shared audit
    assert [x["id"] for x in b.audit()] == ["dinkes"] and b.audit()[0]["who"] == "noc"


def _ids(etcd: e.Etcd) -> list[str]:
    kv = etcd.get(e.POLICIES)
    assert kv is not None
    return [p["id"] for p in json.loads(kv.value)["policies"]]


def test_a_write_checked_against_stale_state_is_refused_not_lost(etcd: e.Etcd, tmp_path: Path) -> None:
    a = EtcdPolicyStore(tmp_path / "a", etcd, "a")
    b = EtcdPolicyStore(tmp_path / "b", etcd, "b")
    a.put(validate(policy("dinkes", "10.1.0.0/24")), "noc")
    # b has not heard of it (its watch is late); its write re-reads etcd first, so both survive
    b.put(validate(policy("disdik", "10.2.0.0/24")), "noc")
    assert _ids(etcd) == ["dinkes", "disdik"]
    # a transaction against a revision someone wrote after is refused, and b's write stays
    stale = {**a.all(), "bappeda": validate(policy("bappeda", "10.3.0.0/24"))}
    with pytest.raises(e.Conflict, match="changed on another controller"):
        a._commit(stale, [])
    assert _ids(etcd) == ["dinkes", "disdik"]
    assert sorted(a.all()) == ["dinkes", "disdik"]  # and a has read what is there now


def test_a_single_controller_s_state_goes_up_once(etcd: e.Etcd, tmp_path: Path) -> None:
    old = PolicyStore(tmp_path / "a")
    old.put(validate(policy("dinkes", "10.1.0.0/24")), "noc")
    a = EtcdPolicyStore(tmp_path / "a", etcd, "a")
    assert list(a.all()) == ["dinkes"]
    b = EtcdPolicyStore(tmp_path / "b", etcd, "b")  # an empty state dir joins: it gets etcd's
    assert list(b.all()) == ["dinkes"]


def test_etcd_unreachable_a_write_is_a_clear_503_and_nothing_changes(etcd: e.Etcd, tmp_path: Path) -> None:
    from webob import Request

    a = EtcdPolicyStore(tmp_path / "a", etcd, "a")
    a.etcd = e.Etcd(f"http://127.0.0.1:{free_port()}", timeout=0.3)  # nobody listens there
    app = make_app(a, lambda p: None, _View(), {"noc": "x" * 40})
    req = Request.blank("/v1/policies/dinkes", method="PUT", body=json.dumps(policy("dinkes", "10.1.0.0/24")).encode())
    req.headers["Authorization"] = "Bearer " + "x" * 40
    resp = req.get_response(app)
    assert resp.status_int == 503
    assert (
        "etcd is unreachable" in resp.json["error"]["problem"]
        and "nothing was changed" in resp.json["error"]["problem"]
    )
    assert a.all() == {}
    get = Request.blank("/v1/policies")
    get.headers["Authorization"] = "Bearer " + "x" * 40
    assert get.get_response(app).status_int == 200  # reads answer from the mirror


def test_settings_written_on_one_node_are_read_on_the_other(etcd: e.Etcd, tmp_path: Path) -> None:
    from controller.core import settings as settings_mod

    a = EtcdPolicyStore(tmp_path / "a", etcd, "a")
    b = EtcdPolicyStore(tmp_path / "b", etcd, "b")
    new = settings_mod.validate({**settings_mod.DEFAULT.to_dict(), "uplink_mbps": 123})
    assert a.settings_file().put(new, "noc")
    b.settings.apply(etcd.get(e.SETTINGS))
    assert b.settings_file().get().uplink_mbps == 123


def test_tokens_added_anywhere_reach_every_node_s_token_file(etcd: e.Etcd, tmp_path: Path) -> None:
    a = EtcdTokenFile(tmp_path / "a", etcd)
    secret = a.add("grafana", "read")
    b = EtcdTokenFile(tmp_path / "b", etcd)
    b.sync()
    entries = b.entries()
    assert entries["grafana"].role == "read" and entries["grafana"].matches(secret)
    a.revoke("grafana")
    b.sync()
    assert "grafana" not in b.entries()
    with pytest.raises(KendaliError, match="etcd is unreachable"):
        EtcdTokenFile(tmp_path / "c", e.Etcd(f"http://127.0.0.1:{free_port()}", timeout=0.3)).add("noc", "write")


def test_the_election_s_requests_against_etcd(etcd: e.Etcd) -> None:
    la, lb = etcd.grant(2), etcd.grant(2)
    won, holder, gen, lease = etcd.campaign("a", la)
    assert won and holder == "a" and lease == la and gen
    won_b, holder_b, gen_b, lease_b = etcd.campaign("b", lb)
    assert (won_b, holder_b, gen_b, lease_b) == (False, "a", gen, la)
    assert etcd.renew(la) == (True, "a", gen, la)
    assert etcd.put_if_leader(e.NETWORK, b"{}", gen) and not etcd.put_if_leader(e.NETWORK, b"{}", gen - 1)
    etcd.revoke(la)  # as if its lease ran out
    assert etcd.renew(la)[0] is False
    won_b, holder_b, gen_b2, _ = etcd.campaign("b", lb)
    assert won_b and holder_b == "b" and gen_b2 > gen  # generations only grow


def test_a_lease_runs_out_in_etcd_after_its_ttl(etcd: e.Etcd) -> None:
    la = etcd.grant(2)
    assert etcd.campaign("a", la)[0]
    t0 = time.monotonic()
    while etcd.get(e.LEADER) is not None and time.monotonic() - t0 < 10:
        time.sleep(0.1)
    assert 1.5 < time.monotonic() - t0 < 4.5


def test_bad_urls() -> None:
    with pytest.raises(KendaliError, match="not an etcd client URL"):
        e.Etcd("ftp://x:1")
    with pytest.raises(KendaliError, match="bad port"):
        e.Etcd("http://x:99999")
    with pytest.raises(KendaliError, match="at least one"):
        e.Etcd(" , ")
    assert e.parse_urls("10.0.0.5,https://b:2479") == [("http", "10.0.0.5", 2379), ("https", "b", 2479)]


class _View:
    def topology(self) -> dict:
        return {}

    def health(self) -> dict:
        return {}

    def recent_events(self, since: float | None, limit: int | None) -> list:
        return []


def test_two_nodes_seeding_at_once_seed_once(etcd: e.Etcd, tmp_path: Path) -> None:
    seed = {"dinkes": validate(policy("dinkes", "10.1.0.0/24"))}
    a = EtcdPolicyStore(tmp_path / "a", etcd, "a")
    b = EtcdPolicyStore(tmp_path / "b", etcd, "b")  # both saw an empty etcd
    assert a.seed(seed) is None
    assert b.seed(seed) is None  # b finds a's seed, equal to its file: nothing to say
    assert _ids(etcd) == ["dinkes"]
    assert [x["action"] for x in b.audit()] == ["seed"]
