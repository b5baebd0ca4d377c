"""Microsoft Teams through Workflows (Power Automate's "Post to a channel when a webhook
request is received"): an Adaptive Card 1.4 in a ``message`` envelope. The older Office
365 connectors (MessageCard) are being retired and are not sent. A card over about
28 KB is refused by Teams, so locations are dropped from the end until it fits. The
flow's URL carries its ``sig=``: it comes from the environment (``url-env``)."""

from __future__ import annotations

import json
from typing import Any

from keyscope.notify.http import JsonPostNotifier
from keyscope.notify.interface import Payload
from keyscope.notify.payload import checked, facts, location_lines, owner_names, title

MAX_BYTES = 27 * 1024  # Teams refuses a message over ~28 KB
TEXT_CHARS = 2000


def _text(text: str, **style: Any) -> dict[str, Any]:
    if len(text) > TEXT_CHARS:
        text = text[: TEXT_CHARS - 1] + "…"
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def adaptive_card(p: Payload, locations: list[str] | None = None) -> dict[str, Any]:
    """The Workflows message for one (checked, masked) payload."""
    where = location_lines(p) if locations is None else locations
    body: list[dict[str, Any]] = [
        _text(title(p), weight="Bolder", size="Medium"),
        _text(str(p["sentence"])),
        {
            "type": "FactSet",
            "facts": [{"title": k, "value": v} for k, v in facts(p)],
        },
        _text("Where", weight="Bolder"),
        *(_text(f"- {x}") for x in where),
    ]
    steps = [str(s) for s in p["revocation"]]
    if steps:
        body.append(_text("Revoke it", weight="Bolder"))
        body.extend(_text(f"{i}. {s}") for i, s in enumerate(steps, 1))
    owners = owner_names(p)
    if owners:
        body.append(_text("Owners: " + ", ".join(owners)))
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                },
            }
        ],
    }


def teams_body(p: Payload) -> bytes:
    """The card as bytes, within Teams' size limit: locations halved until it fits."""
    every = location_lines(p)
    shown = len(every)
    while True:
        where = every[:shown]
        if shown < len(every):
            where.append(f"… and {len(every) - shown} more (see keyscope's report)")
        body = json.dumps(adaptive_card(p, where), ensure_ascii=False).encode()
        if len(body) <= MAX_BYTES or shown == 0:
            return body
        shown //= 2


class TeamsNotifier(JsonPostNotifier):
    kind = "teams"

    def body(self, payload: Payload) -> bytes:
        return teams_body(checked(payload))
