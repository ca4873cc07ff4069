"""A JSON-schema check for structured outputs: the subset providers' structured-output modes
use (type, properties, required, additionalProperties, items, enum, const, anyOf)."""

from __future__ import annotations

from typing import Any

__all__ = ["schema_problem"]

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "integer": (int,), "number": (int, float), "null": (type(None),),
}  # fmt: skip


def _is(value: Any, name: str) -> bool:
    # JSON has no bool among its numbers; Python's bool is an int.
    return isinstance(value, _TYPES.get(name, ())) and not (
        name in ("number", "integer") and isinstance(value, bool)
    )


def _json_type(value: Any) -> str:
    return next((name for name in _TYPES if _is(value, name)), type(value).__name__)


def schema_problem(value: Any, schema: Any, path: str = "$") -> str | None:
    """Where ``value`` breaks ``schema``, as "at <path>: <what>" naming only schema terms and
    JSON types, never the value itself; None when it conforms (or the schema is not a dict)."""
    if not isinstance(schema, dict):
        return None
    return _own_problem(value, schema, path) or _children_problem(value, schema, path)


def _own_problem(value: Any, schema: dict[str, Any], path: str) -> str | None:
    options = schema.get("anyOf")
    if (
        isinstance(options, list)
        and options
        and all(schema_problem(value, option, path) for option in options)
    ):
        return f"at {path}: matches none of anyOf"
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is(value, str(name)) for name in names):
            expected = " or ".join(map(str, names))
            return f"at {path}: expected {expected}, got {_json_type(value)}"
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return f"at {path}: not one of the enum values"
    if "const" in schema and value != schema["const"]:
        return f"at {path}: not the const value"
    return None


def _children_problem(value: Any, schema: dict[str, Any], path: str) -> str | None:
    if isinstance(value, dict):
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        for key in schema.get("required") or ():
            if key not in value:
                return f"at {path}: missing required property {key!r}"
        for key, item in value.items():
            if key in properties:
                problem = schema_problem(item, properties[key], f"{path}.{key}")
                if problem:
                    return problem
            elif schema.get("additionalProperties") is False:
                return f"at {path}: a property the schema does not allow"
    items = schema.get("items")
    if isinstance(value, list) and isinstance(items, dict):
        for i, item in enumerate(value):
            problem = schema_problem(item, items, f"{path}[{i}]")
            if problem:
                return problem
    return None
