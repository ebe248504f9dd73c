"""The training loop of the cloning voice: time-budgeted, resumable, the same on CPU and CUDA.

One step: the aligner's soft alignment (forward-sum loss); durations from the corpus
where it has them, else from monotonic search over that alignment; per-symbol pitch
and energy targets; the acoustic model teacher-forced with those targets; L1 on mels,
MSE on log-durations, pitch and energy, plus the aligner's binarization loss once it
has had ``bin_loss_start`` steps. AdamW with warm-up then inverse-square-root decay,
bf16 autocast on CUDA, gradient clipping.

``Trainer.run(minutes)`` stops early enough to evaluate and checkpoint inside the
budget; :meth:`Trainer.resume` continues from a checkpoint exactly (weights, optimizer
moments, step, data position, RNG). It does not read the corpus (``data.load_corpus``)
or export the inference model (``export``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from voxserve.errors import InvalidInput
from voxserve.models.clone import Config, Model
from voxserve.train import checkpoint as ckpt
from voxserve.train.aligner import (
    Aligner,
    binarization_loss,
    forward_sum_loss,
    hard_alignment,
    monotonic_search,
)
from voxserve.train.data import Batch, TrainData
from voxserve.train.losses import mel_loss, targets, variance_losses
from voxserve.train.sampler import BucketSampler, Position

CHECKPOINT_VERSION = 1


@dataclass(frozen=True)
class TrainConfig:
    """Optimization and data settings; stored in the checkpoint (a resumed run keeps them)."""

    lr: float = 1e-3
    """Peak learning rate, reached after ``warmup_steps`` (per step)."""
    warmup_steps: int = 1000
    """Linear warm-up; afterwards lr ∝ 1/sqrt(step) (steps)."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay (per step, relative)."""
    grad_clip: float = 1.0
    """Largest global gradient norm (norm)."""
    frames_per_batch: int = 32000
    """Padded mel frames per batch, the bucketing budget (frames)."""
    max_batch: int = 64
    """Most utterances per batch (count)."""
    seed: int = 1234
    """Seeds model init, data order and d-vector partners (integer)."""
    p_other_dvector: float = 0.5
    """Chance that a row is conditioned on another utterance of its speaker, as in cloning (probability)."""
    aligner_channels: int = 128
    """Width of the aligner's symbol embedding (channels)."""
    align_weight: float = 1.0
    """Weight of the forward-sum alignment loss (ratio)."""
    bin_loss_start: int = 2000
    """Step at which the binarization loss starts; it ramps to full weight over as many steps (steps)."""
    bin_loss_weight: float = 1.0
    """Full weight of the binarization loss (ratio)."""
    checkpoint_minutes: float = 4.0
    """Checkpoint this often during a run, besides at its end (minutes)."""
    log_every: int = 50
    """Log a line of losses every this many steps (steps)."""
    eval_batches: int = 8
    """Evaluation batches at the end of a run (count)."""
    rewarm_steps: int = 300
    """After resuming from a light checkpoint (no optimizer moments), ramp the lr up again over
    this many steps (steps)."""

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def _autocast(device: torch.device) -> Any:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


class Trainer:
    """Model + aligner + AdamW + data stream. Build with :meth:`create` or :meth:`resume`."""

    def __init__(
        self, data: TrainData, config: Config, train: TrainConfig, device: str | torch.device = "cpu"
    ) -> None:
        self.device = torch.device(device)
        self.data, self.config, self.train = data, config, train
        torch.manual_seed(train.seed)
        self.model = Model(config).to(self.device)
        mel_mean, mel_std = data.mel_stats()
        self.aligner = Aligner(
            config.n_vocab, config.n_mels, train.aligner_channels, mel_mean=mel_mean, mel_std=mel_std
        ).to(self.device)
        self.params = [p for m in (self.model, self.aligner) for p in m.parameters()]
        self.optim = torch.optim.AdamW(
            self.params,
            lr=train.lr,
            betas=(0.9, 0.98),
            eps=1e-9,
            weight_decay=train.weight_decay,
            # One fused kernel on CUDA; the multi-tensor path on CPU (both deterministic there).
            fused=self.device.type == "cuda",
            foreach=self.device.type != "cuda",
        )
        speakers = data.speaker.cpu().numpy()
        self.sampler = BucketSampler(
            data.n_frames,
            data.indices("train"),
            speakers,
            train.frames_per_batch,
            train.max_batch,
            train.seed,
        )
        self.speaker_names: list[str] = []
        self.pos = Position()
        self.step = 0
        self.trained_seconds = 0.0
        self.frames_seen = 0
        self.history: list[dict[str, float]] = []
        self.rewarm_from: int | None = None
        """Step of the last resume from a light checkpoint (the lr ramps up again from there)."""

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls, data: TrainData, base: Config, train: TrainConfig, device: str | torch.device = "cpu"
    ) -> Trainer:
        """A fresh run: the model's vocabulary, emotions, mel facts and prosody statistics from ``data``."""
        names, table = data.speaker_table()
        meta = data.meta
        config = dataclasses.replace(
            base,
            n_vocab=len(meta["symbols"]),
            n_emotions=len(meta["emotions"]),
            neutral_emotion=_neutral_index(meta["emotions"]),
            n_speakers=len(names),
            speaker_dim=int(data.dvectors.shape[1]),
            n_mels=int(meta.get("n_mels", base.n_mels)),
            sample_rate=int(meta.get("sample_rate", base.sample_rate)),
            hop_length=int(meta.get("hop_length", base.hop_length)),
            pitch_stats=data.pitch_stats(),
            energy_stats=data.energy_stats(),
        )
        t = cls(data, config, train, device)
        t.speaker_names = names
        with torch.no_grad():
            t.model.speaker_table.copy_(table.to(t.device))
            # Start the decoder at the average spectrum, not at 0 (silence is about -11.5 in log-mel).
            t.model.to_mel.bias.copy_(data.mel_bin_means().to(t.device))
        return t

    @classmethod
    def resume(
        cls,
        directory: str | Path,
        data: TrainData,
        device: str | torch.device = "cpu",
        new_corpus: bool = False,
    ) -> Trainer:
        """Continue the run checkpointed in ``directory``; ``new_corpus`` restarts the data stream on
        a changed corpus (weights and optimizer carry over), otherwise the corpus must be the same.

        ``directory`` may also be a light checkpoint file (:meth:`save_light`): weights in fp16 and
        no optimizer moments, so training continues approximately, with fresh moments and the
        learning rate ramped up again over ``rewarm_steps``.
        """
        light = Path(directory).is_file()
        tensors, meta = ckpt.load_single(directory) if light else ckpt.load(directory)
        if meta.get("version") != CHECKPOINT_VERSION:
            raise InvalidInput(
                f"{directory}: checkpoint version {meta.get('version')} is not {CHECKPOINT_VERSION}"
            )
        if meta["corpus_fingerprint"] != data.fingerprint and not new_corpus:
            raise InvalidInput(
                f"{directory}: checkpoint was trained on another corpus ({meta['corpus_fingerprint']} ≠ "
                f"{data.fingerprint}); pass --new-corpus to continue on this one from its start"
            )
        config = Config.from_dict(meta["model_config"])
        weights = _prefixed(tensors, "model.")
        if new_corpus:
            # Warm start on another corpus: its speakers replace the built-in table (the table is
            # d-vectors, not learned, so nothing trained is lost); prosody statistics stay the run's.
            names, table = data.speaker_table()
            config = dataclasses.replace(config, n_speakers=len(names))
            weights["speaker_table"] = table
        t = cls(data, config, TrainConfig.from_dict(meta["train_config"]), device)
        t.model.load_state_dict(weights, strict=True)
        t.aligner.load_state_dict(_prefixed(tensors, "aligner."), strict=True)
        if light:
            t.rewarm_from = meta["step"]
        else:
            t.optim.load_state_dict(ckpt.unflatten_optimizer(tensors, meta["optimizer"]))
            t.rewarm_from = meta.get("rewarm_from")
        t.speaker_names = names if new_corpus else list(meta["speakers"])
        t.step, t.trained_seconds, t.frames_seen = meta["step"], meta["trained_seconds"], meta["frames_seen"]
        t.history = list(meta.get("history", []))
        if not new_corpus:
            t.pos = Position(*meta["position"])
        torch.set_rng_state(tensors["rng.cpu"])
        if t.device.type == "cuda" and "rng.cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng.cuda"], t.device)
        return t

    # -- state ----------------------------------------------------------------------------------

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON meta) of everything a resume needs."""
        tensors = {f"model.{k}": v for k, v in self.model.state_dict().items()}
        tensors.update({f"aligner.{k}": v for k, v in self.aligner.state_dict().items()})
        optim_tensors, optim_rest = ckpt.flatten_optimizer(self.optim.state_dict())
        tensors.update(optim_tensors)
        tensors["rng.cpu"] = torch.get_rng_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        m = self.data.meta
        meta = {
            "version": CHECKPOINT_VERSION,
            "step": self.step,
            "position": [self.pos.epoch, self.pos.batch],
            "trained_seconds": self.trained_seconds,
            "frames_seen": self.frames_seen,
            "model_config": self.config.to_dict(),
            "train_config": dataclasses.asdict(self.train),
            "optimizer": optim_rest,
            "corpus_fingerprint": self.data.fingerprint,
            "speakers": self.speaker_names,
            "corpus": {
                k: m[k] for k in ("symbols", "emotions", "sample_rate", "hop_length", "n_mels") if k in m
            }
            | {
                "mel": m.get("mel", {}),
                "sources": m.get("sources", {}),
                "n_utterances": len(self.data),
                "n_train": int(self.data.is_train.sum()),
            },
            "history": self.history,
            "rewarm_from": self.rewarm_from,
        }
        return tensors, meta

    def save(self, directory: str | Path) -> list[Path]:
        """The exact checkpoint, as parts in ``directory``."""
        tensors, meta = self.state()
        return ckpt.save(directory, tensors, meta)

    def save_light(self, path: str | Path) -> Path:
        """A light checkpoint in one file: fp16 model and aligner weights, RNG, step, data position and
        configs, without optimizer moments (about a sixth of :meth:`save`'s size), to carry a run to
        a fresh machine where the exact one does not fit."""
        tensors, meta = self.state()
        keep = {
            k: (v.half() if v.is_floating_point() else v)
            for k, v in tensors.items()
            if k.startswith(("model.", "aligner."))
        }
        keep.update({k: v for k, v in tensors.items() if k.startswith("rng.")})
        meta.pop("optimizer")
        return ckpt.save_single(path, keep, meta)

    # -- one step -------------------------------------------------------------------------------

    def lr_at(self, step: int) -> float:
        """Warm-up, then ∝ 1/sqrt(step); ramped up again after a light resume."""
        w = max(1, self.train.warmup_steps)
        lr = self.train.lr * min((step + 1) / w, math.sqrt(w / (step + 1)))
        if self.rewarm_from is not None:
            lr *= min(1.0, (step - self.rewarm_from + 1) / max(1, self.train.rewarm_steps))
        return lr

    def losses(self, b: Batch, step: int) -> dict[str, torch.Tensor]:
        """All losses of one batch (``total`` is what is minimized)."""
        dev_autocast = _autocast(self.device)
        f_max = b.mel.size(1)
        log_attn = self.aligner(b.ids, b.lengths, b.mel, b.mel_lengths)
        align = forward_sum_loss(log_attn, b.lengths, b.mel_lengths)
        durations = b.durations
        need = ~b.has_durations
        if bool(need.any()):
            durations = durations.clone()
            durations[need] = monotonic_search(log_attn[need].detach(), b.lengths[need], b.mel_lengths[need])
        hard = hard_alignment(durations, f_max)
        binar = binarization_loss(log_attn, hard)
        tg = targets(self.config, durations, b.lf0, b.energy, b.lengths)
        with dev_autocast:
            h = self.model.encode(b.ids, b.lengths, b.speaker, b.style)
            out = self.model.teacher_forced(h, b.lengths, durations, tg.pitch, tg.energy, f_max)
        losses = {"mel": mel_loss(out.mel, b.mel, b.mel_lengths)}
        losses.update(variance_losses(self.config, out.log_durations, out.pitch, out.energy, tg, b.lengths))
        losses["align"], losses["bin"] = align, binar
        ramp = min(1.0, max(0.0, (step - self.train.bin_loss_start) / max(1, self.train.bin_loss_start)))
        losses["total"] = (
            losses["mel"]
            + losses["duration"]
            + losses["pitch"]
            + losses["energy"]
            + self.train.align_weight * align
            + self.train.bin_loss_weight * ramp * binar
        )
        return losses

    def train_step(self) -> dict[str, float]:
        """One optimizer step on the next batch; returns its losses and frame count."""
        index, after = self.sampler.next(self.pos)
        here = Position(after.epoch, after.batch - 1)  # where this batch actually is (after any rollover)
        partners = self.sampler.partners(here, index, self.train.p_other_dvector)
        b = self.data.batch(index, partners)
        b = b.to(self.device)
        self.model.train()
        self.aligner.train()
        for g in self.optim.param_groups:
            g["lr"] = self.lr_at(self.step)
        losses = self.losses(b, self.step)
        self.optim.zero_grad(set_to_none=True)
        losses["total"].backward()
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.train.grad_clip)
        self.optim.step()
        self.step += 1
        self.pos = after
        frames = b.frames
        self.frames_seen += frames
        row = {k: float(v.detach()) for k, v in losses.items()}
        row.update(grad_norm=float(norm), frames=float(frames), lr=self.lr_at(self.step - 1))
        return row

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Mean losses over the first ``eval_batches`` batches of the eval split (fixed order)."""
        idx = self.data.indices("eval")
        if len(idx) == 0:
            return {}
        self.model.eval()
        self.aligner.eval()
        sampler = BucketSampler(
            self.data.n_frames,
            idx,
            self.data.speaker.cpu().numpy(),
            self.train.frames_per_batch,
            self.train.max_batch,
            seed=0,
            jitter=0.0,
        )
        sums: dict[str, float] = {}
        n = 0
        for index in sampler.epoch(0)[: self.train.eval_batches]:
            b = self.data.batch(index)
            b = b.to(self.device)
            for k, v in self.losses(b, self.step).items():
                sums[k] = sums.get(k, 0.0) + float(v)
            n += 1
        return {k: v / n for k, v in sums.items()}

    # -- a budgeted run -------------------------------------------------------------------------

    def run(
        self, minutes: float, out_dir: str | Path, log: Callable[[str], None] = lambda line: None
    ) -> dict[str, Any]:
        """Train for about ``minutes``, then evaluate and checkpoint (see :func:`voxserve.train.budget.run`)."""
        from voxserve.train.budget import run

        return run(self, minutes, Path(out_dir), log)


def _prefixed(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _neutral_index(emotions: list[str]) -> int:
    for label in ("普通", "neutral"):
        if label in emotions:
            return emotions.index(label)
    return 0
