"""The catalogue of loss-weighting methods, read without importing them.

A method is one file in ``mtl_core/engine/weighting/`` that defines ``METHOD`` (a ``Weighting``
subclass, which imports Keras) and, at its top, two literals for people and forms:

    HELP = "one line: what the method does and its paper"
    OPTIONS = {"alpha": (1.5, 0.0, 10.0, "GradNorm's restoring-force strength")}  # default, low, high, help

This module parses those literals with ``ast`` instead of importing the file, so the CLI validates
``--weighting`` and the Train page lists the methods without loading TensorFlow. Every option becomes
the flag ``--METHOD-OPTION`` of ``train`` (``--gradnorm-alpha``) and a field on the Train page; adding a
method is adding its file. ``tests/test_weighting.py`` checks the catalogue against the classes.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

WEIGHTING_DIR = Path(__file__).resolve().parents[1] / "engine" / "weighting"
# the interface, the train step, shared code: not methods
NOT_METHODS = ("__init__", "base", "model", "combine", "replicas")
DEFAULT = "static"


@dataclass(frozen=True)
class MethodOption:
    name: str
    default: float
    low: float
    high: float
    help: str

    @property
    def flag(self) -> str:
        return self.name.replace("_", "-")


@dataclass(frozen=True)
class MethodInfo:
    name: str
    help: str
    options: tuple[MethodOption, ...] = ()

    def option_flag(self, option: MethodOption) -> str:
        return f"--{self.name}-{option.flag}"


def _literals(path: Path) -> dict:
    """The module-level ``NAME = literal`` assignments of a source file."""
    out = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # not a literal (e.g. METHOD = SomeClass)
    return out


@cache
def methods() -> dict[str, MethodInfo]:
    """Every method by name (its file's name), ``static`` first, then alphabetical."""
    found = {}
    for path in sorted(WEIGHTING_DIR.glob("*.py")):
        if path.stem in NOT_METHODS:
            continue
        lit = _literals(path)
        if "HELP" not in lit:
            raise RuntimeError(f"{path}: a weighting method needs a HELP line (see mtl_core/control/methods.py)")
        options = tuple(MethodOption(name, *spec) for name, spec in lit.get("OPTIONS", {}).items())
        found[path.stem] = MethodInfo(path.stem, lit["HELP"], options)
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != DEFAULT, kv[0])))


def names() -> tuple[str, ...]:
    return tuple(methods())
