"""REST handlers for the report and its settings, and their OpenAPI paths.

    GET /v1/report?from=&to=&format=&lang=      the report document (controller.report.data.build) as json,
                                                or csv, or html (format=html&lang=en)
    GET /v1/settings                            the report's settings (budget, uplink, office hours, holidays)
    PUT /v1/settings                            replace them (write token); missing fields take defaults;
                                                audited (action "settings", who = the token's name)

Building a report reads the whole period's history (a year of 200 OPDs: seconds): the
controller passes ``offload`` (eventlet.tpool.execute) so that it runs in an OS thread and
the event loop goes on meanwhile; without it (tests, tools) it runs in place.

Errors are the policy API's: ``{"error": {"status", "field", "problem"}}``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from webob import Request, Response

from controller.api.history import HistoryError
from controller.api.replies import HttpError, json_response
from controller.api.store import SettingsFile
from controller.core import settings as settings_mod
from controller.core.settings import SettingsError
from controller.errors import KendaliError

log = logging.getLogger("kendali.rest")


MEDIA = {"json": "application/json", "csv": "text/csv", "html": "text/html"}
Offload = Callable[..., Any]


def _inline(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def report(req: Request, state_dir: Path, offload: Offload | None = None) -> Response:
    from controller.report import data

    unknown = sorted(set(req.GET) - {"from", "to", "format", "lang"})
    if unknown:
        raise HttpError(400, f"unknown query parameter {unknown[0]!r}; use from, to, format and lang", unknown[0])
    fmt = req.GET.get("format", "json")
    if fmt not in data.FORMATS:
        raise HttpError(400, f"{fmt[:40]!r} is not a format; use json, csv or html", "format")
    lang = req.GET.get("lang", "id")
    if lang not in data.LANGS:
        raise HttpError(400, f"{lang[:40]!r} is not a language of the report; use id or en", "lang")
    now = time.time()
    try:
        frm, to = data.period_of(state_dir, req.GET.get("from"), req.GET.get("to"), now)
        if fmt == "html":
            data.html_renderer()
        # the work (seconds for a year of history) off the event loop, rendering included
        text = (offload or _inline)(_make, state_dir, frm, to, now, fmt, lang)
    except HistoryError as exc:
        raise HttpError(400, exc.problem, exc.field) from None
    except data.Unavailable as exc:
        raise HttpError(400, str(exc), "format") from None
    except KendaliError as exc:  # a damaged state file: the controller's problem, not the request's
        raise HttpError(503, f"the report cannot be made: {exc}") from None
    resp = Response(status=200, body=text.encode("utf-8"), content_type=MEDIA[fmt], charset="utf-8")
    resp.headers["Cache-Control"] = "no-store"
    if fmt == "csv":
        resp.headers["Content-Disposition"] = f'attachment; filename="{_name(frm, to, state_dir, fmt)}"'
    return resp


def _make(state_dir: Path, frm: float, to: float, now: float, fmt: str, lang: str) -> str:
    from controller.report import data

    return data.render(data.build(state_dir, frm, to, now), fmt, lang)


def _name(frm: float, to: float, state_dir: Path, fmt: str) -> str:
    import datetime
    import zoneinfo

    from controller.api.store import load_settings

    zone = zoneinfo.ZoneInfo(load_settings(state_dir).office_hours.timezone)
    day = [datetime.datetime.fromtimestamp(t, zone).date().isoformat() for t in (frm, to)]
    return f"report-{day[0]}-{day[1]}.{fmt}"


def get_settings(req: Request, file: SettingsFile) -> Response:
    try:
        return json_response(200, file.get().to_dict())
    except KendaliError as exc:
        raise HttpError(503, str(exc)) from None


def put_settings(req: Request, body: Any, file: SettingsFile, who: str) -> Response:
    try:
        new = settings_mod.validate(body)
    except SettingsError as exc:
        raise HttpError(400, exc.problem, exc.field) from None
    with file.lock:
        try:
            changed = file.put(new, who)
        except OSError as exc:
            log.error("cannot save the settings: %s", exc)
            raise HttpError(503, f"could not save the settings ({exc.strerror or exc}); nothing was changed") from None
    if changed:
        log.info("settings changed by token %r", who)
    return json_response(200, new.to_dict())


# ---- OpenAPI 3.1 fragments (merged into GET /v1/openapi.json) ------------------------------------

_ERROR = {
    "description": "an error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}

_INT = {"type": "integer"}
_INT_OR_NULL = {"type": ["integer", "null"]}
_NUM_OR_NULL = {"type": ["number", "null"]}


def _obj(props: dict[str, Any], description: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "required": list(props), "properties": props}
    if description:
        out["description"] = description
    return out


_STATS = _obj(
    {
        "mean_bps": {**_INT_OR_NULL, "description": "delivered bytes x 8 over the time covered"},
        "p95_bps": {**_INT_OR_NULL, "description": "95th percentile (nearest rank) of the 5-minute delivered rates"},
        "peak_bps": {**_INT_OR_NULL, "description": "largest 5-minute delivered rate"},
        "samples": _INT,
        "demand_p95_bps": {**_INT_OR_NULL, "description": "95th percentile of delivered + dropped"},
        "at_cap_share": {**_NUM_OR_NULL, "description": "share of the samples at the cap of their time (0-1)"},
    }
)
_DIRECTION = _obj(
    {
        "office": _STATS,
        "outside": _STATS,
        "all": _STATS,
        "volume_bytes": _INT,
        "monthly_volume_bytes": {**_INT, "description": "volume scaled to 30 days of the time covered"},
        "dropped_bytes": _INT,
        "at_cap_office_share": _NUM_OR_NULL,
        "recommendation": _obj(
            {
                "action": {"enum": ["raise", "lower", "keep"]},
                "suggested_kbps": _INT_OR_NULL,
                "text": _obj({"id": {"type": "string"}, "en": {"type": "string"}}),
            }
        ),
    }
)
_LINK_WAY = _obj(
    {"peak_bps": _INT_OR_NULL, "p95_bps": _INT_OR_NULL, "peak_util": _NUM_OR_NULL, "p95_util": _NUM_OR_NULL}
)
_SERIES_LIST = {"type": "array", "items": _INT_OR_NULL}
_OPD: dict[str, Any] = {
    "opd": {"type": "string"},
    "name": {"type": "string"},
    "kind": {"enum": ["policy", "subnet"]},
    "cap_kbps": _obj({"down": _INT_OR_NULL, "up": _INT_OR_NULL}),
    "down": _DIRECTION,
    "up": _DIRECTION,
    "series": _obj(
        {
            "step_s": _INT,
            "t": {"type": "array", "items": _INT},
            "down_bps": _SERIES_LIST,
            "up_bps": _SERIES_LIST,
            "cap_down_kbps": _SERIES_LIST,
            "cap_up_kbps": _SERIES_LIST,
        }
    ),
}
_COST = _obj(
    {
        "by_cap_idr": _INT,
        "by_use_idr": _INT,
        "cap_share": {"type": "number"},
        "use_share": {"type": "number"},
        "idr_per_mbps_used": _INT_OR_NULL,
    }
)
REPORT_SCHEMA: dict[str, Any] = {
    **_obj(
        {
            "format": {"const": "kendali-report/1"},
            "simulated": {"type": "boolean", "description": "true: the history was made by kendali history simulate"},
            "generated_at": {"type": "string"},
            "period": _obj(
                {
                    "from": {"type": "string"},
                    "to": {"type": "string"},
                    "days": {"type": "number"},
                    "timezone": {"type": "string"},
                    "covered_s": {"type": "number"},
                }
            ),
            "settings": {"$ref": "#/components/schemas/Settings"},
            "summary": _obj(
                {
                    "budget_idr": _INT,
                    "opds": _INT,
                    "down_bytes": _INT,
                    "up_bytes": _INT,
                    "mean_down_bps": _INT,
                    "mean_up_bps": _INT,
                    "idr_per_mbps_used": _INT_OR_NULL,
                    "raise": _INT,
                    "lower": _INT,
                    "keep": _INT,
                }
            ),
            "uplink": _obj(
                {
                    "purchased_mbps": _NUM_OR_NULL,
                    "sum_p95_down_bps": _INT,
                    "sum_p95_up_bps": _INT,
                    "ratio_down": _NUM_OR_NULL,
                    "measured": {
                        "type": ["object", "null"],
                        "properties": {"peak_bps": _INT_OR_NULL, "p95_bps": _INT_OR_NULL},
                    },
                }
            ),
            "opds": {"type": "array", "items": _obj({**_OPD, "cost": _COST}), "description": "OPDs with a policy"},
            "subnets": {
                "type": "array",
                "items": _obj(_OPD),
                "description": "Declared subnets without a policy (a server farm): not in the ranking or the "
                "cost split, since their traffic also passes the OPDs' own meters",
            },
            "links": {
                "type": "array",
                "items": _obj(
                    {
                        "id": {"type": "string"},
                        "a": {"type": "string"},
                        "b": {"type": "string"},
                        "capacity_mbps": _NUM_OR_NULL,
                        "uplink": {"type": "boolean"},
                        "a_to_b": _LINK_WAY,
                        "b_to_a": _LINK_WAY,
                    }
                ),
            },
            "notes": {"type": "array", "items": {"type": "string"}},
            "notes_id": {
                "type": "array",
                "items": {"type": "string"},
                "description": "The same notes in Indonesian, in the same order",
            },
        },
        "The usage report (docs/report.md): needs and cost per OPD over a period",
    ),
    "title": "Report",
}

OPENAPI_SCHEMAS: dict[str, Any] = {"Settings": settings_mod.SCHEMA, "Report": REPORT_SCHEMA}

OPENAPI_PATHS: dict[str, Any] = {
    "/v1/report": {
        "get": {
            "summary": "The usage report: needs, recommendations and cost per OPD over a period (json, csv or html)",
            "parameters": [
                {
                    "name": "from",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "A date or time (local to the settings' time zone unless it has an offset), "
                    "unix seconds or now-30d (default: 30 days before to)",
                },
                {
                    "name": "to",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "as from, exclusive (default: now)",
                },
                {
                    "name": "format",
                    "in": "query",
                    "schema": {"enum": ["json", "csv", "html"]},
                    "description": "default json",
                },
                {"name": "lang", "in": "query", "schema": {"enum": ["id", "en"]}, "description": "html: default id"},
            ],
            "responses": {
                "200": {
                    "description": "the report",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Report"}},
                        "text/csv": {"schema": {"type": "string"}},
                        "text/html": {"schema": {"type": "string"}},
                    },
                },
                "400": _ERROR,
                "503": _ERROR,
            },
        }
    },
    "/v1/settings": {
        "get": {
            "summary": "The report's settings: annual budget, purchased uplink, office hours, holidays",
            "responses": {
                "200": {
                    "description": "the settings, every field given",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Settings"}}},
                },
                "503": _ERROR,
            },
        },
        "put": {
            "summary": "Replace the report's settings (fields left out take their defaults)",
            "body": "Settings",
            "responses": {
                "200": {
                    "description": "the settings now in force, every field given",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Settings"}}},
                },
                "400": _ERROR,
                "413": _ERROR,
                "503": _ERROR,
            },
        },
    },
}
