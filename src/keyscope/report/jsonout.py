"""``--format json``: a documented, versioned document (schema in ``schemas/``)."""

from __future__ import annotations

import dataclasses
import enum
import json
from datetime import datetime
from typing import Any

from keyscope.analyze.timefmt import iso
from keyscope.model import Explanation

EXPLAIN_SCHEMA = "https://keyscope.dev/schemas/explain-v1.json"
EXPLAIN_VERSION = 1


def to_data(value: Any) -> Any:
    """Dataclasses, enums, datetimes and tuples → JSON-ready values."""
    if isinstance(value, enum.Enum):
        return value.name.lower()
    if isinstance(value, datetime):
        return iso(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_data(v) for v in value]
    return value


def explain_document(explanations: list[Explanation], now: datetime) -> dict[str, Any]:
    from keyscope import __version__

    return {
        "$schema": EXPLAIN_SCHEMA,
        "schema_version": EXPLAIN_VERSION,
        "tool": {"name": "keyscope", "version": __version__},
        "now": iso(now),
        "credentials": [to_data(e) for e in explanations],
    }


def render_explain(explanations: list[Explanation], now: datetime, *, color: bool = False) -> str:
    return json.dumps(explain_document(explanations, now), indent=2, ensure_ascii=False) + "\n"
