"""The package's layers, read from its source: what may import what.

Bottom up: the model (wire protocol, messages, history, pure policies), the
core (hub and backends), I/O (server, client and what they serve), tools built
on them (``broadcast bench``), and the CLI. A module imports from its own layer
or the ones below, never above; the server and the client never import each
other. The pure modules listed in ``pyproject.toml`` import only each other and
standard or third-party modules that do no I/O.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "broadcast_cli"

LAYERS: list[tuple[str, set[str]]] = [
    ("model", {"exceptions", "message", "protocol", "history", "sequencer", "backoff", "auth", "urls"}),
    ("core", {"backends", "hub", "broadcaster"}),
    ("io", {"server", "client", "static", "demo"}),
    ("tools", {"bench"}),
    ("cli", {"cli", "__main__"}),
]
"""Each layer by the top-level modules and subpackages of ``broadcast_cli`` in it, bottom up."""

INDEPENDENT = [("server", "client"), ("client", "server")]
"""Pairs of subpackages where the first never imports the second."""

PURE_IMPORTS = {
    "__future__", "abc", "base64", "bisect", "collections", "collections.abc", "dataclasses", "enum",
    "functools", "hashlib", "hmac", "itertools", "json", "jwt", "math", "orjson", "os", "random", "re", "struct",
    "time", "typing", "urllib.parse",
}  # fmt: skip
"""What a pure module may import from outside the package (``os`` for ``os.urandom`` only)."""

PURE_MODULES: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["broadcast-cli"][
    "pure-modules"
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """Every module *path* imports, anywhere in it, with relative imports resolved."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.add(module)
            # ``from . import name`` may import a submodule
            found.update(f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in MODULES)
    return found


def top(module: str) -> str:
    """The top-level module or subpackage of ``broadcast_cli`` that *module* belongs to."""
    return module.split(".")[1]


def layer_of(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if top(module) in members:
            return index
    raise AssertionError(f"{module} is in no layer: add {top(module)!r} to LAYERS in {__name__}")


@pytest.mark.parametrize("module", [name for name in MODULES if name != "broadcast_cli"])
def test_a_module_imports_nothing_from_a_layer_above_it(module: str) -> None:
    own = layer_of(module)
    for imported in sorted(imports(MODULES[module])):
        if imported == "broadcast_cli":
            continue  # the package itself, for __version__ (checked below)
        if imported.startswith("broadcast_cli."):
            assert layer_of(imported) <= own, (
                f"{module} ({LAYERS[own][0]}) imports {imported} ({LAYERS[layer_of(imported)][0]}), a layer above it"
            )
            for first, second in INDEPENDENT:
                assert not (top(module) == first and top(imported) == second), f"{module} imports {imported}"


def test_from_the_package_itself_only_the_version_is_imported() -> None:
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and module != "broadcast_cli":
                names = [alias.name for alias in node.names]
                resolved = "broadcast_cli" if (node.module is None and node.level == module.count(".")) else None
                if node.module == "broadcast_cli" or resolved:
                    assert names == ["__version__"], f"{module} imports {names} from broadcast_cli itself"


@pytest.mark.parametrize("module", PURE_MODULES)
def test_a_pure_module_imports_only_pure_modules(module: str) -> None:
    assert module in MODULES, f"pyproject.toml lists {module} as pure, but there is no such module"
    for imported in sorted(imports(MODULES[module])):
        if imported.startswith("broadcast_cli"):
            assert imported in PURE_MODULES, f"{module} is pure but imports {imported}, which is not"
        else:
            assert imported in PURE_IMPORTS, f"{module} is pure but imports {imported}"


def test_every_layer_member_exists() -> None:
    tops = {top(name) for name in MODULES if name != "broadcast_cli"}
    members = set().union(*(members for _, members in LAYERS))
    assert members == tops
