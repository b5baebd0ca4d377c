"""The masking of a whole result (``redact.redacted``) stays whole where it was made
faster: each pattern runs only where its words occur, a string is masked once per
result, and an unchanged string keeps its holder. Keys and signatures are made by the
Azure SDK (``tests/sdk.py``) with random keys."""

from __future__ import annotations

import base64
from datetime import timedelta
from urllib.parse import parse_qs

from keyscope.model import Location
from keyscope.redact import mask, redacted
from tests.sdk import NOW, account_sas, new_key

ACCOUNT = "contosodata"


def _sig(key: str) -> str:
    return parse_qs(account_sas(ACCOUNT, key, expiry=NOW + timedelta(days=30)))["sig"][0]


def test_a_secret_in_equal_strings_of_several_findings_is_masked_in_each() -> None:
    key = new_key()
    text = f"AccountName={ACCOUNT};AccountKey={key}"
    # equal strings, distinct objects (as each finding builds its own)
    snippets = ["".join(text[:10]) + text[10:] for _ in range(3)]
    assert snippets[0] is not snippets[1]
    locations = [Location(f"f{i}.env", 1, 1, 1, 1, s) for i, s in enumerate(snippets)]
    shown = redacted(locations)
    for loc in shown:
        assert key not in loc.snippet and key[:12] not in loc.snippet, loc.snippet
    quiet = Location("a.txt", 1, 1, 1, 1, "nothing to mask here")
    assert redacted([quiet])[0] is quiet  # unchanged: not copied


def test_case_insensitive_names_are_masked_in_any_case_and_in_letters_that_fold() -> None:
    key, sig = new_key(), _sig(new_key())
    for text, secret in (
        (f"ACCOUNTKEY={key}", key),
        (f"accountkey%3d{key}", key),
        (f"\u212aEY: x; AccountKey={key}", key),  # the Kelvin sign lower-cases to k
        (f"sharedacce\u017f\u017fkey={key}", key),  # long s: the pattern takes it for s
        (f"\u017fig={sig}", sig),
        (f"SIG={sig}", sig),
        (f"x-amz-security-token={sig}", sig),
        (f'"secret": "{sig}"', sig),
    ):
        shown = mask(text)
        assert secret[:12] not in shown, (text, shown)


def test_a_secret_inside_base64_inside_a_long_run_is_masked() -> None:
    key = new_key()
    inner = base64.b64encode(f"AccountName={ACCOUNT};AccountKey={key}".encode()).decode()
    for text in (inner, "0123456789abcdef" * 4 + " " + inner, f"data: {inner}=="):
        shown = mask(text)
        assert inner[:40] not in shown, text
    # a long run that decodes to nothing secret stays as it is
    digest = "BEDAB3FBD02EC7ACDF446C0AA3F3861C93C5E12FCF6FD20DFBAD9482357A0782"
    assert mask(f"key1({digest}) or key2({digest})") == f"key1({digest}) or key2({digest})"


def test_the_cheap_gates_pass_wherever_the_patterns_they_guard_match() -> None:
    # every hint of _TOKEN_HINT, and runs of Base64 characters around 40 long, inside
    # text of every kind: the gate says no only where the pattern finds nothing
    import random

    from keyscope.redact import _B64_RUN, _TOKEN_HINT, _b64_runs, _has_b64_run, _may_hold_token

    hints = ["hf_", "api_org_", "sk-", "r8_", "dapi", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
             "github_pat_", "GR1348941", "KGAT_", "wandb_v1_", "glpat-", "gldt-", "glcbt-",
             "xoxb-", "xoxe.xoxp-", "xapp-", "hooks.slack.com/", "/IncomingWebhook/", "eyJ",
             "Private-Lines: "]
    rng = random.Random(7)
    alphabet = "abcXYZ019+/=_-. :é\u2028\ud800\"'"
    for i in range(4000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
        if i % 3 == 0:
            text += rng.choice(hints) + "".join(rng.choice(alphabet) for _ in range(5))
        if i % 4 == 0:
            text += "".join(rng.choice("Az9+/") for _ in range(rng.randrange(35, 45)))
            text += "=" * rng.randrange(0, 4) + rng.choice(["", "x" * 41, " " + "B" * 40])
        assert _may_hold_token(text) or not _TOKEN_HINT.search(text), text
        assert _has_b64_run(text) == bool(_B64_RUN.search(text)), text
        assert _b64_runs(text) == [m.span() for m in _B64_RUN.finditer(text)], text
        ascii_text = text.encode("ascii", "replace").decode()
        assert _b64_runs(ascii_text) == [m.span() for m in _B64_RUN.finditer(ascii_text)]
    for hint in hints:
        assert _may_hold_token(hint) and _TOKEN_HINT.search(hint), hint
