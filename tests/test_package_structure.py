"""The package's shape: no import cycles, layers point one way, and modules stay one screenful of purpose.

Every ``import`` of a tfrec module counts, at module level or inside a function: a lazy import
still ties two modules together (and a lazy cycle is one refactor away from an ImportError).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "tfrec"

# Layers, lowest first: a module may import its own layer and the layers below it, never above.
# data <- models <- training <- export; serving knows SavedModels only; the CLI sits on top.
LAYERS = {
    "tfrec._keras_guard": 0, "tfrec.errors": 0, "tfrec.utils": 0,
    "tfrec.data": 1, "tfrec.evaluation": 1, "tfrec.reports": 1,
    "tfrec.models": 2,
    "tfrec.training": 3,
    "tfrec.export": 4,
    "tfrec.serving": 5,
    "tfrec.demo": 6, "tfrec.commands": 6, "tfrec.cli": 6, "tfrec": 6,
}
SERVING_MAY_IMPORT = ("tfrec.errors", "tfrec.utils", "tfrec.serving", "tfrec._keras_guard")
MAX_LINES = 500


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(name: str) -> str | None:
    """The tfrec module an imported dotted name refers to (a module, or the module defining a name)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` ties to the submodule; `from pkg import name`, to pkg itself.
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for name in names:
            if name == "tfrec" or name.startswith("tfrec."):
                target = _resolve(name)
                if target and target != module:
                    out.add(target)
    return out


GRAPH = {m: _imports(m) for m in MODULES}


def _layer(module: str) -> int:
    best = max((k for k in LAYERS if module == k or module.startswith(k + ".")), key=len)
    return LAYERS[best]


def test_no_import_cycle():
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(GRAPH[m]):
            if n == "tfrec":  # the root package's lazy attribute hooks are the public entry, not a layer
                continue
            if state.get(n) == 1:
                cycles.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_layers_point_one_way():
    wrong = [f"{m} imports {n}" for m, deps in GRAPH.items() for n in deps if n != "tfrec" and _layer(n) > _layer(m)]
    assert not wrong, "a lower layer imports a higher one:\n" + "\n".join(sorted(wrong))


def test_serving_knows_savedmodels_only():
    wrong = [f"{m} imports {n}" for m, deps in GRAPH.items() if m.startswith("tfrec.serving")
             for n in deps if not n.startswith(SERVING_MAY_IMPORT)]
    assert not wrong, "\n".join(sorted(wrong))


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_stays_small(module):
    lines = len(MODULES[module].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{MODULES[module]} has {lines} lines (> {MAX_LINES}): split it along its seams"


def test_checker_sees_a_cycle_and_a_layer_violation():
    """The checks above are not vacuous: they find what they look for in this very graph."""
    assert "tfrec.models.keras_base" in GRAPH["tfrec.models.mf"]
    assert "tfrec.data.features" in GRAPH["tfrec.models.keras_base"]
    assert _layer("tfrec.export.savedmodel") > _layer("tfrec.training.trainer") > _layer("tfrec.models.mf")
