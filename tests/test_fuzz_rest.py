"""The REST API fuzzed from its own /v1/openapi.json (schemathesis), in-process against the WSGI app.

Cases fit the schema (positive) or break it on purpose (negative), and are sent with a
write token, a read token, a wrong token or none. For every case: no 5xx, no exception,
the saved state equals the served state, a refused request (4xx) changed nothing on disk
(policies.json, audit.jsonl, tokens.json), no token means 401 and a read token writing
means 403, and schemathesis' own checks pass: the status, content type and body are the
documented ones, and a request that breaks the schema is refused. Two of its checks do not
apply: "schema-valid request rejected" (the schema cannot say what a valid, non-overlapping
IPv4 network is; policy.validate does) and "authentication not enforced" (this test sets
the Authorization header itself and checks it above).

1,000 cases by default (a few seconds); a longer run by hand:
    KENDALI_FUZZ_CASES=100000 python -m pytest -q -p no:cacheprovider tests/test_fuzz_rest.py
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from controller.api import tokens as tokens_mod
from controller.api.access import Access, FailureBackoff, Keyring
from controller.api.rest import make_app
from controller.api.store import PolicyStore
from controller.api.tokens import TokenFile

CASES = int(os.environ.get("KENDALI_FUZZ_CASES", "1000"))
ENV_TOKEN = "fuzz-env-token-0123456789"
STATE_FILES = ("policies.json", "audit.jsonl", "tokens.json")
WHO = ["write", "write", "env", "read", "wrong", "near-miss", "none"]
# The schema says a subnet is a string; valid IPv4 networks are too rare among random strings
# for a PUT to get past validation, and random ids rarely meet again. So half of the cases
# get real networks and an id from a small pool: the fuzz then also reaches accepted
# changes, replacements, overlaps (409) and deletions of existing policies.
networks = st.lists(
    st.sampled_from(
        [
            "10.0.0.0/24",
            "10.0.1.0/24",
            "10.0.2.0/23",
            "10.0.3.0/24",
            "10.1.0.0/16",
            "10.2.7.0/24",
            "10.2.8.0/24",
            "192.168.4.0/22",
        ]
    ),
    min_size=1,
    max_size=2,
)
POOL = st.sampled_from(["dinkes", "rsud", "bappeda"])


class View:
    def topology(self) -> dict:
        return {"switches": [{"name": "core", "dpid": 1}], "links": []}

    def health(self) -> dict:
        return {"status": "ok", "switches_connected": 1}

    def usage(self) -> dict:
        return {"interval_s": 10.0, "at": 0.0, "opds": []}

    def usage_history(self, opd: str, frm: float, to: float, step: int | None, now: float) -> dict | None:
        if opd != "dinkes":
            return None
        return {
            "opd": opd,
            "from": frm,
            "to": to,
            "step": step or 300,
            "tier": "5m",
            "t": [],
            "seconds": [],
            "up": {},
            "down": {},
            "summary": {},
        }

    def metrics(self) -> tuple[bytes, str]:
        return b"kendali_links_up 0\n", "text/plain; version=0.0.4; charset=utf-8"


class NoWait:
    """The slowdown's clock: failures from the fuzzer's one address must not cost real seconds."""

    now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def snapshot(state: Path) -> dict[str, bytes | None]:
    return {name: (state / name).read_bytes() if (state / name).exists() else None for name in STATE_FILES}


def test_fuzz_the_rest_api_from_its_own_openapi_document(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(tokens_mod.SCRYPT, "n", 2**4)  # a near-miss token costs one scrypt each time
    state = tmp_path / "state"
    files = TokenFile(state)
    tokens = {"write": files.add("noc", "write"), "read": files.add("grafana", "read"), "env": ENV_TOKEN}
    store = PolicyStore(state)
    seen_changes: list[int] = []
    clock = NoWait()
    access = Access(Keyring(state, ENV_TOKEN), FailureBackoff(), clock.sleep, clock)
    app = make_app(store, lambda p: seen_changes.append(len(p)), View(), access)
    schema = schemathesis.openapi.from_wsgi(
        "/v1/openapi.json", app, headers={"Authorization": f"Bearer {tokens['read']}"}
    )
    one = schema["/v1/policies/{id}"]
    # Every operation, valid and invalid; plus valid PUTs and DELETEs once more, for changes to happen.
    valid, invalid = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
    cases = st.one_of(
        schema.as_strategy(valid),
        schema.as_strategy(invalid),
        one["PUT"].as_strategy(valid),
        one["DELETE"].as_strategy(valid),
    )
    sent: dict[str, int] = {}

    @settings(max_examples=CASES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=cases, who=st.sampled_from(WHO), fix=st.booleans(), nets=networks, pid=POOL)
    def run(case: Any, who: str, fix: bool, nets: list[str], pid: str) -> None:
        headers = dict(case.headers or {})
        headers.pop("Authorization", None)
        if who in tokens:
            headers["Authorization"] = f"Bearer {tokens[who]}"
        elif who == "near-miss":  # same first characters: it reaches the scrypt comparison
            headers["Authorization"] = "Bearer " + tokens["write"][:-1] + "x"
        elif who == "wrong":
            headers["Authorization"] = "Bearer kendali"
        case.headers = headers
        fix = fix and case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE
        if fix and case.path_parameters and "id" in case.path_parameters:
            case.path_parameters["id"] = pid
        if fix and isinstance(case.body, dict):
            if "subnets" in case.body:
                case.body["subnets"] = nets
            if "id" in case.body:
                case.body["id"] = (case.path_parameters or {}).get("id", case.body["id"])
        before = snapshot(state)
        response = case.call()
        status = response.status_code
        label = f"{case.method} {case.formatted_path} as {who}: {status} {response.text[:300]}"
        assert status < 500, label
        if status >= 400:
            assert snapshot(state) == before, "a refused request changed the state: " + label
            assert set(response.json()["error"]) == {"status", "field", "problem"}, label
        routed = not (status == 404 and "no such path" in response.text)  # an id with a '/' is another path
        if routed and case.path != "/v1/health":
            if who not in tokens:
                assert status == 401, label
            elif who == "read" and case.method != "GET":
                assert status == 403, label
        case.validate_response(response, excluded_checks=[positive_data_acceptance, ignored_auth])
        assert PolicyStore(state).all() == store.all(), label  # what is saved is what is served
        sent[f"{status}"] = sent.get(f"{status}", 0) + 1

    with caplog.at_level(logging.ERROR, logger="kendali"):
        run()
    print(f"fuzz: {sum(sent.values())} requests, by status: {dict(sorted(sent.items()))}")
    assert sum(sent.values()) >= CASES, sent
    # the fuzz reached past the door: refusals, successes and accepted changes all happened
    for status in ("200", "201", "204", "400", "401", "403", "404"):
        assert sent.get(status), (status, sent)
    assert seen_changes, sent
    assert not [r for r in caplog.records if r.exc_info], "an exception was logged"
