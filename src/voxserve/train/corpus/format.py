"""The on-disk training corpus: ``meta.json``, ``utts.jsonl`` and safetensors shards.

This is the contract between the corpus builder (``build``) and the trainer. A corpus is a
directory::

    meta.json            version, audio/mel facts, mel quantization, symbols, speakers, emotions, sources
    utts.jsonl           one JSON object per utterance (id, speaker, emotion, lang, text, n_tokens,
                         n_frames, shard, index, split = "train" | "eval")
    shard_000.safetensors ...

Each shard holds N utterances, concatenated along time:

- ``tokens`` int32 [ΣT] and ``token_offsets`` int64 [N+1] (ids into ``meta["symbols"]``);
- ``mel`` uint8 [ΣF, 80] and ``mel_offsets`` int64 [N+1]: log-mel codes,
  ``code = round((logmel - min) / (max - min) * 255)`` with min/max from ``meta["mel_quant"]``;
- ``f0`` float16 [ΣF] (Hz, 0 = unvoiced), sharing ``mel_offsets``;
- ``dvector`` float16 [N, 256] (unit speaker embedding of the utterance's own audio);
- ``durations`` int32 [ΣT] (frames per token, sharing ``token_offsets``) and ``has_durations``
  uint8 [N]: durations are meaningful only where ``has_durations`` is 1 (zeros elsewhere).

The writer appends utterances and flushes a shard every ``shard_size`` items; ``finish`` writes
``meta.json`` last, so a directory without it is an unfinished build. The reader loads shards
lazily and keeps them in memory (a whole corpus is tens of MiB). Nothing here synthesizes audio.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from voxserve.errors import PackError

VERSION = 1
SAMPLE_RATE = 22050
HOP_LENGTH = 256
N_MELS = 80
DVECTOR_DIM = 256
MEL_QUANT = {"min": -11.5129, "max": 2.5}
"""Fixed log-mel range: the floor is log(1e-5); louder bins are clipped (rare for speech at -1 dBFS)."""

_SHARD_KEYS = (
    "tokens",
    "token_offsets",
    "mel",
    "mel_offsets",
    "f0",
    "dvector",
    "durations",
    "has_durations",
)
_UTT_KEYS = ("id", "speaker", "emotion", "lang", "text", "n_tokens", "n_frames", "shard", "index", "split")


@dataclass
class Utterance:
    """One utterance as the trainer sees it (mel dequantized to float32 log-mel [F, 80])."""

    tokens: np.ndarray
    mel: np.ndarray
    f0: np.ndarray
    dvector: np.ndarray
    durations: np.ndarray | None
    speaker: str
    emotion: str
    lang: str
    text: str = ""
    id: str = ""
    split: str = "train"


def quantize_mel(logmel: np.ndarray, quant: dict[str, float] = MEL_QUANT) -> np.ndarray:
    """Log-mel float [F, 80] → uint8 codes (values outside the range are clipped)."""
    lo, hi = float(quant["min"]), float(quant["max"])
    codes = np.rint((np.asarray(logmel, dtype=np.float32) - lo) / (hi - lo) * 255.0)
    return np.clip(codes, 0, 255).astype(np.uint8)


def dequantize_mel(codes: np.ndarray, quant: dict[str, float] = MEL_QUANT) -> np.ndarray:
    """uint8 codes → float32 log-mel."""
    lo, hi = float(quant["min"]), float(quant["max"])
    return (codes.astype(np.float32) * ((hi - lo) / 255.0) + lo).astype(np.float32)


@dataclass
class _Pending:
    tokens: list[np.ndarray] = field(default_factory=list)
    mel: list[np.ndarray] = field(default_factory=list)
    f0: list[np.ndarray] = field(default_factory=list)
    dvector: list[np.ndarray] = field(default_factory=list)
    durations: list[np.ndarray] = field(default_factory=list)
    has: list[int] = field(default_factory=list)


class CorpusWriter:
    """Appends utterances to a corpus directory, a shard at a time.

    ``resume=True`` keeps the shards and ``utts.jsonl`` lines already there (a build that
    was stopped) and continues numbering after them; ``done_ids`` says which ids they hold.
    """

    def __init__(self, path: Path | str, shard_size: int = 256, resume: bool = False) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.shard_size = shard_size
        self._pending = _Pending()
        self._rows: list[dict[str, Any]] = []
        self.records: list[dict[str, Any]] = []
        utts = self.path / "utts.jsonl"
        # Until ``finish`` the directory is an unfinished build: no meta.json.
        (self.path / "meta.json").unlink(missing_ok=True)
        if resume and utts.exists():
            self.records = [json.loads(line) for line in utts.read_text("utf-8").splitlines() if line]
        else:
            for old in self.path.glob("shard_*.safetensors"):
                old.unlink()
            utts.write_text("", encoding="utf-8")
        self._shard = 1 + max((r["shard"] for r in self.records), default=-1)

    @property
    def done_ids(self) -> set[str]:
        return {r["id"] for r in self.records}

    def add(
        self,
        record: dict[str, Any],
        tokens: np.ndarray,
        mel_codes: np.ndarray,
        f0: np.ndarray,
        dvector: np.ndarray,
        durations: np.ndarray | None,
    ) -> None:
        """Queue one utterance; ``record`` needs id, speaker, emotion, lang, text, split."""
        tokens = np.asarray(tokens, dtype=np.int32)
        if mel_codes.dtype != np.uint8 or mel_codes.ndim != 2 or mel_codes.shape[1] != N_MELS:
            raise ValueError(
                f"mel codes must be uint8 [F, {N_MELS}], got {mel_codes.dtype} {mel_codes.shape}"
            )
        if len(f0) != len(mel_codes):
            raise ValueError(f"f0 has {len(f0)} frames, mel {len(mel_codes)}")
        if durations is not None and (
            len(durations) != len(tokens) or int(durations.sum()) != len(mel_codes)
        ):
            raise ValueError("durations must have one entry per token and sum to the frame count")
        p = self._pending
        p.tokens.append(tokens)
        p.mel.append(mel_codes)
        p.f0.append(np.asarray(f0, dtype=np.float16))
        p.dvector.append(np.asarray(dvector, dtype=np.float16).reshape(DVECTOR_DIM))
        p.durations.append(
            np.zeros(len(tokens), np.int32) if durations is None else np.asarray(durations, dtype=np.int32)
        )
        p.has.append(0 if durations is None else 1)
        row = {k: record[k] for k in ("id", "speaker", "emotion", "lang", "text", "split")}
        row.update(n_tokens=len(tokens), n_frames=len(mel_codes), shard=self._shard, index=len(self._rows))
        self._rows.append(row)
        if len(self._rows) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        """Write the queued utterances as the next shard and append their lines to ``utts.jsonl``."""
        if not self._rows:
            return
        from safetensors.numpy import save_file

        p = self._pending
        tensors = {
            "tokens": np.concatenate(p.tokens),
            "token_offsets": _offsets([len(t) for t in p.tokens]),
            "mel": np.concatenate(p.mel),
            "mel_offsets": _offsets([len(m) for m in p.mel]),
            "f0": np.concatenate(p.f0),
            "dvector": np.stack(p.dvector),
            "durations": np.concatenate(p.durations),
            "has_durations": np.asarray(p.has, dtype=np.uint8),
        }
        name = self.path / f"shard_{self._shard:03d}.safetensors"
        save_file(tensors, str(name.with_suffix(".tmp")))
        name.with_suffix(".tmp").replace(name)
        with (self.path / "utts.jsonl").open("a", encoding="utf-8") as f:
            for row in self._rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.records.extend(self._rows)
        self._rows = []
        self._pending = _Pending()
        self._shard += 1

    def finish(
        self,
        symbols: Sequence[str],
        speakers: Sequence[dict[str, Any]],
        emotions: Sequence[str],
        sources: dict[str, Any],
        mel: dict[str, Any],
    ) -> dict[str, Any]:
        """Flush and write ``meta.json``; returns it."""
        self.flush()
        meta = {
            "version": VERSION,
            "sample_rate": SAMPLE_RATE,
            "hop_length": HOP_LENGTH,
            "n_mels": N_MELS,
            "mel": dict(mel),
            "mel_quant": dict(MEL_QUANT),
            "symbols": list(symbols),
            "speakers": [dict(s) for s in speakers],
            "emotions": list(emotions),
            "sources": sources,
        }
        (self.path / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
        return meta


def _offsets(lengths: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


class Corpus:
    """Read access to a finished corpus: ``len(corpus)``, ``corpus[i] -> Utterance``.

    ``records`` are the ``utts.jsonl`` rows (no tensors), useful for filtering by split,
    speaker or length without loading shards. ``speaker_index`` / ``emotion_index`` give
    the row of a name in ``meta``'s lists (what an embedding table would use).
    """

    def __init__(self, path: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> None:
        self.path = path
        self.meta = meta
        self.records = records
        self._shards: dict[int, dict[str, np.ndarray]] = {}
        self.speaker_index = {s["name"]: i for i, s in enumerate(meta["speakers"])}
        self.emotion_index = {e: i for i, e in enumerate(meta["emotions"])}

    @classmethod
    def open(cls, path: Path | str) -> Corpus:
        """Open a corpus directory; ``PackError`` naming the file if it is not a valid one."""
        path = Path(path)
        meta_file = path / "meta.json"
        if not meta_file.is_file():
            raise PackError(f"{path}: not a finished corpus (no meta.json)")
        meta = json.loads(meta_file.read_text("utf-8"))
        if meta.get("version") != VERSION:
            raise PackError(f"{meta_file}: version {meta.get('version')!r}, this reader knows {VERSION}")
        for key in (
            "sample_rate",
            "hop_length",
            "n_mels",
            "mel",
            "mel_quant",
            "symbols",
            "speakers",
            "emotions",
        ):
            if key not in meta:
                raise PackError(f"{meta_file}: missing key {key!r}")
        records = []
        for n, line in enumerate((path / "utts.jsonl").read_text("utf-8").splitlines(), 1):
            if not line:
                continue
            row = json.loads(line)
            missing = [k for k in _UTT_KEYS if k not in row]
            if missing:
                raise PackError(f"{path / 'utts.jsonl'}:{n}: missing {missing}")
            records.append(row)
        return cls(path, meta, records)

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[Utterance]:
        for i in range(len(self)):
            yield self[i]

    def indices(self, split: str) -> list[int]:
        """Positions of the utterances of one split ("train" or "eval")."""
        return [i for i, r in enumerate(self.records) if r["split"] == split]

    def shard(self, number: int) -> dict[str, np.ndarray]:
        """All tensors of one shard (loaded once, then cached)."""
        if number not in self._shards:
            from safetensors.numpy import load_file

            name = self.path / f"shard_{number:03d}.safetensors"
            if not name.is_file():
                raise PackError(f"{name}: shard missing")
            tensors = load_file(str(name))
            missing = [k for k in _SHARD_KEYS if k not in tensors]
            if missing:
                raise PackError(f"{name}: missing tensors {missing}")
            self._shards[number] = tensors
        return self._shards[number]

    def __getitem__(self, i: int) -> Utterance:
        r = self.records[i]
        s = self.shard(r["shard"])
        k = r["index"]
        t0, t1 = int(s["token_offsets"][k]), int(s["token_offsets"][k + 1])
        f0, f1 = int(s["mel_offsets"][k]), int(s["mel_offsets"][k + 1])
        return Utterance(
            tokens=s["tokens"][t0:t1],
            mel=dequantize_mel(s["mel"][f0:f1], self.meta["mel_quant"]),
            f0=s["f0"][f0:f1].astype(np.float32),
            dvector=s["dvector"][k].astype(np.float32),
            durations=s["durations"][t0:t1] if s["has_durations"][k] else None,
            speaker=r["speaker"],
            emotion=r["emotion"],
            lang=r["lang"],
            text=r["text"],
            id=r["id"],
            split=r["split"],
        )


def write_tiny_corpus(path: Path | str, n: int = 16, seed: int = 0, shard_size: int = 8) -> Corpus:
    """A small random but valid corpus (3 speakers, all emotions, some durations) for tests.

    Mels are smooth random curves, F0 a slow contour with unvoiced gaps, d-vectors unit vectors
    clustered by speaker; the last speaker is held out (its utterances are ``eval``).
    """
    from voxserve.engine.controls import EMOTIONS
    from voxserve.frontend.symbols.emotivoice import tokens as symbol_list

    rng = np.random.default_rng(seed)
    symbols = symbol_list()
    speakers = [
        {"name": "tiny_a", "teacher": "tiny", "lang": "zh", "held_out": False},
        {"name": "tiny_b", "teacher": "tiny", "lang": "en", "held_out": False},
        {"name": "tiny_c", "teacher": "tiny", "lang": "zh+en", "held_out": True},
    ]
    centers = rng.normal(size=(len(speakers), DVECTOR_DIM))
    writer = CorpusWriter(path, shard_size=shard_size)
    for i in range(n):
        spk = i % len(speakers)
        n_tok = int(rng.integers(5, 30))
        tokens = rng.integers(1, len(symbols), size=n_tok)
        durations = rng.integers(1, 6, size=n_tok)
        n_frames = int(durations.sum())
        t = np.linspace(0, 1, n_frames)[:, None]
        logmel = -6 + 3 * np.sin(2 * np.pi * (t * rng.uniform(1, 4) + np.arange(N_MELS)[None] / 40))
        f0 = 180 + 30 * np.sin(2 * np.pi * t[:, 0] * 2)
        f0[rng.random(n_frames) < 0.2] = 0
        dvec = centers[spk] + 0.1 * rng.normal(size=DVECTOR_DIM)
        record = {
            "id": f"tiny_{i:04d}",
            "speaker": speakers[spk]["name"],
            "emotion": EMOTIONS[i % len(EMOTIONS)],
            "lang": "en" if spk == 1 else "zh",
            "text": f"tiny utterance {i}",
            "split": "eval" if speakers[spk]["held_out"] else "train",
        }
        writer.add(
            record,
            tokens,
            quantize_mel(logmel),
            f0,
            dvec / np.linalg.norm(dvec),
            durations if i % 2 == 0 else None,
        )
    writer.finish(symbols, speakers, EMOTIONS, {"tiny": "random test data"}, mel_config())
    return Corpus.open(path)


def mel_config() -> dict[str, Any]:
    """The mel front end's parameters as stored in ``meta["mel"]`` (see ``features.MelSpec``)."""
    from voxserve.train.corpus.features import MelSpec

    return MelSpec().describe()
