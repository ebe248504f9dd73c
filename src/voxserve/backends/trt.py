"""TensorRT readiness: shape profiles and ``trtexec`` command lines for the exported stage files.

TensorRT builds one engine per stage from its ONNX file and an optimization
profile: a min, opt and max shape for every input. This module writes, beside
each ``<stage>.onnx``, ``<stage>.profile.json`` with those shapes and the graph's
operator types, and one ``trtexec.sh`` with the build commands. It does not run
TensorRT (it cannot be installed here) and does not check the shapes against a
GPU's memory.

Profiles: batch 1/8/64, symbols 4/128/512, frames 16/640/2560 (about five
frames per symbol at opt; 2560 frames is 32 s at baker's 80 frames per second).
The encoder is built without ``--fp16``: a duration is a rounded float and half
precision moves some by a frame (the CUDA backend keeps that half in float32 for
the same reason). Decoder and vocoder build with ``--fp16``, except EmotiVoice's
decoder: its Gaussian upsampling squares frame distances (2560² is past half
precision's 65504), so a padded frame far from every symbol would get an
all-``-inf`` softmax row, i.e. NaN. Int8 files are for ONNX Runtime only and get
no profile.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

BATCH = (1, 8, 64)
"""min/opt/max batch size (items)."""
TOKENS = (4, 128, 512)
"""min/opt/max symbols per item."""
FRAMES = (16, 640, 2560)
"""min/opt/max mel frames per item."""
FP16_STAGES = ("decoder", "vocoder")
"""Stages built in half precision; the encoder stays float32 (durations)."""
FP32_ONLY = {("emotivoice", "decoder")}
"""(family, stage) pairs that must stay float32 (see the module docstring)."""


def input_shapes(stage: str, names: list[str], facts: dict[str, int]) -> dict[str, list[list[int]]]:
    """Input name → [min, opt, max] shapes for one stage."""
    frames_lo = max(FRAMES[0], facts.get("min_frames", 1))
    frames: tuple[int, ...] = (frames_lo, max(FRAMES[1], frames_lo), max(FRAMES[2], frames_lo))
    if facts.get("max_frames"):
        frames = tuple(min(f, facts["max_frames"]) for f in frames)
    dims = {
        "ids": lambda i: [BATCH[i], TOKENS[i]],
        "lengths": lambda i: [BATCH[i]],
        "controls": lambda i: [BATCH[i], 4],
        "speaker": lambda i: [BATCH[i]],
        "style": lambda i: [BATCH[i], facts["style_dim"]],
        "states": lambda i: [BATCH[i], TOKENS[i], facts["hidden"]],
        "durations": lambda i: [BATCH[i], TOKENS[i]],
        "frame_ids": lambda i: [frames[i]],
        "mel": lambda i: [BATCH[i], frames[i], facts["n_mels"]],
    }
    unknown = [n for n in names if n not in dims]
    if unknown:
        raise ValueError(f"{stage}: no profile rule for input {unknown[0]!r}")
    return {n: [dims[n](i) for i in range(3)] for n in names}


def _shape_arg(shapes: dict[str, list[list[int]]], i: int) -> str:
    return ",".join(f"{name}:{'x'.join(str(d) for d in s[i])}" for name, s in shapes.items())


def trtexec_command(stage: str, shapes: dict[str, list[list[int]]], fp16: bool) -> list[str]:
    """The ``trtexec`` argv that builds ``<stage>.plan`` from ``<stage>.onnx`` with these shapes."""
    cmd = [
        "trtexec",
        f"--onnx={stage}.onnx",
        f"--minShapes={_shape_arg(shapes, 0)}",
        f"--optShapes={_shape_arg(shapes, 1)}",
        f"--maxShapes={_shape_arg(shapes, 2)}",
    ]
    if fp16:
        cmd.append("--fp16")
    return [*cmd, f"--saveEngine={stage}.plan"]


def _op_types(path: Path) -> list[str]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return sorted({n.op_type for n in model.graph.node})


def write_profiles(directory: Path, manifest: dict[str, Any]) -> list[Path]:
    """Write ``<stage>.profile.json`` per stage and ``trtexec.sh``; returns the paths written.

    Commands use paths relative to ``directory`` (run the script from there).
    """
    written, lines = (
        [],
        ["#!/bin/sh", "# Build TensorRT engines for these stage files. Run from this directory.", "set -e"],
    )
    for stage, spec in manifest["stages"].items():
        shapes = input_shapes(stage, spec["inputs"], manifest["facts"])
        fp16 = stage in FP16_STAGES and (manifest.get("family"), stage) not in FP32_ONLY
        cmd = trtexec_command(stage, shapes, fp16)
        profile = {
            "file": spec["file"],
            "inputs": {n: dict(zip(("min", "opt", "max"), s, strict=True)) for n, s in shapes.items()},
            "outputs": spec["outputs"],
            "precision": "fp16" if fp16 else "fp32",
            "ops": _op_types(directory / spec["file"]),
            "trtexec": shlex.join(cmd),
        }
        path = directory / f"{stage}.profile.json"
        path.write_text(json.dumps(profile, indent=1), encoding="utf-8")
        written.append(path)
        lines.append(shlex.join(cmd))
    script = directory / "trtexec.sh"
    script.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(script)
    return written
