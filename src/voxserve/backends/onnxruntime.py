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

Padding is not computed: on a CPU a padded frame costs as much as a real one and
a batch buys no speed (the GEMMs are long along time already), yet the engine
pads a long text's sentences to the longest (1.5-1.7× the real frames on the
benchmark's paragraphs). So with ``unbatch`` (default) the decoder runs each
item alone on its own symbols and frames, and the vocoder runs each row on the
frames between its all-zero ends (the padding; rows of equal length share a
call). Each item then equals its unbatched output, and samples of padding are
zero (the PyTorch vocoder leaves them undefined). Those items run ``lanes`` at a
time, each on one thread with its own one-thread sessions: one conv per core
keeps both cores busier than two threads splitting each conv. A vocoder call
longer than a lane's share is cut in pieces with ``receptive_frames`` of context
(exact; at most :data:`MAX_OVERLAP` extra work), so one long sentence uses the
lanes too.

With ``int8=True`` the decoder (by default) runs from an int8 file (see
:mod:`voxserve.backends.onnx_int8`). The backend does not batch across calls
(the engine does) and holds no torch modules after loading. Sessions are safe
to call from several threads at once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxserve.backends.interface import Backend
from voxserve.errors import InvalidInput
from voxserve.models.interface import AcousticOutput, Controls

logger = logging.getLogger(__name__)

MAX_OVERLAP = 0.1
"""Most extra vocoder work (context frames / call frames) spent to cut one call across the lanes."""


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
        unbatch: bool = True,
        lanes: int | None = None,
        device: str = "cpu",
    ) -> None:
        """``threads``: intra-op threads per session (None: the physical cores).

        ``int8``: run ``int8_stages`` from int8 files made by ``int8_method``
        (``static`` or ``dynamic``, see :mod:`voxserve.backends.onnx_int8`, which
        also says why only the decoder by default). ``cache_dir`` overrides where
        exports are kept. ``save_optimized`` writes each optimized graph beside its
        file as ``*.opt.onnx``. ``spin``: see :func:`make_session`. ``unbatch``: run
        the decoder per item and the vocoder per row's content (see the module
        docstring). ``lanes``: unbatched items run this many at a time, each on one
        thread (None: as many as ``threads``; 1: one at a time on ``threads`` threads).
        ``device`` must be ``cpu`` (the engine passes it to every backend).
        """
        from voxserve.backends.onnx_export import STAGE_NAMES
        from voxserve.backends.onnx_int8 import METHODS

        if device != "cpu":
            raise InvalidInput(f"the onnxruntime backend runs on the CPU, not {device!r}", param="device")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InvalidInput(f"threads must be a positive integer, got {threads!r}", param="threads")
        if lanes is not None and (isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1):
            raise InvalidInput(f"lanes must be a positive integer, got {lanes!r}", param="lanes")
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
        self.unbatch = unbatch
        self.lanes = lanes if lanes is not None else (threads or physical_cores())

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
        # Unbatched items in parallel, one thread each: a conv on one thread keeps its core busy,
        # two threads on one conv do not (measured: two 1-thread vocoder runs side by side take
        # 14 % less time than the same two runs one after the other on 2 threads).
        self.lane_sessions: dict[str, Any] = {}
        self._pool: ThreadPoolExecutor | None = None
        if self.unbatch and self.lanes > 1:
            for stage in ("decoder", "vocoder"):
                self.lane_sessions[stage] = make_session(self.files[stage], 1, None, self.spin)
            self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="voxserve-ort-lane")
        logger.info("onnxruntime: %s from %s", pack.name, ", ".join(str(p) for p in self.files.values()))

    def warmup(self, speaker: torch.Tensor | None = None, style: torch.Tensor | None = None) -> None:
        """The base warm-up, then two items at once so the lanes' sessions have run too."""
        super().warmup(speaker, style)
        if self._pool is not None:
            two = [None if t is None else t.expand(2, *t.shape[1:]) for t in (speaker, style)]
            out = self.acoustic(
                torch.ones(2, 16, dtype=torch.int64), torch.tensor([16, 12]), Controls.neutral(2), *two
            )
            self.vocoder(out.mel)

    @property
    def receptive_frames(self) -> int | None:
        """Mel frames of context a vocoder chunk needs on each side (for streaming), if the export knows."""
        value = self.facts.get("receptive_frames", -1)
        return value if value >= 0 else None

    def _run(self, stage: str, feeds: dict[str, np.ndarray], lane: bool = False) -> dict[str, np.ndarray]:
        sessions = self.lane_sessions if lane else self.sessions
        out = sessions[stage].run(None, {n: feeds[n] for n in self.inputs[stage]})
        return dict(zip(self.outputs[stage], out, strict=True))

    def _each(self, costs: Sequence[int], work: Callable[[int, bool], None]) -> None:
        """``work(i, lane)`` for every item ``i``: spread over the lanes (``lane`` True: use the
        one-thread sessions), longest first onto the least loaded lane; or in order, with
        all threads, when there are no lanes or only one item."""
        if self._pool is None or len(costs) < 2:
            for i in range(len(costs)):
                work(i, False)
            return
        plan: list[list[int]] = [[] for _ in range(self.lanes)]
        load = [0] * self.lanes
        for i in sorted(range(len(costs)), key=lambda i: -costs[i]):
            k = load.index(min(load))
            plan[k].append(i)
            load[k] += costs[i]

        def lane(items: list[int]) -> None:
            for i in items:
                work(i, True)

        for future in [self._pool.submit(lane, items) for items in plan if items]:
            future.result()

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
        frames = np.maximum(enc["durations"].sum(1), 1)
        n_frames = int(frames.max())
        if n_frames > self.facts["max_frames"]:
            raise InvalidInput(
                f"{n_frames} frames is past this model's {self.facts['max_frames']}; split the text",
                param="input",
            )
        enc["lengths"] = feeds["lengths"]
        if self.unbatch and len(frames) > 1:
            mel, mel_lengths = self._decode_each(enc, frames)
        else:
            enc["frame_ids"] = np.arange(n_frames, dtype=np.int64)
            dec = self._run("decoder", enc)
            mel, mel_lengths = dec["mel"], dec["mel_lengths"]
        return AcousticOutput(
            *(torch.from_numpy(a) for a in (mel, mel_lengths, enc["durations"], enc["pitch"], enc["energy"]))
        )

    def _decode_each(self, enc: dict[str, np.ndarray], frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The decoder on one item at a time, each cut to its own symbols and frames; zeros past each end.

        Equals the batched decoder on every kept frame (to float rounding) without paying
        for the padding, which on a CPU costs in full (attention: quadratically).
        """
        b, n_mels = len(frames), self.facts["n_mels"]
        mel = np.zeros((b, int(frames.max()), n_mels), np.float32)
        mel_lengths = np.zeros(b, np.int64)

        def decode(i: int, lane: bool) -> None:
            n = max(1, int(enc["lengths"][i]))
            one = {
                "states": np.ascontiguousarray(enc["states"][i : i + 1, :n]),
                "durations": np.ascontiguousarray(enc["durations"][i : i + 1, :n]),
                "lengths": enc["lengths"][i : i + 1],
                "frame_ids": np.arange(int(frames[i]), dtype=np.int64),
            }
            dec = self._run("decoder", one, lane)
            mel_lengths[i] = m = int(dec["mel_lengths"][0])
            mel[i, :m] = dec["mel"][0, :m]

        self._each([int(f) for f in frames], decode)
        return mel, mel_lengths

    def vocoder(self, mel: torch.Tensor) -> torch.Tensor:
        b, frames, _ = mel.shape
        if frames == 0:
            return mel.new_zeros(b, 0)
        x = mel.float().contiguous().numpy()
        spans = content_spans(x) if self.unbatch else [(0, frames)] * b
        wav = np.zeros((b, frames * self.hop_length), np.float32)
        groups: dict[int, list[int]] = {}
        for row, (start, end) in enumerate(spans):
            if end > start:  # an all-zero row is padding only: its samples stay zero
                groups.setdefault(end - start, []).append(row)
        hop = self.hop_length
        total = sum(n * len(rows) for n, rows in groups.items())
        calls = [
            (rows, piece)
            for n, rows in groups.items()
            for piece in self._pieces(n, len(rows), -(-total // self.lanes))
        ]

        def vocode(i: int, lane: bool) -> None:
            rows, (lo, a, b, hi) = calls[i]
            out = self._vocode(np.stack([x[r, spans[r][0] + lo : spans[r][0] + hi] for r in rows]), lane)
            for k, r in enumerate(rows):
                s0 = spans[r][0]
                wav[r, (s0 + a) * hop : (s0 + b) * hop] = out[k, (a - lo) * hop : (b - lo) * hop]

        self._each([(piece[3] - piece[0]) * len(rows) for rows, piece in calls], vocode)
        return torch.from_numpy(wav)

    def _pieces(self, n: int, rows: int, share: int) -> list[tuple[int, int, int, int]]:
        """How one vocoder call of ``n`` frames is cut for the lanes: ``(lo, a, b, hi)`` per piece,
        keeping frames ``[a, b)`` computed from input frames ``[lo, hi)``.

        A call bigger than a lane's ``share`` of the work is cut into up to ``lanes`` pieces,
        each with ``receptive_frames`` of real context on its inner sides (so its kept samples
        are the uncut call's, to float rounding), while the context costs at most
        :data:`MAX_OVERLAP` of the call. Without lanes or a known receptive field: one piece.
        """
        ctx = self.facts.get("receptive_frames", -1)
        if self._pool is None or ctx < 0:
            return [(0, 0, n, n)]
        k = max(
            1, min(self.lanes, -(-n * rows // max(1, share)), 1 + int(MAX_OVERLAP * n) // (2 * max(1, ctx)))
        )
        edges = [round(j * n / k) for j in range(k + 1)]
        return [(max(0, a - ctx), a, b, min(n, b + ctx)) for a, b in pairwise(edges)]

    def _vocode(self, x: np.ndarray, lane: bool = False) -> np.ndarray:
        """The vocoder session on [B, F, n_mels]; extends input shorter than ``min_frames`` as the models do."""
        frames = x.shape[1]
        short = self.facts["min_frames"] - frames
        if short > 0:  # as the PyTorch vocoder does: repeat the last frame, trim the audio afterwards
            x = np.concatenate([x, np.repeat(x[:, -1:], short, 1)], 1)
        wav = self._run("vocoder", {"mel": np.ascontiguousarray(x)}, lane)["wav"]
        return wav[:, : frames * self.hop_length]


def content_spans(mel: np.ndarray) -> list[tuple[int, int]]:
    """Per row of ``mel`` [B, F, n_mels], the frames ``[start, end)`` between its all-zero ends.

    Callers pad batches with zero frames (the acoustic stage writes exact zeros past
    each item, the engine pads vocoder calls with zeros); a real log-mel frame is
    never all zeros. An all-zero row gives ``(0, 0)``.
    """
    live = (mel != 0).any(axis=2)
    any_live = live.any(axis=1)
    start = np.where(any_live, live.argmax(axis=1), 0)
    end = np.where(any_live, mel.shape[1] - live[:, ::-1].argmax(axis=1), 0)
    return [(int(a), int(e)) for a, e in zip(start, end, strict=True)]
