"""Writes docs/html-report.png, the README's picture of ``--format html``: the example
repository scanned as the README shows it, the page opened in Debian's chromium
(tests/browser). Run from the repository's top: ``python scripts/html_screenshot.py``."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser import drive  # noqa: E402

from keyscope.cli import main  # noqa: E402


def screenshot(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        main(["scan", "--quiet", "--now", "2026-11-26T00:00:00Z", "--format", "html",
              "-o", str(page), "examples/leaky-repo"])
        run = drive({"url": page.as_uri(), "screenshot": str(out),
                     "viewport": {"width": 1100, "height": 1250}})
        if run["errors"] or run["requests"] != [page.as_uri()]:
            raise SystemExit(f"the page misbehaved: {run['errors']} {run['requests']}")


if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    screenshot(ROOT / "docs" / "html-report.png")
    print("wrote docs/html-report.png")
