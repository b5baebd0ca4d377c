"""Alerts: one ``keyscope.alert/1`` payload (``payload.py``) sent to each configured
destination (``[[notify]]``, ``config.py``) by a :class:`~keyscope.notify.interface.Notifier`
per kind: a signed generic webhook, Slack, Microsoft Teams (Workflows), e-mail over
SMTP. Every request passes the network guard of ``--verify`` (``verify/transport.py``)."""
