"""A real headless browser for the HTML report tests: Debian's ``chromium`` driven by
``playwright-core`` (pinned in ``tests/browser/package.json`` and its lock file) through
``tests/browser/drive.mjs``, which logs every request the page makes."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

BROWSER_DIR = Path(__file__).resolve().parent / "browser"
CHROMIUM = "/usr/bin/chromium"


class BrowserError(RuntimeError):
    pass


def install_playwright(timeout: float = 300.0) -> None:
    """``npm ci`` in tests/browser unless playwright-core is there already (as
    scripts/test.sh does)."""
    if (BROWSER_DIR / "node_modules" / "playwright-core" / "package.json").is_file():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BrowserError(f"npm not found on PATH (npm ci --prefix {BROWSER_DIR})")
    cmd = [npm, "ci", "--prefix", str(BROWSER_DIR), "--no-audit", "--no-fund"]
    subprocess.run(cmd, check=True, capture_output=True, timeout=timeout)


def drive(spec: dict[str, Any], timeout: float = 180.0) -> dict[str, Any]:
    """Open ``spec["url"]`` in chromium, run ``spec["steps"]``; what the page showed at
    load and after each step, every request URL and every page error."""
    if not Path(CHROMIUM).is_file():
        raise BrowserError(f"{CHROMIUM} missing: install chromium (scripts/os-packages.txt)")
    node = shutil.which("node")
    if node is None:
        raise BrowserError("node not found on PATH")
    install_playwright()
    proc = subprocess.run(
        [node, str(BROWSER_DIR / "drive.mjs")],
        input=json.dumps({"chromium": CHROMIUM, **spec}),
        capture_output=True, text=True, timeout=timeout, cwd=BROWSER_DIR,
    )
    if proc.returncode != 0:
        raise BrowserError(f"drive.mjs failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result
