"""Length-bucketed, reshuffled batches whose order is a pure function of (seed, epoch).

Because an epoch's batches are recomputed from the seed, a checkpoint only stores the
position (epoch, batch number) to resume the data stream exactly. The same holds for
the choice of which utterance's d-vector conditions each row (:meth:`BucketSampler.partners`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Position:
    """Where the data stream is: the next batch to train on is batch ``batch`` of epoch ``epoch``."""

    epoch: int = 0
    batch: int = 0


class BucketSampler:
    """Batches of utterances of similar length under a padded-frame budget.

    Each epoch sorts the utterances by frame count with a little random jitter (so
    buckets differ between epochs), cuts batches of at most ``frames_per_batch``
    padded frames and ``max_batch`` rows, and shuffles the batch order. It does not
    load data (``TrainData.batch`` does).
    """

    def __init__(
        self,
        n_frames: np.ndarray,
        indices: np.ndarray,
        speakers: np.ndarray,
        frames_per_batch: int,
        max_batch: int,
        seed: int,
        jitter: float = 0.15,
    ) -> None:
        if len(indices) == 0:
            raise ValueError("no training utterances")
        self.n_frames = np.asarray(n_frames)
        self.indices = np.asarray(indices)
        self.frames_per_batch = max(int(frames_per_batch), int(self.n_frames[self.indices].max()))
        self.max_batch = max_batch
        self.seed = seed
        self.jitter = jitter
        self._cache: tuple[int, list[np.ndarray]] | None = None
        # Same-speaker pools among the training utterances, for the d-vector partners.
        self._pool: dict[int, np.ndarray] = {}
        for s in np.unique(np.asarray(speakers)[self.indices]):
            self._pool[int(s)] = self.indices[np.asarray(speakers)[self.indices] == s]
        self._speakers = np.asarray(speakers)

    def epoch(self, epoch: int) -> list[np.ndarray]:
        """The batches (arrays of utterance indices) of ``epoch``, always the same for one seed."""
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        rng = np.random.default_rng([self.seed, epoch])
        lengths = self.n_frames[self.indices].astype(np.float64)
        key = lengths * (1.0 + self.jitter * rng.random(len(lengths)))
        order = self.indices[np.argsort(key, kind="stable")]
        batches: list[np.ndarray] = []
        current: list[int] = []
        longest = 0
        for i in order:
            f = int(self.n_frames[i])
            grown = max(longest, f)
            if current and (
                grown * (len(current) + 1) > self.frames_per_batch or len(current) >= self.max_batch
            ):
                batches.append(np.array(current))
                current, grown = [], f
            current.append(int(i))
            longest = grown
        if current:
            batches.append(np.array(current))
        rng.shuffle(batches)  # type: ignore[arg-type]
        self._cache = (epoch, batches)
        return batches

    def next(self, pos: Position) -> tuple[np.ndarray, Position]:
        """The batch at ``pos`` and the position after it (rolling over to the next epoch)."""
        batches = self.epoch(pos.epoch)
        if pos.batch >= len(batches):
            pos = Position(pos.epoch + 1, 0)
            batches = self.epoch(pos.epoch)
        return batches[pos.batch], Position(pos.epoch, pos.batch + 1)

    def partners(self, pos: Position, index: np.ndarray, p_other: float) -> np.ndarray:
        """For each row, the utterance whose d-vector conditions it: with probability ``p_other`` a
        random other training utterance of the same speaker (as a cloning reference would be),
        else its own. Deterministic in (seed, position)."""
        rng = np.random.default_rng([self.seed, pos.epoch, pos.batch, 1])
        out = np.array(index, copy=True)
        for row, i in enumerate(index):
            pool = self._pool.get(int(self._speakers[i]))
            if pool is not None and len(pool) > 1 and rng.random() < p_other:
                out[row] = pool[rng.integers(len(pool))]
        return out
