"""The package's shape, as docs/ARCHITECTURE.md draws it: imports inside mtl_core only point down the
layers, there is no import cycle, the control plane never imports TensorFlow, and serving a model does
not import the training code. Imports are read from the source (module level and inside functions alike),
so a lazy import that points the wrong way fails here too."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mtl_core"
# lowest first; a module may import its own layer or a lower one
LAYERS = ["errors", "control", "engine", "views", "cli"]


def module_name_in(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_name(path: Path) -> str:
    return module_name_in(path, ROOT)


def imports_of(path: Path, modules: set[str], root: Path = ROOT) -> set[str]:
    """The mtl_core modules ``path`` imports (``from pkg import mod`` counts as importing ``pkg.mod``)."""
    name = module_name_in(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `from a.b import function` -> a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) - {"mtl_core"} for p in paths}


def layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else ""
    return LAYERS.index(top) if top in LAYERS else -1  # mtl_core itself and __main__: outside the layers


def test_imports_only_point_down_the_layers():
    wrong = [f"{m} -> {t}" for m, targets in graph().items() for t in targets
             if layer(m) >= 0 and layer(t) > layer(m)]
    assert not wrong, "imports pointing up the layers (errors < control < engine < views < cli):\n" + "\n".join(wrong)


def find_cycles(g: dict[str, set[str]]) -> list[str]:
    """Every import cycle of graph ``g`` found by a depth-first walk, as "a -> b -> a"."""
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(g.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(g):
        if node not in state:
            visit(node, [node])
    return cycles


def test_no_import_cycles_inside_mtl_core():
    cycles = find_cycles(graph())
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checks_see_a_cycle_and_an_upward_import(tmp_path):
    """The checkers themselves, on a small package: a lazy import inside a function counts, a cycle is
    reported, and an engine module imported by the control plane points up."""
    pkg = tmp_path / "mtl_core"
    (pkg / "control").mkdir(parents=True)
    (pkg / "engine").mkdir()
    for init in (pkg, pkg / "control", pkg / "engine"):
        (init / "__init__.py").write_text("")
    (pkg / "control" / "a.py").write_text("def f():\n    from mtl_core.engine import b\n")
    (pkg / "engine" / "b.py").write_text("from mtl_core.control.a import f\n")
    paths = sorted(pkg.rglob("*.py"))
    modules = {module_name_in(p, tmp_path) for p in paths}
    g = {module_name_in(p, tmp_path): imports_of(p, modules, tmp_path) - {"mtl_core"} for p in paths}
    assert "mtl_core.engine.b" in g["mtl_core.control.a"]  # the lazy import, read from inside the function
    assert g["mtl_core.engine.b"] == {"mtl_core.control.a"}
    assert "mtl_core.control.a -> mtl_core.engine.b -> mtl_core.control.a" in find_cycles(g)
    assert layer("mtl_core.engine.b") > layer("mtl_core.control.a")


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("module", sorted(m for m in graph() if layer(m) <= 1 and layer(m) >= 0))
def test_the_control_plane_imports_no_tensorflow(module):
    loaded = _imported_after(f"import {module}")
    assert not loaded & {"tensorflow", "keras"}, f"{module} imports TensorFlow/Keras"


def test_serving_a_model_does_not_import_the_training_code():
    loaded = _imported_after("import mtl_core.engine.inference")
    training = {m for m in loaded if m.startswith(("mtl_core.engine.training", "mtl_core.engine.weighting",
                                                   "mtl_core.engine.baselines", "mtl_core.engine.conditioned"))}
    assert "mtl_core.engine.inference" in loaded and not training, training
