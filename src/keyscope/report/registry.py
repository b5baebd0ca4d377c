"""Every output format, by the name ``--format`` takes; the CLI draws its choices here.

Adding a format is a module in ``report/`` with a ``Format`` subclass, and one line
below (see docs/architecture.md, "How to add an output format").
"""

from __future__ import annotations

from keyscope.report.html import HtmlFormat
from keyscope.report.interface import Format
from keyscope.report.jsonl import JsonLinesFormat
from keyscope.report.jsonout import JsonFormat
from keyscope.report.sarif import SarifFormat
from keyscope.report.text import TextFormat

# In the order --help lists them; the first is the default.
FORMATS: dict[str, type[Format]] = {
    "text": TextFormat,
    "json": JsonFormat,
    "jsonl": JsonLinesFormat,
    "sarif": SarifFormat,
    "html": HtmlFormat,
}


def scan_formats() -> tuple[str, ...]:
    """The ``--format`` choices of ``scan``, ``models`` and ``hook``."""
    return tuple(FORMATS)


def explain_formats() -> tuple[str, ...]:
    """The ``--format`` choices of ``explain``: the formats that render explanations."""
    return tuple(name for name, fmt in FORMATS.items() if fmt.explains)
