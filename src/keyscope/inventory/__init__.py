"""The inventory: every credential keyscope has seen, across scans, in a database.

``store`` opens a SQLite file or a PostgreSQL database (one schema, plain versioned
SQL in ``schema``); ``record`` writes a scan into it; ``alerts`` decides which changes
deserve an alert and ``outbox`` keeps them until each target has them; ``queries``
answers the triage commands, which ``commands`` wires to the command line. Nothing
here ever stores a secret: a credential is its ``ks1:`` fingerprint.
"""

# A credential's triage status: what a person decided about it.
STATUSES = ("open", "acknowledged", "revoked", "false-positive", "accepted-risk")
