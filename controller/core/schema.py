"""One definition per document: dataclass fields that say how they are written in a file.

A document (a policy, a topology file) is declared once, as dataclasses whose fields
are annotated ``Annotated[type, Spec(...)]``. From that one declaration come:

- ``json_schema``: the JSON Schema (2020-12) that files and REST bodies are validated
  with, by the jsonschema library, and that the OpenAPI document embeds;
- ``first_error``: jsonschema's own ``best_match``, turned into one sentence that names
  the field path, the problem and the fix;
- ``markdown_table``: the field table of the docs (a test keeps docs/*.md equal to it);
- ``to_dict``: the JSON form of an object; the dataclasses themselves are the objects.

A field without a ``Spec`` is derived by the loader (an assigned port, the uplink's
switch) and is not written in the file. Checks a JSON Schema cannot say (strict CIDR,
overlaps, unknown switch names) stay in the loaders.

Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import functools
import keyword
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

DRAFT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class Spec:
    """How one field is written in a file; the JSON Schema keyword each rule becomes is named."""

    doc: str  # description
    required: bool | None = None  # None: required exactly when the dataclass field has no default
    unit: str = ""  # said in the docs' bounds and in errors: kbit/s, Mbit/s
    minimum: float | None = None  # minimum
    above: float | None = None  # exclusiveMinimum
    maximum: float | None = None  # maximum
    pattern: str | None = None  # pattern
    choices: tuple[str, ...] = ()  # enum
    min_length: int | None = None  # minLength
    max_length: int | None = None  # maxLength
    min_items: int | None = None  # minItems
    max_items: int | None = None  # maxItems
    item_doc: str = ""  # items.description, for a list of plain values
    item_choices: tuple[str, ...] = ()  # items.enum, for a list of plain values
    item_pattern: str | None = None  # items.pattern, for a list of strings
    nullable: bool = False  # null is a value of its own (not "leave it out"): type [..., "null"]
    examples: tuple[Any, ...] = ()  # examples
    # What to do about a broken rule, by JSON Schema keyword, e.g. {"pattern": "use 1-32
    # lowercase letters ..."}; appended to the error after "; " (after ": " for pattern).
    advice: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Field:
    """One declared field of a dataclass: its name, its Python type (None stripped), its Spec.

    ``name`` is the name in the file; ``attr`` the Python attribute: the same, except that a
    Python keyword is written with a trailing underscore (attribute ``not_``, field ``not``).
    """

    name: str
    hint: Any
    spec: Spec
    required: bool
    default: Any
    attr: str = ""


@functools.cache  # a class's fields never change; get_type_hints costs ~0.3 ms a call
def fields(cls: type) -> tuple[Field, ...]:
    """The declared (file) fields of a dataclass, in declaration order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if typing.get_origin(hint) is not typing.Annotated:
            continue  # derived by the loader
        base, *extras = typing.get_args(hint)
        spec = next(e for e in extras if isinstance(e, Spec))
        if f.default is not dataclasses.MISSING:
            default, has_default = f.default, True
        elif f.default_factory is not dataclasses.MISSING:
            default, has_default = f.default_factory(), True
        else:
            default, has_default = None, False
        required = spec.required if spec.required is not None else not has_default
        name = f.name[:-1] if f.name.endswith("_") and keyword.iskeyword(f.name[:-1]) else f.name
        out.append(Field(name, _without_none(base), spec, required, default, f.name))
    return tuple(out)


def _without_none(hint: Any) -> Any:
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _item(hint: Any) -> Any | None:
    """The item type of a list-like field (list, tuple[X, ...], or dict[key, X] written as a list)."""
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        return typing.get_args(hint)[0]
    if origin is dict:
        return typing.get_args(hint)[1]
    return None


def _object_type(hint: Any) -> type | None:
    """``hint`` if it is a dataclass (a nested object of the document), else None."""
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


# --- the JSON Schema ---------------------------------------------------------------------------


def json_schema(cls: type, title: str = "", description: str = "") -> dict[str, Any]:
    """The JSON Schema of the document whose root is ``cls``; titled and marked 2020-12 at the root."""
    head: dict[str, Any] = {"$schema": DRAFT}
    if title:
        head["title"] = title
    if description:
        head["description"] = description
    return {**head, **_object(cls)}


def _object(cls: type) -> dict[str, Any]:
    declared = fields(cls)
    out: dict[str, Any] = {"type": "object", "additionalProperties": False}
    required = [f.name for f in declared if f.required]
    if required:
        out["required"] = required
    out["properties"] = {f.name: _property(f.hint, f.spec) for f in declared}
    return out


def _type(hint: Any) -> dict[str, Any]:
    cls = _object_type(hint)
    if cls is not None:
        return _object(cls)
    item = _item(hint)
    if item is not None:
        return {"type": "array", "items": _type(item)}
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    raise TypeError(f"no JSON type for {hint!r}")


def _property(hint: Any, spec: Spec) -> dict[str, Any]:
    out = _type(hint)
    rules = {
        "enum": list(spec.choices) or None,
        "minimum": spec.minimum,
        "exclusiveMinimum": spec.above,
        "maximum": spec.maximum,
        "pattern": spec.pattern,
        "minLength": spec.min_length,
        "maxLength": spec.max_length,
        "minItems": spec.min_items,
        "maxItems": spec.max_items,
    }
    out.update({k: v for k, v in rules.items() if v is not None})
    if spec.item_choices:
        out["items"] = {**out["items"], "enum": list(spec.item_choices)}
    if spec.item_pattern:
        out["items"] = {**out["items"], "pattern": spec.item_pattern}
    if spec.item_doc:
        out["items"] = {**out["items"], "description": spec.item_doc}
    if spec.nullable:
        out["type"] = [out["type"], "null"]
    out["description"] = spec.doc
    if spec.examples:
        out["examples"] = list(spec.examples)
    return out


# --- objects back to JSON ----------------------------------------------------------------------


def to_dict(obj: Any) -> dict[str, Any]:
    """The JSON form of a document object: declared fields only, optional ones left out at their default."""
    out: dict[str, Any] = {}
    cls: type = type(obj)
    for f in fields(cls):
        value = getattr(obj, f.attr)
        if not f.required and value == f.default:
            continue
        out[f.name] = _json(value)
    return out


def _json(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_dict(value)
    if isinstance(value, dict):
        return [_json(v) for v in value.values()]
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return value


# --- the docs table ----------------------------------------------------------------------------


def markdown_table(cls: type) -> str:
    """The docs' field table: one row per field, nested ones as ``switches[].name``."""
    rows = ["| field | type | required | bounds | meaning |", "|---|---|---|---|---|"]
    for path, f in _walk(cls, ""):
        kind = _type_words(f.hint) + (" or null" if f.spec.nullable else "")
        cells = [f"`{path}`", kind, "yes" if f.required else "no", _bounds(f.spec), f.spec.doc]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def _walk(cls: type, prefix: str) -> Iterator[tuple[str, Field]]:
    for f in fields(cls):
        yield prefix + f.name, f
        item, obj = _object_type(_item(f.hint)), _object_type(f.hint)
        if item is not None:
            yield from _walk(item, f"{prefix}{f.name}[].")
        elif obj is not None:
            yield from _walk(obj, f"{prefix}{f.name}.")


def _type_words(hint: Any) -> str:
    if _object_type(hint):
        return "object"
    item = _item(hint)
    if item is not None:
        return "list of objects" if _object_type(item) else f"list of {_type_words(item)}"
    return _JSON_TYPES[hint]


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,}"


def _bounds(spec: Spec) -> str:
    out = []
    low = "" if spec.minimum is None else _num(spec.minimum)
    if spec.above is not None:
        low = f">{_num(spec.above)}"
    if low or spec.maximum is not None:
        high = "" if spec.maximum is None else _num(spec.maximum)
        out.append(f"{low}..{high} {spec.unit}".strip())
    if spec.choices or spec.item_choices:
        out.append(
            ("one of " if spec.choices else "each one of ")
            + ", ".join(f"`{c}`" for c in spec.choices or spec.item_choices)
        )
    if spec.pattern or spec.item_pattern:
        out.append(f"`{spec.pattern or spec.item_pattern}`")
    if spec.min_items is not None and spec.max_items is not None:
        out.append(f"{spec.min_items}..{spec.max_items} items")
    elif spec.min_items is not None:
        out.append(f"at least {spec.min_items}")
    elif spec.max_items is not None:
        out.append(f"at most {spec.max_items} items")
    if spec.max_length is not None:
        out.append(f"{spec.min_length}..{spec.max_length} chars" if spec.min_length else f"max {spec.max_length} chars")
    return "; ".join(out)


# --- errors ------------------------------------------------------------------------------------

# At one depth, a wrong type says more than an unknown field, and that more than a missing
# one; bounds and patterns come last. Between equals, best_match keeps the first in
# iteration order, which is declaration order.
_RANK = {"type": 3, "additionalProperties": 2, "required": 1}


def relevance(error: ValidationError) -> tuple[int, int]:
    """best_match's key: the shallowest error first (it explains most), then by _RANK."""
    return (-len(error.path), _RANK.get(str(error.validator), 0))


def first_error(
    validator: jsonschema.protocols.Validator,
    data: Any,
    root: type,
    top: str,
    hints: Mapping[str, str] | None = None,
) -> tuple[str, str] | None:
    """(field path, problem) of the most telling schema error in ``data``, or None if it is valid.

    ``top`` names the document itself in the path (e.g. "(body)"); ``hints`` says what to use
    instead of an unknown field people often try (e.g. "limit_at").
    """
    error = best_match(validator.iter_errors(data), key=relevance)
    if error is not None:
        return explain(error, root, top, hints or {})
    nan = _nan_at(data, [])
    if nan is not None:  # YAML's .nan passes every bound (no comparison with it is true)
        return ".".join(str(p) for p in nan) or top, "must be a number, not NaN"
    return None


def _nan_at(data: Any, path: list[Any]) -> list[Any] | None:
    if isinstance(data, float) and data != data:
        return path
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        found = _nan_at(value, path + [key])
        if found is not None:
            return found
    return None


def at(root: type, path: list[Any]) -> tuple[Spec | None, Any]:
    """The Spec and the type of the field at a JSON path (names and list indices) in a ``root`` document.

    At the root, or where the path leaves the definition: (None, root) and (None, None).
    """
    spec: Spec | None = None
    here: Any = root
    for part in path:
        if isinstance(part, int):
            here = _item(here) or here
            continue
        cls = _object_type(here)
        found = {f.name: f for f in fields(cls)}.get(str(part)) if cls else None
        if found is None:
            return None, None
        spec, here = found.spec, found.hint
    return spec, here


def explain(error: ValidationError, root: type, top: str, hints: Mapping[str, str]) -> tuple[str, str]:
    """One jsonschema error as (field path, one sentence saying the problem and the fix)."""
    path = list(error.absolute_path)
    kind = str(error.validator)
    inst: Any = error.instance  # the offending value
    rule: Any = error.validator_value  # e.g. the minimum, the pattern, the required names
    found, here = at(root, path)
    spec = found or Spec("")
    # the field's name; a list entry is named after its list ("not entry" for holidays.not.0)
    names = [str(p) for p in path if not isinstance(p, int)]
    leaf = (names[-1] + (" entry" if isinstance(path[-1], int) else "")) if names else ""

    def where(*extra: Any) -> str:
        return ".".join(str(p) for p in path + list(extra)) or top

    def said(problem: str) -> tuple[str, str]:
        advice = spec.advice.get(kind)
        return where(), f"{problem}; {advice}" if advice else problem

    if kind == "required":
        name = next((r for r in rule if r not in inst), "?")
        owner, _ = at(root, path + [name])
        return where(name), f"is required ({owner.doc})" if owner and owner.doc else "is required"
    if kind == "additionalProperties":
        cls = _object_type(here)
        allowed = [f.name for f in fields(cls)] if cls else []
        name = sorted(str(k) for k in inst if k not in allowed)[0]
        guess = difflib.get_close_matches(name.lower(), allowed, n=1)
        hint = hints.get(name.lower()) or (f"did you mean {guess[0]}?" if guess else "")
        problem = f"unknown field; allowed fields: {', '.join(allowed)}"
        return where(name), f"{problem} ({hint})" if hint else problem
    if kind == "type":
        return said(_wrong_type(rule, inst, spec))
    if kind in ("minimum", "maximum", "exclusiveMinimum"):
        word = {"minimum": "at least", "maximum": "at most", "exclusiveMinimum": "more than"}[kind]
        got = _num(inst) if isinstance(inst, (int, float)) else repr(inst)
        return said(f"must be {word} {_num(rule)} {spec.unit}".rstrip() + f" (got {got})")
    if kind == "pattern":
        advice = spec.advice.get("pattern")
        problem = f"{short(inst)} is not a valid {leaf or 'value'}"
        return where(), f"{problem}: {advice}" if advice else f"{problem} (it must match {rule})"
    if kind == "enum":
        return said(f"{short(inst)} is not one of: {', '.join(str(c) for c in rule)}")
    if kind == "minLength":
        return said("must not be empty" if rule == 1 else f"is too short: {len(inst)} characters, at least {rule}")
    if kind == "maxLength":
        return said(f"is too long: {len(inst)} characters, at most {rule}")
    if kind == "minItems":
        return said("must list at least one" if rule == 1 else f"needs at least {rule} items")
    if kind == "maxItems":
        return said(f"too many: {len(inst)}, at most {rule}")
    return said(error.message)


_TYPE_WORDS = {
    "object": "an object ({...})",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
}


def _wrong_type(rule: Any, inst: Any, spec: Spec) -> str:
    allowed = [str(r) for r in rule] if isinstance(rule, list) else [str(rule)]  # ["number", "null"]: nullable
    expected = allowed[0]
    problem = f"must be {' or '.join(_TYPE_WORDS.get(a, a) for a in allowed)}, not {kind_of(inst)}"
    if not isinstance(inst, (dict, list)):
        problem += f" ({short(inst)})"
    if inst is None:
        problem += "; in YAML an empty value is null: give a value or leave the field out"
    elif isinstance(inst, bool) and expected == "string":
        problem += "; in YAML quote values like yes/no/on/off"
    elif expected == "string" and not isinstance(inst, (str, dict, list)):
        problem += "; in YAML quote it"  # 1.10, 2024-01-01: YAML reads a number, a date
    elif isinstance(inst, float) and expected == "integer":
        problem += f"; use whole {spec.unit}" if spec.unit else "; use a whole number"
    elif isinstance(inst, str) and expected in ("integer", "number") and _is_number(inst):
        problem += "; write the number without quotes"
    elif isinstance(inst, str) and expected in ("integer", "number") and spec.unit:
        problem += f"; the unit is {spec.unit}" + (f", e.g. {spec.examples[0]}" if spec.examples else "")
    return problem


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def kind_of(value: Any) -> str:
    """What a value is, in words: 'a string', 'a list', 'null'."""
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
    if isinstance(value, datetime.date):
        return "a date"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
