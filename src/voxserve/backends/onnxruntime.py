"""The ONNX Runtime backend: a voice's three exported stages on the CPU, optionally with int8 weights.

``load`` exports the pack's stages once (cached beside the pack, see
:mod:`voxserve.backends.onnx_export`) and opens one ONNX Runtime session per
stage with every graph optimization on, ``threads`` intra-op threads (default:
the physical cores this process may use), one inter-op thread, sequential
execution and no spin-waiting: these graphs are chains of millisecond ops, and
on a small CPU parallel branches or spinning threads only fight over the cores.

Per acoustic call: the encoder runs on the padded symbols, the host reads the
durations to size the frame axis, and the decoder expands and decodes. Results
equal the PyTorch reference to float rounding (durations exactly, in float32).
With ``int8=True`` the decoder (by default) runs from an int8 file (see
:mod:`voxserve.backends.onnx_int8`). The backend does not batch across calls
(the engine does) and holds no torch modules after loading. Sessions are safe
to call from several threads at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxserve.backends.interface import Backend
from voxserve.errors import InvalidInput
from voxserve.models.interface import AcousticOutput, Controls

logger = logging.getLogger(__name__)


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (hyper-threads counted once)."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not allowed:
        return max(1, os.cpu_count() or 1)
    cores = set()
    for cpu in allowed:
        # Siblings share a core id within a package; sysfs is Linux's, else count each CPU.
        base = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(
                ((base / "physical_package_id").read_text().strip(), (base / "core_id").read_text().strip())
            )
        except OSError:
            cores.add(("cpu", str(cpu)))
    return max(1, len(cores))


def make_session(
    path: str | Path, threads: int | None = None, optimized_path: str | Path | None = None, spin: bool = False
) -> Any:
    """An ONNX Runtime CPU session for ``path``: all graph optimizations, ``threads`` intra-op, sequential.

    ``optimized_path`` also writes the optimized graph there (for inspection; it is
    specific to this machine's CPU features, so it is not reused across machines).
    ``spin`` lets idle pool threads busy-wait for the next op: it saves microseconds
    per op, but these ops take milliseconds, and a spinning thread takes the core
    from the frontend and from other requests (measured on 2 busy cores: slower).
    """
    import onnxruntime as ort  # type: ignore[import-untyped]

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or physical_cores()
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    so.log_severity_level = 3  # errors only: the exporter's shape hints make ORT warn about nothing
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OnnxRuntimeBackend(Backend):
    """Exported stages in ONNX Runtime on the CPU; CPU torch tensors in and out."""

    name = "onnxruntime"

    def __init__(
        self,
        threads: int | None = None,
        int8: bool = False,
        int8_method: str = "static",
        int8_stages: Sequence[str] = ("decoder",),
        cache_dir: str | Path | None = None,
        save_optimized: bool = False,
        spin: bool = False,
        device: str = "cpu",
    ) -> None:
        """``threads``: intra-op threads per session (None: the physical cores).

        ``int8``: run ``int8_stages`` from int8 files made by ``int8_method``
        (``static`` or ``dynamic``, see :mod:`voxserve.backends.onnx_int8`, which
        also says why only the decoder by default). ``cache_dir`` overrides where
        exports are kept. ``save_optimized`` writes each optimized graph beside its
        file as ``*.opt.onnx``. ``spin``: see :func:`make_session`. ``device`` must
        be ``cpu`` (the engine passes it to every backend).
        """
        from voxserve.backends.onnx_export import STAGE_NAMES
        from voxserve.backends.onnx_int8 import METHODS

        if device != "cpu":
            raise InvalidInput(f"the onnxruntime backend runs on the CPU, not {device!r}", param="device")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InvalidInput(f"threads must be a positive integer, got {threads!r}", param="threads")
        if int8_method not in METHODS:
            raise InvalidInput(
                f"unknown int8 method {int8_method!r}; known: {', '.join(METHODS)}", param="int8_method"
            )
        unknown = sorted(set(int8_stages) - set(STAGE_NAMES))
        if unknown:
            raise InvalidInput(
                f"unknown int8 stage {unknown[0]!r}; stages: {', '.join(STAGE_NAMES)}", param="int8_stages"
            )
        self.threads = threads
        self.int8 = int8
        self.int8_method = int8_method
        self.int8_stages = tuple(int8_stages)
        self.cache_dir = cache_dir
        self.save_optimized = save_optimized
        self.spin = spin

    def load(self, pack: Any) -> None:
        """Export (first time only), quantize (first time only) and open the three sessions.

        ``pack`` is a :class:`~voxserve.packs.pack.Pack` or anything with
        ``build_stage``, ``name`` and ``path``.
        """
        from voxserve.backends.onnx_export import ensure_exported
        from voxserve.backends.onnx_int8 import quantize_stage

        self.directory, manifest = ensure_exported(pack, self.cache_dir)
        self.facts: dict[str, int] = manifest["facts"]
        self.hop_length = self.facts["hop_length"]
        self.inputs = {s: tuple(v["inputs"]) for s, v in manifest["stages"].items()}
        self.outputs = {s: tuple(v["outputs"]) for s, v in manifest["stages"].items()}
        self.files: dict[str, Path] = {}
        self.sessions = {}
        for stage in self.inputs:
            path = self.directory / f"{stage}.onnx"
            if self.int8 and stage in self.int8_stages:
                path = quantize_stage(self.directory, manifest, stage, self.int8_method, pack)
            optimized = path.with_suffix(".opt.onnx") if self.save_optimized else None
            self.files[stage] = path
            self.sessions[stage] = make_session(path, self.threads, optimized, self.spin)
        logger.info("onnxruntime: %s from %s", pack.name, ", ".join(str(p) for p in self.files.values()))

    @property
    def receptive_frames(self) -> int | None:
        """Mel frames of context a vocoder chunk needs on each side (for streaming), if the export knows."""
        value = self.facts.get("receptive_frames", -1)
        return value if value >= 0 else None

    def _run(self, stage: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.sessions[stage].run(None, {n: feeds[n] for n in self.inputs[stage]})
        return dict(zip(self.outputs[stage], out, strict=True))

    def acoustic(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
    ) -> AcousticOutput:
        feeds = {
            "ids": ids.to(torch.int64).numpy(),
            "lengths": lengths.to(torch.int64).numpy(),
            "controls": torch.stack([c.float() for c in controls], 1).numpy(),
        }
        if "speaker" in self.inputs["encoder"]:
            if speaker is None or style is None:
                raise InvalidInput(
                    f"this voice needs speakers [B] (or [B, D] embeddings) and style [B, {self.facts['style_dim']}]",
                    param="speaker",
                )
            # Table rows are int64 [B]; embeddings (cloned voices) float32 [B, D].
            feeds["speaker"] = (speaker.to(torch.int64) if speaker.dim() == 1 else speaker.float()).numpy()
            feeds["style"] = style.float().numpy()
        enc = self._run("encoder", feeds)
        n_frames = max(1, int(enc["durations"].sum(1).max()))
        if n_frames > self.facts["max_frames"]:
            raise InvalidInput(
                f"{n_frames} frames is past this model's {self.facts['max_frames']}; split the text",
                param="input",
            )
        enc["lengths"] = feeds["lengths"]
        enc["frame_ids"] = np.arange(n_frames, dtype=np.int64)
        dec = self._run("decoder", enc)
        return AcousticOutput(
            *(
                torch.from_numpy(a)
                for a in (dec["mel"], dec["mel_lengths"], enc["durations"], enc["pitch"], enc["energy"])
            )
        )

    def vocoder(self, mel: torch.Tensor) -> torch.Tensor:
        b, frames, _ = mel.shape
        if frames == 0:
            return mel.new_zeros(b, 0)
        x = mel.float()
        short = self.facts["min_frames"] - frames
        if short > 0:  # as the PyTorch vocoder does: repeat the last frame, trim the audio afterwards
            x = torch.cat([x, x[:, -1:].expand(b, short, -1)], 1)
        wav = torch.from_numpy(self._run("vocoder", {"mel": x.contiguous().numpy()})["wav"])
        return wav[:, : frames * self.hop_length]
