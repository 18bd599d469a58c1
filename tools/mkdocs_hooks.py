"""MkDocs hook: pages generated from the code, so that they cannot drift from it.

``<!-- registry-schema -->`` in a page is replaced by a table of the registry's fields, built from the
pydantic models that validate ``algorithms.json``.
"""

from __future__ import annotations

import json
from typing import Any

MARKER = "<!-- registry-schema -->"


def _type_of(spec: dict[str, Any]) -> str:
    if "anyOf" in spec:
        return " or ".join(_type_of(option) for option in spec["anyOf"])
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if "enum" in spec:
        return " or ".join(json.dumps(value) for value in spec["enum"])
    if "const" in spec:
        return json.dumps(spec["const"])
    if spec.get("type") == "array":
        return f"list of {_type_of(spec.get('items', {}))}"
    return str(spec.get("type", "any"))


def _table(name: str, schema: dict[str, Any]) -> str:
    required = set(schema.get("required", []))
    rows = [
        f"### `{name}`",
        "",
        schema.get("description", "").strip(),
        "",
        "| field | type | required | default | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for field, spec in schema.get("properties", {}).items():
        default = json.dumps(spec["default"]) if "default" in spec else ""
        constraint = ", ".join(
            f"{key} `{spec[key]}`"
            for key in ("pattern", "minimum", "maximum", "exclusiveMinimum", "maxLength", "minLength")
            if key in spec
        )
        meaning = spec.get("description", "") + (f" ({constraint})" if constraint else "")
        cells = [f"`{field}`", _type_of(spec), "yes" if field in required else "", default, meaning]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def registry_schema() -> str:
    """Markdown tables of the registry file format, one per model."""
    from btk.segment.registry import Registry

    schema = Registry.model_json_schema()
    parts = [_table("Registry", schema)]
    parts += [
        _table(name, definition)
        for name, definition in schema.get("$defs", {}).items()
        if "properties" in definition  # models, not type aliases such as pydantic's JsonValue
    ]
    return "\n".join(parts)


def on_page_markdown(markdown: str, **_: Any) -> str:
    """Fill the generated sections of a page."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, registry_schema())
    return markdown
