"""Imports run one way: cogs -> core. The core (every module under bot/ but a short list of
Discord-facing glue) never imports discord, not even through another module, and no cog
imports the client at run time (the client loads the cogs)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "cogs")

# The Discord-facing glue under bot/: everything else there is core.
GLUE = frozenset(
    {
        "bot.client",
        "bot.connect",
        "bot.errors",
        "bot.invite",
        "bot.ratelimits",
        "bot.ui",
        "bot.__main__",
    }
)
# Glue that may reach discord.py only from inside a function (the CLI's `run`), so that
# `check` and `preview` start without it.
LAZY_ONLY = frozenset({"bot.__main__"})


@dataclass(frozen=True)
class Import:
    module: str  # as written, absolute
    line: int
    lazy: bool  # inside a function body


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def runtime_imports(source: str, module: str, *, is_package: bool = False) -> list[Import]:
    """Every import the module runs (at import time or inside a function), leaving out
    ``if TYPE_CHECKING:`` blocks, which never run."""
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:
                visit(statement, lazy)
            return
        if isinstance(node, ast.Import):
            found.extend(Import(alias.name, node.lineno, lazy) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append(Import(base, node.lineno, lazy))
            # `from bot import ui` imports the module bot.ui.
            found.extend(Import(f"{base}.{alias.name}", node.lineno, lazy) for alias in node.names)
        inner = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        for child in ast.iter_child_nodes(node):
            visit(child, inner)

    visit(ast.parse(source), lazy=False)
    return found


def _with_parents(name: str) -> Iterator[str]:
    parts = name.split(".")
    for end in range(1, len(parts) + 1):
        yield ".".join(parts[:end])


class Graph:
    def __init__(self) -> None:
        self.paths = project_modules()
        self.imports = {
            name: runtime_imports(
                path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py"
            )
            for name, path in self.paths.items()
        }

    def edges(self, name: str) -> Iterator[tuple[str, Import]]:
        """(project module or third-party top-level name, the import) for each import."""
        for imported in self.imports[name]:
            for target in _with_parents(imported.module):
                if target in self.paths or "." not in target:
                    yield target, imported

    def chain_to(self, start: str, goal: str) -> list[str] | None:
        """The import chain from ``start`` to ``goal`` (a module or top-level package), if the
        first is imported, even indirectly, when the second runs."""
        seen = {start}
        queue: list[list[str]] = [[start]]
        while queue:
            chain = queue.pop(0)
            if chain[-1] not in self.paths:
                continue
            for target, imported in self.edges(chain[-1]):
                step = [*chain, f"{target} (line {imported.line})"]
                if target == goal or target.startswith(goal + "."):
                    return step
                if target not in seen and target in self.paths:
                    seen.add(target)
                    queue.append([*chain, target])
        return None


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph()


def core_modules(graph: Graph) -> list[str]:
    return [name for name in graph.paths if name.split(".")[0] == "bot" and name not in GLUE]


def cog_modules(graph: Graph) -> list[str]:
    return [name for name in graph.paths if name.split(".")[0] == "cogs"]


def test_the_allowlist_names_real_modules(graph):
    assert set(GLUE) <= set(graph.paths)
    assert len(core_modules(graph)) > len(GLUE)  # the core is most of bot/


def test_core_modules_never_import_discord(graph):
    leaks = {
        name: chain for name in core_modules(graph) if (chain := graph.chain_to(name, "discord"))
    }
    assert not leaks, "\n".join(" -> ".join(chain) for chain in leaks.values())


def test_the_cli_imports_discord_only_when_it_runs_the_bot(graph):
    for name in LAZY_ONLY:
        eager = {target for target, imported in graph.edges(name) if not imported.lazy}
        assert "discord" not in eager, name
        leaks = [chain for target in eager if (chain := graph.chain_to(target, "discord"))]
        assert not leaks, "\n".join(" -> ".join([name, *chain]) for chain in leaks)


def test_no_cog_imports_the_client_at_run_time(graph):
    cogs = cog_modules(graph)
    assert cogs
    found = {name: chain for name in cogs if (chain := graph.chain_to(name, "bot.client"))}
    assert not found, "\n".join(" -> ".join(chain) for chain in found.values())


def test_the_core_never_imports_a_cog(graph):
    # bot.client imports the `cogs` package itself, only to list its modules.
    for name in (n for n in graph.paths if n.split(".")[0] == "bot"):
        for imported in graph.imports[name]:
            assert not imported.module.startswith("cogs."), f"{name} imports {imported.module}"


# -- the checker itself ---------------------------------------------------------------------------


def test_the_checker_sees_runtime_imports_and_skips_type_checking_blocks():
    source = (
        "from typing import TYPE_CHECKING\n"
        "from bot.errors import UserError\n"
        "from . import ui\n"
        "if TYPE_CHECKING:\n"
        "    from bot.client import EmbargoBot\n"
        "else:\n"
        "    import json\n"
        "def later():\n"
        "    import discord\n"
    )
    found = {(i.module, i.lazy) for i in runtime_imports(source, "bot.example")}
    assert ("bot.errors", False) in found
    assert ("bot.ui", False) in found
    assert ("json", False) in found
    assert ("discord", True) in found
    assert not any(module.startswith("bot.client") for module, _ in found)


def test_the_checker_finds_an_indirect_import(graph, monkeypatch):
    core = "bot.ranking"
    monkeypatch.setitem(graph.imports, core, [Import("bot.ui", 1, lazy=False)])
    chain = graph.chain_to(core, "discord")
    assert chain is not None
    assert chain[:2] == ["bot.ranking", "bot.ui"]
    monkeypatch.setitem(graph.imports, core, [Import("bot.client", 1, lazy=True)])
    assert graph.chain_to(core, "bot.client") is not None


@pytest.mark.parametrize(
    "module", ["bot.ranking", "bot.ranking_choice", "bot.messages", "bot.ranking_messages"]
)
def test_maths_choices_and_messages_take_plain_data_not_storage(graph, module):
    assert graph.chain_to(module, "bot.storage") is None
