"""The OpenAPI 3.1 document of the REST API (GET /v1/openapi.json).

Its schemas are the documents' own definitions (controller.core.policy.SCHEMA,
controller.core.topology.SCHEMA), never a copy kept by hand. Its paths are the table
PATHS below. To document a new route, add its entry there, e.g.::

    "/v1/usage": {
        "get": Op("getUsage", "Bytes per OPD and direction", {"200": ok("Usage", "AnyObject")}),
    },
    "/metrics": {
        "get": Op("getMetrics", "Prometheus metrics", {"200": ok("Metrics", media="text/plain")}),
    },

and, if it answers with a new shape, its schema to ``schemas()``. tests/test_rest.py
checks that the routes the app serves and the paths documented here are the same.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller import __version__
from controller.api import events_api, report_api, usage_api
from controller.core import policy, topology

JSON = "application/json"


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


def ok(description: str, schema: str = "", media: str = JSON) -> dict[str, Any]:
    """A success reply; ``schema`` names one of ``schemas()`` (a JSON body), else the body is text or empty."""
    if schema:
        return {"description": description, "content": {media: {"schema": _ref(schema)}}}
    if media != JSON:
        return {"description": description, "content": {media: {"schema": {"type": "string"}}}}
    return {"description": description}


def fail(description: str) -> dict[str, Any]:
    """An error reply: the Error body, ``{"error": {"status", "field", "problem"}}``."""
    return ok(description, "Error")


@dataclass(frozen=True)
class Op:
    """One operation: a method on a path. 401 is added to every one (reads can be closed too)."""

    operation_id: str
    summary: str
    responses: Mapping[str, dict[str, Any]]
    write: bool = False  # writes always need the bearer token; reads only when the controller closes them
    body: str = ""  # the JSON request body: one of schemas()
    extra: Mapping[str, Any] = field(default_factory=dict)  # any other OpenAPI operation field


# The path parameters, by name; a path names them as {name}.
PARAMS: dict[str, dict[str, Any]] = {
    "id": {"schema": {"type": "string", "pattern": policy.ID_PATTERN}, "description": "The OPD's policy id."},
    "opd": {"schema": {"type": "string"}, "description": "An OPD id: a policy's, or a declared subnet's (no policy)."},
}

# Usage telemetry and events describe their replies next to their handlers (controller.api.usage_api, events_api).
_USAGE = usage_api.OPENAPI_PATHS
_EVENTS = events_api.OPENAPI_PATHS["/v1/events"]["get"]
# Usage telemetry describes its replies next to its handlers (controller.api.usage_api); so do
# the report and its settings (controller.api.report_api).
_USAGE = usage_api.OPENAPI_PATHS
_REPORT = report_api.OPENAPI_PATHS

_BAD = fail("Invalid request; error.field names the offending field")
_UNSAVED = fail("Could not save; nothing changed")

PATHS: dict[str, dict[str, Op]] = {
    "/v1/policies": {
        "get": Op("listPolicies", "All policies, sorted by id", {"200": ok("The policies", "PolicyList")}),
    },
    "/v1/policies/{id}": {
        "get": Op("getPolicy", "One policy", {"200": ok("The policy", "Policy"), "404": fail("No such policy")}),
        "put": Op(
            "putPolicy",
            "Create or replace a policy",
            {
                "200": ok("Replaced", "Policy"),
                "201": ok("Created", "Policy"),
                "400": _BAD,
                "409": fail("A subnet overlaps another OPD's policy"),
                "413": fail("Body too large"),
                "503": _UNSAVED,
            },
            write=True,
            body="PolicyBody",
        ),
        "delete": Op(
            "deletePolicy",
            "Delete a policy (the OPD becomes uncapped)",
            {"204": ok("Deleted"), "404": fail("No such policy"), "503": _UNSAVED},
            write=True,
        ),
    },
    "/v1/topology": {
        "get": Op("getTopology", "The network as the controller sees it", {"200": ok("Topology", "AnyObject")}),
    },
    "/v1/health": {
        "get": Op("getHealth", "Controller health", {"200": ok("Health", "AnyObject")}),
    },
    "/v1/openapi.json": {
        "get": Op("getOpenapi", "This document", {"200": ok("OpenAPI 3.1", "AnyObject")}),
    },
    "/v1/usage": {
        "get": Op("getUsage", _USAGE["/v1/usage"]["get"]["summary"], _USAGE["/v1/usage"]["get"]["responses"]),
    },
    "/v1/usage/{opd}": {
        "get": Op(
            "getUsageSeries",
            _USAGE["/v1/usage/{opd}"]["get"]["summary"],
            _USAGE["/v1/usage/{opd}"]["get"]["responses"],
            extra={"parameters": [q for q in _USAGE["/v1/usage/{opd}"]["get"]["parameters"] if q["in"] == "query"]},
        ),
    },
    "/metrics": {
        "get": Op("getMetrics", _USAGE["/metrics"]["get"]["summary"], _USAGE["/metrics"]["get"]["responses"]),
    },
    "/v1/events": {
        "get": Op("getEvents", _EVENTS["summary"], _EVENTS["responses"], extra={"parameters": _EVENTS["parameters"]}),
    },
    "/v1/report": {
        "get": Op(
            "getReport",
            _REPORT["/v1/report"]["get"]["summary"],
            _REPORT["/v1/report"]["get"]["responses"],
            extra={"parameters": _REPORT["/v1/report"]["get"]["parameters"]},
        ),
    },
    "/v1/settings": {
        "get": Op(
            "getSettings", _REPORT["/v1/settings"]["get"]["summary"], _REPORT["/v1/settings"]["get"]["responses"]
        ),
        "put": Op(
            "putSettings",
            _REPORT["/v1/settings"]["put"]["summary"],
            _REPORT["/v1/settings"]["put"]["responses"],
            write=True,
            body=_REPORT["/v1/settings"]["put"]["body"],
        ),
    },
}

_READ_SECURITY: list[dict[str, list[str]]] = [{}, {"bearer": []}]  # open unless the controller says otherwise
_WRITE_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}]


def schemas() -> dict[str, Any]:
    """components.schemas: the definitions' own schemas and the API's envelopes."""
    return {
        "Policy": policy.SCHEMA,
        "PolicyBody": policy.BODY_SCHEMA,
        "PolicyList": {
            "type": "object",
            "required": ["policies"],
            "properties": {"policies": {"type": "array", "items": _ref("Policy")}},
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["status", "field", "problem"],
                    "properties": {
                        "status": {"type": "integer"},
                        "field": {"type": ["string", "null"], "description": "Dotted path, e.g. subnets.0"},
                        "problem": {"type": "string"},
                    },
                }
            },
        },
        "AnyObject": {"type": "object"},
        # Not a request body: the file `kendali controller --topology` reads, for editors and tools.
        "TopologyFile": topology.SCHEMA,
    }


def _operation(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.operation_id,
        "security": copy.deepcopy(_WRITE_SECURITY if op.write else _READ_SECURITY),
    }
    if op.body:
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(op.body)}}}
    out["responses"] = {**op.responses, "401": fail("Missing or wrong bearer token")}
    out.update(op.extra)
    return out


def _path_item(path: str, ops: Mapping[str, Op]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    names = re.findall(r"\{(\w+)\}", path)
    if names:
        item["parameters"] = [{"name": n, "in": "path", "required": True, **PARAMS[n]} for n in names]
    item.update({method: _operation(op) for method, op in ops.items()})
    return item


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 document: PATHS, with the definitions' schemas as components (a fresh copy each call)."""
    doc = {
        "openapi": "3.1.0",
        "info": {
            "title": "Kendali REST API",
            "version": __version__,
            "description": "Per-OPD bandwidth policies, topology and health of the Kendali SDN controller. "
            "Changes are saved to disk before the reply and applied to the switches right after.",
        },
        "servers": [{"url": "/"}],
        "paths": {path: _path_item(path, ops) for path, ops in PATHS.items()},
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "KENDALI_TOKEN, or the token in <state dir>/token printed at first start",
                }
            },
            "schemas": schemas(),
        },
    }
    doc["components"]["schemas"].update(usage_api.OPENAPI_SCHEMAS)  # type: ignore[index]
    doc["components"]["schemas"].update(events_api.OPENAPI_SCHEMAS)  # type: ignore[index]
    doc["components"]["schemas"].update(report_api.OPENAPI_SCHEMAS)  # type: ignore[index]
    return copy.deepcopy(doc)
