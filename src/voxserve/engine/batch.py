"""Shape work of a batch: pad many items into one backend call and split the result per item.

Who calls what: the engine's executor thread takes a batch of work items from the
scheduler and passes their payloads here with the backend to run. Items may come from
different jobs with different controls; outputs come back in input order. The models
mask padding, so an item's result equals its unbatched result (up to the vocoder's
receptive field at a padded end, see ``Vocoder``). This module does not schedule, retry
or touch jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch

from voxserve.backends.interface import Backend
from voxserve.models.interface import Controls


@dataclass(frozen=True)
class SentenceWork:
    """One sentence for the acoustic model."""

    ids: tuple[int, ...]
    """Symbol ids of the sentence (the pack's table)."""
    controls: tuple[float, ...]
    """Control multipliers in ``Controls._fields`` order."""
    sentence: int = 0
    """Index of the sentence in its job (engine bookkeeping; not used here)."""
    speaker: int | np.ndarray | None = field(default=None, compare=False)
    """This row's speaker: a speaker-table row, an embedding [D] float32, or None (no speaker input)."""
    style: np.ndarray | None = field(default=None, compare=False)
    """This row's style vector [S] float32, or None (no style input)."""


@dataclass(frozen=True)
class SentenceOut:
    """The acoustic model's result for one sentence, trimmed to its own length."""

    mel: torch.Tensor
    """[frames, n_mels] float32."""
    durations: np.ndarray
    """[symbols] int64 frames per symbol."""


@dataclass(frozen=True)
class ChunkWork:
    """A span of one sentence's mel for the vocoder, with context frames on each side."""

    mel: torch.Tensor
    """[left + frames + right, n_mels] float32: context, kept frames, context."""
    left: int
    """Context frames before the kept span (their samples are cut)."""
    frames: int
    """Frames whose samples are kept."""
    sentence: int = 0
    """Index of the sentence in its job (engine bookkeeping)."""
    chunk: int = 0
    """Index of the chunk in its sentence (engine bookkeeping)."""


def controls_tuple(controls: dict[str, float]) -> tuple[float, ...]:
    """A controls dict (``SynthesisParams.model_controls``) in ``Controls._fields`` order."""
    return tuple(float(controls[k]) for k in Controls._fields)


def conditioning_tensors(
    speakers: Sequence[int | np.ndarray | None], styles: Sequence[np.ndarray | None]
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Rows' speakers and styles as backend inputs: speaker [B] int64 or [B, D] float32, style [B, S].

    All rows of one call come from one pack, so they are all of one kind; a mix is a bug
    (ValueError). All None gives None (the model takes no such input).
    """
    speaker: torch.Tensor | None = None
    if any(s is not None for s in speakers):
        if all(isinstance(s, (int, np.integer)) for s in speakers):
            speaker = torch.tensor([int(s) for s in speakers], dtype=torch.int64)  # type: ignore[arg-type]
        elif all(isinstance(s, np.ndarray) for s in speakers):
            speaker = torch.from_numpy(np.stack(speakers).astype(np.float32, copy=False))  # type: ignore[arg-type]
        else:
            raise ValueError("a batch mixes speaker rows, embeddings and none")
    style: torch.Tensor | None = None
    if any(s is not None for s in styles):
        if any(s is None for s in styles):
            raise ValueError("a batch mixes rows with and without a style vector")
        style = torch.from_numpy(np.stack(styles).astype(np.float32, copy=False))  # type: ignore[arg-type]
    return speaker, style


def run_acoustic(
    backend: Backend, works: Sequence[SentenceWork], observe: Callable[[int], None] | None = None
) -> list[SentenceOut]:
    """Pad the sentences to one [B, T] call (ids 0 past each length) and split mel and durations.

    Each row keeps its own speaker and style (``conditioning_tensors``), so sentences of
    different speakers and emotions of one pack share the call.
    The acoustic model masks padding, so no placement care is needed. Rows go longest first,
    so that a backend which cuts a large batch into row slices pads each slice little; results
    come back in ``works`` order. ``observe`` gets the rows.
    """
    order = sorted(range(len(works)), key=lambda i: -len(works[i].ids))
    if order != list(range(len(works))):
        ranked = run_acoustic(backend, [works[i] for i in order], observe)
        results: list[SentenceOut | None] = [None] * len(works)
        for rank, i in enumerate(order):
            results[i] = ranked[rank]
        return cast(list[SentenceOut], results)
    lengths = torch.tensor([len(w.ids) for w in works], dtype=torch.int64)
    ids = torch.zeros(len(works), int(lengths.max()), dtype=torch.int64)
    for row, w in enumerate(works):
        ids[row, : len(w.ids)] = torch.tensor(w.ids, dtype=torch.int64)
    ctl = Controls(
        *(
            torch.tensor([w.controls[i] for w in works], dtype=torch.float32)
            for i in range(len(Controls._fields))
        )
    )
    speaker, style = conditioning_tensors([w.speaker for w in works], [w.style for w in works])
    if observe is not None:
        observe(len(works))
    out = backend.acoustic(ids, lengths, ctl, speaker, style)
    results = []
    for row, w in enumerate(works):
        frames = int(out.mel_lengths[row])
        # clone: a kept view would pin the whole padded batch in memory until the job ends
        results.append(
            SentenceOut(
                mel=out.mel[row, :frames].clone(),
                durations=out.durations[row, : len(w.ids)].numpy().astype(np.int64, copy=True),
            )
        )
    return results


MAX_PADDING = 0.25
"""Padded frames a vocoder call may add, as a fraction of its real frames, on backends that pay for them."""


def run_vocoder(
    backend: Backend,
    works: Sequence[ChunkWork],
    hop: int,
    context: int,
    observe: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """Vocode mel spans in few calls, never changing a kept sample and bounding wasted work.

    Exactness: a vocoder mirrors its input at both ends of a row, so padding right after a
    sentence's true end changes that end's last ``context`` frames (correlation fell to
    0.98 on short sentences). Padding therefore only ever lies beyond ``context`` frames of
    real input: a span whose kept frames reach within ``context`` of its input's end is
    right-aligned (padding goes before its left context); other spans are left-aligned. A
    span near both ends (a whole sentence) cannot be padded at all: it runs with spans of
    its exact length, or, on a backend that pads to ``frame_buckets`` anyway (CUDA graphs),
    is cut into a head and a tail with ``context`` frames of overlap.

    Cost: eager backends pay for every padded frame (three times the CPU of running jobs
    one by one when short sentences of mixed lengths were padded together), so spans are
    grouped longest first while padding stays under ``MAX_PADDING`` of the real frames.
    Bucketed backends get one call, rounded up to a bucket. ``observe`` gets each call's rows.
    """
    buckets = tuple(getattr(backend, "frame_buckets", None) or ())
    longest = max(max(int(w.mel.shape[0]) for w in works), 1)
    split_to = _bucket(longest, buckets) if buckets else None
    rows, fixed = _plan_rows(works, context, split_to)
    out: dict[int, list[tuple[int, np.ndarray]]] = {i: [] for i in range(len(works))}
    for call, frames in _group(rows, fixed, buckets):
        # Row copies in numpy: per-row torch indexing cost more than the vocoder call under load.
        mel_np = np.zeros((len(call), frames, works[0].mel.shape[1]), dtype=np.float32)
        offsets = [frames - r.size if r.right_align else 0 for r in call]
        for row, (r, offset) in enumerate(zip(call, offsets, strict=True)):
            mel_np[row, offset : offset + r.size] = r.mel.numpy()
        if observe is not None:
            observe(len(call))
        wav = backend.vocoder(torch.from_numpy(mel_np)).numpy().astype(np.float32, copy=False)
        for row, (r, offset) in enumerate(zip(call, offsets, strict=True)):
            start = (offset + r.keep) * hop
            # A view, not a copy: the call's array lives until its last row's chunk is sent.
            out[r.index].append((r.part, wav[row, start : start + r.frames * hop]))
    # calls run longest first, so a tail can come back before its head
    return [_joined([p for _, p in sorted(out[i], key=lambda x: x[0])]) for i in range(len(works))]


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


@dataclass
class _Row:
    """One row of a vocoder call: ``mel`` (its input), kept frames ``[keep, keep + frames)`` of it."""

    index: int
    mel: torch.Tensor
    keep: int
    frames: int
    right_align: bool
    part: int = 0
    """0, or 1 for the tail of a span cut in two."""

    @property
    def size(self) -> int:
        return int(self.mel.shape[0])


def _bucket(frames: int, buckets: tuple[int, ...]) -> int:
    return min((b for b in buckets if b >= frames), default=frames)


def _plan_rows(
    works: Sequence[ChunkWork], context: int, split_to: int | None
) -> tuple[list[_Row], dict[int, list[_Row]]]:
    """Paddable rows, and rows that only run at their exact length (keyed by it).

    With ``split_to``, whole spans shorter than it are cut in two paddable rows when they
    are long enough to give each half ``context`` frames of inner context.
    """
    rows: list[_Row] = []
    fixed: dict[int, list[_Row]] = {}
    for i, w in enumerate(works):
        size = int(w.mel.shape[0])
        at_start = w.left < context  # the input starts at the sentence's start
        at_end = size - w.left - w.frames < context
        if not (at_start and at_end):
            rows.append(_Row(i, w.mel, w.left, w.frames, right_align=at_end))
            continue
        cut = w.left + w.frames // 2
        if split_to is not None and size < split_to and context <= cut <= size - context and w.frames >= 2:
            rows.append(_Row(i, w.mel[: cut + context], w.left, cut - w.left, right_align=False))
            rows.append(_Row(i, w.mel[cut - context :], context, w.left + w.frames - cut, True, part=1))
        else:
            fixed.setdefault(size, []).append(_Row(i, w.mel, w.left, w.frames, right_align=False))
    return rows, fixed


def _group(
    rows: list[_Row], fixed: dict[int, list[_Row]], buckets: tuple[int, ...]
) -> list[tuple[list[_Row], int]]:
    """Calls as (rows, frames): paddable rows longest first under the padding bound, exact rows by length."""
    fixed = {size: list(group) for size, group in fixed.items()}
    rows = sorted(rows, key=lambda r: -r.size)
    calls: list[tuple[list[_Row], int]] = []
    i = 0
    while i < len(rows):
        frames = rows[i].size
        call, real = [rows[i]], rows[i].size
        i += 1
        while i < len(rows) and (
            buckets or frames * (len(call) + 1) <= (1 + MAX_PADDING) * (real + rows[i].size)
        ):
            call.append(rows[i])
            real += rows[i].size
            i += 1
        frames = _bucket(frames, buckets)
        calls.append((call + fixed.pop(frames, []), frames))  # exact rows of this length ride along
    calls.extend((group, size) for size, group in fixed.items())
    return calls
