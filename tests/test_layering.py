"""The package layout's promises, read from the source: no import cycle inside core/, core/ never imports Qt or
the viewer, and each layer imports only the layers below it (data < model < training / tto < evaluation)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What each package of core/ must never import (directly or lazily inside a function).
FORBIDDEN = {
    "core.utils": (
        "core.data",
        "core.model",
        "core.training",
        "core.tto",
        "core.evaluation",
        "core.meshing",
        "core.edit",
        "core.commands",
    ),
    "core.data": ("core.model", "core.training", "core.tto", "core.evaluation", "core.edit", "core.commands"),
    "core.model": ("core.training", "core.tto", "core.evaluation", "core.edit", "core.commands"),
    "core.training": ("core.tto", "core.evaluation", "core.edit", "core.commands"),
    "core.meshing": ("core.training", "core.tto", "core.evaluation", "core.edit", "core.commands"),
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "core").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every module named by an import statement anywhere in the file."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_core_has_no_import_cycle():
    modules = _modules()
    packages = {name for name, path in modules.items() if path.name == "__init__.py"}
    graph = {
        name: {m for m in _imports(path) if m in modules and m not in packages and m != name}
        for name, path in modules.items()
        if name not in packages
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_core_never_imports_qt_or_the_viewer():
    offenders = [
        f"{name}: {imported}"
        for name, path in _modules().items()
        for imported in _imports(path)
        if imported.split(".")[0] in ("viewer", "PySide6", "pyvistaqt")
    ]
    assert not offenders, offenders


def test_each_layer_imports_only_the_layers_below_it():
    offenders = []
    for name, path in _modules().items():
        for package, banned in FORBIDDEN.items():
            if name == package or name.startswith(package + "."):
                offenders += [f"{name} imports {m}" for m in _imports(path) if m.startswith(banned)]
    assert not offenders, offenders
