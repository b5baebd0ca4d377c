"""Every rule is run against its own examples and negative examples, on both engines."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyscope.detect.engine import make_engine
from keyscope.detect.rules import Rule, base64_anchor, load_rule_file, load_rules
from keyscope.errors import ConfigError
from keyscope.pipeline import BlobScanner
from keyscope.sources.interface import Blob
from tests.sdk import NOW

RULES = load_rules()
ENGINES = ("re", "hyperscan")
CASES = [
    (rule.id, kind, i, text)
    for rule in RULES
    for kind, texts in (("example", rule.examples), ("negative", rule.negative_examples))
    for i, text in enumerate(texts)
]


@pytest.fixture(scope="module", params=ENGINES)
def scanner(request: pytest.FixtureRequest) -> BlobScanner:
    return BlobScanner(make_engine(request.param, RULES), NOW)


def test_every_rule_has_examples_and_negatives() -> None:
    for rule in RULES:
        assert rule.examples, rule.id
        assert rule.negative_examples, rule.id
        assert rule.references, rule.id


@pytest.mark.parametrize(("rule_id", "kind", "index", "text"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES])
def test_rule_examples(scanner: BlobScanner, rule_id: str, kind: str, index: int,
                       text: str) -> None:
    rule = next(r for r in RULES if r.id == rule_id)
    result = scanner.scan(Blob(path="example.txt", data=text.encode()))
    if kind == "negative":
        assert result.findings == [], [f.explanation.redacted for f in result.findings]
        return
    assert result.findings, dict(result.rejected)
    if rule.parser == "base64":
        assert all(f.location.origin == ("base64",) for f in result.findings)
    else:
        assert any(f.rule_id == rule_id for f in result.findings)


def test_base64_anchor_matches_every_alignment() -> None:
    import base64
    import re

    anchor = re.compile(base64_anchor(["AccountKey="]).encode())
    for prefix in (b"", b"x", b"xy", b"xyz"):
        encoded = base64.b64encode(prefix + b"AccountKey=abcdef")
        assert anchor.search(encoded), prefix


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(body)
    return path


GOOD = """
[[rules]]
id = "my-token"
name = "My token"
description = "d"
parser = "azure-sas"
pattern = 'mytok_'
capture = '(?P<value>mytok_[a-z]+)'
examples = ["mytok_abc"]
"""


def test_loader_names_the_problem(tmp_path: Path) -> None:
    good = GOOD
    assert [r.id for r in load_rule_file(_write(tmp_path, good))] == ["my-token"]
    for broken, message in (
        (good.replace('parser = "azure-sas"', 'parser = "nope"'), "unknown parser"),
        (good.replace("pattern = 'mytok_'", "pattern = 'mytok_('"), "not a valid regex"),
        (good.replace("(?P<value>mytok_[a-z]+)", "mytok_[a-z]+"), "named group"),
        (good.replace('examples = ["mytok_abc"]', ""), "missing 'examples'"),
        (good + 'seen_inside = "x"\n', "seen_inside must be a list"),
        ("rules = 3", r"\[\[rules\]\]"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_rule_file(_write(tmp_path, broken))


def test_user_rule_dirs_add_rules_and_reject_duplicates(tmp_path: Path) -> None:
    builtin = RULES[0]
    (tmp_path / "dup.toml").write_text(
        Path(builtin.source).read_text().split("[[rules]]")[0] + "[[rules]]"
        + Path(builtin.source).read_text().split("[[rules]]")[1]
    )
    with pytest.raises(ConfigError, match="already defined"):
        load_rules((tmp_path,))
    with pytest.raises(ConfigError, match="not a directory"):
        load_rules((tmp_path / "missing",))


def test_seen_inside_names_loaded_rules(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        GOOD + 'seen_inside = ["azure-storage-connection-string", "no-such-rule"]\n'
    )
    with pytest.raises(ConfigError, match="seen_inside names no rule 'no-such-rule'"):
        load_rules((tmp_path,))


def test_rule_is_data() -> None:
    assert all(isinstance(r, Rule) and r.source.endswith(".toml") for r in RULES)
