"""Schemas: exported JSON Schema is current, and no money field is a float."""

from __future__ import annotations

from typing import Any

from schemas.export import DOCS, render, schemas


def test_exported_json_schemas_are_current() -> None:
    for name, text in render().items():
        path = DOCS / name
        assert path.exists() and path.read_text() == text, (
            f"{path} is stale: run `python -m schemas.export`"
        )


def _walk(node: Any, path: str) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") == "number":
            found.append(path)
        for key, value in node.items():
            found += _walk(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _walk(value, f"{path}/{i}")
    return found


def test_no_schema_has_a_float_field() -> None:
    floats = [p for topic, schema in schemas().items() for p in _walk(schema, topic)]
    assert floats == [], f"float fields (money must be integer minor units): {floats}"
