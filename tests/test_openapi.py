"""controller.api.openapi: the document is built from the definitions and the PATHS table."""

from __future__ import annotations

import jsonschema
import pytest

from controller.api import openapi as api_doc
from controller.api.openapi import Op, fail, ok, openapi
from controller.core import policy, settings, topology


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def check(doc: dict) -> None:
    """What any version of the document must be: refs resolve, schemas valid, every op answers."""
    assert doc["openapi"].startswith("3.1")
    for ref in _refs(doc):
        node: object = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # type: ignore[index]
    for schema in doc["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)
    for path, item in doc["paths"].items():
        params = {p["name"] for p in item.get("parameters", [])}
        assert params == {part[1:-1] for part in path.split("/") if part.startswith("{")}, path
        for op in (v for k, v in item.items() if k != "parameters"):
            assert op["responses"] and op["operationId"] and "401" in op["responses"]


def test_openapi_document() -> None:
    doc = openapi()
    check(doc)
    schemas = doc["components"]["schemas"]
    assert schemas["Policy"] == policy.SCHEMA
    assert schemas["Policy"] is not policy.SCHEMA  # a copy: callers cannot corrupt SCHEMA
    assert schemas["PolicyBody"] == policy.BODY_SCHEMA
    assert schemas["TopologyFile"] == topology.SCHEMA
    assert schemas["Settings"] == settings.SCHEMA
    assert set(doc["paths"]) == {
        "/v1/policies",
        "/v1/policies/{id}",
        "/v1/topology",
        "/v1/health",
        "/v1/openapi.json",
        "/v1/usage",
        "/v1/usage/{opd}",
        "/metrics",
        "/v1/events",
        "/v1/settings",
        "/v1/report",
    }
    one = doc["paths"]["/v1/policies/{id}"]
    assert set(one) >= {"get", "put", "delete"}
    for name in ("put", "delete"):
        assert one[name]["security"] == [{"bearer": []}]
    assert one["get"]["security"] == [{}, {"bearer": []}]
    body = one["put"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/PolicyBody"}
    assert one["parameters"][0]["schema"]["pattern"] == policy.ID_PATTERN
    doc["paths"].clear()
    assert openapi()["paths"], "each call builds a fresh document"


def test_adding_a_path_is_one_table_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    paths = {
        **api_doc.PATHS,
        "/metrics": {"get": Op("getMetrics", "Prometheus metrics", {"200": ok("Metrics", media="text/plain")})},
        "/v1/usage/{id}": {
            "get": Op("getUsage", "Usage of one OPD", {"200": ok("Usage", "AnyObject"), "404": fail("No such OPD")})
        },
    }
    monkeypatch.setattr(api_doc, "PATHS", paths)
    doc = openapi()
    check(doc)
    metrics = doc["paths"]["/metrics"]["get"]
    assert metrics["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}
    usage = doc["paths"]["/v1/usage/{id}"]
    assert usage["parameters"][0]["name"] == "id"
    assert usage["get"]["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
