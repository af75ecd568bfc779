"""Preset registry. Adding a preset is adding a module here that defines ``PRESET``."""

from __future__ import annotations

import importlib
import pkgutil

from mtl_core.control.presets.base import Preset
from mtl_core.errors import UserError

_REGISTRY: dict[str, Preset] = {}


def _discover() -> dict[str, Preset]:
    if not _REGISTRY:
        for info in pkgutil.iter_modules(__path__):
            if info.name == "base" or info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{__name__}.{info.name}")
            preset = getattr(module, "PRESET", None)
            if isinstance(preset, Preset):
                _REGISTRY[preset.name] = preset
    return _REGISTRY


def all_presets(include_data_defined: bool = True) -> list[Preset]:
    return sorted((p for p in _discover().values() if include_data_defined or not p.data_defined),
                  key=lambda p: p.name)


def preset_for(name: str, data: dict | None) -> Preset:
    """The preset ``name`` for a config's ``data``: itself, or (``table``) the preset its data defines."""
    return get_preset(name).for_data(data)


def get_preset(name: str) -> Preset:
    presets = _discover()
    if name not in presets:
        raise UserError(f"unknown preset {name!r} (known: {', '.join(sorted(presets))})")
    return presets[name]
