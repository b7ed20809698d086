"""The rules each folder keeps (docs/architecture.md), read from the import statements of every module."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "streamtag"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    return {".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__"): path
            for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every module named by an import statement, at any depth (imports inside functions count), except under
    ``if TYPE_CHECKING:``, which only type checkers run."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            node.body = []
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _top(name: str) -> str:
    return name.split(".")[0]


def test_the_core_imports_only_the_standard_library_numpy_and_itself():
    allowed = set(sys.stdlib_module_names) | {"numpy"}
    for name, path in _modules().items():
        if name.startswith("streamtag.core"):
            foreign = {m for m in _imports(path) if not (m.startswith("streamtag.core") or _top(m) in allowed)}
            assert not foreign, f"{name} imports {sorted(foreign)}"


def test_only_training_imports_torch():
    for name, path in _modules().items():
        if name.startswith("streamtag.train") or name == "streamtag.commands.train":
            continue
        assert "torch" not in {_top(m) for m in _imports(path)}, name


def test_the_library_never_imports_the_command_line():
    for name, path in _modules().items():
        if name.startswith("streamtag.commands") or name == "streamtag.cli":
            continue
        assert not {m for m in _imports(path) if m.startswith("streamtag.commands")}, name


def test_no_import_cycles_between_modules():
    modules = _modules()
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for dependency in sorted(graph[name]):
            visit(dependency, (*path, name))
        done.add(name)

    for name in modules:
        visit(name, ())


def test_no_module_is_longer_than_the_limit():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"over {MAX_LINES} lines: {long}"


def test_every_package_is_installed():
    """pyproject.toml lists the packages by name: a new folder left out would be missing from a wheel."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {".".join(p.parent.relative_to(REPO).parts) for p in PACKAGE.rglob("__init__.py")}
    assert folders <= listed, sorted(folders - listed)
