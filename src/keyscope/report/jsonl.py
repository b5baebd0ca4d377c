"""``--format jsonl``: JSON lines, each credential location written as it is found.

The records are built in ``jsonout``; this module decides when each is written:
findings while the scan runs, verifications after ``--verify``, then the model-file
findings and a summary, or an ``incomplete`` record when the scan is cut short.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from keyscope.report import jsonout
from keyscope.report.interface import Format

if TYPE_CHECKING:
    from keyscope.model import Finding, RawFinding, ScanResult


class JsonLinesFormat(Format):
    """One JSON object per line, streamed."""

    streams = True

    def finding(self, raw: RawFinding) -> None:
        self.out.write(jsonout.jsonl_finding(raw))
        self.out.flush()

    def verified(self, findings: Sequence[Finding]) -> None:
        for finding in findings:
            self.out.write(jsonout.jsonl_verification(finding))

    def finish(self, result: ScanResult) -> None:
        self.out.write(jsonout.jsonl_model_findings(result) + jsonout.jsonl_summary(result))

    def interrupted(self, reason: str) -> None:
        self.out.write(jsonout.jsonl_incomplete(reason))
        self.out.flush()
