"""A training checkpoint as a few files of bounded size: one safetensors blob cut into parts.

The GPU machine hands back at most 8 files of 16 MiB each, so a checkpoint (weights,
optimizer moments, RNG states, and a JSON header with the step, data position and
configs) is serialized once with safetensors and split into ``ckpt-II-of-NN.part``
files of at most :data:`PART_BYTES`. Loading joins them, checks that every part is
there, and parses with safetensors (no pickle). Writing is atomic per directory: a
crash leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch

from voxserve.errors import InvalidInput

PART_BYTES = 15 * 2**20
"""Largest part file (bytes): under the 16 MiB per file that comes back from the GPU machine."""
_PART = re.compile(r"^ckpt-(\d{2})-of-(\d{2})\.part$")
_META_KEY = "voxserve_train"


def part_files(directory: Path) -> list[Path]:
    """The part files of the checkpoint in ``directory``, in order (empty if there is none)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _PART.match(p.name))


def save(
    directory: str | Path,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    part_bytes: int = PART_BYTES,
) -> list[Path]:
    """Write ``tensors`` and the JSON-able ``meta`` as parts in ``directory``, replacing any previous ones."""
    from safetensors.torch import save as st_save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    blob = st_save(state, metadata={_META_KEY: json.dumps(meta, ensure_ascii=False)})
    n = max(1, -(-len(blob) // part_bytes))
    if n > 99:
        raise InvalidInput(f"checkpoint of {len(blob)} bytes needs {n} parts; at most 99")
    tmp = Path(tempfile.mkdtemp(prefix=".ckpt-", dir=directory))
    try:
        for i in range(n):
            (tmp / f"ckpt-{i:02d}-of-{n:02d}.part").write_bytes(blob[i * part_bytes : (i + 1) * part_bytes])
        for old in part_files(directory):
            old.unlink()
        written = []
        for p in sorted(tmp.iterdir()):
            os.replace(p, directory / p.name)
            written.append(directory / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return written


def load(directory: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save`; InvalidInput names what is missing or broken."""
    from safetensors.torch import load as st_load

    directory = Path(directory)
    parts = part_files(directory)
    if not parts:
        raise InvalidInput(f"{directory}: no checkpoint (no ckpt-II-of-NN.part files)")
    counts = {int(_PART.match(p.name).group(2)) for p in parts}  # type: ignore[union-attr]
    numbers = [int(_PART.match(p.name).group(1)) for p in parts]  # type: ignore[union-attr]
    if len(counts) != 1 or numbers != list(range(next(iter(counts)))):
        raise InvalidInput(
            f"{directory}: checkpoint parts are incomplete or mixed: {[p.name for p in parts]}"
        )
    blob = b"".join(p.read_bytes() for p in parts)
    try:
        (header_len,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8 : 8 + header_len])
        meta = json.loads(header["__metadata__"][_META_KEY])
        tensors = st_load(blob)
    except (struct.error, KeyError, ValueError, TypeError) as e:
        raise InvalidInput(f"{directory}: checkpoint is corrupt ({type(e).__name__}: {e})") from e
    except Exception as e:  # safetensors raises its own error type for a bad buffer
        raise InvalidInput(f"{directory}: checkpoint is corrupt ({type(e).__name__}: {e})") from e
    return tensors, meta


def save_single(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """One safetensors file with ``meta`` in its header (a light checkpoint); written atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    state = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(state, str(tmp), metadata={_META_KEY: json.dumps(meta, ensure_ascii=False)})
    tmp.chmod(0o644)
    os.replace(tmp, path)
    return path


def load_single(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_single`; InvalidInput when it is not one."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[_META_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no iterator)
    except Exception as e:  # missing file, not safetensors, or no training header
        raise InvalidInput(f"{path}: not a light training checkpoint ({type(e).__name__}: {e})") from e
    return tensors, meta


def flatten_optimizer(state: dict[str, Any], prefix: str = "optim") -> tuple[dict[str, torch.Tensor], Any]:
    """An optimizer ``state_dict`` → (tensors by flat name, the JSON-able rest)."""
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, dict[str, Any]] = {}
    for pid, slots in state["state"].items():
        for key, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{pid}.{key}"] = value
            else:
                plain.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "plain": plain}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], rest: Any, prefix: str = "optim") -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer`."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if not name.startswith(prefix + "."):
            continue
        pid, key = name[len(prefix) + 1 :].split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    for pid, slots in rest.get("plain", {}).items():
        state.setdefault(int(pid), {}).update(slots)
    return {"state": state, "param_groups": rest["param_groups"]}
