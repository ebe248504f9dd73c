"""Backends by name, imported lazily; an unknown name lists the valid ones."""

from __future__ import annotations

import importlib

from voxserve.backends.interface import Backend
from voxserve.errors import InvalidInput

BACKENDS: dict[str, str] = {
    "torch": "voxserve.backends.torch_eager:TorchBackend",
    "cuda": "voxserve.backends.cuda:CudaBackend",
    "onnxruntime": "voxserve.backends.onnxruntime:OnnxRuntimeBackend",
}


def create(name: str, **kwargs: object) -> Backend:
    """A new, unloaded backend called ``name`` (``torch``…), built with ``kwargs``."""
    try:
        target = BACKENDS[name]
    except KeyError:
        raise InvalidInput(f"unknown backend {name!r}; known: {', '.join(sorted(BACKENDS))}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)(**kwargs)
