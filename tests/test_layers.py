"""Who may import whom: the layering rules of docs/architecture.md, checked on the source.

Every ``import keyscope…`` counts, also one inside a function (a lazy import is still a
dependency); imports under ``if TYPE_CHECKING:`` are checked against a separate, explicit
list. A new edge fails this test until the rule, and the page, say it is allowed.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "keyscope"

# unit → the units it may import at run time. A unit is a top-level module (``scan``)
# or a package (``sources/``); imports inside a unit are free.
ALLOWED: dict[str, set[str]] = {
    "model": set(),
    "errors": set(),
    "redact": set(),
    "heap": set(),  # the C heap's setting for large buffers (ctypes only)
    "children": set(),  # worker processes: ending with the parent, a forked map
    "sources/": {"errors", "model"},
    "modelfiles/": {"model"},
    "detect/": {"errors", "analyze/", "providers/"},
    "analyze/": {"errors", "model", "providers/"},
    "providers/": {"errors", "model", "analyze/", "verify/"},
    "verify/": {"keyscope", "model", "redact", "analyze/", "providers/"},
    "pipeline": {"model", "redact", "detect/", "analyze/", "providers/", "modelfiles/",
                 "sources/"},
    "explain": {"model", "analyze/", "providers/", "verify/"},
    "config": {"errors", "model", "analyze/", "providers/"},
    "scan": {"model", "explain", "heap", "children", "pipeline", "detect/", "analyze/",
             "modelfiles/", "sources/", "unpack/"},
    # archives read through modelfiles/' copy-free reader (view_reader)
    "unpack/": {"model", "sources/", "modelfiles/"},
    "report/": {"keyscope", "model", "redact", "children", "analyze/"},
    # the crawler fetches through verify/'s guarded transport, decodes bodies with unpack/
    "crawl/": {"keyscope", "model", "sources/", "unpack/", "verify/"},
    # owners: CODEOWNERS read through sources/' safe git; the [owners] table of config
    "owners/": {"errors", "model", "config", "sources/"},
    # alerts: sent through verify/' guarded transport; the [[notify]] table of config
    "notify/": {"keyscope", "errors", "model", "redact", "config", "analyze/", "report/",
                "verify/"},
    "baseline": {"keyscope", "errors", "model", "analyze/"},
    "runtime": {"errors", "redact"},
    # the inventory database: names sources and members as reports do
    "inventory/": {"keyscope", "errors", "model", "redact", "config", "analyze/", "report/",
                   "sources/"},
    # many targets: each one a scan (on a Dask worker); forges through verify/'s transport;
    # web archives cut by unpack/'s reading of them; finished targets kept in inventory/
    "fleet/": {"errors", "model", "redact", "scan", "explain", "detect/", "sources/", "unpack/",
               "verify/", "inventory/", "report/"},
    "workflow": {"errors", "model", "redact", "heap", "runtime", "baseline", "explain", "scan",
                 "analyze/", "report/", "sources/", "verify/", "crawl/", "inventory/", "owners/",
                 "notify/", "fleet/"},
    # usage: storage logs matched to credentials; the inventory's keys; the $logs fetch
    "usage/": {"keyscope", "errors", "model", "redact", "analyze/", "report/", "verify/",
               "inventory/"},
    # posture: the owner's accounts read through verify/' guarded transport, judged in
    # analyze/azure's words, recorded in the inventory
    "posture/": {"keyscope", "errors", "model", "redact", "analyze/", "verify/", "inventory/"},
    "cli": {"keyscope", "errors", "model", "config", "explain", "runtime", "scan", "workflow",
            "report/", "sources/", "verify/", "crawl/", "inventory/", "notify/", "usage/",
            "posture/", "fleet/"},
    "keyscope": {"errors", "model", "config", "explain", "analyze/"},
    "__main__": {"cli"},
}
# Imports for type annotations only (never executed).
TYPE_ONLY: dict[str, set[str]] = {
    "model": {"providers/"},
}
# Finer rules inside the allowed edges: (importing unit, imported module prefix).
FORBIDDEN_MODULES = [
    # Provider-neutral code reaches Azure only through the provider registry.
    ("pipeline", "keyscope.analyze.azure"),
    ("scan", "keyscope.analyze.azure"),
    ("explain", "keyscope.analyze.azure"),
    ("config", "keyscope.analyze.azure"),
    ("detect/", "keyscope.analyze.azure"),
    ("report/", "keyscope.analyze.azure"),
    # detect/ takes only the text helpers of analyze/.
    ("detect/", "keyscope.analyze.policy"),
]


def _unit(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return "keyscope"
    return parts[0] + "/" if (SRC / parts[0]).is_dir() else parts[0]


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> tuple[list[str], list[str]]:
    """(run-time imports, type-only imports) of keyscope modules in one file."""
    runtime: list[str] = []
    typing_only: list[str] = []

    def visit(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_only)
            return
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name == "keyscope" or name.startswith("keyscope."):
                (typing_only if type_only else runtime).append(name)
        for child in ast.iter_child_nodes(node):
            visit(child, type_only)

    visit(tree, False)
    return runtime, typing_only


def _edges() -> list[tuple[str, str, str, bool]]:
    """(file, importing unit, imported module, type only) for every cross-unit import."""
    edges = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        unit = _unit(module)
        runtime, typing_only = _imports(ast.parse(path.read_text(encoding="utf-8")))
        for name, type_only in [(n, False) for n in runtime] + [(n, True) for n in typing_only]:
            if _unit(name) != unit:
                edges.append((str(path.relative_to(SRC)), unit, name, type_only))
    return edges


def test_every_unit_has_a_rule() -> None:
    units = {_unit("keyscope." + ".".join(p.relative_to(SRC).with_suffix("").parts))
             for p in SRC.rglob("*.py")}
    units = {"keyscope" if u == "__init__" else u for u in units}
    assert units - set(ALLOWED) == set(), "a new module or package needs a layering rule"


def test_imports_follow_the_layers() -> None:
    wrong = [
        f"{file}: {unit} imports {name}" + (" (for typing)" if type_only else "")
        for file, unit, name, type_only in _edges()
        if _unit(name) not in ALLOWED[unit] | (TYPE_ONLY.get(unit, set()) if type_only else set())
    ]
    assert wrong == []


@pytest.mark.parametrize(("unit", "prefix"), FORBIDDEN_MODULES)
def test_finer_rules(unit: str, prefix: str) -> None:
    wrong = [f"{file} imports {name}" for file, u, name, _ in _edges()
             if u == unit and (name == prefix or name.startswith(prefix + "."))]
    assert wrong == []


def test_only_the_entry_points_import_the_command_line() -> None:
    """cli and workflow sit on top: nothing below may reach up to them."""
    for file, unit, name, _ in _edges():
        if _unit(name) == "cli":
            assert unit == "__main__", file
        if _unit(name) == "workflow":
            assert unit == "cli", file


def test_the_rules_can_fail() -> None:
    """The walk sees lazy and type-only imports (a check that cannot fail is no check)."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from keyscope.scan import ScanOptions\n"
        "def f():\n    import keyscope.cli\n"
    )
    assert _imports(tree) == (["keyscope.cli"], ["keyscope.scan"])
