"""``keyscope posture``: the owner's own storage accounts, read with GET requests only,
judged by what a leaked account SAS, service SAS or account key could do on each.

``arm.py`` reads the management plane (ARM REST), ``dataplane.py`` the Blob service
through a connection string, ``verdict.py`` turns the settings into checks, fixes
(``az`` commands) and a verdict per credential kind in ``explain``'s words,
``ledger.py`` reads and writes the inventory, ``render.py`` writes text and JSON,
``run.py`` ties them together for the CLI (``arguments.py``).
"""
