"""``python -m keyscope``."""

from keyscope.cli import main

raise SystemExit(main())
