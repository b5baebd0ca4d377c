"""What every output format provides, and the view of a scan they all render."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from keyscope.model import Explanation
from keyscope.redact import for_terminal, redacted

if TYPE_CHECKING:
    from keyscope.model import ScanResult


class ExplainFormat(Protocol):
    """Render explained credentials as one document."""

    def __call__(self, explanations: list[Explanation], now: datetime, *, color: bool) -> str: ...


def shown(result: ScanResult, *, terminal: bool = False) -> ScanResult:
    """``result`` as a report may show it: every string masked (the secret itself only
    under --show-secrets) and, for a terminal, every control character escaped."""
    view = for_terminal if terminal else redacted
    return replace(
        result,
        findings=view(result.findings),
        model_findings=view(result.model_findings),
        skipped=view(result.skipped),
        history_cut=view(result.history_cut),
    )
