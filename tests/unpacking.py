"""Helpers shared by the archive tests: a planted line, a real tool run, a scan."""

from __future__ import annotations

import subprocess
from pathlib import Path

from keyscope.model import ScanResult
from keyscope.scan import ScanOptions, scan
from tests.sdk import NOW, incident_url, new_key


def secret_line(account: str) -> str:
    """``URL=<a SAS URL signed by the real SDK>`` with a line break."""
    return f"URL={incident_url(account, new_key())}\n"


def run_tool(cwd: Path, *argv: str) -> None:
    """Run a real tool (zip, tar, 7z …) in ``cwd``; a failure fails the test."""
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True)


def scan_one(path: Path, **options: object) -> ScanResult:
    """``path`` scanned by one worker at the tests' fixed time."""
    return scan([path], ScanOptions(jobs=1, now=NOW, **options))  # type: ignore[arg-type]
