"""The report's settings: the one definition (validation, errors naming the field), the file in the
state dir, GET/PUT /v1/settings with its audit line."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from controller.api.store import SETTINGS_FILE, SettingsFile, load_settings, read_audit
from controller.core import settings
from controller.core.settings import Settings, SettingsError, days_off, validate
from controller.errors import KendaliError
from tests.test_rest import Env, assert_error


def test_an_empty_document_is_the_defaults() -> None:
    s = validate({})
    assert s == settings.DEFAULT
    doc = s.to_dict()
    assert doc["annual_budget_idr"] == 2_300_000_000 and doc["uplink_mbps"] is None
    assert doc["office_hours"] == {
        "timezone": "Asia/Makassar",
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "07:30",
        "end": "16:00",
    }
    assert doc["holidays"]["country"] == "ID" and doc["holidays"]["not"] == []
    assert validate(doc) == s  # what GET answers can be PUT back


def test_missing_nested_fields_take_their_defaults() -> None:
    s = validate({"office_hours": {"start": "08:00"}, "holidays": {"extra": ["2026-12-31"]}, "uplink_mbps": 500})
    assert s.office_hours.start == "08:00" and s.office_hours.end == "16:00"
    assert s.office_hours.timezone == "Asia/Makassar"
    assert s.holidays.extra == ("2026-12-31",) and s.holidays.country == "ID"
    assert s.uplink_mbps == 500.0 and isinstance(s.uplink_mbps, float)
    assert validate({"annual_budget_idr": 2.3e9}).annual_budget_idr == 2_300_000_000
    assert validate({"holidays": {"country": None}}).holidays.country is None


@pytest.mark.parametrize(
    "doc, field, words",
    [
        ([], "(body)", "must be an object"),
        ({"annual_budget_idr": -1}, "annual_budget_idr", "at least 0"),
        ({"annual_budget_idr": 2.5}, "annual_budget_idr", "whole"),
        ({"annual_budget_idr": "2300000000"}, "annual_budget_idr", "without quotes"),
        ({"budget": 1}, "budget", "annual_budget_idr"),
        ({"uplink_mbps": 0}, "uplink_mbps", "more than 0"),
        ({"uplink_mbps": "1G"}, "uplink_mbps", "a number or null"),
        ({"office_hours": {"timezone": "Asia/Makasar"}}, "office_hours.timezone", "did you mean Asia/Makassar"),
        ({"office_hours": {"timezone": "WITA"}}, "office_hours.timezone", "not an IANA time zone"),
        ({"office_hours": {"days": ["mon", "senin"]}}, "office_hours.days.1", "not one of"),
        ({"office_hours": {"days": ["mon", "mon"]}}, "office_hours.days.1", "twice"),
        ({"office_hours": {"days": []}}, "office_hours.days", "at least one"),
        ({"office_hours": {"start": "7:30"}}, "office_hours.start", "HH:MM"),
        ({"office_hours": {"start": "16:00", "end": "07:30"}}, "office_hours.end", "not later than start"),
        ({"office_hours": {"zone": "UTC"}}, "office_hours.zone", "unknown field"),
        ({"holidays": {"country": "XX"}}, "holidays.country", "not a country"),
        ({"holidays": {"country": "id"}}, "holidays.country", "two capital letters"),
        ({"holidays": {"categories": ["bank"]}}, "holidays.categories.0", "government, public"),
        ({"holidays": {"extra": ["2026-02-30"]}}, "holidays.extra.0", "not a date"),
        ({"holidays": {"not": ["17-08-2026"]}}, "holidays.not.0", "YYYY-MM-DD"),
    ],
)
def test_bad_settings_name_the_field(doc: object, field: str, words: str) -> None:
    with pytest.raises(SettingsError) as err:
        validate(doc)
    assert err.value.field == field
    assert words in err.value.problem


def test_days_off_are_the_countrys_holidays_plus_extra_minus_not() -> None:
    s = validate({"holidays": {"extra": ["2026-12-31"], "not": ["2026-12-25"]}})
    off = days_off(s, datetime.date(2026, 12, 1), datetime.date(2026, 12, 31))
    assert datetime.date(2026, 12, 24) in off  # cuti bersama (category government)
    assert datetime.date(2026, 12, 25) not in off  # Christmas, worked here
    assert datetime.date(2026, 12, 31) in off
    public_only = validate({"holidays": {"categories": ["public"]}})
    assert datetime.date(2026, 12, 24) not in days_off(
        public_only, datetime.date(2026, 12, 1), datetime.date(2026, 12, 31)
    )
    none = validate({"holidays": {"country": None, "extra": ["2026-08-18"]}})
    assert days_off(none, datetime.date(2026, 8, 1), datetime.date(2026, 8, 31)) == {datetime.date(2026, 8, 18)}


def test_the_file_round_trips_and_a_damaged_one_is_named(tmp_path: Path) -> None:
    assert load_settings(tmp_path) == settings.DEFAULT  # no file: defaults
    f = SettingsFile(tmp_path)
    new = validate({"annual_budget_idr": 1_000_000})
    assert f.put(new, "noc") is True
    assert f.put(new, "noc") is False  # the same again: nothing written, nothing audited
    assert load_settings(tmp_path) == new
    assert [e["action"] for e in read_audit(tmp_path / "audit.jsonl")] == ["settings"]
    for text, words in [
        ("{", "not valid JSON"),
        ('{"format": "kendali-settings/1"}', "not a Kendali settings file"),
        ('{"format": "kendali-settings/1", "settings": {"annual_budget_idr": -5}}', "at least 0"),
    ]:
        (tmp_path / SETTINGS_FILE).write_text(text)
        with pytest.raises(KendaliError) as err:
            load_settings(tmp_path)
        assert SETTINGS_FILE in str(err.value) and words in str(err.value)
    assert "settings.annual_budget_idr" in str(err.value)


def test_get_and_put_settings_through_the_api(tmp_path: Path) -> None:
    env = Env(tmp_path)
    r = env.call("GET", "/v1/settings")
    assert r.status_int == 200 and r.data == settings.DEFAULT.to_dict()
    noc = {"Authorization": f"Bearer {Env.tokens['noc']}"}
    r = env.call("PUT", "/v1/settings", {"annual_budget_idr": 1_500_000_000, "uplink_mbps": 800}, headers=noc)
    assert r.status_int == 200, r.data
    assert r.data["annual_budget_idr"] == 1_500_000_000 and r.data["office_hours"]["start"] == "07:30"
    assert env.call("GET", "/v1/settings").data == r.data
    saved = json.loads((tmp_path / "state" / SETTINGS_FILE).read_text())
    assert saved["settings"] == r.data
    (entry,) = read_audit(tmp_path / "state" / "audit.jsonl")
    assert entry["action"] == "settings" and entry["who"] == "noc"
    assert entry["before"]["annual_budget_idr"] == 2_300_000_000 and entry["after"]["uplink_mbps"] == 800


def test_refused_settings_change_nothing(tmp_path: Path) -> None:
    env = Env(tmp_path)
    assert_error(
        env.call("PUT", "/v1/settings", {"office_hours": {"days": ["fri", "fri"]}}), 400, "office_hours.days.1"
    )
    assert_error(env.call("PUT", "/v1/settings", raw=b"{"), 400, "(body)", "not valid JSON")
    grafana = {"Authorization": f"Bearer {Env.tokens['grafana']}"}
    assert_error(env.call("PUT", "/v1/settings", {}, headers=grafana), 403)
    assert not (tmp_path / "state" / SETTINGS_FILE).exists()
    assert not (tmp_path / "state" / "audit.jsonl").exists()


def test_a_damaged_settings_file_is_a_503_naming_it_and_a_put_repairs_it(tmp_path: Path) -> None:
    env = Env(tmp_path)
    (tmp_path / "state" / SETTINGS_FILE).write_text("not json")
    assert_error(env.call("GET", "/v1/settings"), 503, None, SETTINGS_FILE)
    assert env.call("PUT", "/v1/settings", {}).status_int == 200
    assert env.call("GET", "/v1/settings").data == settings.DEFAULT.to_dict()
    assert read_audit(tmp_path / "state" / "audit.jsonl")[0]["before"] is None


def test_the_schema_is_the_settings_definition() -> None:
    assert Settings.__doc__ and settings.SCHEMA["title"] == "Settings"
    assert settings.SCHEMA["properties"]["holidays"]["properties"]["country"]["type"] == ["string", "null"]
    assert "| `holidays.not` |" in settings.fields_markdown()
