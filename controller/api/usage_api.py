"""REST handlers for who uses what, and their OpenAPI paths.

    GET /v1/usage                                every counted OPD now: totals, rates, drops, share of cap
    GET /v1/usage/{opd}?from=&to=&step=          one OPD's history (deleted OPDs too)
    GET /metrics                                 Prometheus text format (controller.api.metrics)

Errors are the policy API's: ``{"error": {"status", "field", "problem"}}``.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from webob import Request, Response

from controller.api.history import HistoryError, parse_duration, parse_time
from controller.api.replies import HttpError, json_response

DEFAULT_RANGE_S = 86400


class UsageView(Protocol):
    """What the controller offers these handlers (a fake in tests)."""

    def usage(self) -> dict[str, Any]: ...

    def usage_history(self, opd: str, frm: float, to: float, step: int | None, now: float) -> dict[str, Any] | None:
        """None when the history has never seen the OPD. May block on the disk: the
        controller runs it off its event loop."""
        ...

    def metrics(self) -> tuple[bytes, str]: ...


def _has(view: Any, what: str) -> Any:
    fn = getattr(view, what, None)
    if fn is None:
        raise HttpError(503, "usage is not collected by this controller")
    return fn


def usage(req: Request, view: Any) -> Response:
    return json_response(200, _has(view, "usage")())


def usage_of(req: Request, view: Any, opd: str) -> Response:
    now = time.time()
    unknown = sorted(set(req.GET) - {"from", "to", "step"})
    if unknown:
        raise HttpError(400, f"unknown query parameter {unknown[0]!r}; use from, to and step", unknown[0])
    try:
        to = parse_time(req.GET["to"], "to", now) if "to" in req.GET else now
        frm = parse_time(req.GET["from"], "from", now) if "from" in req.GET else to - DEFAULT_RANGE_S
        step = parse_duration(req.GET["step"], "step") if "step" in req.GET else None
        body = _has(view, "usage_history")(opd, frm, to, step, now)
    except HistoryError as exc:
        raise HttpError(400, exc.problem, exc.field) from None
    if body is None:
        raise HttpError(404, f"no usage recorded for OPD {opd!r}; GET /v1/usage lists them", "opd")
    return json_response(200, body)


def metrics(req: Request, view: Any) -> Response:
    text, ctype = _has(view, "metrics")()
    resp = Response(status=200, body=text)
    resp.headers["Content-Type"] = ctype
    resp.headers["Cache-Control"] = "no-store"
    return resp


# ---- OpenAPI 3.1 fragments (merged into GET /v1/openapi.json) ------------------------------------

_DIRECTION = {
    "type": "object",
    "properties": {
        "bytes": {
            "type": "integer",
            "description": "Delivered: Ethernet frames that passed the OPD's meters, "
            "since Kendali first counted the OPD",
        },
        "packets": {"type": "integer"},
        "dropped_bytes": {"type": "integer", "description": "Dropped by the OPD's meters: demand above its cap"},
        "dropped_packets": {"type": "integer"},
        "bps": {"type": "integer", "description": "Delivered bits per second over the last poll interval"},
        "dropped_bps": {"type": "integer"},
        "cap_kbps": {"type": ["integer", "null"], "description": "The policy's cap; null: not capped"},
        "share_of_cap": {
            "type": ["number", "null"],
            "description": "bps over the meter rate (the cap plus frame overhead, 1514/1448): 1.0 is at the cap",
        },
        "allocation_kbps": {
            "type": ["integer", "null"],
            "description": "Only with sharing on (kendali controller --sharing; absent with static caps): the "
            "allocation in force: its share of the purchased uplink, in the cap's unit (the allocations add up "
            "to at most the uplink). null: no policy, or before its first period",
        },
        "meter_kbps": {
            "type": ["integer", "null"],
            "description": "Only with sharing on: the rate of the OPD's aggregate meter on its Internet traffic: "
            "its allocation, or more while it is quiet or below its guarantee (room to come back, docs/sharing.md)",
        },
        "guarantee_kbps": {
            "type": ["integer", "null"],
            "description": "Only with sharing on: the policy's guarantee (download_min_kbps, upload_min_kbps)",
        },
        "demand_bps": {
            "type": ["integer", "null"],
            "description": "Only with sharing on: the demand sharing estimated for its last period (the most "
            "offered over its window, times a margin, probed up when held at its meter), whole frames like bps",
        },
    },
}
_SERIES_DIRECTION = {
    "type": "object",
    "description": "One list per field, a value per step (bps: null where nothing was counted)",
    "properties": {
        k: {"type": "array", "items": {"type": ["integer", "null"]}}
        for k in ("bytes", "packets", "dropped_bytes", "dropped_packets", "bps", "dropped_bps")
    },
}
_ERROR = {
    "description": "an error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": {
                        "type": "object",
                        "properties": {
                            "status": {"type": "integer"},
                            "field": {"type": ["string", "null"]},
                            "problem": {"type": "string"},
                        },
                    }
                },
            }
        }
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "OpdUsage": {
        "type": "object",
        "properties": {
            "opd": {"type": "string", "description": "OPD id: a policy's id, or a declared subnet's id (no policy)"},
            "name": {"type": "string"},
            "kind": {"enum": ["policy", "subnet"]},
            "since": {"type": "number", "description": "Unix time Kendali first counted it"},
            "up": _DIRECTION,
            "down": _DIRECTION,
            "window": {
                "type": ["object", "null"],
                "description": "The span the rates cover",
                "properties": {"from": {"type": "number"}, "to": {"type": "number"}, "seconds": {"type": "number"}},
            },
        },
    },
    "UsageSeries": {
        "type": "object",
        "properties": {
            "opd": {"type": "string"},
            "from": {"type": "number"},
            "to": {"type": "number"},
            "step": {"type": "integer", "description": "Seconds per step (raised to the tier's bucket)"},
            "tier": {"enum": ["raw", "5m", "1h"]},
            "t": {
                "type": "array",
                "items": {"type": "number"},
                "description": "Start of each step (multiples of step since the epoch); the other lists align",
            },
            "seconds": {
                "type": "array",
                "items": {"type": "number"},
                "description": "Seconds of each step the controller counted (less while it was down)",
            },
            "up": _SERIES_DIRECTION,
            "down": _SERIES_DIRECTION,
            "summary": {
                "type": "object",
                "description": "The whole range: totals, mean bps, and max, p99 and "
                "p95 of the 5-minute rates (hourly once 5-minute history has expired: see basis)",
            },
        },
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/v1/usage": {
        "get": {
            "summary": "Every counted OPD: totals, current rates, drops, share of cap",
            "responses": {
                "200": {
                    "description": "usage",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "interval_s": {"type": "number"},
                                    "at": {"type": "number"},
                                    "opds": {"type": "array", "items": {"$ref": "#/components/schemas/OpdUsage"}},
                                },
                            }
                        }
                    },
                }
            },
        }
    },
    "/v1/usage/{opd}": {
        "get": {
            "summary": "One OPD's usage history (a renamed OPD keeps it, a deleted one keeps its past)",
            "parameters": [
                {"name": "opd", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "from",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Unix seconds, ISO 8601 or now-7d (default: 24 h before to)",
                },
                {"name": "to", "in": "query", "schema": {"type": "string"}, "description": "as from (default: now)"},
                {
                    "name": "step",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Seconds or 5m, 1h, 1d (default: about 300 steps)",
                },
            ],
            "responses": {
                "200": {
                    "description": "series",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/UsageSeries"}}},
                },
                "400": _ERROR,
                "404": _ERROR,
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus text format: kendali_* usage counters, link utilisation, controller health",
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}},
        }
    },
}
