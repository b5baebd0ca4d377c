"""What every output format provides."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from keyscope.model import Explanation


class ExplainFormat(Protocol):
    """Render explained credentials as one document."""

    def __call__(self, explanations: list[Explanation], now: datetime, *, color: bool) -> str: ...
