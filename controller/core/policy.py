"""Per-OPD bandwidth policies: one schema, validation, the policy file loader, the API doc.

A policy caps one OPD's traffic in each direction (kbit/s)::

    {"id": "dinkes", "name": "Dinas Kesehatan", "subnets": ["10.10.7.0/24"],
     "download_kbps": 20000, "upload_kbps": 10000}

``download_kbps`` caps all traffic *into* the OPD's subnets from outside them (the
Internet, the server farm, other OPDs); ``upload_kbps`` caps traffic *out of* them.
Only caps: Kendali enforces them with OpenFlow meters, and a meter can drop but never
guarantee, so there is deliberately no "limit-at"/guaranteed-rate field.

``SCHEMA`` is the single source of truth: the REST API, the YAML file loader and the
OpenAPI document all use it. Checks a JSON Schema cannot express (strict CIDR, overlap
between policies, body id vs URL id) are in ``validate``.

Pure: no os-ken, no I/O except ``load_file``.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import jsonschema

from controller import __version__
from controller.errors import KendaliError, read_yaml

MIN_KBPS = 64  # below this a meter mostly drops ACKs; no OPD office is that small
MAX_KBPS = 40_000_000  # 40 Gbit/s: above any link in the regency; larger is a typo
MIN_BURST_KBIT = 16  # one full-size Ethernet frame is ~12.1 kbit; a smaller bucket drops them all
MAX_BURST_KBIT = 40_000_000  # one second at the largest rate
MAX_SUBNETS = 32
MAX_NOTE = 500
ID_PATTERN = "^[a-z0-9][a-z0-9_-]{0,31}$"

_RATE = {"type": "integer", "minimum": MIN_KBPS, "maximum": MAX_KBPS}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Policy",
    "description": "A bandwidth cap for one OPD (organisasi perangkat daerah), in each direction.",
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "name", "subnets", "download_kbps", "upload_kbps"],
    "properties": {
        "id": {
            "type": "string",
            "pattern": ID_PATTERN,
            "description": "Short name of the OPD: 1-32 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit. In PUT /v1/policies/{id} it may be omitted "
            "(taken from the URL); if given it must equal the URL's.",
            "examples": ["dinkes"],
        },
        "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": 100,
            "description": "Human name of the OPD.",
            "examples": ["Dinas Kesehatan"],
        },
        "subnets": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_SUBNETS,
            "items": {
                "type": "string",
                "description": "IPv4 network in CIDR notation with the host bits zero, e.g. 10.10.7.0/24.",
            },
            "description": "The OPD's IPv4 networks. They may not overlap each other "
            "nor any other OPD's policy (409).",
            "examples": [["10.10.7.0/24"]],
        },
        "download_kbps": dict(
            _RATE,
            description="Cap on traffic into the subnets from outside them, kbit/s "
            "(MikroTik simple queue max-limit, target download).",
            examples=[20000],
        ),
        "upload_kbps": dict(
            _RATE,
            description="Cap on traffic out of the subnets, kbit/s "
            "(MikroTik simple queue max-limit, target upload).",
            examples=[10000],
        ),
        "burst_kbit": {
            "type": "integer",
            "minimum": MIN_BURST_KBIT,
            "maximum": MAX_BURST_KBIT,
            "description": "Meter bucket size in kbit, for both directions. When absent "
            "the compiler chooses one from the rate.",
        },
        "note": {
            "type": "string",
            "maxLength": MAX_NOTE,
            "description": "Free text: who asked, ticket number, why.",
        },
    },
}

# The PUT body: the same schema, except that the id may come from the URL. Derived, so the
# two can never drift apart.
BODY_SCHEMA: dict[str, Any] = {
    **{k: v for k, v in SCHEMA.items() if k != "$schema"},
    "title": "PolicyBody",
    "required": [r for r in SCHEMA["required"] if r != "id"],
}

_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
_EMPTY: Mapping[str, "Policy"] = MappingProxyType({})


@dataclass(frozen=True)
class Policy:
    id: str
    name: str
    subnets: tuple[str, ...]
    download_kbps: int
    upload_kbps: int
    burst_kbit: int | None = None
    note: str = ""

    @property
    def networks(self) -> tuple[ipaddress.IPv4Network, ...]:
        return tuple(ipaddress.IPv4Network(s) for s in self.subnets)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; valid against SCHEMA, so a GET result can be PUT back unchanged."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "subnets": list(self.subnets),
            "download_kbps": self.download_kbps,
            "upload_kbps": self.upload_kbps,
        }
        if self.burst_kbit is not None:
            out["burst_kbit"] = self.burst_kbit
        if self.note:
            out["note"] = self.note
        return out


class PolicyError(Exception):
    """A policy was refused. ``status`` is the HTTP status the REST API answers with."""

    def __init__(self, field: str, problem: str, status: int = 400) -> None:
        self.status = status
        self.field = field
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}" if self.field else self.problem


# --- turning jsonschema's messages into ones a network architect can act on -------------

_TOP = "(body)"
_TYPE_WORDS = {
    "object": "an object ({...})",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
}
# Fields people coming from other systems try; say what to use instead.
_FIELD_HINTS = {
    "limit_at": "Kendali only enforces caps (OpenFlow meters cannot guarantee a rate); there is no limit_at",
    "max_limit": "use download_kbps and upload_kbps",
    "max-limit": "use download_kbps and upload_kbps",
    "download": "use download_kbps (kbit/s)",
    "upload": "use upload_kbps (kbit/s)",
    "download_mbps": "rates are in kbit/s: use download_kbps (1 Mbit/s = 1000)",
    "upload_mbps": "rates are in kbit/s: use upload_kbps (1 Mbit/s = 1000)",
    "subnet": "use subnets, a list",
    "cidr": "use subnets, a list",
    "burst": "use burst_kbit (kbit)",
    "priority": "Kendali has no per-OPD priority; only caps",
}
_FIRST = {"type": 0, "additionalProperties": 1, "required": 2}
_UNITS = {"download_kbps": "kbit/s", "upload_kbps": "kbit/s", "burst_kbit": "kbit"}


def _join(path: list[Any]) -> str:
    return ".".join(str(p) for p in path) or _TOP


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a whole number"
    if isinstance(value, float):
        return "a fraction" if not value.is_integer() else "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _friendly(e: jsonschema.ValidationError) -> PolicyError:
    path = list(e.absolute_path)
    v, inst = e.validator, e.instance
    leaf = str(path[-1]) if path else ""
    if v == "required":
        missing = [r for r in e.validator_value if r not in inst]
        name = missing[0] if missing else "?"
        desc = SCHEMA["properties"].get(name, {}).get("description", "")
        return PolicyError(_join(path + [name]), f"is required ({desc})" if desc else "is required")
    if v == "additionalProperties":
        allowed = list(e.schema.get("properties", {}))
        extras = sorted(str(k) for k in inst if k not in allowed)
        name = extras[0] if extras else "?"
        hint = _FIELD_HINTS.get(name.lower())
        problem = f"unknown field; allowed fields: {', '.join(allowed)}"
        return PolicyError(_join(path + [name]), f"{problem} ({hint})" if hint else problem)
    if v == "type":
        expected = e.validator_value
        words = _TYPE_WORDS.get(expected, str(expected)) if isinstance(expected, str) else str(expected)
        problem = f"must be {words}, not {_kind(inst)}"
        if not isinstance(inst, (dict, list)):
            problem += f" ({_short(inst)})"
        if isinstance(inst, bool) and expected == "string":
            problem += "; in YAML quote values like yes/no/on/off"
        if isinstance(inst, float) and expected == "integer":
            problem += "; rates are whole kbit/s"
        return PolicyError(_join(path), problem)
    if v in ("minimum", "maximum"):
        unit = _UNITS.get(leaf, "")
        word = "at least" if v == "minimum" else "at most"
        problem = f"must be {word} {e.validator_value:,} {unit} (got {inst:,})".replace("  ", " ")
        if leaf.endswith("_kbps") and v == "minimum":
            problem += "; a cap of zero would cut the OPD off, delete the policy instead"
        if leaf.endswith("_kbps") and v == "maximum":
            problem += "; rates are in kbit/s (1 Gbit/s = 1000000)"
        return PolicyError(_join(path), problem)
    if v == "pattern" and leaf == "id":
        return PolicyError(
            _join(path),
            f"{_short(inst)} is not a valid id: use 1-32 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit (e.g. dinkes, kec-waru)",
        )
    if v == "minLength":
        return PolicyError(_join(path), "must not be empty")
    if v == "maxLength":
        return PolicyError(_join(path), f"is too long: {len(inst)} characters, at most {e.validator_value}")
    if v == "minItems":
        return PolicyError(_join(path), "needs at least one subnet")
    if v == "maxItems":
        return PolicyError(_join(path), f"too many: {len(inst)}, at most {e.validator_value}; use larger prefixes")
    return PolicyError(_join(path), e.message)


# --- semantic checks ----------------------------------------------------------------------

_CIDR_SHAPE = re.compile(r"^[0-9.]+/[0-9]{1,2}$")


def parse_cidr(text: str, field: str) -> ipaddress.IPv4Network:
    """A strict IPv4 network, or PolicyError saying exactly what is wrong with it."""
    if ":" in text:
        raise PolicyError(field, f"{text!r} is IPv6; Kendali policies are IPv4 only")
    if "/" not in text:
        raise PolicyError(field, f"{text!r} has no prefix length; write it in CIDR form, e.g. {text}/32 or {text}/24")
    if not _CIDR_SHAPE.match(text):
        raise PolicyError(field, f"{text!r} is not an IPv4 network in CIDR form (like 10.10.7.0/24)")
    try:
        net = ipaddress.IPv4Network(text, strict=True)
    except ValueError as exc:
        msg = str(exc)
        if "host bits set" in msg:
            base = ipaddress.IPv4Network(text, strict=False)
            raise PolicyError(field, f"{text} has host bits set; the network is {base}") from None
        raise PolicyError(field, f"{text!r} is not an IPv4 network: {msg}") from None
    if net.prefixlen < 8:
        raise PolicyError(field, f"{net} is larger than any OPD network (shortest allowed prefix is /8)")
    first = net.network_address
    if net.is_multicast or net.is_loopback or first in ipaddress.IPv4Network("0.0.0.0/8") or (
        first in ipaddress.IPv4Network("240.0.0.0/4")
    ):
        raise PolicyError(field, f"{net} is not a unicast network an OPD can use")
    return net


def check_overlap(policy: Policy, others: Mapping[str, Policy]) -> None:
    """409 if ``policy`` claims addresses another OPD's policy already holds.

    ``others[policy.id]`` (the policy being replaced) is ignored.
    """
    for i, net in enumerate(policy.networks):
        for oid in sorted(others):
            if oid == policy.id:
                continue
            other = others[oid]
            for onet in other.networks:
                if net.overlaps(onet):
                    raise PolicyError(
                        f"subnets.{i}",
                        f"{net} overlaps {onet} of OPD {oid!r} ({other.name}); an address can "
                        f"belong to one policy only: change or delete {oid!r} first",
                        409,
                    )


def validate(data: Any, url_id: str | None = None, others: Mapping[str, Policy] = _EMPTY) -> Policy:
    """Check ``data`` (parsed JSON/YAML) completely and build the Policy, or raise PolicyError.

    ``url_id``: the id in PUT /v1/policies/{id}; the body's id must equal it, or may be
    omitted. ``others``: the accepted policies, to refuse overlapping subnets (409).
    """
    if isinstance(data, dict) and url_id is not None:
        if "id" not in data:
            data = {"id": url_id, **data}
        elif data["id"] != url_id:
            raise PolicyError("id", f"the body says {_short(data['id'])} but the URL says {url_id!r}; they must match")
    # Report the first problem in field order; at one field a wrong type or a missing or
    # unknown field explains more than a bound does.
    errors = sorted(
        _VALIDATOR.iter_errors(data),
        key=lambda e: ([str(p) for p in e.absolute_path], _FIRST.get(str(e.validator), 9)),
    )
    if errors:
        raise _friendly(errors[0])
    nets: list[ipaddress.IPv4Network] = []
    for i, text in enumerate(data["subnets"]):
        net = parse_cidr(text, f"subnets.{i}")
        for j, prev in enumerate(nets):
            if net.overlaps(prev):
                same = "is listed twice" if net == prev else f"overlaps {prev} (subnets.{j})"
                raise PolicyError(f"subnets.{i}", f"{net} {same} in the same policy")
        nets.append(net)
    policy = Policy(
        id=data["id"],
        name=data["name"],
        subnets=tuple(str(n) for n in nets),
        # jsonschema accepts 20000.0 as an integer (JSON has one number type); store ints.
        download_kbps=int(data["download_kbps"]),
        upload_kbps=int(data["upload_kbps"]),
        burst_kbit=int(data["burst_kbit"]) if "burst_kbit" in data else None,
        note=data.get("note", ""),
    )
    check_overlap(policy, others)
    return policy


# --- the policy file ------------------------------------------------------------------------


def parse_file(data: Any, where: str) -> dict[str, Policy]:
    """Policies from a parsed policy file (``policies:`` list). Raises KendaliError."""
    if data is None:
        raise KendaliError("the file is empty; expected a top-level 'policies:' list", where)
    if not isinstance(data, dict):
        raise KendaliError(f"expected a mapping with a 'policies:' list, not {_kind(data)}", where)
    extra = sorted(str(k) for k in data if k != "policies")
    if extra:
        raise KendaliError("unknown top-level key; the only one is 'policies'", where, extra[0])
    items = data.get("policies")
    if not isinstance(items, list):
        raise KendaliError(f"must be a list of policies, not {_kind(items)}", where, "policies")
    out: dict[str, Policy] = {}
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("id") in out:
            raise KendaliError(f"duplicate id {item['id']!r}", where, f"policies.{i}.id")
        try:
            p = validate(item, others=out)
        except PolicyError as exc:
            fld = f"policies.{i}" if exc.field == _TOP else f"policies.{i}.{exc.field}"
            raise KendaliError(exc.problem, where, fld) from None
        out[p.id] = p
    return out


def load_file(path: str | Path) -> dict[str, Policy]:
    """Read a policies/*.yaml file. Raises KendaliError naming file, field and problem."""
    return parse_file(read_yaml(path), str(path))


# --- the API document -----------------------------------------------------------------------


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, ref: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"$ref": ref}}}}


def openapi() -> dict[str, Any]:
    """OpenAPI 3.1 document of the REST API, with SCHEMA as components.schemas.Policy."""
    id_param = {
        "name": "id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": ID_PATTERN},
        "description": "The OPD's policy id.",
    }
    read_security: list[dict[str, list]] = [{}, {"bearer": []}]  # open unless the controller says otherwise
    write_security = [{"bearer": []}]
    bad = _err("Invalid request; error.field names the offending field")
    unauth = _err("Missing or wrong bearer token")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Kendali REST API",
            "version": __version__,
            "description": "Per-OPD bandwidth policies, topology and health of the Kendali SDN controller. "
            "Changes are saved to disk before the reply and applied to the switches right after.",
        },
        "servers": [{"url": "/"}],
        "paths": {
            "/v1/policies": {
                "get": {
                    "summary": "All policies, sorted by id",
                    "operationId": "listPolicies",
                    "security": read_security,
                    "responses": {"200": _ok("The policies", "#/components/schemas/PolicyList"), "401": unauth},
                }
            },
            "/v1/policies/{id}": {
                "parameters": [id_param],
                "get": {
                    "summary": "One policy",
                    "operationId": "getPolicy",
                    "security": read_security,
                    "responses": {
                        "200": _ok("The policy", "#/components/schemas/Policy"),
                        "401": unauth,
                        "404": _err("No such policy"),
                    },
                },
                "put": {
                    "summary": "Create or replace a policy",
                    "operationId": "putPolicy",
                    "security": write_security,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PolicyBody"}}},
                    },
                    "responses": {
                        "200": _ok("Replaced", "#/components/schemas/Policy"),
                        "201": _ok("Created", "#/components/schemas/Policy"),
                        "400": bad,
                        "401": unauth,
                        "409": _err("A subnet overlaps another OPD's policy"),
                        "413": _err("Body too large"),
                        "503": _err("Could not save; nothing changed"),
                    },
                },
                "delete": {
                    "summary": "Delete a policy (the OPD becomes uncapped)",
                    "operationId": "deletePolicy",
                    "security": write_security,
                    "responses": {
                        "204": {"description": "Deleted"},
                        "401": unauth,
                        "404": _err("No such policy"),
                        "503": _err("Could not save; nothing changed"),
                    },
                },
            },
            "/v1/topology": {
                "get": {
                    "summary": "The network as the controller sees it",
                    "operationId": "getTopology",
                    "security": read_security,
                    "responses": {"200": _ok("Topology", "#/components/schemas/AnyObject"), "401": unauth},
                }
            },
            "/v1/health": {
                "get": {
                    "summary": "Controller health",
                    "operationId": "getHealth",
                    "security": read_security,
                    "responses": {"200": _ok("Health", "#/components/schemas/AnyObject"), "401": unauth},
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "getOpenapi",
                    "security": read_security,
                    "responses": {"200": _ok("OpenAPI 3.1", "#/components/schemas/AnyObject"), "401": unauth},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "KENDALI_TOKEN, or the token in <state dir>/token printed at first start",
                }
            },
            "schemas": {
                "Policy": copy.deepcopy(SCHEMA),
                "PolicyBody": copy.deepcopy(BODY_SCHEMA),
                "PolicyList": {
                    "type": "object",
                    "required": ["policies"],
                    "properties": {"policies": {"type": "array", "items": {"$ref": "#/components/schemas/Policy"}}},
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
            },
        },
    }


def fields_markdown() -> str:
    """The field table of docs/policies.md, generated from SCHEMA (a test keeps them equal)."""
    required = set(SCHEMA["required"])
    rows = ["| field | type | required | bounds | meaning |", "|---|---|---|---|---|"]
    for name, spec in SCHEMA["properties"].items():
        typ = spec["type"] if spec["type"] != "array" else f"list of {spec['items']['type']}"
        bounds = []
        if "minimum" in spec:
            bounds.append(f"{spec['minimum']:,}..{spec['maximum']:,} {_UNITS.get(name, '')}".strip())
        if "pattern" in spec:
            bounds.append(f"`{spec['pattern']}`")
        if "minItems" in spec:
            bounds.append(f"{spec['minItems']}..{spec['maxItems']} items")
        if "maxLength" in spec and name != "name":
            bounds.append(f"max {spec['maxLength']} chars")
        if name == "name":
            bounds.append(f"1..{spec['maxLength']} chars")
        rows.append(
            f"| `{name}` | {typ} | {'yes' if name in required else 'no'} | {'; '.join(bounds)} | {spec['description']} |"
        )
    return "\n".join(rows) + "\n"
