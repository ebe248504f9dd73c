"""The CUDA backend: half precision where it is safe, and CUDA graphs over (batch, length) buckets.

Per batch, three stages run on padded static buffers, each one CUDA graph per bucket:

1. symbols, keyed (batch, symbols): encoder and duration/pitch/energy predictors,
   in float32 so durations equal the float32 reference exactly;
2. frames, keyed (batch, frames): length regulation and decoder in ``dtype``;
3. vocoder, keyed (batch, frames): the vocoder in ``dtype``.

Between stages 1 and 2 the host reads the frame counts (a few bytes) to pick the
frame bucket: the only host sync of an acoustic call. Requests past the largest
bucket (or over ``max_graph_frames``) run the same stage functions eagerly, so any
batch size and length works; results do not depend on which path ran beyond
float rounding. Graphs are captured in :meth:`warmup`, largest first, into one
shared memory pool (as vLLM does); before that, every shape runs eagerly.

The acoustic model must be a family with a plan in
:mod:`voxserve.backends.cuda_stages` (FastSpeech2, EmotiVoice); any other runs
eagerly in float32. It does not batch across calls (the scheduler does) and it
flips PyTorch's TF32 switches off while the float32 stages run, so one backend
should not be used from several threads at once.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

import torch
from torch.nn.utils import parametrize

from voxserve.backends.channels_last import to_channels_last
from voxserve.backends.cuda_graphs import Buckets, FlatBuffer, GraphTable, Key, check_buckets, cuda_capture
from voxserve.backends.cuda_stages import EmotiVoicePlan, StagePlan, plan_for
from voxserve.backends.interface import Backend
from voxserve.backends.precision import strict_fp32
from voxserve.errors import InvalidInput
from voxserve.models.interface import AcousticOutput, Controls, Vocoder
from voxserve.packs.pack import Pack

logger = logging.getLogger(__name__)

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


class CudaBackend(Backend):
    """Acoustic model and vocoder on one CUDA device, mixed precision, replayed from CUDA graphs.

    ``batch_buckets`` is public: a scheduler sizes its batches to these. The
    ``capture_info`` dict says what :meth:`warmup` captured, how long it took and
    how much device memory the graphs hold.
    """

    name = "cuda"

    def __init__(
        self,
        device: str = "cuda",
        dtype: str = "fp16",
        graphs: bool = True,
        batch_buckets: Sequence[int] = (1, 2, 4, 8, 16, 32, 64),
        token_buckets: Sequence[int] = (32, 64, 128, 192, 256, 384, 512),
        frame_buckets: Sequence[int] = (128, 256, 384, 512, 640, 768, 896, 1024, 1280, 1536, 2048),
        max_graph_frames: int = 8192,
        max_graph_tokens: int = 4096,
        cudnn_benchmark: bool = False,
        compile_vocoder: bool = False,
        channels_last: bool = False,
    ) -> None:
        """``dtype`` (fp16, bf16, fp32) is for the frame stages and vocoder; symbols always run in float32.

        ``max_graph_frames`` caps ``batch * frames`` of a captured bucket and of one
        vocoder call (larger vocoder batches run in slices of rows; a larger acoustic
        batch runs eagerly): it bounds the device memory the engine needs.
        ``max_graph_tokens`` does the same for ``batch * symbols`` of the symbol stage
        (a larger batch runs in row slices). ``cudnn_benchmark`` lets cuDNN
        time its algorithms for each bucket while capturing (slower warm-up).
        ``graphs=False`` runs the same padded stages without capture (for
        measuring the graphs' gain, and for testing on the CPU).
        ``compile_vocoder`` runs the vocoder through ``torch.compile`` (default
        mode, dynamic shapes), which fuses its element-wise work: on an H100 the
        batch-1 vocoder call got 13 % (MB-MelGAN) to 17 % (HiFi-GAN) faster and
        batch-64 EmotiVoice throughput 34 % higher, paid for with 30-50 s of
        compiling in :meth:`warmup` (so it is off by default).
        ``channels_last`` keeps the vocoder's activations time-major between its
        convolutions (``backends/channels_last.py``), so cuDNN's fp16 kernels need no
        layout conversions around each one.
        """
        if dtype not in DTYPES:
            raise InvalidInput(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}", param="dtype")
        self.device = torch.device(device)
        if graphs and self.device.type != "cuda":
            raise InvalidInput(f"CUDA graphs need a CUDA device, got {device!r}", param="device")
        for name, value in (("max_graph_frames", max_graph_frames), ("max_graph_tokens", max_graph_tokens)):
            if not isinstance(value, int) or value <= 0:
                raise InvalidInput(f"{name} must be a positive integer", param=name)
        self.dtype = DTYPES[dtype]
        self.graphs = graphs
        self.batch_buckets = check_buckets("batch_buckets", batch_buckets)
        self.token_buckets = check_buckets("token_buckets", token_buckets)
        self.frame_buckets = check_buckets("frame_buckets", frame_buckets)
        self.max_graph_frames = max_graph_frames
        self.max_graph_tokens = max_graph_tokens
        self.cudnn_benchmark = cudnn_benchmark
        self.compile_vocoder = compile_vocoder
        self.channels_last = channels_last
        self.capture_info: dict[str, Any] = {}
        self._plan: StagePlan | None = None

    # --- loading ----------------------------------------------------------------------------------

    def load(self, pack: Pack) -> None:
        self.load_models(pack.build_stage("acoustic"), pack.build_stage("vocoder"))

    def load_models(self, acoustic: torch.nn.Module, vocoder: Vocoder) -> None:
        """Take built (eval-mode) stage modules, for models that do not come from a :class:`Pack`.

        EmotiVoice passes ``model.am`` and ``model.generator``. The acoustic
        module is moved to the device; the vocoder is copied in ``dtype``. A
        vocoder with a ``fold_weight_norm`` method and weight norm still in place
        is folded first, in place (its outputs do not change): folding a copy
        would break the original, whose parametrized class the copy shares.
        """
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise InvalidInput(f"no CUDA device is available for device {str(self.device)!r}", param="device")
        self.acoustic_model = acoustic.to(self.device).eval()
        self.hop_length = int(vocoder.hop_length)
        fold = getattr(vocoder, "fold_weight_norm", None)
        if callable(fold) and any(parametrize.is_parametrized(m) for m in vocoder.modules()):
            fold()
        self._voc = copy.deepcopy(vocoder).eval().to(self.device, self.dtype)
        if self.channels_last:
            to_channels_last(self._voc)
        self._voc_fn = torch.compile(self._voc, dynamic=True) if self.compile_vocoder else self._voc
        self._plan = plan_for(self.acoustic_model, self.dtype)

        dev, bmax = self.device, self.batch_buckets[-1]
        self._token_table = Buckets(self.batch_buckets, self.token_buckets, self.max_graph_tokens)
        self._frame_table = Buckets(self.batch_buckets, self.frame_buckets, self.max_graph_frames)
        n_mels = self._n_mels(vocoder)
        cells = self._frame_table.max_cells_used() if self._frame_table.keys() else 0
        self._voc_in = FlatBuffer(cells * n_mels, torch.float32, dev)
        self._wav = FlatBuffer(cells * self.hop_length, torch.float32, dev)
        self._vocode = GraphTable("vocoder", self._vocode_step)
        self.n_mels = n_mels
        if self._plan is not None:
            plan, tmax = self._plan, self.token_buckets[-1]
            self._ids = FlatBuffer(bmax * tmax, torch.int64, dev)
            self._lengths = FlatBuffer(bmax, torch.int64, dev, fill=1)
            self._controls = torch.ones(len(Controls._fields), bmax, device=dev)
            # Table packs take [B] rows; embedding packs (cloned voices) take [B, D] d-vectors.
            self._speaker_width = self._speaker_dim(self.acoustic_model)
            if self._speaker_width:
                self._speaker = FlatBuffer(bmax * self._speaker_width, torch.float32, dev)
            else:
                self._speaker = FlatBuffer(bmax, torch.int64, dev)
            self._style_width = self._style_dim(plan)
            self._style = FlatBuffer(bmax * self._style_width, torch.float32, dev)
            # Stage 1 → stage 2 hand-off, outside the graph pool so stage-2 replays cannot reuse it.
            self._states = torch.zeros(bmax, tmax, plan.hidden, device=dev)
            self._durations = torch.zeros(bmax, tmax, dtype=torch.int64, device=dev)
            self._pitch = torch.zeros(bmax, tmax, device=dev)
            self._energy = torch.zeros(bmax, tmax, device=dev)
            self._mel_lengths = torch.zeros(bmax, dtype=torch.int64, device=dev)
            self._mel = FlatBuffer(cells * n_mels, torch.float32, dev)
            self._tokens = GraphTable("symbols", self._tokens_step)
            self._frames = GraphTable("frames", self._frames_step)

    @staticmethod
    def _n_mels(vocoder: torch.nn.Module) -> int:
        config = getattr(vocoder, "config", None)
        if config is not None and hasattr(config, "n_mels"):
            return int(config.n_mels)
        first = next(m for m in vocoder.modules() if isinstance(m, torch.nn.Conv1d))
        return int(first.in_channels)

    @staticmethod
    def _speaker_dim(model: torch.nn.Module) -> int:
        """Width of a d-vector speaker input (0: speakers are table rows or absent)."""
        table = getattr(model, "speaker_table", None)
        return int(table.shape[1]) if isinstance(table, torch.Tensor) and table.dim() == 2 else 0

    @staticmethod
    def _style_dim(plan: StagePlan) -> int:
        config = getattr(plan.front, "config", None)
        if hasattr(config, "n_emotions"):  # the clone family: a weight per emotion label
            return int(config.n_emotions)
        if isinstance(plan, EmotiVoicePlan):
            return 2 * plan.front.config.bert_dim
        return 1

    # --- warm-up: capture -------------------------------------------------------------------------

    @torch.inference_mode()
    def warmup(self, speaker: torch.Tensor | None = None, style: torch.Tensor | None = None) -> None:
        """Capture every bucket's graphs, largest first into one pool; without graphs, run the smallest once.

        ``speaker`` and ``style`` are ignored: the stages warm up on their static buffers (zeros).

        Logs and stores in ``capture_info`` the graph count, wall time and the
        device memory the capture added.
        """
        if not self.graphs:
            with self._precise():
                for table, buckets in self._tables():
                    keys = buckets.keys()
                    if keys:
                        table.step(keys[-1])
            return
        torch.cuda.synchronize(self.device)
        before = torch.cuda.memory_reserved(self.device)
        t0 = time.perf_counter()
        capture = cuda_capture(self.device, torch.cuda.graph_pool_handle())
        counts = {}
        bench = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        try:
            with self._precise():
                for table, buckets in self._tables():
                    counts[table.name] = table.capture(buckets.keys(), capture).graphs
        finally:
            torch.backends.cudnn.benchmark = bench
        torch.cuda.synchronize(self.device)
        torch.cuda.empty_cache()  # the eager warm-up runs' blocks; the graphs' pool stays
        self.capture_info = {
            "graphs": counts,
            "seconds": time.perf_counter() - t0,
            "memory_bytes": torch.cuda.memory_reserved(self.device) - before,
        }
        logger.info(
            "cuda graphs: %s captured in %.1f s, %.0f MiB of device memory",
            counts,
            self.capture_info["seconds"],
            self.capture_info["memory_bytes"] / 2**20,
        )

    def _tables(self) -> list[tuple[GraphTable, Buckets]]:
        # The vocoder first: its largest bucket needs the most memory, and later graphs reuse the pool.
        tables = [(self._vocode, self._frame_table)]
        if self._plan is not None:
            tables += [(self._frames, self._frame_table), (self._tokens, self._token_table)]
        return tables

    def _precise(self) -> AbstractContextManager[None]:
        """True float32 (no TF32) for convolutions and matmuls, so symbol-stage rounding matches the CPU."""
        return strict_fp32()

    # --- stage steps: static buffers in, static buffers out ---------------------------------------

    def _tokens_step(self, key: Key) -> None:
        assert self._plan is not None
        b, t = key
        out = self._plan.tokens(
            self._ids.view(b, t),
            self._lengths.view(b),
            Controls(*self._controls[:, :b]),
            self._speaker.view(b, self._speaker_width) if self._speaker_width else self._speaker.view(b),
            self._style.view(b, self._style_width),
        )
        for dst, src in ((self._states, out.states), (self._durations, out.durations)):
            dst[:b, :t].copy_(src)
            dst[:b, t:].zero_()  # stage 2 reads the full width: no stale symbols from a longer batch
        self._pitch[:b, :t].copy_(out.pitch)
        self._energy[:b, :t].copy_(out.energy)
        self._mel_lengths[:b].copy_(out.durations.sum(1))

    def _frames_step(self, key: Key) -> None:
        assert self._plan is not None
        b, f = key
        mel = self._plan.frames(self._states[:b], self._durations[:b], self._lengths.view(b), f)
        self._mel.view(b, f, self.n_mels).copy_(mel)

    def _vocode_step(self, key: Key) -> None:
        b, f = key
        wav = self._voc_fn(self._voc_in.view(b, f, self.n_mels).to(self.dtype))
        self._wav.view(b, f * self.hop_length).copy_(wav)

    # --- the Backend seam --------------------------------------------------------------------------

    @torch.inference_mode()
    def acoustic(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None = None,
        style: torch.Tensor | None = None,
    ) -> AcousticOutput:
        plan = self._plan
        if plan is None:
            return self._acoustic_fallback(ids, lengths, controls, speaker, style)
        if isinstance(plan, EmotiVoicePlan) and (speaker is None or style is None):
            raise InvalidInput(
                "EmotiVoice needs speaker ids [B] and style ‖ content embeddings", param="style"
            )
        b, t = ids.shape
        key = self._token_table.select(b, t)
        if key is None and b > 1:
            # Too many rows for one graph: row slices that each replay one (or stay in budget).
            rows = self._token_table.rows_for(t)
            rows = rows or max(1, self.max_graph_tokens // t)
            if rows < b:
                return self._acoustic_slices(ids, lengths, controls, speaker, style, rows)
        with self._precise():
            if key is None:
                return self._acoustic_eager(plan, ids, lengths, controls, speaker, style)
            self._fill_symbols(key, ids, lengths, controls, speaker, style)
            self._tokens.run(key)
            mel_lengths = self._mel_lengths[:b].to(
                "cpu", copy=True
            )  # the one host sync: frame count picks the bucket
            frames = max(int(mel_lengths.max()), 1)
            bb = key[0]
            fkey = self._frame_table.select(bb, frames)
            rows = self._frame_table.rows_for(frames)
            if fkey is None and 0 < rows < b:
                # Too many rows of this length for one frames graph: smaller batches that each
                # replay graphs in both stages (repeating the cheap symbol stage per slice).
                return self._acoustic_slices(ids, lengths, controls, speaker, style, rows)
            if fkey is None:  # past the table: eagerly, in slices of rows within the cell budget
                rows, lens = self._rows_within_budget(frames), self._lengths.view(bb)
                mel = torch.cat(
                    [
                        plan.frames(self._states[i:j], self._durations[i:j], lens[i:j], frames)
                        for i in range(0, b, rows)
                        for j in [min(i + rows, b)]
                    ]
                )
            else:
                self._frames.run(fkey)
                mel = self._mel.view(*fkey, self.n_mels)[:b, :frames]
            static = (mel, self._durations[:b, :t], self._pitch[:b, :t], self._energy[:b, :t])
            mel, durations, pitch, energy = (x.to("cpu", copy=True) for x in static)
            return AcousticOutput(mel, mel_lengths, durations, pitch, energy)

    @torch.inference_mode()
    def vocoder(self, mel: torch.Tensor) -> torch.Tensor:
        b, f, n = mel.shape
        if f == 0:
            return torch.zeros(b, 0)
        key = self._frame_table.select(b, f)
        if key is None:
            # Slices that each replay a graph when the length is in the table, else within budget.
            rows = self._frame_table.rows_for(f) or self._rows_within_budget(f)
            if rows < b:  # too many cells for one call: slices of rows, each a captured shape if it fits
                return torch.cat([self.vocoder(mel[i : i + rows]) for i in range(0, b, rows)])
            return self._voc_fn(mel.to(self.device).to(self.dtype)).float().cpu()
        bb, fb = key
        inp = self._voc_in.view(bb, fb, n)
        inp[:b, :f].copy_(mel)
        # Zeros past the end, as a batch's shorter items see (a model's mel is zero past its length).
        inp[:b, f:].zero_()
        inp[b:].zero_()
        self._vocode.run(key)
        # A copy even on a CPU device: the static buffer is overwritten by the next call.
        return self._wav.view(bb, fb * self.hop_length)[:b, : f * self.hop_length].to("cpu", copy=True)

    # --- helpers --------------------------------------------------------------------------------------

    def _rows_within_budget(self, frames: int) -> int:
        """How many rows of ``frames`` frames one vocoder call may take: ``max_graph_frames`` cells,
        at least one row. Vocoder activations grow with batch × frames and dominate device memory,
        so slicing bounds the engine's peak memory while each slice is still large enough to
        keep the GPU busy."""
        return max(1, self.max_graph_frames // max(frames, 1))

    def _fill_symbols(
        self,
        key: Key,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None,
        style: torch.Tensor | None,
    ) -> None:
        """Pad one request to ``key`` on the host and copy it into the static inputs.

        Padding rows get length 1 and neutral controls so they compute something finite.
        """
        bb, tb = key
        b, t = ids.shape
        padded = torch.zeros(bb, tb, dtype=torch.int64)
        padded[:b, :t] = ids
        self._ids.view(bb, tb).copy_(padded)
        rows = torch.ones(bb, dtype=torch.int64)
        rows[:b] = lengths
        self._lengths.view(bb).copy_(rows)
        ctl = torch.ones(len(Controls._fields), bb)
        ctl[:, :b] = torch.stack([c.float() for c in controls])
        self._controls[:, :bb].copy_(ctl)
        if speaker is not None:
            d = self._speaker_width
            if d and speaker.dim() == 1:  # table rows of an embedding pack: the model's own vectors
                speaker = self.acoustic_model.speaker_table[speaker.to(self.device)].float().cpu()
            spk = torch.zeros((bb, d) if d else (bb,), dtype=torch.float32 if d else torch.int64)
            # Padding rows need a finite, non-zero d-vector: the model normalizes it.
            if d:
                spk[b:] = 1.0
            spk[:b] = speaker
            self._speaker.view(*spk.shape).copy_(spk)
        if style is not None:
            sty = torch.zeros(bb, style.shape[-1])
            sty[:b] = style
            self._style.view(bb, style.shape[-1]).copy_(sty)

    def _acoustic_slices(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None,
        style: torch.Tensor | None,
        rows: int,
    ) -> AcousticOutput:
        """A batch too large for one call, as slices of ``rows`` rows (each may replay graphs), joined.

        Items are independent (masked), so slicing changes no item's output; mel is zero-padded to
        the longest slice's frames.
        """
        b = ids.shape[0]
        outs = [
            self.acoustic(
                ids[i : i + rows],
                lengths[i : i + rows],
                Controls(*(c[i : i + rows] for c in controls)),
                None if speaker is None else speaker[i : i + rows],
                None if style is None else style[i : i + rows],
            )
            for i in range(0, b, rows)
        ]
        frames = max(o.mel.shape[1] for o in outs)
        mel = torch.cat([torch.nn.functional.pad(o.mel, (0, 0, 0, frames - o.mel.shape[1])) for o in outs])
        joined = (
            torch.cat([getattr(o, k) for o in outs]) for k in ("mel_lengths", "durations", "pitch", "energy")
        )
        return AcousticOutput(mel, *joined)

    def _acoustic_eager(
        self,
        plan: StagePlan,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None,
        style: torch.Tensor | None,
    ) -> AcousticOutput:
        """The same two halves at the request's own shape, for requests past the largest bucket."""
        dev = self.device
        lengths_d = lengths.to(dev)
        out = plan.tokens(
            ids.to(dev),
            lengths_d,
            Controls(*(c.to(dev).float() for c in controls)),
            None if speaker is None else speaker.to(dev),
            None if style is None else style.to(dev).float(),
        )
        mel_lengths = out.durations.sum(1)
        frames = max(int(mel_lengths.max()), 1)
        mel = plan.frames(out.states, out.durations, lengths_d, frames)
        return AcousticOutput(*(x.cpu() for x in (mel, mel_lengths, out.durations, out.pitch, out.energy)))

    def _acoustic_fallback(
        self,
        ids: torch.Tensor,
        lengths: torch.Tensor,
        controls: Controls,
        speaker: torch.Tensor | None,
        style: torch.Tensor | None,
    ) -> AcousticOutput:
        """A model family without a plan: its own ``forward``, float32, eager."""
        dev = self.device
        with self._precise():
            out = self.acoustic_model(
                ids.to(dev),
                lengths.to(dev),
                Controls(*(c.to(dev) for c in controls)),
                None if speaker is None else speaker.to(dev),
                None if style is None else style.to(dev),
            )
        return AcousticOutput(*(x.cpu() for x in out))
