"""Model families by name, imported lazily.

A family is a subpackage ``voxserve.models.<family>`` exposing ``Config`` (a frozen
dataclass with ``from_dict``) and ``Model`` (an ``nn.Module`` built from a Config).
Registering a family is one line here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

FAMILIES: dict[str, str] = {
    "fastspeech2": "voxserve.models.fastspeech2",
    "mbmelgan": "voxserve.models.mbmelgan",
    "emotivoice": "voxserve.models.emotivoice",
    "clone": "voxserve.models.clone",
    "hifigan": "voxserve.models.clone.vocoder",
}


def family(name: str) -> ModuleType:
    """The module of a model family; an unknown name raises KeyError listing valid ones."""
    try:
        path = FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}") from None
    return importlib.import_module(path)
