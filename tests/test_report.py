"""The report document (controller.report.data), its csv, `kendali report` and `kendali history
simulate`, and GET /v1/report: on simulated and on crafted histories."""

from __future__ import annotations

import copy
import csv
import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from controller import cli
from controller.api.history import HISTORY_FILE, History
from controller.api.report_api import REPORT_SCHEMA
from controller.api.store import AUDIT_FILE, SETTINGS_FILE, STATE_FILE, PolicyStore
from controller.core import needs, settings
from controller.core.policy import Policy
from controller.errors import KendaliError
from controller.report import csvout, data
from controller.report.simulate import OUTGROW, simulate
from tests.test_rest import Env, assert_error

END = 1_796_083_200.0  # 2026-12-01 00:00 UTC, 08:00 WITA
DAY = 86400


def report_schema() -> dict[str, Any]:
    s = copy.deepcopy(REPORT_SCHEMA)
    s["properties"]["settings"] = settings.SCHEMA
    return s


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A month of simulated PPU history (made once: about 2 s)."""
    state = tmp_path_factory.mktemp("month") / "state"
    made = simulate(state, 30, END, seed=7)
    assert made["opds"] == 21 and made["seeded_policies"]
    return state


@pytest.fixture(scope="module")
def doc(month: Path) -> dict[str, Any]:
    return data.build(month, END - 30 * DAY, END, END)


# ---- a simulated month ---------------------------------------------------------------------------


def test_a_simulated_month_raises_the_outgrowers_and_lowers_the_idle_one(doc: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(report_schema()).validate(doc)
    assert doc["format"] == "kendali-report/1" and doc["simulated"] is True
    assert any("SIMULATED" in n for n in doc["notes"])
    by_id = {o["opd"]: o for o in doc["opds"]}
    for opd, direction in OUTGROW.items():
        rec = by_id[opd][direction]["recommendation"]
        assert rec["action"] == "raise", (opd, rec)
        assert rec["suggested_kbps"] >= by_id[opd]["cap_kbps"][direction] + needs.STEP_KBPS
        assert by_id[opd][direction]["dropped_bytes"] > 0
        assert by_id[opd][direction]["at_cap_office_share"] > needs.RAISE_AT_CAP_SHARE
    idle = by_id["inspektorat"]
    assert idle["down"]["recommendation"]["action"] == idle["up"]["recommendation"]["action"] == "lower"
    assert idle["down"]["recommendation"]["suggested_kbps"] < idle["cap_kbps"]["down"]
    s = doc["summary"]
    assert s["raise"] >= len(OUTGROW) and s["lower"] >= 1 and s["raise"] + s["lower"] + s["keep"] == s["opds"] == 21


def test_the_cost_splits_add_up_to_the_budget(doc: dict[str, Any]) -> None:
    budget = doc["settings"]["annual_budget_idr"]
    assert doc["summary"]["budget_idr"] == budget == settings.DEFAULT_BUDGET_IDR
    assert sum(o["cost"]["by_cap_idr"] for o in doc["opds"]) == budget
    assert sum(o["cost"]["by_use_idr"] for o in doc["opds"]) == budget
    # the idle OPD's allocation costs the most per Mbit/s it really uses
    worst = max(doc["opds"], key=lambda o: o["cost"]["idr_per_mbps_used"] or 0)
    assert worst["opd"] == "inspektorat"


def test_office_hours_are_busier_and_the_series_is_hourly(doc: dict[str, Any]) -> None:
    for o in doc["opds"]:
        if o["opd"] != "inspektorat":
            assert o["down"]["office"]["mean_bps"] > o["down"]["outside"]["mean_bps"]
        series = o["series"]
        assert series["step_s"] == 3600 and len(series["t"]) == 30 * 24
        assert len(series["down_bps"]) == len(series["cap_down_kbps"]) == len(series["t"])
        assert set(series["cap_down_kbps"]) == {o["cap_kbps"]["down"]}
    assert [o["down"]["volume_bytes"] for o in doc["opds"]] == sorted(
        (o["down"]["volume_bytes"] for o in doc["opds"]), reverse=True
    )


def test_links_and_the_uplink(doc: dict[str, Any]) -> None:
    links = {link["id"]: link for link in doc["links"]}
    assert not any(link["uplink"] for link in doc["links"])  # the uplink is the ISP subnet, not a link
    assert doc["uplink"]["purchased_mbps"] == 1000  # from the topology's uplink: the settings say null
    # what came from the ISP is what the OPDs downloaded, all of it through the uplink
    assert "isp" not in {o["opd"] for o in doc["opds"] + doc["subnets"]}
    p95 = doc["uplink"]["measured"]["p95_bps"]
    assert max(o["down"]["all"]["p95_bps"] for o in doc["opds"]) < p95 <= doc["uplink"]["sum_p95_down_bps"]
    assert doc["uplink"]["ratio_down"] == round(doc["uplink"]["sum_p95_down_bps"] / 1e9, 4)
    edge = links["link:sw-inspektorat~dist-penajam"]
    assert edge["a_to_b"]["p95_util"] < 0.01  # the idle OPD's access link
    assert all(0 <= (link["a_to_b"]["peak_util"] or 0) <= 1.5 for link in doc["links"])


def test_the_csv_carries_the_jsons_numbers(doc: dict[str, Any]) -> None:
    text = csvout.render(doc)
    assert text.startswith("\ufeff")
    table = list(csv.DictReader(io.StringIO(text[1:])))
    assert len(table) == 2 * len(doc["opds"])
    assert list(table[0]) == csvout.HEADER
    for row in table:
        o = next(x for x in doc["opds"] if x["opd"] == row["opd"])
        d = o[row["direction"]]
        assert int(row["all_p95_bps"]) == d["all"]["p95_bps"]
        assert float(row["office_at_cap_share"]) == d["office"]["at_cap_share"]
        assert int(row["volume_bytes"]) == d["volume_bytes"]
        assert row["action"] == d["recommendation"]["action"] and row["simulated"] == "true"
        assert row["recommendation_id"] == d["recommendation"]["text"]["id"]
    assert sum(int(r["by_cap_idr"]) for r in table if r["by_cap_idr"]) == doc["summary"]["budget_idr"]
    assert all(r["by_use_idr"] == "" for r in table if r["direction"] == "up")


def test_simulate_is_deterministic_and_replaces_only_simulated_history(tmp_path: Path, month: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for state in (a, b):
        simulate(state, 2, END, seed=3)
    ha, hb = History(a / HISTORY_FILE, reader=True), History(b / HISTORY_FILE, reader=True)
    try:
        assert ha.buckets("5m", "dinkes", END - DAY, END) == hb.buckets("5m", "dinkes", END - DAY, END)
    finally:
        ha.close()
        hb.close()
    simulate(a, 1, END, seed=4)  # a simulated history is simply replaced
    assert not list(a.glob("*.replaced-*"))


def test_simulate_refuses_measured_history_unless_forced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "state"
    state.mkdir()
    h = History(state / HISTORY_FILE)
    h.import_buckets("5m", "dinkes", "policy", "Dinas Kesehatan", [(int(END * 1000), 300_000, *[1] * 8)])
    h.close()
    assert cli.main(["history", "simulate", "--state-dir", str(state), "--days", "2"]) == 2
    err = capsys.readouterr().err
    assert "measured usage history" in err and "--force" in err and err.count("\n") == 1
    assert cli.main(["history", "simulate", "--state-dir", str(state), "--days", "2", "--force"]) == 0
    moved = list(state.glob("usage.sqlite.replaced-*"))
    assert moved, "the measured history is kept, moved aside"
    assert "SIMULATED" in capsys.readouterr().out


# ---- crafted histories ------------------------------------------------------------------------------


def policy(pid: str, down: int, up: int, net: str) -> Policy:
    return Policy(pid, pid.title(), (net,), down, up)


def rows(start: float, n: int, down_bps: float, up_bps: float = 0.0, dropped_bps: float = 0.0) -> list[tuple]:
    """n 5-minute buckets from ``start`` at constant rates."""
    b = lambda bps: int(bps * 300 / 8)  # noqa: E731
    return [
        (int((start + 300 * i) * 1000), 300_000, b(up_bps), 1, 0, 0, b(down_bps), 1, b(dropped_bps), 1)
        for i in range(n)
    ]


def state_with(
    tmp_path: Path, policies: dict[str, Policy], history: dict[str, list[tuple]], subnets: tuple[str, ...] = ("dc",)
) -> Path:
    """A state dir; history entries in ``subnets`` are declared subnets, the others OPDs (deleted
    ones if they have no policy)."""
    state = tmp_path / "state"
    store = PolicyStore(state)
    store.seed(policies)
    if history:
        h = History(state / HISTORY_FILE)
        for opd, r in history.items():
            h.import_buckets("5m", opd, "subnet" if opd in subnets else "policy", opd.title(), r)
        h.close()
    return state


def test_the_figures_are_the_buckets_own(tmp_path: Path) -> None:
    start = END - 2 * DAY
    rates = np.linspace(1e6, 50e6, 576)
    r = [row for i, x in enumerate(rates) for row in rows(start + 300 * i, 1, float(x))]
    state = state_with(tmp_path, {"dinkes": policy("dinkes", 20_000, 10_000, "10.10.7.0/24")}, {"dinkes": r})
    doc = data.build(state, start, END, END)
    o = doc["opds"][0]
    exact = np.array([x[6] * 8000 / 300_000 for x in r])
    assert o["down"]["all"]["p95_bps"] == round(float(np.percentile(exact, 95, method="inverted_cdf")))
    assert o["down"]["all"]["peak_bps"] == round(exact.max())
    assert o["down"]["volume_bytes"] == sum(x[6] for x in r)
    assert o["down"]["monthly_volume_bytes"] == round(sum(x[6] for x in r) * 15)  # 2 days scaled to 30
    assert o["down"]["office"]["samples"] + o["down"]["outside"]["samples"] == 576
    assert not any("covers" in n for n in doc["notes"])


def test_caps_of_their_time_from_the_audit_log(tmp_path: Path) -> None:
    start = END - 4 * DAY
    pol = {"dinkes": policy("dinkes", 20_000, 10_000, "10.10.7.0/24")}
    state = state_with(tmp_path, pol, {"dinkes": rows(start, 4 * 288, 15e6)})
    raised = Policy("dinkes", "Dinkes", ("10.10.7.0/24",), 30_000, 10_000)
    PolicyStore(state).put(raised, "noc")  # now: after the period
    lines = (state / AUDIT_FILE).read_text().splitlines()
    change = json.loads(lines[-1])
    change["time"] = "2026-11-29T00:00:00Z"  # two days before the end
    (state / AUDIT_FILE).write_text("\n".join(lines[:-1] + [json.dumps(change)]) + "\n")
    doc = data.build(state, start, END, END)
    o = doc["opds"][0]
    caps = dict(zip(o["series"]["t"], o["series"]["cap_down_kbps"], strict=True))
    assert caps[int(END - 3 * DAY)] == 20_000 and caps[int(END - DAY)] == 30_000
    assert o["cap_kbps"]["down"] == 30_000
    # 15 Mbit/s stays under 95 % of either meter (20 Mbit/s x 1.0456 x 0.95 = 19.9): never at the cap
    assert o["down"]["all"]["at_cap_share"] == 0.0


def test_no_history_yet_is_a_report_of_caps_and_a_note(tmp_path: Path) -> None:
    pol = {
        "dinkes": policy("dinkes", 20_000, 10_000, "10.10.7.0/24"),
        "rsud": policy("rsud", 60_000, 30_000, "10.10.11.0/24"),  # three times dinkes' caps
    }
    state = state_with(tmp_path, pol, {})
    doc = data.build(state, END - 30 * DAY, END, END)
    jsonschema.Draft202012Validator(report_schema()).validate(doc)
    assert doc["simulated"] is False and doc["summary"]["opds"] == 2
    assert [o["cost"]["by_cap_idr"] for o in sorted(doc["opds"], key=lambda o: o["opd"])] == [
        575_000_000,
        1_725_000_000,
    ]
    assert any("no usage history" in n for n in doc["notes"])
    assert any("not split by use" in n for n in doc["notes"])
    assert all(o["down"]["recommendation"]["action"] == "keep" for o in doc["opds"])
    assert "1 day" in doc["opds"][0]["down"]["recommendation"]["text"]["en"]


def test_deleted_opds_and_subnets_with_use_in_the_period_are_in_it(tmp_path: Path) -> None:
    start = END - 2 * DAY
    pol = {"dinkes": policy("dinkes", 20_000, 10_000, "10.10.7.0/24")}
    state = state_with(
        tmp_path,
        pol,
        {
            "dinkes": rows(start, 10, 1e6),
            "gone": rows(start, 10, 2e6),
            "dc": rows(start, 10, 3e6),
            "old": rows(start - 9 * DAY, 10, 1e6),
        },
    )
    doc = data.build(state, start, END, END)
    got = {o["opd"]: o for o in doc["opds"]}
    assert set(got) == {"dinkes", "gone"}  # "old" has nothing in this period
    # a declared subnet without a policy is listed apart: its traffic also counts in the OPDs' meters
    assert [(o["opd"], o["kind"], o["cap_kbps"]) for o in doc["subnets"]] == [
        ("dc", "subnet", {"down": None, "up": None})
    ]
    assert "cost" not in doc["subnets"][0]
    assert (
        got["gone"]["cost"]["by_cap_idr"] == 0 and got["dinkes"]["cost"]["by_cap_idr"] == doc["summary"]["budget_idr"]
    )
    assert [o["opd"] for o in doc["opds"]] == ["gone", "dinkes"]  # by volume
    assert any("covers" in n for n in doc["notes"])


def test_hourly_samples_where_five_minute_history_has_expired(tmp_path: Path) -> None:
    start = END - 3 * DAY
    state = state_with(tmp_path, {"dinkes": policy("dinkes", 20_000, 10_000, "10.10.7.0/24")}, {})
    h = History(state / HISTORY_FILE)
    hourly = [(int((start + 3600 * i) * 1000), 3_600_000, 0, 0, 0, 0, int(4e6 * 3600 / 8), 1, 0, 0) for i in range(72)]
    h.import_buckets("1h", "dinkes", "policy", "Dinkes", hourly)
    h.close()
    now = END + 500 * DAY  # 5-minute buckets of the period would be gone by now
    doc = data.build(state, start, END, now)
    assert doc["opds"][0]["down"]["all"]["samples"] == 72
    assert doc["opds"][0]["down"]["all"]["p95_bps"] == 4_000_000
    assert any("hourly" in n for n in doc["notes"])


def test_settings_shape_the_report(tmp_path: Path) -> None:
    start = END - 7 * DAY
    state = state_with(
        tmp_path, {"dinkes": policy("dinkes", 20_000, 10_000, "10.10.7.0/24")}, {"dinkes": rows(start, 7 * 288, 1e6)}
    )
    from controller.api.store import SettingsFile

    SettingsFile(state).put(
        settings.validate({"annual_budget_idr": 1000, "uplink_mbps": 50, "office_hours": {"days": ["sat"]}}), "t"
    )
    doc = data.build(state, start, END, END)
    assert doc["opds"][0]["cost"] == {**doc["opds"][0]["cost"], "by_cap_idr": 1000, "by_use_idr": 1000}
    assert doc["uplink"]["purchased_mbps"] == 50 and doc["uplink"]["ratio_down"] == round(1e6 / 50e6, 4)
    assert doc["opds"][0]["down"]["office"]["samples"] == 8.5 * 12  # one Saturday, 07:30-16:00


@pytest.mark.parametrize(
    "name, content, words",
    [
        (HISTORY_FILE, b"this is not a database at all" * 100, "usage history cannot be read"),
        (STATE_FILE, b"{", "not valid JSON"),
        (SETTINGS_FILE, b'{"format": "kendali-settings/1", "settings": {"uplink_mbps": -1}}', "uplink_mbps"),
    ],
)
def test_a_damaged_file_is_named(tmp_path: Path, name: str, content: bytes, words: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / name).write_bytes(content)
    with pytest.raises(KendaliError) as err:
        data.build(state, END - DAY, END, END)
    assert name in str(err.value) and words in str(err.value)


def test_a_report_period_is_checked() -> None:
    from controller.api.history import HistoryError

    for frm, to, field in [(END, END, "to"), (END - 900 * DAY, END, "from"), (-5.0, END, "from")]:
        with pytest.raises(HistoryError) as err:
            data.check_period(frm, to)
        assert err.value.field == field
    assert data.parse_when("2026-11-01", "from", END, "Asia/Makassar") == END - 30 * DAY - 8 * 3600
    assert data.parse_when("2026-11-01T00:00:00Z", "from", END, "Asia/Makassar") == END - 30 * DAY
    assert data.parse_when("now-1d", "from", END, "Asia/Makassar") == END - DAY


# ---- the command line -------------------------------------------------------------------------------


def test_kendali_report_writes_json_and_csv(month: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["report", "--state-dir", str(month), "--from", "2026-11-01", "--to", "2026-12-01"]
    out = tmp_path / "r.json"
    assert cli.main([*args, "--format", "json", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["period"]["from"] == "2026-11-01T00:00:00+08:00" and doc["simulated"] is True
    assert capsys.readouterr().out.strip() == str(out)
    assert cli.main([*args, "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("\ufeffperiod_from,")


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--from", "last week"], "--from: 'last week' is not a time"),
        (["--from", "2026-12-01", "--to", "2026-11-01"], "--to: 'to' must be later"),
        (["--from", "2020-01-01"], "--from: the period is"),
        (["--format", "json", "--out", "/proc/nope/r.json"], "--out: cannot write"),
    ],
)
def test_kendali_report_errors_name_the_flag(
    month: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: str
) -> None:
    assert cli.main(["report", "--state-dir", str(month), *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err


def test_kendali_report_of_a_missing_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", "--state-dir", str(tmp_path / "nope"), "--format", "json"]) == 2
    assert "no such state directory" in capsys.readouterr().err
    assert not (tmp_path / "nope").exists()


def test_kendali_report_writes_the_html_of_the_state_dir(
    month: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report", "--state-dir", str(month), "--from", "2026-11-24", "--to", "2026-12-01"]) == 0
    out = tmp_path / "report-2026-11-24-2026-12-01.html"
    assert str(out) in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    assert "SIMULATED" in text and "Disdukcapil" in text and "Rp2.300.000.000" in text
    assert cli.main(["report", "--state-dir", str(month), "--lang", "en", "--out", str(tmp_path / "en.html")]) == 0
    assert "IDR" in (tmp_path / "en.html").read_text(encoding="utf-8")


def test_html_without_its_libraries_says_so(
    month: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "controller.report.html", None)  # as if matplotlib were missing
    assert cli.main(["report", "--state-dir", str(month)]) == 2
    assert "--format: html cannot be made here" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


# ---- GET /v1/report ------------------------------------------------------------------------------------


def test_get_report_as_json_and_csv(tmp_path: Path, month: Path) -> None:
    env = Env(tmp_path)
    shutil.copy(month / HISTORY_FILE, tmp_path / "state" / HISTORY_FILE)
    shutil.copy(month / STATE_FILE, tmp_path / "state" / STATE_FILE)
    ran = []
    env.app.offload = lambda fn, *a: ran.append(fn) or fn(*a)
    grafana = {"Authorization": f"Bearer {Env.tokens['grafana']}"}  # a read token is enough
    r = env.call("GET", "/v1/report?from=2026-11-24&to=2026-12-01", headers=grafana)
    assert r.status_int == 200, r.body[:300]
    jsonschema.Draft202012Validator(report_schema()).validate(r.data)
    assert r.data["period"]["days"] == 7 and r.data["simulated"] and ran
    req = "/v1/report?from=2026-11-24&to=2026-12-01&format=csv"
    from webob import Request

    resp = Request.blank(req, headers=grafana).get_response(env.app)
    assert resp.status_int == 200 and resp.content_type == "text/csv"
    assert 'filename="report-2026-11-24-2026-12-01.csv"' in resp.headers["Content-Disposition"]
    assert len(resp.text.splitlines()) == 1 + 2 * 21


@pytest.mark.parametrize(
    "query, field, words",
    [
        ("from=yesterday", "from", "not a time"),
        ("from=2026-11-02&to=2026-11-01", "to", "later"),
        ("format=pdf", "format", "json, csv or html"),
        ("lang=fr", "lang", "id or en"),
        ("step=1h", "step", "unknown query parameter"),
        ("from=3000-01-01&to=3000-02-01", "to", "1970-2199"),
    ],
)
def test_get_report_bad_queries(tmp_path: Path, query: str, field: str, words: str) -> None:
    assert_error(Env(tmp_path).call("GET", f"/v1/report?{query}"), 400, field, words)


def test_get_report_with_a_damaged_state_is_503(tmp_path: Path) -> None:
    env = Env(tmp_path)
    (tmp_path / "state" / STATE_FILE).write_text("{")
    assert_error(env.call("GET", "/v1/report"), 503, None, STATE_FILE)


def test_get_report_html(tmp_path: Path, month: Path) -> None:
    env = Env(tmp_path)
    shutil.copy(month / HISTORY_FILE, tmp_path / "state" / HISTORY_FILE)
    from webob import Request

    grafana = {"Authorization": f"Bearer {Env.tokens['grafana']}"}
    resp = Request.blank("/v1/report?from=now-7d&format=html&lang=en", headers=grafana).get_response(env.app)
    assert resp.status_int == 200 and resp.content_type == "text/html"
    assert "SIMULATED" in resp.text and "Disdukcapil" in resp.text


@pytest.mark.parametrize(
    "argv, words",
    [
        (["history", "simulate", "--days", "0"], "--days: 0 days is outside 1-400"),
        (["history", "simulate", "--days", "a month"], "--days: not a whole number"),
        (["history", "simulate", "--seed", "x"], "--seed: not a whole number"),
        (["report", "--format", "pdf"], "--format: invalid choice"),
        (["report", "--lang", "fr"], "--lang: invalid choice"),
        (["bench", "reports"], "invalid choice"),
    ],
)
def test_bad_report_and_simulate_flags(capsys: pytest.CaptureFixture[str], argv: list[str], words: str) -> None:
    with pytest.raises(SystemExit) as ei:
        cli.build_parser().parse_args(argv)
    assert ei.value.code == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1, err


def test_simulate_end_is_local_midnight_and_a_bad_one_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    assert cli.main(["history", "simulate", "--state-dir", str(state), "--days", "1", "--end", "soon"]) == 2
    assert "--end: 'soon' is not a time" in capsys.readouterr().err
    assert cli.main(["history", "simulate", "--state-dir", str(state), "--days", "1", "--end", "2026-12-01"]) == 0
    h = History(state / HISTORY_FILE, reader=True)
    try:
        last = max(h.columns("5m", "dinkes", 0, 2e9, [0])[0])
    finally:
        h.close()
    assert last / 1000 == END - 8 * 3600 - 300  # the last bucket starts at 23:55 WITA


def test_a_damaged_block_in_the_history_is_named(tmp_path: Path) -> None:
    start = END - 2 * DAY
    state = state_with(
        tmp_path, {"dinkes": policy("dinkes", 20_000, 10_000, "10.10.7.0/24")}, {"dinkes": rows(start, 600, 1e6)}
    )
    h = History(state / HISTORY_FILE)
    h.db.execute("UPDATE blocks SET data = substr(data, 1, 60) || x'00ff00ff' || substr(data, 65)")
    h.close()
    with pytest.raises(KendaliError) as err:
        data.build(state, start, END, END)
    assert HISTORY_FILE in str(err.value) and "damaged" in str(err.value)
