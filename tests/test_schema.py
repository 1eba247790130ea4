"""controller.core.schema: one definition gives the schema, the objects' JSON and the errors.

The error tests feed both documents (a policy, a topology file) the inputs that made
raw jsonschema messages useless: a wrong type deep in a list, a missing field, an
unknown field, several problems at once. Each must come back as one line naming the
field path, the problem and the fix, the same way for both.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import pytest
import yaml

from controller.core import policy, schema, topology
from controller.errors import KendaliError

OK_POLICY = {
    "id": "dinkes",
    "name": "Dinas Kesehatan",
    "subnets": ["10.10.7.0/24"],
    "download_kbps": 20000,
    "upload_kbps": 10000,
}
OK_TOPO: dict[str, Any] = {
    "switches": [{"name": "core", "dpid": 1}, {"name": "sw-dinkes", "dpid": 107}],
    "links": [{"a": "core", "b": "sw-dinkes", "capacity_mbps": 100}],
    "subnets": [
        {
            "id": "isp",
            "cidr": "10.99.0.0/30",
            "gateway": "10.99.0.1",
            "switch": "core",
            "hosts": [{"name": "isp1", "ip": "10.99.0.2"}],
        },
        {
            "id": "dinkes",
            "cidr": "10.10.7.0/24",
            "gateway": "10.10.7.1",
            "switch": "sw-dinkes",
            "hosts": [{"name": "dinkes1", "ip": "10.10.7.10"}, {"name": "dinkes2", "ip": "10.10.7.11"}],
        },
    ],
    "uplink": {"subnet": "isp", "capacity_mbps": 1000},
}


def policy_error(data: Any) -> policy.PolicyError:
    with pytest.raises(policy.PolicyError) as info:
        policy.validate(data)
    return info.value


def topo_error(tmp_path: Path, change: Any) -> KendaliError:
    """The error of loading OK_TOPO changed by ``change`` (a function of the dict), as a YAML file."""
    doc = copy.deepcopy(OK_TOPO)
    change(doc)
    path = tmp_path / "topo.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(KendaliError) as info:
        topology.load(path)
    assert str(info.value) == f"{path}: {info.value.field}: {info.value.problem}"
    return info.value


def one_sentence(problem: str) -> None:
    assert "\n" not in problem and "Traceback" not in problem
    assert "{'" not in problem and "is not valid under" not in problem  # no schema dumps, no raw jsonschema
    assert "was unexpected" not in problem and "is a required property" not in problem


# --- the shipped documents are valid and unchanged in shape -----------------------------------


def test_both_schemas_are_valid_2020_12() -> None:
    for doc in (policy.SCHEMA, topology.SCHEMA):
        jsonschema.Draft202012Validator.check_schema(doc)
        assert doc["$schema"] == schema.DRAFT


def test_fields_come_from_the_dataclasses_and_derived_ones_stay_out() -> None:
    assert list(policy.SCHEMA["properties"]) == [f.name for f in dataclasses.fields(policy.Policy)]
    props = topology.SCHEMA["properties"]
    host = props["subnets"]["items"]["properties"]["hosts"]["items"]
    assert list(host["properties"]) == ["name", "ip", "mac", "switch", "port"]  # not subnet: the loader sets it
    assert host["required"] == ["name", "ip"]  # mac, switch, port: given or assigned
    assert list(props["uplink"]["properties"]) == ["subnet", "capacity_mbps"]  # not switch
    assert "source" not in props
    assert props["switches"]["minItems"] == 1 and topology.SCHEMA["required"] == ["switches"]
    link = props["links"]["items"]
    assert link["required"] == ["a", "b"] and link["properties"]["capacity_mbps"]["exclusiveMinimum"] == 0


def test_to_dict_leaves_out_optional_fields_at_their_default() -> None:
    p = policy.validate({**OK_POLICY, "burst_kbit": 4000})
    assert schema.to_dict(p) == {**OK_POLICY, "burst_kbit": 4000}
    assert schema.to_dict(policy.validate(OK_POLICY)) == OK_POLICY


def test_a_link_note_is_kept_but_does_not_make_links_differ() -> None:
    t = topology.parse(copy.deepcopy(OK_TOPO), "x.yaml")
    noted = copy.deepcopy(OK_TOPO)
    noted["links"][0]["note"] = "microwave radio"
    t2 = topology.parse(noted, "x.yaml")
    assert t2.links[0].note == "microwave radio" and t2.links == t.links


def test_a_field_type_without_a_json_type_is_refused_at_definition() -> None:
    @dataclasses.dataclass
    class Odd:
        when: Annotated[complex, schema.Spec("no JSON for this")]

    with pytest.raises(TypeError, match="no JSON type"):
        schema.json_schema(Odd)


# --- errors: the same quality for both documents ----------------------------------------------

POLICY_CASES = [
    # wrong type deep in a list
    ({**OK_POLICY, "subnets": ["10.10.7.0/24", 7]}, "subnets.1", "must be a string, not a whole number (7)"),
    # missing required: named with what it is
    ({k: v for k, v in OK_POLICY.items() if k != "upload_kbps"}, "upload_kbps", "is required (Cap on traffic out"),
    # an unknown field names itself, and a close one is suggested
    ({**OK_POLICY, "uplaod_kbps": 5}, "uplaod_kbps", "did you mean upload_kbps?"),
    # unknown and missing at once: the unknown one usually is the missing one misnamed
    (
        {k: v for k, v in {**OK_POLICY, "download": 5}.items() if k != "download_kbps"},
        "download",
        "unknown field; allowed fields: id, name, subnets, download_kbps",
    ),
    # several at one depth: the wrong type wins over bounds and patterns, wherever it is
    (
        {**OK_POLICY, "id": "Bad Id", "download_kbps": "20 Mbit", "upload_kbps": 0},
        "download_kbps",
        "must be a whole number, not a string ('20 Mbit'); the unit is kbit/s, e.g. 20000",
    ),
    # several at different depths: the shallowest explains most
    (
        {**OK_POLICY, "subnets": [7], "upload_kbps": 0},
        "upload_kbps",
        "must be at least 64 kbit/s (got 0); a cap of zero",
    ),
    # two bounds at one depth: declaration order
    ({**OK_POLICY, "download_kbps": 0, "upload_kbps": 0}, "download_kbps", "at least 64"),
    ({**OK_POLICY, "download_kbps": "20000"}, "download_kbps", "write the number without quotes"),
    ({**OK_POLICY, "note": None}, "note", "must be a string, not null (None); in YAML an empty value is null"),
    ({**OK_POLICY, "name": 1.5}, "name", "in YAML quote it"),
    ({**OK_POLICY, "subnets": ["10.10.7.0/24"] * 33}, "subnets", "too many: 33, at most 32; use larger prefixes"),
]


@pytest.mark.parametrize("data,field,words", POLICY_CASES, ids=[f"{i}-{c[1]}" for i, c in enumerate(POLICY_CASES)])
def test_policy_errors_are_chosen_by_best_match_and_said_clearly(data: Any, field: str, words: str) -> None:
    err = policy_error(data)
    assert (err.field, err.status) == (field, 400)
    assert words in err.problem, err.problem
    one_sentence(err.problem)


def _deep_port(d: dict) -> None:
    d["subnets"][1]["hosts"][1]["port"] = "3"


def _several(d: dict) -> None:
    d["switches"][1]["name"] = "bad name!"  # pattern, depth 3
    d["links"][0]["a_port"] = "x"  # type, depth 3: wins
    d["subnets"][1]["hosts"][0]["mac"] = "nope"  # depth 5


def _two_types(d: dict) -> None:
    d["links"][0]["b_port"] = "x"
    d["switches"][1]["dpid"] = "107"  # switches are declared before links


def _deep_and_top(d: dict) -> None:
    d["subnets"][0]["hosts"][0]["port"] = 0
    d["colour"] = "red"


TOPO_CASES = [
    (
        _deep_port,
        "subnets.1.hosts.1.port",
        "must be a whole number, not a string ('3'); write the number without quotes",
    ),
    (lambda d: d["subnets"][1]["hosts"][0].pop("ip"), "subnets.1.hosts.0.ip", "is required (IPv4 address"),
    (lambda d: d["links"][0].update(capacity=100), "links.0.capacity", "use capacity_mbps (Mbit/s)"),
    (lambda d: d["subnets"][0].update(gatway="10.99.0.1"), "subnets.0.gatway", "did you mean gateway?"),
    (_several, "links.0.a_port", "must be a whole number, not a string ('x')"),
    (_two_types, "switches.1.dpid", "must be a whole number, not a string ('107')"),
    (_deep_and_top, "colour", "unknown field; allowed fields: name, description, switches, links, subnets, uplink"),
    (lambda d: d.update(switches={"core": 1}), "switches", "must be a list, not an object"),
    (lambda d: d.update(switches=None), "switches", "must be a list, not null (None); in YAML an empty value is null"),
    (lambda d: d.update(uplink="isp"), "uplink", "must be an object ({...}), not a string ('isp')"),
    (
        lambda d: d["switches"][0].update(role="access"),
        "switches.0.role",
        "'access' is not one of: core, distribution, edge, datacenter",
    ),
    (lambda d: d["switches"][0].update(site=True), "switches.0.site", "quote values like yes/no/on/off"),
    (lambda d: d["links"][0].update(capacity_mbps=float("nan")), "links.0.capacity_mbps", "not NaN"),
    (
        lambda d: d["links"][0].update(capacity_mbps=10**7),
        "links.0.capacity_mbps",
        "must be at most 1,000,000 Mbit/s (got 10,000,000); capacities are in Mbit/s",
    ),
    (
        lambda d: d["subnets"][1].update(cidr="10.10.7.5/24"),
        "subnets.1.cidr",
        "10.10.7.5/24 has host bits set; the network is 10.10.7.0/24",
    ),
]


@pytest.mark.parametrize("change,field,words", TOPO_CASES, ids=[f"{i}-{c[1]}" for i, c in enumerate(TOPO_CASES)])
def test_topology_errors_are_chosen_by_best_match_and_said_clearly(
    tmp_path: Path, change: Any, field: str, words: str
) -> None:
    err = topo_error(tmp_path, change)
    assert err.field == field, str(err)
    assert words in err.problem, str(err)
    one_sentence(err.problem)


def test_the_same_mistake_reads_the_same_in_both_documents(tmp_path: Path) -> None:
    pol = policy_error({**OK_POLICY, "name": True})
    topo = topo_error(tmp_path, lambda d: d["subnets"][1].update(name=True))
    assert pol.problem == topo.problem
    assert pol.problem == "must be a string, not a boolean (True); in YAML quote values like yes/no/on/off"
    pol = policy_error({**OK_POLICY, "colour": 1})
    topo = topo_error(tmp_path, lambda d: d.update(colour=1))
    assert pol.problem.startswith("unknown field; allowed fields: ") and topo.problem.startswith(pol.problem[:30])


def test_best_match_picks_the_shallowest_whatever_the_order_of_fields() -> None:
    # jsonschema's default key would prefer later sibling paths; ours keeps the declaration order.
    validator = jsonschema.Draft202012Validator(policy.SCHEMA)
    data = {**OK_POLICY, "upload_kbps": "x", "download_kbps": "y"}
    assert schema.first_error(validator, data, policy.Policy, "(body)") == (
        "download_kbps",
        "must be a whole number, not a string ('y'); the unit is kbit/s, e.g. 20000",
    )
    assert schema.first_error(validator, OK_POLICY, policy.Policy, "(body)") is None
