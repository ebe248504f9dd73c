"""The training corpus as flat tensors on one device, and padded batches gathered from it.

:class:`TrainData` holds every utterance of a corpus (``voxserve.train.corpus``)
concatenated: symbols, uint8 mel codes, per-frame log-F0 (unvoiced frames
interpolated) and log energy, durations where the corpus has them, d-vectors,
speaker and emotion indices. A corpus of ~40 MiB fits on any GPU, so a batch is a
handful of gathers on the device, not a data-loader process. It does not shuffle or
bucket (``voxserve.train.sampler`` does) and does not know the model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from voxserve.errors import InvalidInput


@dataclass
class Batch:
    """One padded batch on the data's device. Frames and symbols past each length are zero.

    ids [B, T] int64; lengths [B]; mel [B, F, n_mels] float log-mel; mel_lengths [B];
    durations [B, T] int64 (all zero for rows without corpus durations); has_durations [B] bool;
    lf0 [B, F] float ln F0 (interpolated through unvoiced frames); energy [B, F] float ln energy;
    speaker [B, D] float d-vectors; style [B, E] float one-hot emotions; index [B] utterance indices.
    """

    ids: torch.Tensor
    lengths: torch.Tensor
    mel: torch.Tensor
    mel_lengths: torch.Tensor
    durations: torch.Tensor
    has_durations: torch.Tensor
    lf0: torch.Tensor
    energy: torch.Tensor
    speaker: torch.Tensor
    style: torch.Tensor
    index: torch.Tensor

    @property
    def frames(self) -> int:
        """Real (unpadded) mel frames in the batch."""
        return int(self.mel_lengths.sum())

    def to(self, device: torch.device) -> Batch:
        """The same batch on ``device`` (no copy when it is already there)."""
        return Batch(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))


def continuous_log_f0(f0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ln F0 with unvoiced frames linearly interpolated, voiced mask) for one utterance's F0 in Hz.

    Frames with F0 ≤ 0 (or not finite) are unvoiced; an utterance with no voiced frame gets
    ln 100 Hz everywhere (a neutral value that the pitch statistics barely notice).
    """
    f0 = np.asarray(f0, dtype=np.float64)
    voiced = np.isfinite(f0) & (f0 > 0)
    if not voiced.any():
        return np.full(len(f0), np.log(100.0), dtype=np.float32), voiced
    frames = np.arange(len(f0))
    lf0 = np.interp(frames, frames[voiced], np.log(f0[voiced]))
    return lf0.astype(np.float32), voiced


def _frame_energy(logmel: torch.Tensor) -> torch.Tensor:
    """ln of the summed mel magnitude of each frame, [..., n_mels] → [...]."""
    return torch.logsumexp(logmel.float(), dim=-1)


@dataclass
class TrainData:
    """A whole corpus as flat tensors (see the module docstring). Build with :meth:`from_utterances`."""

    meta: dict[str, Any]
    tokens: torch.Tensor
    token_offsets: torch.Tensor
    mel: torch.Tensor
    frame_offsets: torch.Tensor
    lf0: torch.Tensor
    voiced: torch.Tensor
    energy: torch.Tensor
    durations: torch.Tensor
    has_durations: torch.Tensor
    dvectors: torch.Tensor
    speaker: torch.Tensor
    emotion: torch.Tensor
    is_train: np.ndarray
    n_tokens: np.ndarray
    n_frames: np.ndarray
    mel_range: tuple[float, float]
    fingerprint: str

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    @property
    def speakers(self) -> list[dict[str, Any]]:
        return list(self.meta["speakers"])

    @property
    def emotions(self) -> list[str]:
        return list(self.meta["emotions"])

    def __len__(self) -> int:
        return len(self.n_tokens)

    def indices(self, split: str) -> np.ndarray:
        """Utterance indices of the ``train`` or ``eval`` split."""
        return np.flatnonzero(self.is_train if split == "train" else ~self.is_train)

    @classmethod
    def from_utterances(
        cls, meta: dict[str, Any], items: Iterable[tuple[Any, str]], device: str | torch.device = "cpu"
    ) -> TrainData:
        """Build from ``meta`` (the corpus's meta.json) and (utterance, split) pairs.

        An utterance has ``tokens`` [T] ints, ``mel`` [F, n_mels] (uint8 codes, or float log-mel
        that is quantized here with ``meta["mel_quant"]``), ``f0`` [F] Hz, ``dvector`` [D],
        ``durations`` [T] or None, ``speaker`` and ``emotion`` names. Raises InvalidInput naming
        the utterance for inconsistent lengths or unknown names.
        """
        quant = meta.get("mel_quant") or {}
        lo, hi = float(quant.get("min", -12.0)), float(quant.get("max", 3.0))
        speakers = {s["name"]: i for i, s in enumerate(meta["speakers"])}
        emotions = {e: i for i, e in enumerate(meta["emotions"])}
        toks, mels, lf0s, voiced, durs, has, dvecs, spk, emo, train = ([] for _ in range(10))
        for n, (u, split) in enumerate(items):
            t = np.asarray(u.tokens, dtype=np.int64)
            m = np.asarray(u.mel)
            f0 = np.asarray(u.f0)
            if m.ndim != 2 or len(f0) != len(m) or len(t) == 0 or len(m) == 0:
                raise InvalidInput(f"corpus utterance {n}: mel {m.shape}, f0 {f0.shape}, {len(t)} tokens")
            if m.dtype != np.uint8:
                m = np.clip(np.round((m.astype(np.float64) - lo) / (hi - lo) * 255), 0, 255).astype(np.uint8)
            d = getattr(u, "durations", None)
            if d is not None:
                d = np.asarray(d, dtype=np.int64)
                if len(d) != len(t) or int(d.sum()) != len(m):
                    raise InvalidInput(
                        f"corpus utterance {n}: durations sum to {int(d.sum())} over {len(d)} symbols, "
                        f"expected {len(m)} frames over {len(t)}"
                    )
            if u.speaker not in speakers or u.emotion not in emotions:
                raise InvalidInput(
                    f"corpus utterance {n}: unknown speaker {u.speaker!r} or emotion {u.emotion!r}"
                )
            c, v = continuous_log_f0(f0)
            toks.append(t)
            mels.append(m)
            lf0s.append(c)
            voiced.append(v)
            durs.append(d if d is not None else np.zeros(len(t), dtype=np.int64))
            has.append(d is not None)
            dvecs.append(np.asarray(u.dvector, dtype=np.float32))
            spk.append(speakers[u.speaker])
            emo.append(emotions[u.emotion])
            train.append(split == "train")
        if not toks:
            raise InvalidInput("corpus has no utterances")
        n_tokens = np.array([len(x) for x in toks])
        n_frames = np.array([len(x) for x in mels])

        def offsets(lengths: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)])).to(device)

        def cat(arrays: Sequence[np.ndarray]) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(np.concatenate(arrays))).to(device)

        mel = cat(mels)
        energy = _frame_energy(lo + mel.float() * ((hi - lo) / 255.0))
        h = hashlib.sha256(json.dumps(meta, sort_keys=True, ensure_ascii=False).encode())
        h.update(n_tokens.tobytes())
        h.update(n_frames.tobytes())
        return cls(
            meta=meta,
            tokens=cat(toks),
            token_offsets=offsets(n_tokens),
            mel=mel,
            frame_offsets=offsets(n_frames),
            lf0=cat(lf0s),
            voiced=cat(voiced),
            energy=energy,
            durations=cat(durs),
            has_durations=torch.tensor(has, device=device),
            dvectors=torch.from_numpy(np.stack(dvecs)).to(device),
            speaker=torch.tensor(spk, device=device),
            emotion=torch.tensor(emo, device=device),
            is_train=np.array(train, dtype=bool),
            n_tokens=n_tokens,
            n_frames=n_frames,
            mel_range=(lo, hi),
            fingerprint=h.hexdigest()[:16],
        )

    # -- statistics -----------------------------------------------------------------------------

    def _train_frames(self) -> torch.Tensor:
        # Built on the host (numpy), then moved: one mask over every frame of the corpus.
        return torch.from_numpy(np.repeat(self.is_train, self.n_frames)).to(self.device)

    def pitch_stats(self) -> tuple[float, float]:
        """Mean and std of ln F0 over voiced training frames (ln Hz)."""
        x = self.lf0[self._train_frames() & self.voiced].double()
        return float(x.mean()), float(x.std().clamp_min(1e-3))

    def energy_stats(self) -> tuple[float, float]:
        """Mean and std of ln frame energy over training frames."""
        x = self.energy[self._train_frames()].double()
        return float(x.mean()), float(x.std().clamp_min(1e-3))

    def mel_stats(self) -> tuple[float, float]:
        """Mean and std of log-mel values over all frames (for the aligner's input scaling)."""
        lo, hi = self.mel_range
        x = lo + self.mel.double() * ((hi - lo) / 255.0)
        return float(x.mean()), float(x.std().clamp_min(1e-3))

    def mel_bin_means(self) -> torch.Tensor:
        """[n_mels] mean log-mel of each bin over training frames (the decoder's starting output)."""
        lo, hi = self.mel_range
        codes = self.mel[self._train_frames()].float()
        return lo + codes.mean(0) * ((hi - lo) / 255.0)

    def speaker_table(self) -> tuple[list[str], torch.Tensor]:
        """Names and unit mean d-vectors [S, D] of the speakers with training utterances, corpus order."""
        train = torch.from_numpy(self.is_train).to(self.device)
        names, rows = [], []
        for i, s in enumerate(self.speakers):
            sel = train & (self.speaker == i)
            if s.get("held_out") or not bool(sel.any()):
                continue
            v = torch.nn.functional.normalize(self.dvectors[sel].float(), dim=-1).mean(0)
            names.append(str(s["name"]))
            rows.append(v / v.norm().clamp_min(1e-6))
        if not rows:
            raise InvalidInput("corpus has no training speaker")
        return names, torch.stack(rows)

    # -- batches --------------------------------------------------------------------------------

    def batch(self, index: np.ndarray, dvector_index: np.ndarray | None = None) -> Batch:
        """Gather utterances ``index`` into a padded :class:`Batch` on the data's device.

        ``dvector_index`` picks whose d-vector conditions each row (default: the row's own).
        """
        dev = self.device
        idx = torch.as_tensor(np.asarray(index), dtype=torch.int64, device=dev)
        didx = idx if dvector_index is None else torch.as_tensor(np.asarray(dvector_index), device=dev)
        lengths = torch.from_numpy(self.n_tokens[index]).to(dev)
        mel_lengths = torch.from_numpy(self.n_frames[index]).to(dev)
        t_max, f_max = int(self.n_tokens[index].max()), int(self.n_frames[index].max())

        def gather(flat: torch.Tensor, offsets: torch.Tensor, lens: torch.Tensor, width: int) -> torch.Tensor:
            pos = torch.arange(width, device=dev)
            valid = pos[None, :] < lens[:, None]
            where = (offsets[idx][:, None] + pos[None, :]).clamp(max=flat.size(0) - 1)
            out = flat[where]
            zero = torch.zeros((), dtype=out.dtype, device=dev)
            return torch.where(valid.view(*valid.shape, *([1] * (out.dim() - 2))), out, zero)

        lo, hi = self.mel_range
        codes = gather(self.mel, self.frame_offsets, mel_lengths, f_max)
        fmask = (torch.arange(f_max, device=dev)[None, :] < mel_lengths[:, None]).float()
        mel = (lo + codes.float() * ((hi - lo) / 255.0)) * fmask[..., None]
        style = torch.nn.functional.one_hot(self.emotion[idx], len(self.emotions)).float()
        return Batch(
            ids=gather(self.tokens, self.token_offsets, lengths, t_max),
            lengths=lengths,
            mel=mel,
            mel_lengths=mel_lengths,
            durations=gather(self.durations, self.token_offsets, lengths, t_max),
            has_durations=self.has_durations[idx],
            lf0=gather(self.lf0, self.frame_offsets, mel_lengths, f_max),
            energy=gather(self.energy, self.frame_offsets, mel_lengths, f_max),
            speaker=self.dvectors[didx].float(),
            style=style,
            index=idx,
        )


def load_corpus(
    path: str | Path, device: str | torch.device = "cpu", leave_out: Iterable[tuple[str, str]] = ()
) -> TrainData:
    """Read a corpus directory (:mod:`voxserve.train.corpus.format`) into a :class:`TrainData`.

    ``leave_out`` holds (teacher, lang) pairs whose training utterances are not loaded (eval ones
    stay), e.g. ``("kokoro", "zh")``: a run that learns Mandarin only from native teachers. The
    fingerprint covers what is loaded, so such a run is a corpus of its own.
    """
    from voxserve.train.corpus.format import Corpus

    corpus = Corpus.open(Path(path))
    teacher = {s["name"]: s.get("teacher", "") for s in corpus.meta["speakers"]}
    skip = set(leave_out)
    keep = [
        i
        for i, r in enumerate(corpus.records)
        if r["split"] != "train" or (teacher.get(r["speaker"], ""), r["lang"]) not in skip
    ]
    items = ((corpus[i], str(corpus.records[i]["split"])) for i in keep)
    return TrainData.from_utterances(dict(corpus.meta), items, device)
