"""The report's settings: the annual budget, the purchased uplink, office hours, holidays.

One document, kept in ``<state-dir>/settings.json`` (controller.api.store) and changed with
``PUT /v1/settings``::

    {"annual_budget_idr": 2300000000,
     "uplink_mbps": null,
     "office_hours": {"timezone": "Asia/Makassar", "days": ["mon", "tue", "wed", "thu", "fri"],
                      "start": "07:30", "end": "16:00"},
     "holidays": {"country": "ID", "categories": ["public", "government"], "extra": [], "not": []}}

Every field may be left out and takes its default (a nested object's fields too), so
``{}`` is the default document. The dataclasses below are the single definition: their
``Spec`` gives ``SCHEMA`` (REST, OpenAPI), the field table of docs/report.md and the error
messages (controller.core.schema). What a JSON Schema cannot say (a real IANA zone, a
country the holidays library knows, start before end, real calendar dates) is checked in
``validate``.

Pure: no I/O (the holidays library and zoneinfo are data).
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import functools
import zoneinfo
from dataclasses import dataclass
from typing import Annotated, Any

import holidays as holidays_lib
import jsonschema

from controller.core import schema
from controller.core.schema import Spec, short

DEFAULT_BUDGET_IDR = 2_300_000_000
MAX_BUDGET_IDR = 10**15  # a thousand trillion rupiah: larger is a typo
MAX_UPLINK_MBPS = 1_000_000  # 1 Tbit/s
MAX_DATES = 366
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
TIME_PATTERN = "^([01][0-9]|2[0-3]):[0-5][0-9]$"
END_PATTERN = "^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
DATE_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
COUNTRY_PATTERN = "^[A-Z]{2}$"


@dataclass(frozen=True)
class OfficeHours:
    """When the offices work: samples that start then are office time, all others outside it."""

    timezone: Annotated[
        str,
        Spec(
            "IANA time zone of the offices (Asia/Makassar is WITA, UTC+8; Asia/Jakarta WIB; Asia/Jayapura WIT).",
            min_length=1,
            max_length=64,
            examples=("Asia/Makassar",),
        ),
    ] = "Asia/Makassar"
    days: Annotated[
        tuple[str, ...],
        Spec(
            "Office days.",
            min_items=1,
            max_items=7,
            item_choices=DAYS,
            item_doc="mon, tue, wed, thu, fri, sat or sun",
        ),
    ] = ("mon", "tue", "wed", "thu", "fri")
    start: Annotated[
        str,
        Spec(
            "Office hours start, local time HH:MM (inclusive).",
            pattern=TIME_PATTERN,
            examples=("07:30",),
            advice={"pattern": "write the local time as HH:MM, e.g. 07:30"},
        ),
    ] = "07:30"
    end: Annotated[
        str,
        Spec(
            "Office hours end, local time HH:MM (exclusive; 24:00 is midnight); later than start.",
            pattern=END_PATTERN,
            examples=("16:00",),
            advice={"pattern": "write the local time as HH:MM, e.g. 16:00"},
        ),
    ] = "16:00"


@dataclass(frozen=True)
class Holidays:
    """Days off on office days: the country's holidays, plus extra days, minus days worked anyway."""

    country: Annotated[
        str | None,
        Spec(
            "ISO 3166 country code whose public holidays are days off (python-holidays); null: none.",
            pattern=COUNTRY_PATTERN,
            nullable=True,
            examples=("ID",),
            advice={"pattern": "use the two capital letters of the country, e.g. ID"},
        ),
    ] = "ID"
    categories: Annotated[
        tuple[str, ...],
        Spec(
            "Which of the country's holiday lists count (python-holidays categories; for ID 'government' "
            "is the cuti bersama, the joint leave days of civil servants).",
            max_items=8,
            item_doc="a category name, e.g. public",
        ),
    ] = ("public", "government")
    extra: Annotated[
        tuple[str, ...],
        Spec(
            "More days off (e.g. a regional holiday or cuti bersama not in the library), ISO dates.",
            max_items=MAX_DATES,
            item_pattern=DATE_PATTERN,
            item_doc="YYYY-MM-DD",
            advice={"pattern": "write dates as YYYY-MM-DD, e.g. 2026-12-24"},
        ),
    ] = ()
    not_: Annotated[
        tuple[str, ...],
        Spec(
            "Holidays of the country that are working days here, ISO dates.",
            max_items=MAX_DATES,
            item_pattern=DATE_PATTERN,
            item_doc="YYYY-MM-DD",
            advice={"pattern": "write dates as YYYY-MM-DD, e.g. 2026-08-17"},
        ),
    ] = ()


@dataclass(frozen=True)
class Settings:
    """What the usage report needs besides the history: money, the uplink bought, office time."""

    annual_budget_idr: Annotated[
        int,
        Spec(
            "The regency's annual network budget, whole rupiah; split per OPD by cap and by use.",
            unit="IDR",
            minimum=0,
            maximum=MAX_BUDGET_IDR,
            examples=(DEFAULT_BUDGET_IDR,),
        ),
    ] = DEFAULT_BUDGET_IDR
    uplink_mbps: Annotated[
        float | None,
        Spec(
            "Purchased ISP capacity, Mbit/s; null: the declared topology's uplink capacity_mbps, if any.",
            unit="Mbit/s",
            above=0,
            maximum=MAX_UPLINK_MBPS,
            nullable=True,
            examples=(1000,),
        ),
    ] = None
    office_hours: Annotated[OfficeHours, Spec("Office hours.")] = OfficeHours()
    holidays: Annotated[Holidays, Spec("Public holidays and other days off.")] = Holidays()

    def to_dict(self) -> dict[str, Any]:
        """The whole document, defaults included (what GET /v1/settings answers and the report holds)."""
        return _full(self)


def _full(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cls: type = type(obj)
    for f in schema.fields(cls):
        value = getattr(obj, f.attr)
        if dataclasses.is_dataclass(value):
            out[f.name] = _full(value)
        elif isinstance(value, tuple):
            out[f.name] = list(value)
        else:
            out[f.name] = value
    return out


DEFAULT = Settings()
SCHEMA: dict[str, Any] = schema.json_schema(Settings, "Settings", (Settings.__doc__ or "").strip())
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
_TOP = "(body)"
_FIELD_HINTS = {
    "budget": "use annual_budget_idr (whole rupiah a year)",
    "budget_idr": "use annual_budget_idr (whole rupiah a year)",
    "uplink": "use uplink_mbps (Mbit/s)",
    "uplink_kbps": "use uplink_mbps (Mbit/s)",
    "timezone": "timezone belongs in office_hours",
    "tz": "use office_hours.timezone",
}


class SettingsError(Exception):
    """The settings were refused: ``field`` (a dotted path) and ``problem``, as the REST API answers them."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        self.status = 400
        super().__init__(f"{field}: {problem}")


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@functools.cache
def _countries() -> dict[str, Any]:
    return dict(holidays_lib.list_supported_countries())


def _categories(country: str) -> tuple[str, ...]:
    cls = holidays_lib.country_holidays(country, years=[]).__class__
    return tuple(getattr(cls, "supported_categories", ("public",)))


def _guess(word: str, choices: Any) -> str:
    found = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {found[0]}?)" if found else ""


def _date(text: str, field: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise SettingsError(field, f"{short(text)} is not a date of the calendar") from None


def _build(cls: type, data: dict[str, Any]) -> Any:
    """The dataclass from schema-valid data: given fields converted, absent ones at their default."""
    kwargs: dict[str, Any] = {}
    for f in schema.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if isinstance(f.hint, type) and dataclasses.is_dataclass(f.hint):
            value = _build(f.hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        elif f.hint is int and value is not None:
            value = int(value)  # jsonschema takes 2.3e9 as an integer (JSON has one number type)
        elif f.hint is float and value is not None:
            value = float(value)
        kwargs[f.attr] = value
    return cls(**kwargs)


def validate(data: Any) -> Settings:
    """Check ``data`` (parsed JSON) completely and build the Settings, or raise SettingsError."""
    error = schema.first_error(_VALIDATOR, data, Settings, _TOP, _FIELD_HINTS)
    if error:
        raise SettingsError(*error)
    s: Settings = _build(Settings, data)
    oh, hol = s.office_hours, s.holidays
    if oh.timezone not in _zones():
        raise SettingsError(
            "office_hours.timezone",
            f"{short(oh.timezone)} is not an IANA time zone{_guess(oh.timezone, _zones())}; "
            "e.g. Asia/Makassar (WITA), Asia/Jakarta (WIB), Asia/Jayapura (WIT)",
        )
    for i, day in enumerate(oh.days):
        if day in oh.days[:i]:
            raise SettingsError(f"office_hours.days.{i}", f"{day} is listed twice")
    if oh.end <= oh.start:
        raise SettingsError(
            "office_hours.end", f"{oh.end} is not later than start {oh.start}; office hours end on the day they start"
        )
    if hol.country is not None:
        if hol.country not in _countries():
            raise SettingsError(
                "holidays.country",
                f"{short(hol.country)} is not a country the holidays library knows{_guess(hol.country, _countries())}",
            )
        known = _categories(hol.country)
        for i, cat in enumerate(hol.categories):
            if cat not in known:
                raise SettingsError(
                    f"holidays.categories.{i}",
                    f"{short(cat)} is not a holiday category of {hol.country}; it has: {', '.join(known)}",
                )
    for name, dates in (("extra", hol.extra), ("not", hol.not_)):
        for i, text in enumerate(dates):
            _date(text, f"holidays.{name}.{i}")
    return s


def minutes(hhmm: str) -> int:
    """'07:30' -> 450; '24:00' -> 1440."""
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def days_off(s: Settings, first: datetime.date, last: datetime.date) -> set[datetime.date]:
    """The holidays between ``first`` and ``last`` (inclusive): the country's, of the chosen
    categories, plus ``extra``, minus ``not`` (weekends are the office days' business, not this)."""
    hol = s.holidays
    out: set[datetime.date] = set()
    if hol.country is not None and hol.categories:
        years = range(first.year, last.year + 1)
        found = holidays_lib.country_holidays(hol.country, years=years, categories=hol.categories)
        out = {d for d in found if first <= d <= last}
    out |= {d for d in map(datetime.date.fromisoformat, hol.extra) if first <= d <= last}
    out -= set(map(datetime.date.fromisoformat, hol.not_))
    return out


def fields_markdown() -> str:
    """The settings field table of docs/report.md, generated from Settings (a test keeps them equal)."""
    return schema.markdown_table(Settings)
