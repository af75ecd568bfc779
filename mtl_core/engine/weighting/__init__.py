"""Loss-weighting methods, one module each (LibMTL's layout): a module that defines ``METHOD`` (a
``Weighting`` subclass) is a method, so adding a method is adding a file.

The user's static weights multiply the adaptive ones: effective weight of head i = static_i * adaptive_i.
"""

from __future__ import annotations

import importlib
import pkgutil

from mtl_core.engine.weighting.base import Weighting

_METHODS: dict[str, type[Weighting]] | None = None


def methods() -> dict[str, type[Weighting]]:
    """Every method by name, discovered from the modules of this package."""
    global _METHODS
    if _METHODS is None:
        found: dict[str, type[Weighting]] = {}
        for info in pkgutil.iter_modules(__path__):
            module = importlib.import_module(f"{__name__}.{info.name}")
            method = getattr(module, "METHOD", None)
            if method is not None:
                found[method.name] = method
        _METHODS = found
    return _METHODS


def get_method(name: str) -> type[Weighting]:
    try:
        return methods()[name]
    except KeyError:
        raise KeyError(f"unknown weighting method {name!r} (known: {', '.join(sorted(methods()))})") from None


__all__ = ["Weighting", "get_method", "methods"]
