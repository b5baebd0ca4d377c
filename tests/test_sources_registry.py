"""The source registry: the first source that claims a root takes it, a root nothing
else recognises is files, and a source added to the registry is scheduled over the
workers like the built-in ones (its units pickled, read where they land)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest

from keyscope import scan as scan_module
from keyscope.scan import ScanOptions, scan
from keyscope.sources import registry
from keyscope.sources.files import FilesSource
from keyscope.sources.git import GitError
from keyscope.sources.history import GitSource
from keyscope.sources.interface import Blob, Skipped, Source, SourceOptions, Unit, WorkerContext
from keyscope.sources.registry import claim, make_sources
from keyscope.sources.remote import RemoteSource
from keyscope.sources.stdin import StdinSource
from tests.sdk import NOW, account_sas, blob_url, new_key


class _Greedy(Source):
    name = "greedy"

    def __init__(self, options: SourceOptions, log: list[str]) -> None:
        super().__init__(options)
        self.log = log

    def claim(self, root: str) -> bool:
        self.log.append(f"{self.name}:{root}")
        return True

    def units(self, skipped: list[Skipped], jobs: int) -> Iterator[Unit]:
        return iter(())


class _Second(_Greedy):
    name = "second"


def test_the_first_source_that_claims_a_root_wins() -> None:
    log: list[str] = []
    first, second = _Greedy(ScanOptions(), log), _Second(ScanOptions(), log)
    assert claim("anything", [first, second]) is first
    assert log == ["greedy:anything"]  # the later source is not asked


def _kinds(roots: list[str], tmp_path: Path, **kw: object) -> list[type[Source]]:
    sources = make_sources(ScanOptions(**kw), stdin=b"", cache=tmp_path)  # type: ignore[arg-type]
    return [type(claim(root, sources)) for root in roots]


def test_each_root_goes_to_its_source_and_unknown_roots_are_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (tmp_path / "plain").mkdir()
    roots = ["-", "https://example.invalid/org/repo.git", str(repo), str(tmp_path / "plain"),
             str(tmp_path / "missing"), "weird://thing", "-"]
    assert _kinds(roots, tmp_path) == [
        StdinSource, RemoteSource, GitSource, FilesSource, FilesSource, FilesSource,
        FilesSource,  # a second "-" is a file of that name
    ]
    assert _kinds([str(repo)], tmp_path, git=False) == [FilesSource]
    assert _kinds([str(tmp_path / "plain")], tmp_path, git=True) == [GitSource]


def test_the_registry_order_is_stdin_remote_git_files(tmp_path: Path) -> None:
    sources = make_sources(ScanOptions(), stdin=None, cache=tmp_path)
    assert [s.name for s in sources] == ["stdin", "download", "remote", "git", "files"]
    assert isinstance(sources[-1], FilesSource)  # takes what is left, so it stays last


# A source of the kind the architecture page's worked example adds: its own units,
# read in whichever process they land in.
@dataclass(frozen=True)
class MemoryUnit:
    name: str
    text: str

    def read(self, ctx: WorkerContext) -> Iterator[Blob | Skipped]:
        yield Blob(path=f"mem:{self.name}", data=self.text.encode())


class MemorySource(Source):
    name = "memory"
    texts: ClassVar[dict[str, str]] = {}

    def __init__(self, options: SourceOptions) -> None:
        super().__init__(options)
        self.roots: list[str] = []

    def claim(self, root: str) -> bool:
        if not root.startswith("mem:"):
            return False
        self.roots.append(root.removeprefix("mem:"))
        return True

    def units(self, skipped: list[Skipped], jobs: int) -> Iterator[Unit]:
        for name in self.roots:
            if name in self.texts:
                yield MemoryUnit(name, self.texts[name])
            else:
                skipped.append(Skipped(f"mem:{name}", "no such text"))


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_registered_source_is_scheduled_like_the_others(
    tmp_path: Path, jobs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    sas = account_sas("memacct", new_key(), services="b", permission="rl",
                      expiry=datetime(2031, 1, 1, tzinfo=UTC))
    MemorySource.texts = {"a": f'x = "{blob_url("memacct", "c", "b", sas)}"\n', "b": "no\n"}

    def with_memory(options: SourceOptions, *, stdin: bytes | None, cache: Path
                    ) -> list[Source]:
        built = registry.make_sources(options, stdin=stdin, cache=cache)
        return [MemorySource(options), *built]  # the one registry line

    monkeypatch.setattr(scan_module, "make_sources", with_memory)
    (tmp_path / "f.txt").write_text("plain\n")
    result = scan(["mem:a", "mem:b", "mem:gone", str(tmp_path / "f.txt")],
                  ScanOptions(jobs=jobs, now=NOW, cache_dir=tmp_path / "c"))
    assert [loc.path for f in result.findings for loc in f.locations] == ["mem:a"]
    assert [(s.path, s.reason) for s in result.skipped] == [("mem:gone", "no such text")]
    assert result.stats.files == 3


def test_a_remote_with_no_git_is_mirrored_then_refused(tmp_path: Path) -> None:
    repo = tmp_path / "r"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "a.txt").write_text("a\n")
    subprocess.run(["git", "-C", str(repo), "add", "a.txt"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=a@b.c", "-c", "user.name=n",
                    "commit", "-qm", "a"], check=True)
    with pytest.raises(GitError, match="not a git repository"):
        scan([f"file://{repo}"], ScanOptions(git=False, now=NOW, cache_dir=tmp_path / "c"))
    assert (tmp_path / "c" / "repos").is_dir()  # mirrored first, as a remote always is
