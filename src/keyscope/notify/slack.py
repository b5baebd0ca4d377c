"""Slack incoming webhooks: ``POST`` a message, ``text`` (the notification's fallback)
plus Block Kit ``blocks`` (a header, the sentence, facts, where, how to revoke, the
owners). Slack answers ``200 ok``; errors are short codes (``invalid_blocks``, …) and
rate limiting is ``429`` with ``Retry-After``. The webhook URL is itself a credential:
it comes from the environment (``url-env``) and is never shown."""

from __future__ import annotations

import json
from typing import Any

from keyscope.notify.http import JsonPostNotifier
from keyscope.notify.interface import Payload
from keyscope.notify.payload import checked, facts, location_lines, owner_names, title

SECTION_CHARS = 3000  # Block Kit: a section's text
HEADER_CHARS = 150  # Block Kit: a header's plain text
FIELD_CHARS = 2000


def cut(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def escaped(text: str) -> str:
    """Slack's mrkdwn control characters escaped: ``<!channel>`` or ``<url|label>`` in
    a scanned file's path stays text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(p: Payload) -> dict[str, Any]:
    """The message for one (checked, masked) payload."""

    def section(text: str) -> dict[str, Any]:
        return {"type": "section", "text": {"type": "mrkdwn", "text": cut(text, SECTION_CHARS)}}

    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": cut(title(p), HEADER_CHARS)}},
        section(escaped(str(p["sentence"]))),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": cut(f"*{k}*\n{escaped(str(v))}", FIELD_CHARS)}
                for k, v in facts(p)
            ],
        },
        section("*Where*\n" + "\n".join(f"• {escaped(x)}" for x in location_lines(p))),
    ]
    steps = [str(s) for s in p["revocation"]]
    if steps:
        body = "\n".join(f"{i}. {escaped(s)}" for i, s in enumerate(steps, 1))
        blocks.append(section("*Revoke it*\n" + body))
    owners = owner_names(p)
    if owners:
        blocks.append(section("*Owners* " + escaped(", ".join(owners))))
    fallback = f"{title(p)}: {p['sentence']}"
    return {"text": escaped(cut(fallback, SECTION_CHARS)), "blocks": blocks}


class SlackNotifier(JsonPostNotifier):
    kind = "slack"

    def body(self, payload: Payload) -> bytes:
        return json.dumps(slack_message(checked(payload)), ensure_ascii=False).encode()
