"""controller.core.policy: schema, semantic checks, the file loader, the docs table."""

from __future__ import annotations

import re
from pathlib import Path

import jsonschema
import pytest

from controller.core.policy import (
    BODY_SCHEMA,
    SCHEMA,
    Policy,
    PolicyError,
    fields_markdown,
    load_file,
    validate,
)
from controller.core.topology import load as load_topology
from controller.errors import KendaliError

ROOT = Path(__file__).resolve().parent.parent
OK = {
    "id": "dinkes",
    "name": "Dinas Kesehatan",
    "subnets": ["10.10.7.0/24"],
    "download_kbps": 20000,
    "upload_kbps": 10000,
}


def without(key: str) -> dict:
    return {k: v for k, v in OK.items() if k != key}


def test_valid_policy_round_trips() -> None:
    p = validate(OK)
    assert p == Policy("dinkes", "Dinas Kesehatan", ("10.10.7.0/24",), 20000, 10000, None, "")
    assert p.to_dict() == OK
    assert validate(p.to_dict()) == p
    full = validate({**OK, "burst_kbit": 4000, "note": "tiket #12"})
    assert full.burst_kbit == 4000 and full.note == "tiket #12"
    assert validate(full.to_dict()) == full


def test_whole_float_becomes_int() -> None:
    p = validate({**OK, "download_kbps": 20000.0})
    assert p.download_kbps == 20000 and type(p.download_kbps) is int


def test_bounds_are_inclusive() -> None:
    assert validate({**OK, "download_kbps": 64, "upload_kbps": 40_000_000}).upload_kbps == 40_000_000
    assert validate({**OK, "subnets": [f"10.{i}.0.0/16" for i in range(32)]})


# (input, field, words in the problem)
BAD = [
    ([], "(body)", "must be an object"),
    ("dinkes", "(body)", "must be an object"),
    (None, "(body)", "must be an object"),
    (42, "(body)", "must be an object"),
    (without("name"), "name", "is required"),
    (without("subnets"), "subnets", "is required"),
    (without("download_kbps"), "download_kbps", "is required"),
    (without("upload_kbps"), "upload_kbps", "is required"),
    (without("id"), "id", "is required"),
    ({**OK, "limit_at": 5000}, "limit_at", "use download_min_kbps and upload_min_kbps"),
    ({**OK, "limit-at": 5000}, "limit-at", "MikroTik's limit-at"),
    ({**OK, "max-limit": "10M/20M"}, "max-limit", "use download_kbps and upload_kbps"),
    ({**OK, "burst-time": 8}, "burst-time", "no equivalent"),
    ({**OK, "parent": "global"}, "parent", "no queue tree"),
    ({**OK, "priority": "2/2"}, "priority", "one whole number 1-8 for both directions"),
    ({**OK, "priority": "8"}, "priority", "without quotes"),
    ({**OK, "priority": 0}, "priority", "1 is the highest priority"),
    ({**OK, "priority": 9}, "priority", "at most 8"),
    ({**OK, "priority": 2.5}, "priority", "whole number"),
    ({**OK, "weight": 0}, "weight", "a weight is a share"),
    ({**OK, "weight": 1001}, "weight", "at most 1,000"),
    ({**OK, "download_min_kbps": -1}, "download_min_kbps", "at least 0"),
    ({**OK, "upload_min_kbps": "2M"}, "upload_min_kbps", "whole number"),
    ({**OK, "download_min_kbps": 20001}, "download_min_kbps", "20,001 kbit/s is above the cap download_kbps of 20,000"),
    ({**OK, "upload_min_kbps": 10001}, "upload_min_kbps", "10,001 kbit/s is above the cap upload_kbps of 10,000"),
    ({**OK, "max_limit": 5000}, "max_limit", "download_kbps"),
    ({**OK, "Download_kbps": 5000}, "Download_kbps", "unknown field"),
    ({**OK, "download_kbps": 0}, "download_kbps", "at least 64"),
    ({**OK, "download_kbps": -20000}, "download_kbps", "at least 64"),
    ({**OK, "upload_kbps": 63}, "upload_kbps", "at least 64"),
    ({**OK, "download_kbps": 40_000_001}, "download_kbps", "at most 40,000,000"),
    ({**OK, "download_kbps": 10**18}, "download_kbps", "at most"),
    ({**OK, "download_kbps": "20000"}, "download_kbps", "whole number, not a string"),
    ({**OK, "download_kbps": "20 Mbit"}, "download_kbps", "whole number"),
    ({**OK, "download_kbps": 1.5}, "download_kbps", "whole kbit/s"),
    ({**OK, "download_kbps": True}, "download_kbps", "boolean"),
    ({**OK, "download_kbps": None}, "download_kbps", "null"),
    ({**OK, "upload_kbps": [1]}, "upload_kbps", "a list"),
    ({**OK, "burst_kbit": 0}, "burst_kbit", "at least 16"),
    ({**OK, "burst_kbit": "big"}, "burst_kbit", "whole number"),
    ({**OK, "burst_kbit": None}, "burst_kbit", "null"),
    ({**OK, "id": "Dinkes"}, "id", "not a valid id"),
    ({**OK, "id": ""}, "id", "not a valid id"),
    ({**OK, "id": "-dinkes"}, "id", "not a valid id"),
    ({**OK, "id": "a" * 33}, "id", "not a valid id"),
    ({**OK, "id": "din kes"}, "id", "not a valid id"),
    ({**OK, "id": 7}, "id", "must be a string"),
    ({**OK, "id": True}, "id", "quote"),
    ({**OK, "name": ""}, "name", "must not be empty"),
    ({**OK, "name": "x" * 101}, "name", "too long"),
    ({**OK, "name": 5}, "name", "must be a string"),
    ({**OK, "note": "x" * 501}, "note", "too long"),
    ({**OK, "note": ["a"]}, "note", "must be a string"),
    ({**OK, "subnets": "10.10.7.0/24"}, "subnets", "must be a list"),
    ({**OK, "subnets": []}, "subnets", "at least one"),
    ({**OK, "subnets": [f"10.{i}.0.0/16" for i in range(33)]}, "subnets", "at most 32"),
    ({**OK, "subnets": [7]}, "subnets.0", "must be a string"),
    ({**OK, "subnets": ["10.10.7.1/24"]}, "subnets.0", "host bits set; the network is 10.10.7.0/24"),
    ({**OK, "subnets": ["10.10.7.0"]}, "subnets.0", "no prefix length"),
    ({**OK, "subnets": ["10.10.7.0/33"]}, "subnets.0", "not an IPv4 network"),
    ({**OK, "subnets": ["10.10.7.0/255.255.255.0"]}, "subnets.0", "CIDR form"),
    ({**OK, "subnets": ["10.10.7.0/ 24"]}, "subnets.0", "CIDR form"),
    ({**OK, "subnets": ["10.10.256.0/24"]}, "subnets.0", "not an IPv4 network"),
    ({**OK, "subnets": ["10.010.7.0/24"]}, "subnets.0", "not an IPv4 network"),
    ({**OK, "subnets": ["dinkes/24"]}, "subnets.0", "CIDR form"),
    ({**OK, "subnets": ["2001:db8::/32"]}, "subnets.0", "IPv6"),
    ({**OK, "subnets": ["0.0.0.0/0"]}, "subnets.0", "larger than any OPD"),
    ({**OK, "subnets": ["224.0.0.0/8"]}, "subnets.0", "not a unicast"),
    ({**OK, "subnets": ["127.0.0.0/8"]}, "subnets.0", "not a unicast"),
    ({**OK, "subnets": ["10.10.7.0/24", "10.10.7.0/24"]}, "subnets.1", "listed twice"),
    ({**OK, "subnets": ["10.10.7.0/24", "10.10.7.128/25"]}, "subnets.1", "overlaps 10.10.7.0/24 (subnets.0)"),
    ({**OK, "subnets": ["10.10.7.0/25", "10.10.0.0/16"]}, "subnets.1", "overlaps 10.10.7.0/25"),
]


@pytest.mark.parametrize("data,field,words", BAD, ids=[f"{i}-{b[1]}" for i, b in enumerate(BAD)])
def test_bad_input_is_refused_clearly(data: object, field: str, words: str) -> None:
    with pytest.raises(PolicyError) as info:
        validate(data)
    err = info.value
    assert err.status == 400
    assert err.field == field
    assert words in err.problem
    assert str(err) == f"{field}: {err.problem}"
    assert "Traceback" not in err.problem and "{'" not in err.problem  # no schema dumps


def test_url_id_fills_a_missing_body_id() -> None:
    assert validate(without("id"), url_id="dinkes").id == "dinkes"


def test_body_id_must_match_url_id() -> None:
    with pytest.raises(PolicyError) as info:
        validate(OK, url_id="rsud")
    assert info.value.status == 400 and info.value.field == "id"
    assert "'dinkes'" in info.value.problem and "'rsud'" in info.value.problem


def test_invalid_url_id_is_refused() -> None:
    with pytest.raises(PolicyError) as info:
        validate(without("id"), url_id="NOT OK")
    assert info.value.field == "id"


def test_overlap_with_another_opd_is_409_naming_it() -> None:
    dinkes = validate(OK)
    with pytest.raises(PolicyError) as info:
        validate(
            {**OK, "id": "rsud", "name": "RSUD", "subnets": ["10.10.11.0/24", "10.10.7.128/25"]},
            others={"dinkes": dinkes},
        )
    err = info.value
    assert err.status == 409 and err.field == "subnets.1"
    assert "'dinkes'" in err.problem and "Dinas Kesehatan" in err.problem and "10.10.7.0/24" in err.problem


def test_replacing_own_policy_is_not_an_overlap() -> None:
    dinkes = validate(OK)
    p = validate({**OK, "download_kbps": 30000}, url_id="dinkes", others={"dinkes": dinkes})
    assert p.download_kbps == 30000


def test_sharing_fields_have_defaults_and_old_policies_are_unchanged() -> None:
    old = validate(OK)
    assert (old.download_min_kbps, old.upload_min_kbps, old.priority, old.weight) == (0, 0, 8, 1)
    assert old.to_dict() == OK  # defaults are not written back: an old GET result stays the same
    full = {**OK, "download_min_kbps": 20000, "upload_min_kbps": 0, "priority": 1, "weight": 3}
    p = validate(full)
    assert (p.download_min_kbps, p.upload_min_kbps, p.priority, p.weight) == (20000, 0, 1, 3)
    assert validate(p.to_dict()) == p
    assert p.to_dict() == {k: v for k, v in full.items() if k != "upload_min_kbps"}


def _opd(i: int, down_min: int, up_min: int = 0) -> Policy:
    return validate(
        {
            "id": f"opd{i}",
            "name": f"OPD {i}",
            "subnets": [f"10.20.{i}.0/24"],
            "download_kbps": 400_000,
            "upload_kbps": 400_000,
            "download_min_kbps": down_min,
            "upload_min_kbps": up_min,
        }
    )


def test_guarantees_must_fit_the_uplink_409_with_the_figures() -> None:
    others = {p.id: p for p in (_opd(1, 400_000), _opd(2, 400_000))}
    new = {**OK, "download_kbps": 320_000, "download_min_kbps": 320_000}
    with pytest.raises(PolicyError) as info:
        validate(new, others=others, uplink_kbps=1_000_000)
    err = info.value
    assert err.status == 409 and err.field == "download_min_kbps"
    assert "download guarantees would sum to 1,120,000 kbit/s; the uplink buys 1,000,000 kbit/s" in err.problem
    assert f"{int(1_000_000 * 1448 / 1514):,} kbit/s of payload" in err.problem  # what 1514-byte frames carry
    # Without an uplink (none declared) or within it, the same policy passes.
    assert validate(new, others=others).download_min_kbps == 320_000
    assert validate({**new, "download_min_kbps": 156_000}, others=others, uplink_kbps=1_000_000)
    # Upload is summed on its own.
    with pytest.raises(PolicyError) as info:
        validate(
            {**OK, "upload_kbps": 400_000, "upload_min_kbps": 200_000},
            others={p.id: p for p in (_opd(1, 0, 400_000), _opd(2, 0, 400_000))},
            uplink_kbps=1_000_000,
        )
    assert info.value.status == 409 and info.value.field == "upload_min_kbps"


def test_a_change_that_does_not_raise_the_guarantees_passes_after_the_uplink_shrank() -> None:
    others = {p.id: p for p in (_opd(1, 400_000), _opd(2, 400_000))}  # 800 Mbit/s guaranteed
    smaller_uplink = 500_000
    lower = {"name": "OPD 1", "subnets": ["10.20.1.0/24"], "download_kbps": 500_000, "upload_kbps": 1000}
    assert (
        validate({**lower, "download_min_kbps": 300_000}, "opd1", others, smaller_uplink).download_min_kbps == 300_000
    )
    assert validate(OK, others=others, uplink_kbps=smaller_uplink)  # no guarantee: adds nothing
    with pytest.raises(PolicyError) as info:
        validate({**lower, "download_min_kbps": 400_001}, "opd1", others, smaller_uplink)
    assert info.value.status == 409


def test_schema_is_valid_2020_12_and_body_schema_derived() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.Draft202012Validator.check_schema(BODY_SCHEMA)
    assert SCHEMA["$schema"].endswith("2020-12/schema")
    assert BODY_SCHEMA["properties"] == SCHEMA["properties"]
    assert set(SCHEMA["required"]) - set(BODY_SCHEMA["required"]) == {"id"}


# --- files ---------------------------------------------------------------------------------

POLICY_FILES = sorted((ROOT / "policies").glob("*.yaml"))


def test_there_are_policy_files() -> None:
    assert POLICY_FILES


@pytest.mark.parametrize("path", POLICY_FILES, ids=[p.name for p in POLICY_FILES])
def test_every_policy_file_loads(path: Path) -> None:
    policies = load_file(path)
    assert policies
    for pid, p in policies.items():
        assert pid == p.id


def test_ppu_policies_match_the_topology_and_header() -> None:
    topo = load_topology(ROOT / "topologies" / "ppu.yaml")
    policies = load_file(ROOT / "policies" / "ppu.yaml")
    # Every OPD subnet except the ISP hand-off and the server farm, with its exact cidr.
    expected = {s.id: s.cidr for s in topo.subnets.values() if s.id not in ("isp", "dc")}
    assert {p.id: p.subnets for p in policies.values()} == {k: (v,) for k, v in expected.items()}
    for p in policies.values():
        assert p.name == topo.subnets[p.id].name
    # The header comment states the sums and ratio; keep it honest.
    text = (ROOT / "policies" / "ppu.yaml").read_text()
    down = sum(p.download_kbps for p in policies.values())
    up = sum(p.upload_kbps for p in policies.values())
    uplink_kbps = topo.uplink.capacity_mbps * 1000
    assert re.search(rf"sum of download caps: +{down} kbit/s", text)
    assert re.search(rf"sum of upload caps: +{up} kbit/s", text)
    assert f"{down / uplink_kbps:.2f} : 1" in text
    assert f"{up / uplink_kbps:.2f} : 1" in text
    # A big office (RSUD, Disdukcapil) gets more than a kelurahan.
    assert policies["rsud"].download_kbps > policies["kel-nipah"].download_kbps * 4
    assert policies["disdukcapil"].download_kbps > policies["kel-pemaluan"].download_kbps


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


ENTRY = """  - id: dinkes
    name: Dinas Kesehatan
    subnets: [10.10.7.0/24]
    download_kbps: 20000
    upload_kbps: 10000
"""

BAD_FILES = [
    ("", "", "the file is empty"),
    ("- a\n- b\n", "", "expected a mapping"),
    ("policy: []\n", "policy", "unknown top-level key"),
    ("policies: 5\n", "policies", "must be a list"),
    ("policies:\n" + ENTRY.replace("20000", "0"), "policies.0.download_kbps", "at least 64"),
    ("policies:\n" + ENTRY.replace("10.10.7.0/24", "10.10.7.5/24"), "policies.0.subnets.0", "host bits"),
    ("policies:\n  - 5\n", "policies.0", "must be an object"),
    ("policies:\n" + ENTRY + ENTRY, "policies.1.id", "duplicate id 'dinkes'"),
    (
        "policies:\n" + ENTRY + ENTRY.replace("id: dinkes", "id: rsud"),
        "policies.1.subnets.0",
        "overlaps 10.10.7.0/24 of OPD 'dinkes'",
    ),
    ("policies:\n" + ENTRY.replace("id: dinkes", "id: no"), "policies.0.id", "quote"),
    ("policies:\n" + ENTRY + "    limit_at: 5\n", "policies.0.limit_at", "unknown field"),
    ("policies:\n" + ENTRY.replace("id: dinkes", "id: [dinkes]") + ENTRY, "policies.0.id", "must be a string, not a"),
]


@pytest.mark.parametrize("text,field,words", BAD_FILES)
def test_bad_policy_file_names_file_field_problem(tmp_path: Path, text: str, field: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(KendaliError) as info:
        load_file(path)
    err = info.value
    assert err.where == str(path)
    assert err.field == field
    assert words in err.problem
    assert str(err).startswith(str(path))


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "policies:\n" + ENTRY + "    note: [unclosed\n")
    with pytest.raises(KendaliError) as info:
        load_file(path)
    assert info.value.field.startswith("line ")
    assert "not valid YAML" in info.value.problem


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KendaliError, match="no such file"):
        load_file(tmp_path / "nope.yaml")


def test_policy_file_guarantees_must_fit_the_uplink(tmp_path: Path) -> None:
    text = "policies:\n" + ENTRY + "    download_min_kbps: 20000\n"
    second = ENTRY.replace("id: dinkes", "id: rsud").replace("10.10.7.0/24", "10.10.8.0/24")
    text += second + "    download_min_kbps: 20000\n"
    path = write(tmp_path, text)
    assert load_file(path)["rsud"].download_min_kbps == 20000  # no uplink given: not summed
    assert len(load_file(path, uplink_kbps=41_900)) == 2  # 40,000 payload fits 41,900 on the wire
    with pytest.raises(KendaliError) as info:
        load_file(path, uplink_kbps=40_000)
    assert info.value.field == "policies.1.download_min_kbps"
    assert "would sum to 40,000 kbit/s; the uplink buys 40,000 kbit/s" in info.value.problem


def test_empty_policy_list_is_allowed(tmp_path: Path) -> None:
    assert load_file(write(tmp_path, "policies: []\n")) == {}


# --- docs -------------------------------------------------------------------------------------


def test_docs_field_table_matches_schema() -> None:
    text = (ROOT / "docs" / "policies.md").read_text()
    assert fields_markdown() in text, "docs/policies.md is stale: run python -m controller.docs"
