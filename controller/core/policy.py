"""Per-OPD bandwidth policies: one definition, validation, the policy file loader.

A policy caps one OPD's traffic in each direction (kbit/s)::

    {"id": "dinkes", "name": "Dinas Kesehatan", "subnets": ["10.10.7.0/24"],
     "download_kbps": 20000, "upload_kbps": 10000}

``download_kbps`` caps all traffic *into* the OPD's subnets from outside them (the
Internet, the server farm, other OPDs); ``upload_kbps`` caps traffic *out of* them.
With static caps (the default) that is all a meter does. With sharing on
(controller.core.sharing) the meters follow demand, and the optional fields say how:
a guarantee per direction (``download_min_kbps``, ``upload_min_kbps``: MikroTik's
limit-at), a ``priority`` (1 highest .. 8, MikroTik's order) and a ``weight`` among
OPDs of one priority. A meter cannot reserve bandwidth by itself; the guarantee holds
because sharing keeps the sum of all meters within the purchased uplink, which is why
the sum of guarantees must fit it (``validate(..., uplink_kbps=...)``, 409).

The ``Policy`` dataclass is the single definition: its fields' ``Spec`` give ``SCHEMA``
(used by the REST API, the YAML file loader and the OpenAPI document), the field table
of docs/policies.md and the error messages (see controller.core.schema). Checks a JSON
Schema cannot express (strict CIDR, overlap between policies, body id vs URL id) are in
``validate``.

Pure: no os-ken, no I/O except ``load_file``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any

import jsonschema

from controller.core import schema
from controller.core.compiler import FRAME_OVERHEAD
from controller.core.schema import Spec, kind_of, short
from controller.errors import KendaliError, read_yaml

MIN_KBPS = 64  # below this a meter mostly drops ACKs; no OPD office is that small
MAX_KBPS = 40_000_000  # 40 Gbit/s: above any link in the regency; larger is a typo
MIN_BURST_KBIT = 16  # one full-size Ethernet frame is ~12.1 kbit; a smaller bucket drops them all
MAX_BURST_KBIT = 40_000_000  # one second at the largest rate
MAX_SUBNETS = 32
LOWEST_PRIORITY = 8  # MikroTik's queues: priority 1 is served first, 8 last (and the default)
MAX_WEIGHT = 1000  # a share 1000 times another's is already "all of it"; larger is a typo
MAX_NOTE = 500
ID_PATTERN = "^[a-z0-9][a-z0-9_-]{0,31}$"
ID_FIX = "use 1-32 lowercase letters, digits, '-' or '_', starting with a letter or digit (e.g. dinkes, kec-waru)"

_RATE_ADVICE = {
    "minimum": "a cap of zero would cut the OPD off, delete the policy instead",
    "maximum": "rates are in kbit/s (1 Gbit/s = 1000000)",
}
_MIN_ADVICE = {"maximum": "rates are in kbit/s (1 Gbit/s = 1000000)"}
# MikroTik writes one priority per direction as "upload/download" (e.g. 8/8); Kendali has one for both.
_PRIORITY_ADVICE = {
    "type": "one whole number 1-8 for both directions (MikroTik's 'priority=2/2' is priority: 2)",
    "minimum": "1 is the highest priority, 8 the lowest (MikroTik's order)",
    "maximum": "1 is the highest priority, 8 the lowest (MikroTik's order)",
}


@dataclass(frozen=True)
class Policy:
    """A bandwidth cap for one OPD (organisasi perangkat daerah), in each direction."""

    id: Annotated[
        str,
        Spec(
            "Short name of the OPD: 1-32 lowercase letters, digits, '-' or '_', starting with a letter or digit. "
            "In PUT /v1/policies/{id} it may be omitted (taken from the URL); if given it must equal the URL's.",
            pattern=ID_PATTERN,
            examples=("dinkes",),
            advice={"pattern": ID_FIX},
        ),
    ]
    name: Annotated[str, Spec("Human name of the OPD.", min_length=1, max_length=100, examples=("Dinas Kesehatan",))]
    subnets: Annotated[
        tuple[str, ...],
        Spec(
            "The OPD's IPv4 networks. They may not overlap each other nor any other OPD's policy (409).",
            min_items=1,
            max_items=MAX_SUBNETS,
            examples=(["10.10.7.0/24"],),
            item_doc="IPv4 network in CIDR notation with the host bits zero, e.g. 10.10.7.0/24.",
            advice={"maxItems": "use larger prefixes"},
        ),
    ]
    download_kbps: Annotated[
        int,
        Spec(
            "Cap on traffic into the subnets from outside them, kbit/s "
            "(MikroTik simple queue max-limit, target download).",
            unit="kbit/s",
            minimum=MIN_KBPS,
            maximum=MAX_KBPS,
            examples=(20000,),
            advice=_RATE_ADVICE,
        ),
    ]
    upload_kbps: Annotated[
        int,
        Spec(
            "Cap on traffic out of the subnets, kbit/s (MikroTik simple queue max-limit, target upload).",
            unit="kbit/s",
            minimum=MIN_KBPS,
            maximum=MAX_KBPS,
            examples=(10000,),
            advice=_RATE_ADVICE,
        ),
    ]
    # The sharing fields are keyword-only so that Policy(id, name, subnets, down, up, burst, note)
    # keeps meaning what it always did; their defaults make an old policy a valid new one.
    download_min_kbps: Annotated[
        int,
        Spec(
            "Guaranteed download, kbit/s (MikroTik limit-at, target download): with sharing on, the OPD gets at "
            "least this whenever it asks for it. At most download_kbps; 0: no guarantee. The guarantees of all "
            "policies together must fit the purchased uplink (409).",
            unit="kbit/s",
            minimum=0,
            maximum=MAX_KBPS,
            examples=(5000,),
            advice=_MIN_ADVICE,
        ),
    ] = dataclasses.field(default=0, kw_only=True)
    upload_min_kbps: Annotated[
        int,
        Spec(
            "Guaranteed upload, kbit/s (MikroTik limit-at, target upload); like download_min_kbps.",
            unit="kbit/s",
            minimum=0,
            maximum=MAX_KBPS,
            examples=(2000,),
            advice=_MIN_ADVICE,
        ),
    ] = dataclasses.field(default=0, kw_only=True)
    priority: Annotated[
        int,
        Spec(
            "With sharing on: who is served first once every guarantee is met, 1 highest .. 8 lowest "
            "(MikroTik's order), for both directions.",
            minimum=1,
            maximum=LOWEST_PRIORITY,
            examples=(4,),
            advice=_PRIORITY_ADVICE,
        ),
    ] = dataclasses.field(default=LOWEST_PRIORITY, kw_only=True)
    weight: Annotated[
        int,
        Spec(
            "With sharing on: the OPD's share among OPDs of the same priority (2 gets twice what 1 gets), both "
            "directions.",
            minimum=1,
            maximum=MAX_WEIGHT,
            examples=(2,),
            advice={"minimum": "a weight is a share: 1 or more (to serve an OPD later, give it a lower priority)"},
        ),
    ] = dataclasses.field(default=1, kw_only=True)
    burst_kbit: Annotated[
        int | None,
        Spec(
            "Meter bucket size in kbit, for both directions. When absent the compiler chooses one from the rate.",
            unit="kbit",
            minimum=MIN_BURST_KBIT,
            maximum=MAX_BURST_KBIT,
        ),
    ] = None
    note: Annotated[str, Spec("Free text: who asked, ticket number, why.", max_length=MAX_NOTE)] = ""

    @property
    def networks(self) -> tuple[ipaddress.IPv4Network, ...]:
        return tuple(ipaddress.IPv4Network(s) for s in self.subnets)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form; valid against SCHEMA, so a GET result can be PUT back unchanged."""
        return schema.to_dict(self)


SCHEMA: dict[str, Any] = schema.json_schema(Policy, "Policy", (Policy.__doc__ or "").strip())

# The PUT body: the same schema, except that the id may come from the URL. Derived, so the
# two can never drift apart.
BODY_SCHEMA: dict[str, Any] = {
    **{k: v for k, v in SCHEMA.items() if k != "$schema"},
    "title": "PolicyBody",
    "required": [r for r in SCHEMA["required"] if r != "id"],
}

_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
_EMPTY: Mapping[str, Policy] = MappingProxyType({})


class PolicyError(Exception):
    """A policy was refused. ``status`` is the HTTP status the REST API answers with."""

    def __init__(self, field: str, problem: str, status: int = 400) -> None:
        self.status = status
        self.field = field
        self.problem = problem
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}" if self.field else self.problem


_TOP = "(body)"
# Fields people coming from other systems try; say what to use instead.
_GUARANTEE_HINT = "use download_min_kbps and upload_min_kbps (kbit/s; MikroTik's limit-at)"
_FIELD_HINTS = {
    "limit_at": _GUARANTEE_HINT,
    "limit-at": _GUARANTEE_HINT,
    "limitat": _GUARANTEE_HINT,
    "min_kbps": _GUARANTEE_HINT,
    "guarantee": _GUARANTEE_HINT,
    "guaranteed_kbps": _GUARANTEE_HINT,
    "download_min": "use download_min_kbps (kbit/s)",
    "upload_min": "use upload_min_kbps (kbit/s)",
    "max_limit": "use download_kbps and upload_kbps",
    "max-limit": "use download_kbps and upload_kbps",
    "maxlimit": "use download_kbps and upload_kbps",
    "download": "use download_kbps (kbit/s)",
    "upload": "use upload_kbps (kbit/s)",
    "download_mbps": "rates are in kbit/s: use download_kbps (1 Mbit/s = 1000)",
    "upload_mbps": "rates are in kbit/s: use upload_kbps (1 Mbit/s = 1000)",
    "subnet": "use subnets, a list",
    "cidr": "use subnets, a list",
    "burst": "use burst_kbit (kbit)",
    "burst-limit": "use burst_kbit (kbit): a meter's bucket, not MikroTik's timed burst (see docs/policies.md)",
    "burst_limit": "use burst_kbit (kbit): a meter's bucket, not MikroTik's timed burst (see docs/policies.md)",
    "burst-threshold": "no equivalent: a meter's bucket (burst_kbit) has no threshold or timer",
    "burst_threshold": "no equivalent: a meter's bucket (burst_kbit) has no threshold or timer",
    "burst-time": "no equivalent: a meter's bucket (burst_kbit) has no threshold or timer",
    "burst_time": "no equivalent: a meter's bucket (burst_kbit) has no threshold or timer",
    "prio": "use priority (1 highest .. 8 lowest)",
    "download_priority": "priority is one number for both directions: use priority",
    "upload_priority": "priority is one number for both directions: use priority",
    "parent": "no queue tree: every OPD shares the uplink directly; use priority and weight",
    "queue": "no queues: meters at each OPD's edge; see docs/policies.md",
}


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
    if (
        net.is_multicast
        or net.is_loopback
        or first in ipaddress.IPv4Network("0.0.0.0/8")
        or (first in ipaddress.IPv4Network("240.0.0.0/4"))
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


def check_guarantees(policy: Policy) -> None:
    """400 if a guarantee is above its own cap: a meter at the cap could never deliver it."""
    for direction in ("download", "upload"):
        low, cap = getattr(policy, f"{direction}_min_kbps"), getattr(policy, f"{direction}_kbps")
        if low > cap:
            raise PolicyError(
                f"{direction}_min_kbps",
                f"a guarantee of {low:,} kbit/s is above the cap {direction}_kbps of {cap:,} kbit/s; "
                f"a guarantee can be at most the cap",
            )


def uplink_payload_kbps(uplink_kbps: float) -> float:
    """What a purchased uplink carries in the units of a policy: meters and the ISP count whole
    frames, policies promise what applications get (1448 of every 1514 bytes, FRAME_OVERHEAD)."""
    return uplink_kbps / FRAME_OVERHEAD


def guarantee_sums(policies: Mapping[str, Policy]) -> dict[str, int]:
    """The sum of the guarantees per direction ("download", "upload"), kbit/s."""
    return {d: sum(getattr(p, f"{d}_min_kbps") for p in policies.values()) for d in ("download", "upload")}


def check_uplink(policy: Policy, others: Mapping[str, Policy], uplink_kbps: float) -> None:
    """409 if, with ``policy`` in place of ``others[policy.id]``, the guarantees of a direction
    would not fit the uplink: sharing could then not give every OPD its guarantee at once.

    A change that does not raise the sum passes, so that after the uplink was lowered
    below the sum, guarantees can still be lowered one policy at a time."""
    fits = uplink_payload_kbps(uplink_kbps)
    before = guarantee_sums(others)
    together = guarantee_sums({**others, policy.id: policy})
    for direction in ("download", "upload"):
        if together[direction] <= fits or together[direction] <= before[direction]:
            continue  # a change that adds no guarantee is never refused (the uplink may have shrunk since)
        raise PolicyError(
            f"{direction}_min_kbps",
            f"{direction} guarantees would sum to {together[direction]:,} kbit/s; the uplink buys "
            f"{_num(uplink_kbps)} kbit/s, which carries {int(fits):,} kbit/s of payload (1448 of each 1514 "
            f"bytes); lower this guarantee or another OPD's",
            409,
        )


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,}"


def validate(
    data: Any, url_id: str | None = None, others: Mapping[str, Policy] = _EMPTY, uplink_kbps: float | None = None
) -> Policy:
    """Check ``data`` (parsed JSON/YAML) completely and build the Policy, or raise PolicyError.

    ``url_id``: the id in PUT /v1/policies/{id}; the body's id must equal it, or may be
    omitted. ``others``: the accepted policies, to refuse overlapping subnets (409).
    ``uplink_kbps``: the purchased uplink (topology ``uplink.capacity_mbps`` x 1000); when
    given, the guarantees of ``others`` and this policy must fit it, per direction (409).
    """
    if isinstance(data, dict) and url_id is not None:
        if "id" not in data:
            data = {"id": url_id, **data}
        elif data["id"] != url_id:
            raise PolicyError("id", f"the body says {short(data['id'])} but the URL says {url_id!r}; they must match")
    error = schema.first_error(_VALIDATOR, data, Policy, _TOP, _FIELD_HINTS)
    if error:
        raise PolicyError(*error)
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
        download_min_kbps=int(data.get("download_min_kbps", 0)),
        upload_min_kbps=int(data.get("upload_min_kbps", 0)),
        priority=int(data.get("priority", LOWEST_PRIORITY)),
        weight=int(data.get("weight", 1)),
    )
    check_guarantees(policy)
    check_overlap(policy, others)
    if uplink_kbps is not None:
        check_uplink(policy, others, uplink_kbps)
    return policy


# --- the policy file ------------------------------------------------------------------------


def parse_file(data: Any, where: str, uplink_kbps: float | None = None) -> dict[str, Policy]:
    """Policies from a parsed policy file (``policies:`` list). Raises KendaliError.

    ``uplink_kbps``: as in ``validate``: the file's guarantees must fit it."""
    if data is None:
        raise KendaliError("the file is empty; expected a top-level 'policies:' list", where)
    if not isinstance(data, dict):
        raise KendaliError(f"expected a mapping with a 'policies:' list, not {kind_of(data)}", where)
    extra = sorted(str(k) for k in data if k != "policies")
    if extra:
        raise KendaliError("unknown top-level key; the only one is 'policies'", where, extra[0])
    items = data.get("policies")
    if not isinstance(items, list):
        raise KendaliError(f"must be a list of policies, not {kind_of(items)}", where, "policies")
    out: dict[str, Policy] = {}
    for i, item in enumerate(items):
        if isinstance(item, dict) and isinstance(item.get("id"), str) and item["id"] in out:
            raise KendaliError(f"duplicate id {item['id']!r}", where, f"policies.{i}.id")
        try:
            p = validate(item, others=out, uplink_kbps=uplink_kbps)
        except PolicyError as exc:
            fld = f"policies.{i}" if exc.field == _TOP else f"policies.{i}.{exc.field}"
            raise KendaliError(exc.problem, where, fld) from None
        out[p.id] = p
    return out


def load_file(path: str | Path, uplink_kbps: float | None = None) -> dict[str, Policy]:
    """Read a policies/*.yaml file. Raises KendaliError naming file, field and problem.

    ``uplink_kbps``: the purchased uplink; the file's guarantees must fit it (as in ``validate``)."""
    return parse_file(read_yaml(path), str(path), uplink_kbps)


def fields_markdown() -> str:
    """The field table of docs/policies.md, generated from Policy (a test keeps them equal)."""
    return schema.markdown_table(Policy)
