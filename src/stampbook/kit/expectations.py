"""What a refused parameter should have been, read from the OpenAPI document.

The constraints a route enforces are stated once, in its pydantic types
(``kit/params.py``, each room's ``schemas.py``); FastAPI publishes them in
``/openapi.json``. A 1001 message is built from that same document, so what a
client is told ("stampIdx must be a positive integer") is what the document
declares and what the server checks, never a second copy that could drift.
"""

from __future__ import annotations

from typing import Any

from stampbook.kit.params import HTTP_URL_PATTERN, MAX_ID

Expected = tuple[str, dict[str, object]]
UNKNOWN: Expected = ("unknown", {})
STORABLE: Expected = ("storable", {})


def expectation(schema: dict[str, Any]) -> Expected | None:
    """The ``kit.errors.EXPECTATIONS`` kind and values that describe ``schema``
    (a field's JSON schema, ``$ref``s resolved), or None for a shape not described."""
    schema = without_null(schema)
    if "enum" in schema:
        return "choice", {"choices": ", ".join(str(choice) for choice in schema["enum"])}
    kind = schema.get("type")
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        if low == 1 and (high is None or high >= MAX_ID):
            return "positive_integer", {}
        if low is not None and high is not None:
            return "integer_range", {"minimum": low, "maximum": high}
        return None
    if kind == "string":
        if schema.get("format") == "date":
            return "date", {}
        if schema.get("pattern") == HTTP_URL_PATTERN:
            return "url", {"max_length": schema.get("maxLength", "any number of")}
        if "maxLength" in schema:
            lengths = {"min_length": schema.get("minLength", 0), "max_length": schema["maxLength"]}
            return "text", lengths
        return None
    if kind == "array":
        items = without_null(schema.get("items", {}))
        if "enum" in items:
            return "choices", {
                "choices": ", ".join(str(choice) for choice in items["enum"]),
                "min_items": schema.get("minItems", 0),
                "max_items": schema.get("maxItems", len(items["enum"])),
            }
    return None


def without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without its ``null`` alternative (an optional field's other branch)."""
    branches = schema.get("anyOf")
    if not branches:
        return schema
    others = [branch for branch in branches if branch.get("type") != "null"]
    return others[0] if len(others) == 1 else schema


def field_schema(
    document: dict[str, Any], *, path: str, method: str, location: str, name: str
) -> dict[str, Any] | None:
    """The schema ``document`` gives the parameter ``name`` of an operation:
    a property of its JSON body (``location`` "body") or a query parameter."""
    operation = document.get("paths", {}).get(path, {}).get(method.lower())
    if not operation:
        return None
    if location == "query":
        for parameter in operation.get("parameters", []):
            if parameter.get("in") == "query" and parameter.get("name") == name:
                return _resolve(document, without_null(parameter.get("schema", {})))
        return None
    if location != "body":
        return None
    content = operation.get("requestBody", {}).get("content", {})
    body = _resolve(document, content.get("application/json", {}).get("schema", {}))
    prop = body.get("properties", {}).get(name)
    return _resolve(document, without_null(prop)) if prop is not None else None


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = document
    for part in ref[2:].split("/"):
        node = node.get(part, {})
    return node if isinstance(node, dict) else {}
