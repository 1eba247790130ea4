"""GET /v1/events: what happened lately, newest first, for the web console and people.

Two sources, merged by time:
- the controller's own recent events (controller.core.events: failovers, links silent or
  up, switches connecting and disconnecting, drift the audit repaired, topology check
  results), the last 500, kept in memory;
- the audit log (audit.jsonl, controller.api.store): every accepted policy change and
  settings change, with ``who``, the name of the token that made it.

    GET /v1/events?since=&limit=
        since   unix seconds, ISO 8601 or now-1h (default: no bound)
        limit   1-1000 (default 100)

Errors are the policy API's: ``{"error": {"status", "field", "problem"}}``.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

from webob import Request, Response

from controller.api.history import HistoryError, parse_time
from controller.api.replies import HttpError, json_response
from controller.api.store import PolicyStore
from controller.core.events import MAX_EVENTS

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PARAMS = ("since", "limit")
# The fields of a policy an audit line's text mentions when they change, in this order.
_POLICY_FIELDS = ("download_kbps", "upload_kbps", "name", "subnets")


def _one(req: Request, name: str) -> str | None:
    values = req.GET.getall(name)
    if len(values) > 1:
        raise HttpError(400, f"query parameter {name!r} is given {len(values)} times; give it once", name)
    return values[0] if values else None


def parse_query(req: Request, now: float) -> tuple[float | None, int]:
    """(since, limit) from the query string; HttpError 400 naming the parameter otherwise."""
    unknown = sorted(set(req.GET) - set(PARAMS))
    if unknown:
        raise HttpError(400, f"unknown query parameter {unknown[0]!r}; use since and limit", unknown[0])
    since_text, limit_text = _one(req, "since"), _one(req, "limit")
    since = None
    if since_text is not None:
        try:
            since = parse_time(since_text, "since", now)
        except HistoryError as exc:
            raise HttpError(400, exc.problem, exc.field) from None
    limit = DEFAULT_LIMIT
    if limit_text is not None:
        if not re.fullmatch(r"[0-9]{1,7}", limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise HttpError(400, f"{limit_text[:40]!r} is not a whole number from 1 to {MAX_LIMIT}", "limit")
        limit = int(limit_text)
    return since, limit


def _rate(kbps: Any) -> str:
    if kbps is None:
        return "uncapped"
    if not isinstance(kbps, int | float):
        return str(kbps)
    if kbps >= 1000:
        return f"{kbps / 1000:g} Mbit/s"
    return f"{kbps:g} kbit/s"


def _show(field: str, value: Any) -> str:
    if field.endswith("_kbps"):
        return _rate(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _policy_text(action: str, pid: str, who: str, before: Any, after: Any) -> str:
    if action == "seed":
        return f"policy {pid} loaded from the policy file"
    if action == "delete":
        return f"policy {pid} deleted by {who}: the OPD is uncapped now"
    if not isinstance(before, dict) and isinstance(after, dict):
        caps = f"download {_rate(after.get('download_kbps'))}, upload {_rate(after.get('upload_kbps'))}"
        return f"policy {pid} created by {who}: {caps}"
    if isinstance(before, dict) and isinstance(after, dict):
        changes = [
            f"{f.replace('_kbps', '')} {_show(f, before.get(f))} → {_show(f, after.get(f))}"
            for f in _POLICY_FIELDS
            if before.get(f) != after.get(f)
        ]
        others = sorted(
            k for k in set(before) | set(after) if k not in _POLICY_FIELDS and before.get(k) != after.get(k)
        )
        changes += [f"{k} changed" for k in others]
        return f"policy {pid} changed by {who}: {'; '.join(changes) or 'no difference'}"
    return f"policy {pid}: {action} by {who}"


def audit_event(entry: Any) -> dict[str, Any] | None:
    """An audit line as an event (kind "policy" or "settings"); None if it is not a readable entry."""
    if not isinstance(entry, dict) or not isinstance(entry.get("time"), str):
        return None
    try:
        dt = datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
    except ValueError:
        return None
    t = dt.timestamp()
    who = str(entry.get("who") or "?")
    action = str(entry.get("action") or "?")
    before, after = entry.get("before"), entry.get("after")
    if action == "settings":
        changed = (
            sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
            if isinstance(before, dict) and isinstance(after, dict)
            else []
        )
        text = f"settings changed by {who}" + (f": {', '.join(changed)}" if changed else "")
        return {"t": t, "kind": "settings", "text": text, "who": who, "action": action}
    pid = str(entry.get("id") or "?")
    text = _policy_text(action, pid, who, before, after)
    return {"t": t, "kind": "policy", "text": text, "who": who, "action": action, "id": pid}


def audit_events(audit: list[Any]) -> list[dict[str, Any]]:
    """The audit log's entries as events, oldest first. The policies a first start took from
    the policy file (one "seed" line each, written within milliseconds) are one event."""
    out: list[dict[str, Any]] = []
    for e in filter(None, map(audit_event, audit)):
        last = out[-1] if out else None
        if e["action"] == "seed" and last is not None and last["action"] == "seed" and 0 <= e["t"] - last["t"] < 1:
            last["t"] = e["t"]
            last["ids"].append(e["id"])
            n = len(last["ids"])
            ids = last["ids"] if n <= 6 else [*last["ids"][:4], f"{n - 4} more"]
            last["text"] = f"{n} policies loaded from the policy file: {', '.join(ids[:-1])} and {ids[-1]}"
            continue
        if e["action"] == "seed":
            e["ids"] = [e["id"]]
            del e["id"]
        out.append(e)
    return out


def merged(core: list[dict[str, Any]], audit: list[Any], since: float | None, limit: int) -> list[dict[str, Any]]:
    """The controller's events and the audit log's, newest first, at or after ``since``, at most ``limit``."""
    from_audit = [e for e in audit_events(audit) if since is None or e["t"] >= since]
    # Both lists newest first (the audit log is oldest first), so a stable sort keeps equal
    # times newest first too: two changes in the same millisecond come out in the order made.
    both = [{**e, "source": "controller"} for e in core] + [{**e, "source": "audit"} for e in from_audit[::-1]]
    both.sort(key=lambda e: e["t"], reverse=True)
    return both[:limit]


def events(req: Request, view: Any, store: PolicyStore) -> Response:
    since, limit = parse_query(req, time.time())
    own = getattr(view, "recent_events", None)  # a view without it (a test's fake): the audit log only
    core = own(since, limit) if own is not None else []
    return json_response(200, {"events": merged(core, store.audit(), since, limit)})


# ---- OpenAPI 3.1 fragments (merged into GET /v1/openapi.json) ------------------------------------

OPENAPI_SCHEMAS: dict[str, Any] = {
    "Event": {
        "type": "object",
        "required": ["t", "kind", "text", "source"],
        "properties": {
            "t": {"type": "number", "description": "Unix time"},
            "kind": {
                "type": "string",
                "description": "failover, link_silent, link_up, switch_up, switch_down, drift_repaired, "
                "topology_check (the controller's); policy, settings (the audit log's)",
            },
            "text": {"type": "string", "description": "One plain sentence"},
            "source": {"enum": ["controller", "audit"]},
            "who": {"type": "string", "description": "The name of the token that made the change (audit)"},
            "action": {"type": "string", "description": "put, delete, seed or settings (audit)"},
            "id": {"type": "string", "description": "The policy's id (audit)"},
            "ids": {"type": "array", "items": {"type": "string"}, "description": "Policies seeded at once (audit)"},
            "link": {"type": "string", "description": "The link, e.g. core:1-edge-a:1"},
            "switch": {"type": "string"},
            "dpid": {"type": "integer"},
            "problems": {"type": "array", "items": {"type": "string"}},
        },
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/v1/events": {
        "get": {
            "summary": f"Recent events, newest first: the controller's last {MAX_EVENTS} (failovers, links, "
            "switches, repairs) and the audit log's policy and settings changes with who made them",
            "parameters": [
                {
                    "name": "since",
                    "in": "query",
                    "schema": {"type": "string"},
                    "description": "Only events at or after: unix seconds, ISO 8601 or now-1h",
                },
                {
                    "name": "limit",
                    "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                    "description": f"At most this many (default {DEFAULT_LIMIT})",
                },
            ],
            "responses": {
                "200": {
                    "description": "events",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["events"],
                                "properties": {
                                    "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
                                },
                            }
                        }
                    },
                },
                "400": {
                    "description": "A bad query parameter; error.field names it",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
    },
}
