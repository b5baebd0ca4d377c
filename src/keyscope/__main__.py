"""``python -m keyscope``."""

from keyscope.cli import entry

entry()
